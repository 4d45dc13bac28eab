//! Section ciphertext header decoder, length arithmetic and decryption of arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use medfabric_crypto::envelope::{self, Header, SectionContext, SectionKey};
use medfabric_crypto::record::{RecordId, SectionId};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = Header::decode(data) {
        // Strict: exactly one encoding per header.
        assert_eq!(h.encode()[..], data[..envelope::HEADER_LEN]);
    }
    let _ = envelope::plaintext_len(data.len() as u64);
    let (Ok(rid), Ok(sid)) = (RecordId::new("rec"), SectionId::new("sec")) else {
        return;
    };
    let ctx = SectionContext::new(&rid, 1, &sid);
    let Ok(key) = SectionKey::from_slice(&[7u8; 32]) else {
        return;
    };
    // Forging a ciphertext under a fixed key is out of reach; any success is a bug.
    assert!(envelope::decrypt(&key, &ctx, data).is_err());
    let _ = envelope::decrypt_stream(&key, &ctx, data, std::io::sink());
});
