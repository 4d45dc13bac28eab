//! Wrapped data key decoder, and opening whatever decodes under a fixed record key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::pre::{SecretKey, WrappedDataKey};

fuzz_target!(|data: &[u8]| {
    let Ok(wrapped) = WrappedDataKey::from_bytes(data) else {
        return;
    };
    // Strict: exactly one encoding per wrapping.
    assert_eq!(wrapped.to_bytes(), data);
    let Ok(sk) = SecretKey::from_be_bytes(&[0x11; 32]) else {
        return;
    };
    // Forging an AEAD tag is out of reach; any success is a bug.
    assert!(wrapped.open_original(&sk, b"fuzz").is_err());
});
