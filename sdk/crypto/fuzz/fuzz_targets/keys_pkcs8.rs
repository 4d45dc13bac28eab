//! PKCS#8, SPKI, SEC1 and DER-signature decoders for both curves.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::keys::{
    P256SigningKey, P256VerifyingKey, Pkcs8PrivateKey, Secp256k1PublicKey, Secp256k1SecretKey,
    SpkiPublicKey, is_low_s_der,
};

fuzz_target!(|data: &[u8]| {
    let _ = P256SigningKey::from_pkcs8_der(data);
    let _ = Secp256k1SecretKey::from_pkcs8_der(data);
    let _ = P256VerifyingKey::from_spki_der(data);
    let _ = Secp256k1PublicKey::from_spki_der(data);
    let _ = Secp256k1PublicKey::from_sec1_bytes(data);
    let _ = is_low_s_der(data);
    if let Ok(k) = P256VerifyingKey::from_sec1_bytes(data) {
        let _ = k.verify(b"m", data);
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = P256SigningKey::from_pkcs8_pem(s);
        let _ = Secp256k1PublicKey::from_spki_pem(s);
    }
});
