//! PRE capsule decoder (format and self-check) and original decapsulation of whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::pre::{self, Capsule, SecretKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(capsule) = Capsule::from_bytes(data) {
        // Strict: exactly one encoding per capsule.
        assert_eq!(capsule.to_bytes(), data);
        if let Ok(sk) = SecretKey::from_be_bytes(&[0x11; 32]) {
            let _ = pre::decapsulate_original(&sk, &capsule);
        }
    }
});
