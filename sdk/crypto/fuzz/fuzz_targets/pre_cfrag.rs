//! PRE capsule-fragment decoder; the input's first 105 bytes are also tried as a capsule, and
//! when both decode the fragment is verified against fixed keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::pre::{Capsule, CapsuleFrag, SecretKey};

fuzz_target!(|data: &[u8]| {
    if let Ok(cfrag) = CapsuleFrag::from_bytes(data) {
        // Strict: exactly one encoding per fragment.
        assert_eq!(cfrag.to_bytes(), data);
    }
    if data.len() < Capsule::ENCODED_LEN {
        return;
    }
    let (capsule, cfrag) = data.split_at(Capsule::ENCODED_LEN);
    let (Ok(capsule), Ok(cfrag)) = (Capsule::from_bytes(capsule), CapsuleFrag::from_bytes(cfrag))
    else {
        return;
    };
    let keys: Vec<_> = [[0x11u8; 32], [0x22; 32], [0x33; 32]]
        .iter()
        .filter_map(|b| SecretKey::from_be_bytes(b).ok())
        .map(|sk| sk.public_key())
        .collect();
    // Forging the delegator's signature is out of reach; any success is a bug.
    assert!(
        cfrag
            .verify(&capsule, &keys[0], &keys[1], &keys[2])
            .is_err()
    );
});
