//! Shared set-up: the embedded consortium with a stored, published, requested and granted
//! record.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use medfabric_crypto::ces::ExtractionPolicy;
use medfabric_crypto::record::{RecordId, Section};
use medfabric_records::demo::{self, DemoOptions, Environment};
use medfabric_records::{PreparedRecord, PublishRequest, RecordDraft};

pub struct Granted {
    pub record_id: String,
    pub share_id: String,
    pub request_id: String,
    pub prepared: PreparedRecord,
    pub sections: Vec<Section>,
    pub shared: Vec<String>,
}

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

pub async fn environment(proxies: usize) -> Environment {
    let options = DemoOptions {
        proxies,
        ..DemoOptions::default()
    };
    let env = Environment::start(&options).await.unwrap();
    env.bootstrap().await.unwrap();
    env
}

pub fn draft(env: &Environment, record_id: &str, sections: Vec<Section>) -> RecordDraft {
    RecordDraft {
        record_id: RecordId::new(record_id).unwrap(),
        version: 1,
        owner: env.cast.patient.member().fingerprint().to_owned(),
        owner_record_key: env.cast.patient.record_public_key(record_id).unwrap(),
        sections,
        section_policies: vec![demo::SECTION_POLICY.to_owned()],
        extraction_policy: ExtractionPolicy::new(),
    }
}

/// Stores the demo record, publishes the default shared sections, the researcher requests,
/// the patient grants `threshold`-of-all proxies.
pub async fn granted(env: &Environment, tag: &str, threshold: usize) -> Granted {
    let mut rng = rand::rngs::OsRng;
    let sections = demo::default_sections().unwrap();
    let shared = demo::default_shared(&sections);
    let record_id = format!("rec-{tag}");
    let prepared = env
        .records
        .prepare(
            &mut rng,
            &env.cast.physician,
            draft(env, &record_id, sections.clone()),
        )
        .unwrap();
    env.records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    let share_id = format!("share-{tag}");
    env.records
        .publish(
            &env.cast.patient,
            &PublishRequest {
                share_id: share_id.clone(),
                record_id: record_id.clone(),
                sections: shared.clone(),
                policy: demo::SHARE_POLICY.to_owned(),
                auto_grant_seconds: None,
            },
        )
        .await
        .unwrap();
    let request_id = format!("req-{tag}");
    env.records
        .request(&env.cast.researcher, &share_id, &request_id, "research")
        .await
        .unwrap();
    env.records
        .grant(
            &mut rng,
            &env.cast.patient,
            &request_id,
            &env.proxy_endpoints(),
            threshold,
            unix_now() + 3600,
        )
        .await
        .unwrap();
    Granted {
        record_id,
        share_id,
        request_id,
        prepared,
        sections,
        shared,
    }
}

/// Writes `len` pseudo-random bytes (xorshift, `seed`) to `path` in 1 MiB pieces, never
/// holding them; returns their SHA-256.
pub fn write_attachment(path: &std::path::Path, seed: u64, len: usize) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    use std::io::Write;
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut hash = Sha256::new();
    let mut state = seed | 1;
    let mut piece = Vec::with_capacity(1 << 20);
    let mut left = len;
    while left > 0 {
        piece.clear();
        while piece.len() < (1 << 20).min(left) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            piece.extend_from_slice(&state.to_le_bytes());
        }
        piece.truncate((1 << 20).min(left));
        hash.update(&piece);
        file.write_all(&piece).unwrap();
        left -= piece.len();
    }
    file.flush().unwrap();
    hash.finalize().into()
}

/// The SHA-256 of a file, read in 1 MiB pieces.
pub fn sha256_file(path: &std::path::Path) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap();
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).unwrap();
        if n == 0 {
            return hash.finalize().into();
        }
        hash.update(&buf[..n]);
    }
}

/// A DICOM attachment section `id` read from the file `path`.
pub fn dicom_file(id: &str, path: &std::path::Path) -> medfabric_records::AttachmentFile {
    medfabric_records::AttachmentFile {
        id: medfabric_crypto::record::SectionId::new(id).unwrap(),
        content_type: medfabric_crypto::record::ContentType::attachment("application/dicom")
            .unwrap(),
        path: path.to_owned(),
    }
}

/// The largest object file in the environment's local store: the attachment's ciphertext.
pub fn largest_object(env: &Environment) -> std::path::PathBuf {
    demo::files_under(&env.store_dir.join("objects"))
        .into_iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("an object in the store")
}

/// Tampers with a stored object: flips the bits of `mask` in the byte `at(len)` of `path`.
pub fn flip_bits(path: &std::path::Path, at: impl FnOnce(usize) -> usize, mask: u8) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = at(bytes.len());
    bytes[i] ^= mask;
    std::fs::write(path, &bytes).unwrap();
}

/// Stores `fhir` plus the attachment file `path` as section `ct-series`, publishes the
/// attachment, the researcher requests, the patient grants 2-of-all proxies. Returns the
/// request id.
pub async fn granted_attachment(
    env: &Environment,
    tag: &str,
    fhir: Vec<Section>,
    path: &std::path::Path,
) -> (medfabric_records::StoredRecord, String) {
    let mut rng = rand::rngs::OsRng;
    let record_id = format!("rec-{tag}");
    let file = dicom_file("ct-series", path);
    let stored = env
        .records
        .store_with_files(
            &mut rng,
            &env.cast.physician,
            draft(env, &record_id, fhir),
            vec![file],
        )
        .await
        .unwrap();
    let share_id = format!("share-{tag}");
    env.records
        .publish(
            &env.cast.patient,
            &PublishRequest {
                share_id: share_id.clone(),
                record_id: record_id.clone(),
                sections: vec!["ct-series".into()],
                policy: demo::SHARE_POLICY.to_owned(),
                auto_grant_seconds: None,
            },
        )
        .await
        .unwrap();
    let request_id = format!("req-{tag}");
    env.records
        .request(&env.cast.researcher, &share_id, &request_id, "research")
        .await
        .unwrap();
    env.records
        .grant(
            &mut rng,
            &env.cast.patient,
            &request_id,
            &env.proxy_endpoints(),
            2,
            unix_now() + 3600,
        )
        .await
        .unwrap();
    (stored, request_id)
}
