//! Certificates (PEM and DER) and serialised identities (the creator of a request).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_gateway::Identity;

fuzz_target!(|data: &[u8]| {
    let _ = Identity::from_pem("Org1MSP", data);
    if let Ok(identity) = Identity::from_der("Org1MSP", data.to_vec()) {
        let again = Identity::from_bytes(&identity.to_bytes()).expect("round trip");
        assert_eq!(again, identity);
    }
    let _ = Identity::from_bytes(data);
});
