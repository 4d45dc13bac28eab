//! Low-S normalisation of DER ECDSA signatures (what an HSM signer hands back).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_gateway::{is_low_s, to_low_s};

fuzz_target!(|data: &[u8]| {
    if let Ok(low) = to_low_s(data) {
        assert!(is_low_s(&low));
        // Idempotent, and a no-op on signatures that were already low-S.
        assert_eq!(to_low_s(&low).expect("normalised twice"), low);
        if is_low_s(data) {
            assert_eq!(low, data);
        }
    }
});
