//! Failure handling of the pipeline: proxies down, tampered objects, outages between upload
//! and index, and what the proxies refuse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use medfabric_crypto::pre::SecretKey;
use medfabric_records::demo;
use medfabric_records::ledger::{Call, ChannelKind, Committed, EmbeddedLedger, LedgerClient};
use medfabric_records::proxy::{ProxyClient, ProxyConfig};
use medfabric_records::{Error, IndexOutcome, LedgerError, Member, Stage};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_of_three_works_with_one_proxy_down_and_fails_clearly_with_two_down() {
    let mut env = common::environment(3).await;
    let g = common::granted(&env, "down", 2).await;
    let endpoints = env.proxy_endpoints();

    env.proxies[0].stop().await;
    let got = env
        .records
        .access(&env.cast.researcher, &g.request_id, &endpoints)
        .await
        .expect("two proxies are enough");
    assert_eq!(got.proxies_used.len(), 2);
    assert!(
        !got.proxies_used
            .contains(&env.proxies[0].service.member().fingerprint().to_owned())
    );
    assert!(
        got.proxy_failures
            .iter()
            .any(|f| f.contains(&endpoints[0].url)),
        "{:?}",
        got.proxy_failures
    );
    let opened: Vec<&str> = got.sections.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        opened,
        g.shared.iter().map(String::as_str).collect::<Vec<_>>()
    );

    env.proxies[1].stop().await;
    let err = env
        .records
        .access(&env.cast.researcher, &g.request_id, &endpoints)
        .await
        .expect_err("one proxy is not enough");
    assert_eq!(err.stage(), Stage::Reencrypt);
    match &err {
        Error::Reencrypt {
            needed,
            got,
            failures,
        } => {
            assert_eq!((*needed, *got), (2, 1));
            assert_eq!(failures.len(), 2, "{failures:?}");
        }
        other => panic!("expected a re-encryption error, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("1 of the 2 proxy re-encryptions needed"),
        "{message}"
    );
    assert!(message.contains("unreachable"), "{message}");
    assert!(
        message.contains("check that enough proxies are running"),
        "{message}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_object_is_refused_before_decryption() {
    let mut env = common::environment(3).await;
    let g = common::granted(&env, "tamper", 2).await;
    // Flip one byte of a shared section's object in the store folder.
    let shared_index = g
        .prepared
        .sections
        .iter()
        .position(|s| s.id == g.shared[0])
        .unwrap();
    let digest = g.prepared.sections[shared_index].digest.to_hex();
    let path = demo::files_under(&env.store_dir)
        .into_iter()
        .find(|p| p.ends_with(&digest))
        .expect("the object file");
    common::flip_bits(&path, |len| len - 1, 0x01);

    let err = env
        .records
        .access(&env.cast.researcher, &g.request_id, &env.proxy_endpoints())
        .await
        .expect_err("tampered object");
    // A digest refusal (Verify), not a failed decryption: nothing was decrypted.
    assert_eq!(err.stage(), Stage::Verify, "{err}");
    let message = err.to_string();
    assert!(message.contains(&digest), "{message}");
    assert!(message.contains("nothing was decrypted"), "{message}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outage_between_upload_and_index_leaves_no_index_and_a_retry_does_not_duplicate() {
    let mut env = common::environment(1).await;
    let mut rng = rand::rngs::OsRng;
    let sections = demo::default_sections().unwrap();
    let n = sections.len();
    let prepared = env
        .records
        .prepare(
            &mut rng,
            &env.cast.physician,
            common::draft(&env, "rec-outage", sections),
        )
        .unwrap();
    let mem = env.embedded.clone().unwrap();

    // The ledger goes down after the upload: the index fails, nothing points at the objects.
    mem.set_reachable(false);
    let err = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .expect_err("ledger down");
    assert_eq!(err.stage(), Stage::Index, "{err}");
    assert!(
        matches!(err, Error::Index(LedgerError::Unreachable { .. })),
        "{err}"
    );
    mem.set_reachable(true);
    let objects = env.records.blobs().list_objects().await.unwrap();
    assert_eq!(objects.len(), n + 1, "sections + manifest uploaded");
    let get = env
        .ledger
        .evaluate(
            &env.cast.physician,
            ChannelKind::Storage,
            &Call::new("Record:Get", ["rec-outage"]),
        )
        .await
        .expect_err("no index");
    assert!(get.refusal().unwrap().contains("does not exist"), "{get}");
    let heights = (
        mem.channel(ChannelKind::Storage).height(),
        mem.channel(ChannelKind::Sharing).height(),
    );

    // The retry re-uses every object and indexes once.
    let stored = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    assert_eq!(stored.upload.created, 0);
    assert_eq!(stored.upload.already_present, n + 1);
    assert_eq!(stored.index, IndexOutcome::Created);
    assert_eq!(env.records.blobs().list_objects().await.unwrap(), objects);
    assert_eq!(mem.channel(ChannelKind::Storage).height(), heights.0 + 1);

    // And a second retry changes nothing at all.
    let again = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    assert_eq!(again.index, IndexOutcome::AlreadyIndexed);
    assert_eq!(again.tx_id, None);
    assert_eq!(env.records.blobs().list_objects().await.unwrap(), objects);
    assert_eq!(mem.channel(ChannelKind::Storage).height(), heights.0 + 1);
    assert_eq!(mem.channel(ChannelKind::Sharing).height(), heights.1);
    env.shutdown().await;
}

/// A ledger client that can be cut off, for one proxy only.
#[derive(Debug)]
struct Switchable {
    inner: Arc<EmbeddedLedger>,
    up: AtomicBool,
}

impl Switchable {
    fn check(&self, channel: ChannelKind, call: &Call) -> Result<(), LedgerError> {
        if self.up.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(LedgerError::Unreachable {
                channel: self.inner.channel_name(channel).to_owned(),
                function: call.function.clone(),
                message: "connection refused".into(),
            })
        }
    }
}

#[async_trait]
impl LedgerClient for Switchable {
    async fn submit(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Committed, LedgerError> {
        self.check(channel, call)?;
        self.inner.submit(who, channel, call).await
    }
    async fn evaluate(
        &self,
        who: &Member,
        channel: ChannelKind,
        call: &Call,
    ) -> Result<Vec<u8>, LedgerError> {
        self.check(channel, call)?;
        self.inner.evaluate(who, channel, call).await
    }
    fn channel_name(&self, channel: ChannelKind) -> &str {
        self.inner.channel_name(channel)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxies_refuse_strangers_floods_and_an_unreachable_ledger() {
    let mut env = common::environment(0).await;
    let switch = Arc::new(Switchable {
        inner: env.embedded.clone().unwrap(),
        up: AtomicBool::new(true),
    });
    let member = env.cast.cas[1]
        .issue("proxy-x", &["client"], &[("role", "proxy")])
        .unwrap();
    let mut rng = rand::rngs::OsRng;
    let handle = demo::start_proxy(
        member,
        SecretKey::random(&mut rng),
        switch.clone(),
        ProxyConfig {
            rate_per_second: 0.5,
            burst: 3.0,
            storage_dir: None,
        },
    )
    .await
    .unwrap();
    env.proxies.push(handle);
    let g = common::granted(&env, "refuse", 1).await;
    let client = ProxyClient::new();
    let proxy = client
        .info(&env.proxies[0].endpoint, env.records.roots())
        .await
        .unwrap();
    assert_eq!(env.proxies[0].service.fragment_count(), 1);

    // The grantee is served.
    let ok = client
        .reencrypt(&proxy, env.cast.researcher.member(), &g.request_id)
        .await
        .unwrap();
    assert_eq!(ok.cfrags.len(), g.shared.len());

    // Someone else, even with a valid certificate and signature, is not the requester.
    let stranger = client
        .reencrypt(&proxy, env.cast.nurse.member(), &g.request_id)
        .await
        .expect_err("not the requester");
    assert!(
        stranger.contains("403") && stranger.contains("not the requester"),
        "{stranger}"
    );

    // Floods are cut per grantee (burst 3: one used above, one more passes, then 429).
    let _ = client
        .reencrypt(&proxy, env.cast.researcher.member(), &g.request_id)
        .await
        .unwrap();
    let _ = client
        .reencrypt(&proxy, env.cast.researcher.member(), &g.request_id)
        .await
        .unwrap();
    let flood = client
        .reencrypt(&proxy, env.cast.researcher.member(), &g.request_id)
        .await
        .expect_err("rate limited");
    assert!(flood.contains("429"), "{flood}");

    // With the ledger out of reach the proxy refuses rather than guesses.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    switch.up.store(false, Ordering::SeqCst);
    let down = client
        .reencrypt(&proxy, env.cast.researcher.member(), &g.request_id)
        .await
        .expect_err("ledger unreachable");
    assert!(down.contains("503") && down.contains("refuses"), "{down}");
    switch.up.store(true, Ordering::SeqCst);

    // Each served re-encryption is recorded on `sharing`; refusals are not.
    let audit = env
        .records
        .audit(
            env.cast.patient.member(),
            env.cast.patient.member().fingerprint(),
        )
        .await
        .unwrap();
    let reencryptions = audit
        .iter()
        .filter(|e| e.action == "share.reencrypt" && e.request_id.as_deref() == Some(&g.request_id))
        .count();
    assert_eq!(reencryptions, 3);

    // After revocation the proxy refuses and drops its fragment.
    env.records
        .revoke(&env.cast.patient, &g.request_id, "done")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let revoked = client
        .reencrypt(&proxy, env.cast.researcher.member(), &g.request_id)
        .await
        .expect_err("revoked");
    assert!(
        revoked.contains("403") && revoked.contains("revoked"),
        "{revoked}"
    );
    assert_eq!(env.proxies[0].service.fragment_count(), 0);
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_chaincode_verifies_the_authors_ces_signature() {
    let mut env = common::environment(0).await;
    let mut rng = rand::rngs::OsRng;
    let sections = demo::default_sections().unwrap();
    // Signed by the nurse, indexed by the physician: the chaincode refuses the index.
    let forged = env
        .records
        .prepare(
            &mut rng,
            env.cast.nurse.member(),
            common::draft(&env, "rec-forged", sections),
        )
        .unwrap();
    let err = env
        .records
        .commit_prepared(&env.cast.physician, &forged)
        .await
        .expect_err("signature by another key");
    assert_eq!(err.stage(), Stage::Index);
    assert!(
        err.to_string()
            .contains("not made by the transaction's signer"),
        "{err}"
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_file_changed_after_prepare_is_refused_and_nothing_is_left() {
    let mut env = common::environment(0).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("scan.dcm");
    common::write_attachment(&src, 3, 3 * 1024 * 1024 + 5);
    let mut rng = rand::rngs::OsRng;
    let file = common::dicom_file("scan", &src);
    let fhir = demo::default_sections().unwrap()[..1].to_vec();
    let prepared = env
        .records
        .prepare_with_files(
            &mut rng,
            &env.cast.physician,
            common::draft(&env, "rec-changed", fhir),
            vec![file],
        )
        .await
        .unwrap();
    // Same length, one byte different in the middle.
    let mut bytes = std::fs::read(&src).unwrap();
    bytes[1024 * 1024 + 17] ^= 0x40;
    std::fs::write(&src, &bytes).unwrap();
    let err = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .expect_err("changed file");
    assert_eq!(err.stage(), Stage::Upload, "{err}");
    assert!(
        err.to_string()
            .contains("changed since the record was prepared"),
        "{err}"
    );
    let attachment = prepared.sections.last().unwrap().digest;
    assert!(
        env.records
            .blobs()
            .stat(&attachment)
            .await
            .unwrap()
            .is_none()
    );
    assert!(demo::files_under(&env.store_dir.join("tmp")).is_empty());
    // Restored, the same prepared record uploads and indexes.
    bytes[1024 * 1024 + 17] ^= 0x40;
    std::fs::write(&src, &bytes).unwrap();
    let stored = env
        .records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    assert_eq!(stored.index, IndexOutcome::Created);
    assert!(
        env.records
            .blobs()
            .stat(&attachment)
            .await
            .unwrap()
            .is_some()
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tampered_large_object_yields_no_file() {
    let mut env = common::environment(2).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ct.dcm");
    let expected = common::write_attachment(&src, 5, 2 * 1024 * 1024 + 3);
    let fhir = demo::default_sections().unwrap()[..1].to_vec();
    let (stored, request_id) = common::granted_attachment(&env, "tamper-large", fhir, &src).await;
    assert!(stored.upload.created >= 2);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();

    // Untouched, it comes back whole.
    let got = env
        .records
        .access_to_dir(
            &env.cast.researcher,
            &request_id,
            &env.proxy_endpoints(),
            &out,
        )
        .await
        .unwrap();
    let path = got.sections[0].file.clone().unwrap();
    assert_eq!(common::sha256_file(&path), expected);
    std::fs::remove_file(&path).unwrap();

    // One bit flipped in the middle of the object: refused on the digest, no file.
    common::flip_bits(&common::largest_object(&env), |len| len / 2, 0x01);
    let err = env
        .records
        .access_to_dir(
            &env.cast.researcher,
            &request_id,
            &env.proxy_endpoints(),
            &out,
        )
        .await
        .expect_err("tampered");
    assert_eq!(err.stage(), Stage::Verify, "{err}");
    assert!(
        err.to_string().contains("no plaintext was released"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        0,
        "no file, no temporary file"
    );
    env.shutdown().await;
}

/// Records every progress call, for [`streamed_transfers_report_their_progress`].
#[derive(Default)]
struct ProgressLog(std::sync::Mutex<Vec<(String, u64)>>);

impl medfabric_records::TransferProgress for ProgressLog {
    fn begin(&self, direction: medfabric_records::Direction, object: &str, total: u64) {
        self.0
            .lock()
            .unwrap()
            .push((format!("begin {direction:?} {object}"), total));
    }
    fn advance(&self, bytes: u64) {
        self.0.lock().unwrap().push(("advance".into(), bytes));
    }
    fn end(&self, completed: bool) {
        self.0.lock().unwrap().push((format!("end {completed}"), 0));
    }
}

impl ProgressLog {
    /// The transfers as (begin label, total, sum of advances, end label), in order.
    fn transfers(&self) -> Vec<(String, u64, u64, String)> {
        let mut out: Vec<(String, u64, u64, String)> = Vec::new();
        for (what, n) in self.0.lock().unwrap().drain(..) {
            if what.starts_with("begin") {
                out.push((what, n, 0, String::new()));
            } else if what == "advance" {
                out.last_mut().expect("advance after begin").2 += n;
            } else {
                let last = out.last_mut().expect("end after begin");
                assert!(last.3.is_empty(), "a transfer ended twice");
                last.3 = what;
            }
        }
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn streamed_transfers_report_their_progress() {
    let mut env = common::environment(2).await;
    let log = Arc::new(ProgressLog::default());
    env.records = env.records.clone().with_progress(log.clone());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ct.dcm");
    common::write_attachment(&src, 7, 2 * 1024 * 1024 + 9);
    let fhir = demo::default_sections().unwrap()[..1].to_vec();
    let (stored, request_id) = common::granted_attachment(&env, "progress", fhir, &src).await;
    assert!(stored.sections.iter().any(|s| s == "ct-series"));
    let stored_and_published = log.transfers();
    // Storing: the FHIR section is in memory and small, only the attachment's object streams
    // and is reported, in full, once. Publishing: the owner's record is streamed section by
    // section to compute its CES leaves, each section reported in full.
    let (begin, total, sent, end) = &stored_and_published[0];
    assert_eq!(begin, "begin Upload ct-series");
    assert!(
        *total > 2 * 1024 * 1024 + 9,
        "ciphertext is larger than the file"
    );
    assert_eq!(sent, total);
    assert_eq!(end, "end true");
    let published = &stored_and_published[1..];
    assert_eq!(published.len(), stored.sections.len(), "{published:?}");
    for (begin, total, sent, end) in published {
        assert!(begin.starts_with("begin Download "), "{begin}");
        assert_eq!(sent, total, "{begin}");
        assert_eq!(end, "end true", "{begin}");
    }
    assert!(
        published
            .iter()
            .any(|t| t.0 == "begin Download ct-series" && t.1 == *total)
    );
    let total = *total;

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    env.records
        .access_to_dir(
            &env.cast.researcher,
            &request_id,
            &env.proxy_endpoints(),
            &out,
        )
        .await
        .unwrap();
    let downloads = log.transfers();
    assert_eq!(
        downloads,
        [(
            "begin Download ct-series".to_owned(),
            total,
            total,
            "end true".to_owned()
        )]
    );

    // A tampered object: the transfer ends, as failed.
    common::flip_bits(&common::largest_object(&env), |_| 7, 0x01);
    std::fs::remove_dir_all(&out).unwrap();
    std::fs::create_dir(&out).unwrap();
    env.records
        .access_to_dir(
            &env.cast.researcher,
            &request_id,
            &env.proxy_endpoints(),
            &out,
        )
        .await
        .expect_err("tampered");
    let failed = log.transfers();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].0, "begin Download ct-series");
    assert_eq!(failed[0].3, "end false");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn proxies_speak_tls_verified_against_the_consortium_roots_and_nothing_less() {
    // The environment's proxies serve HTTPS with certificates from a demo TLS CA; the
    // pipeline trusts that CA (every other test in this file goes through it).
    let mut env = common::environment(1).await;
    let endpoint = env.proxies[0].endpoint.clone();
    assert!(
        endpoint.url.starts_with("https://127.0.0.1:"),
        "{}",
        endpoint.url
    );
    let roots = env.records.roots().to_vec();

    // A client that trusts another CA refuses the proxy's certificate.
    let other = medfabric_records::pki::DemoCa::new("TLS").unwrap();
    let stranger = ProxyClient::with_tls_roots(&[other.certificate_pem().to_owned()]).unwrap();
    let err = stranger.info(&endpoint, &roots).await.unwrap_err();
    assert!(err.contains("unreachable"), "{err}");
    assert!(err.to_lowercase().contains("certificate"), "{err}");

    // No roots: an https:// proxy is refused before any connection.
    let err = ProxyClient::new()
        .info(&endpoint, &roots)
        .await
        .unwrap_err();
    assert!(err.contains("no proxy TLS roots are configured"), "{err}");

    // No downgrade: plain HTTP to the TLS port gets no answer...
    let plain =
        medfabric_records::proxy::ProxyEndpoint::new(endpoint.url.replacen("https", "http", 1));
    assert!(ProxyClient::new().info(&plain, &roots).await.is_err());
    // ...and plain HTTP beyond the loopback interface is never sent.
    let remote = medfabric_records::proxy::ProxyEndpoint::new("http://192.0.2.7:7100");
    let err = ProxyClient::new().info(&remote, &roots).await.unwrap_err();
    assert!(
        err.contains("only allowed to a proxy on this machine's loopback"),
        "{err}"
    );

    // Garbage instead of a TLS handshake does not stop the proxy: the next client is served.
    {
        use tokio::io::AsyncWriteExt as _;
        let addr = endpoint.url.trim_start_matches("https://");
        let mut junk = tokio::net::TcpStream::connect(addr).await.unwrap();
        junk.write_all(b"GET /v1/info HTTP/1.1\r\n\r\n\x00\x01garbage")
            .await
            .unwrap();
        let _ = junk.shutdown().await;
    }
    let g = common::granted(&env, "tls", 1).await;
    let opened = env
        .records
        .access(&env.cast.researcher, &g.request_id, &env.proxy_endpoints())
        .await
        .unwrap();
    assert_eq!(opened.sections.len(), g.shared.len());
    env.shutdown().await;
}

#[test]
fn proxy_tls_material_is_checked() {
    let ca = medfabric_records::pki::DemoCa::new("TLS").unwrap();
    let (certificate, key) = ca.issue_tls_server("127.0.0.1").unwrap();
    assert!(
        medfabric_records::proxy::tls::server_config(certificate.as_bytes(), key.as_bytes())
            .is_ok()
    );
    // A key that is not the certificate's.
    let (_, other_key) = ca.issue_tls_server("127.0.0.1").unwrap();
    let err =
        medfabric_records::proxy::tls::server_config(certificate.as_bytes(), other_key.as_bytes())
            .unwrap_err()
            .to_string();
    assert!(err.contains("do not go together"), "{err}");
    let err = medfabric_records::proxy::tls::server_config(
        certificate.as_bytes(),
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("proxy TLS"), "{err}");
    assert!(ca.issue_tls_server("proxy.example").is_err());
}

/// Publishing streams the owner's record to compute its CES leaves: it refuses a section the
/// record does not have and a subset the author's extraction policy forbids (both `Validate`),
/// and a record whose stored object was tampered with (`Verify`, naming the object), without
/// publishing anything; an allowed subset is published with exactly its leaf indices.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn publish_proves_from_streamed_leaves_and_refuses_what_it_cannot_prove() {
    let mut env = common::environment(3).await;
    let mut rng = rand::rngs::OsRng;
    let sections = demo::default_sections().unwrap();
    let record_id = "rec-publish";
    let mut draft = common::draft(&env, record_id, sections.clone());
    // section 1 may only be shared together with section 0
    draft.extraction_policy = medfabric_crypto::ces::ExtractionPolicy::new()
        .requires(1, [0])
        .unwrap();
    let prepared = env
        .records
        .prepare(&mut rng, &env.cast.physician, draft)
        .unwrap();
    env.records
        .commit_prepared(&env.cast.physician, &prepared)
        .await
        .unwrap();
    let request = |share_id: &str, ids: &[&str]| medfabric_records::PublishRequest {
        share_id: share_id.into(),
        record_id: record_id.into(),
        sections: ids.iter().map(|s| (*s).to_owned()).collect(),
        policy: demo::SHARE_POLICY.to_owned(),
        auto_grant_seconds: None,
    };
    let (first, second, last) = (
        sections[0].id.to_string(),
        sections[1].id.to_string(),
        sections[sections.len() - 1].id.to_string(),
    );

    let err = env
        .records
        .publish(&env.cast.patient, &request("p-none", &["no-such-section"]))
        .await
        .expect_err("unknown section");
    assert_eq!(err.stage(), Stage::Validate, "{err}");
    assert!(err.to_string().contains("has no section"), "{err}");

    let err = env
        .records
        .publish(&env.cast.patient, &request("p-alone", &[second.as_str()]))
        .await
        .expect_err("forbidden subset");
    assert_eq!(err.stage(), Stage::Validate, "{err}");
    assert!(err.to_string().contains("extraction policy"), "{err}");

    let summary = env
        .records
        .publish(
            &env.cast.patient,
            &request("p-ok", &[last.as_str(), second.as_str(), first.as_str()]),
        )
        .await
        .unwrap();
    let indices: Vec<u64> = summary
        .sections
        .iter()
        .map(|s| s["index"].as_u64().unwrap())
        .collect();
    assert_eq!(
        indices,
        vec![0, 1, sections.len() as u64 - 1],
        "{summary:?}"
    );

    // Tamper with a section that is not even shared: publishing streams every section
    // through verification, so it refuses the record.
    let digest = prepared.sections[2].digest.to_hex();
    let path = demo::files_under(&env.store_dir)
        .into_iter()
        .find(|p| p.ends_with(&digest))
        .expect("the object file");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let err = env
        .records
        .publish(&env.cast.patient, &request("p-tampered", &[last.as_str()]))
        .await
        .expect_err("tampered object");
    assert_eq!(err.stage(), Stage::Verify, "{err}");
    assert!(err.to_string().contains(&digest), "{err}");
    let err = env
        .records
        .request(&env.cast.researcher, "p-tampered", "r-tampered", "research")
        .await
        .expect_err("nothing was published");
    assert_eq!(err.stage(), Stage::Share, "{err}");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_streams_its_record_into_a_folder_and_a_tampered_section_leaves_no_file() {
    let mut env = common::environment(0).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ct.dcm");
    let expected = common::write_attachment(&src, 11, 3 * 1024 * 1024 + 1);
    let mut rng = rand::rngs::OsRng;
    let file = common::dicom_file("ct-series", &src);
    let fhir = demo::default_sections().unwrap()[..2].to_vec();
    let stored = env
        .records
        .store_with_files(
            &mut rng,
            &env.cast.physician,
            common::draft(&env, "rec-own-dir", fhir.clone()),
            vec![file],
        )
        .await
        .unwrap();
    let out = dir.path().join("own");
    std::fs::create_dir(&out).unwrap();
    let opened = env
        .records
        .open_own_record_to_dir(&env.cast.patient, &stored.record_id, "treatment", &out)
        .await
        .unwrap();
    assert_eq!(opened.sections.len(), 3);
    for (section, original) in opened.sections.iter().zip(&fhir) {
        assert!(section.bytes.is_empty(), "streamed, not held");
        let written = std::fs::read(section.file.as_ref().unwrap()).unwrap();
        assert_eq!(written, original.bytes, "section {}", section.id);
    }
    let image = opened.sections[2].file.clone().unwrap();
    assert!(image.ends_with("0002-ct-series"), "{}", image.display());
    assert_eq!(common::sha256_file(&image), expected);

    // The attachment's object tampered with: refused, and no file for it (not even a
    // temporary one); the sections before it were written.
    common::flip_bits(&common::largest_object(&env), |len| len - 1, 0x80);
    let again = dir.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let err = env
        .records
        .open_own_record_to_dir(&env.cast.patient, &stored.record_id, "treatment", &again)
        .await
        .expect_err("tampered");
    assert_eq!(err.stage(), Stage::Verify, "{err}");
    let names: Vec<String> = std::fs::read_dir(&again)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("ct-series") || n.starts_with('.')),
        "{names:?}"
    );
    env.shutdown().await;
}
