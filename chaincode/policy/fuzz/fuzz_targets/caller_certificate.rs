//! Caller certificates (PEM or DER): reading must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_policy::CallerIdentity;

fuzz_target!(|data: &[u8]| {
    if let Ok(id) = CallerIdentity::from_certificate("Hospital1MSP", data) {
        let _ = id.attributes();
        let _ = id.check_validity_at(1_750_000_000);
        let _ = id.fingerprint().to_string();
    }
});
