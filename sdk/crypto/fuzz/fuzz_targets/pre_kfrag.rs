//! PRE key-fragment decoder, and verification of whatever decodes against fixed keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::pre::{KeyFrag, SecretKey};

fuzz_target!(|data: &[u8]| {
    let Ok(kfrag) = KeyFrag::from_bytes(data) else {
        return;
    };
    // Strict: exactly one encoding per fragment.
    assert_eq!(kfrag.to_bytes()[..], data[..]);
    let keys: Vec<_> = [[0x11u8; 32], [0x22; 32], [0x33; 32]]
        .iter()
        .filter_map(|b| SecretKey::from_be_bytes(b).ok())
        .map(|sk| sk.public_key())
        .collect();
    // Forging the delegator's signature is out of reach; any success is a bug.
    assert!(kfrag.verify(&keys[0], &keys[1], &keys[2]).is_err());
});
