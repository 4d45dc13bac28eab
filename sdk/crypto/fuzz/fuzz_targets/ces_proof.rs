//! CES wire decoders (signature, holder record, subset proof, disclosure) and verification of
//! whatever decodes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::ces::{CesSignature, Disclosure, SignedRecord, SubsetProof};
use medfabric_crypto::keys::P256VerifyingKey;

/// A fixed valid P-256 public key (the generator point); nobody knows a matching signature.
const G: [u8; 65] = [
    0x04, 0x6b, 0x17, 0xd1, 0xf2, 0xe1, 0x2c, 0x42, 0x47, 0xf8, 0xbc, 0xe6, 0xe5, 0x63, 0xa4, 0x40,
    0xf2, 0x77, 0x03, 0x7d, 0x81, 0x2d, 0xeb, 0x33, 0xa0, 0xf4, 0xa1, 0x39, 0x45, 0xd8, 0x98, 0xc2,
    0x96, 0x4f, 0xe3, 0x42, 0xe2, 0xfe, 0x1a, 0x7f, 0x9b, 0x8e, 0xe7, 0xeb, 0x4a, 0x7c, 0x0f, 0x9e,
    0x16, 0x2b, 0xce, 0x33, 0x57, 0x6b, 0x31, 0x5e, 0xce, 0xcb, 0xb6, 0x40, 0x68, 0x37, 0xbf, 0x51,
    0xf5,
];

fuzz_target!(|data: &[u8]| {
    let Ok(key) = P256VerifyingKey::from_sec1_bytes(&G) else {
        return;
    };
    if let Ok(s) = CesSignature::from_bytes(data) {
        assert_eq!(s.to_bytes(), data);
        assert!(s.verify(&key).is_err());
    }
    if let Ok(s) = SignedRecord::from_bytes(data) {
        assert_eq!(s.to_bytes(), data);
    }
    if let Ok(p) = SubsetProof::from_bytes(data) {
        assert_eq!(p.to_bytes(), data);
        assert!(p.verify(&key).is_err());
    }
    if let Ok(d) = Disclosure::from_bytes(data) {
        assert_eq!(d.to_bytes(), data);
        assert!(d.verify(&key).is_err());
    }
});
