//! A 100 MiB attachment is stored, shared and accessed in bounded memory: peak resident memory
//! of this whole test process (embedded ledger, proxies and object store included) stays under
//! 64 MiB while the record is stored from a file, again while the owner publishes it (the CES
//! leaves are computed by streaming the record through decryption), and again while the
//! grantee downloads, verifies and decrypts it into a file.
//!
//! Measured with the kernel's peak-RSS counter (`VmHWM` in `/proc/self/status`, reset
//! between phases through `/proc/self/clear_refs`), so it counts everything the process
//! touched, not only the Rust heap. One test per file: other tests in the same process would
//! count too. Linux only.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

const MIB: u64 = 1024 * 1024;
const BOUND: u64 = 64 * MIB;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Resets the peak to the current resident size.
fn reset_peak() {
    std::fs::write("/proc/self/clear_refs", "5").expect("resetting the peak RSS");
    assert!(status_kib("VmHWM:") <= status_kib("VmRSS:") + 1024);
}

fn peak_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

const TEST_NAME: &str = "a_100_mib_attachment_is_stored_shared_and_accessed_in_bounded_memory";
const CHILD: &str = "MEDFABRIC_MEASURE_IN_CHILD";

/// Runs the measurement in a child process of this test binary with glibc's mmap threshold
/// fixed at 128 KiB. By default glibc raises that threshold (up to 32 MiB) after large
/// buffers are freed, and then keeps later freed buffers in the heap, where a phase would
/// count what an earlier one left behind. A fixed threshold returns large buffers to the
/// kernel when freed, so each phase's peak is what that phase holds.
#[test]
fn a_100_mib_attachment_is_stored_shared_and_accessed_in_bounded_memory() {
    if std::env::var_os(CHILD).is_some() {
        return measure();
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .output()
        .unwrap();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the measuring child failed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("1 passed"),
        "the child ran no measurement:\n{stdout}"
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn measure() {
    let mut env = common::environment(2).await;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("ct.dcm");
    let size = 100 * MIB;
    let expected = common::write_attachment(&src, 7, size as usize);
    let fhir = medfabric_records::demo::default_sections().unwrap()[..1].to_vec();

    reset_peak();
    let before = peak_bytes();
    // store: sign + encrypt (first pass), upload (second pass) + verify, index
    let mut rng = rand::rngs::OsRng;
    let record_id = "rec-large";
    let file = common::dicom_file("ct-series", &src);
    let stored = env
        .records
        .store_with_files(
            &mut rng,
            &env.cast.physician,
            common::draft(&env, record_id, fhir),
            vec![file],
        )
        .await
        .unwrap();
    let store_peak = peak_bytes();
    assert!(stored.upload.bytes > size, "the attachment was uploaded");
    eprintln!(
        "store: peak RSS {:.1} MiB (before {:.1} MiB)",
        store_peak as f64 / MIB as f64,
        before as f64 / MIB as f64
    );
    assert!(
        store_peak < BOUND,
        "storing peaked at {store_peak} bytes resident"
    );

    // publish: the owner streams every section through decryption for its CES leaf, proves
    // the shared subset, submits the share
    reset_peak();
    let summary = env
        .records
        .publish(
            &env.cast.patient,
            &medfabric_records::PublishRequest {
                share_id: "share-large".into(),
                record_id: record_id.into(),
                sections: vec!["ct-series".into()],
                policy: medfabric_records::demo::SHARE_POLICY.to_owned(),
                auto_grant_seconds: None,
            },
        )
        .await
        .unwrap();
    let publish_peak = peak_bytes();
    eprintln!(
        "publish: peak RSS {:.1} MiB",
        publish_peak as f64 / MIB as f64
    );
    assert!(
        publish_peak < BOUND,
        "publishing peaked at {publish_peak} bytes resident"
    );
    assert_eq!(summary.record_id, record_id, "{summary:?}");

    let request_id = "req-large";
    env.records
        .request(&env.cast.researcher, "share-large", request_id, "research")
        .await
        .unwrap();
    env.records
        .grant(
            &mut rng,
            &env.cast.patient,
            request_id,
            &env.proxy_endpoints(),
            2,
            common::unix_now() + 3600,
        )
        .await
        .unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    reset_peak();
    let got = env
        .records
        .access_to_dir(
            &env.cast.researcher,
            request_id,
            &env.proxy_endpoints(),
            &out,
        )
        .await
        .unwrap();
    let access_peak = peak_bytes();
    eprintln!(
        "access: peak RSS {:.1} MiB",
        access_peak as f64 / MIB as f64
    );
    assert!(
        access_peak < BOUND,
        "accessing peaked at {access_peak} bytes resident"
    );
    let [section] = &got.sections[..] else {
        panic!("one shared section, got {:?}", got.sections)
    };
    assert!(section.bytes.is_empty());
    let path = section.file.as_ref().unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().len(), size);
    assert_eq!(common::sha256_file(path), expected, "the attachment, whole");
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "no temporary file left"
    );
    env.shutdown().await;
}
