//! Private keys in PEM and DER (keystore files).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_gateway::P256Signer;

fuzz_target!(|data: &[u8]| {
    let _ = P256Signer::from_pem(data);
    let _ = P256Signer::from_der(data);
});
