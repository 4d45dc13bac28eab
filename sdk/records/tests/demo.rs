//! The embedded demo as a test: every step's outcome, not just the exit code.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use medfabric_records::demo::{self, DemoOptions, Environment, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_story_holds_step_by_step() {
    let options = DemoOptions::default();
    let mut env = Environment::start(&options).await.unwrap();
    env.bootstrap().await.unwrap();
    let sections = demo::default_sections().unwrap();
    let shared = demo::default_shared(&sections);
    let mut seen = Vec::new();
    let report = demo::run_story(&env, sections.clone(), shared.clone(), 2, &mut |s| {
        seen.push(s.number)
    })
    .await
    .unwrap();
    for s in &report.steps {
        println!("{} {} {:?} {}", s.number, s.actor, s.outcome, s.title);
        for d in &s.details {
            println!("    {d}");
        }
    }
    assert_eq!(seen.len(), report.steps.len());
    let outcomes: Vec<Outcome> = report.steps.iter().map(|s| s.outcome).collect();
    use Outcome::{Denied, Done};
    assert_eq!(
        outcomes,
        [
            Done, Done, Done, Denied, Done, Done, Denied, Done, Denied, Done
        ]
    );
    assert_eq!(report.sections.len(), sections.len());
    assert_eq!(report.opened, shared);
    assert!(report.opened_match_original);
    assert_eq!(report.proxies_used.len(), 2);
    assert!(
        report.unauthorised_denial.contains("policy"),
        "{}",
        report.unauthorised_denial
    );
    assert!(
        report.after_revoke_denial.contains("revoked"),
        "{}",
        report.after_revoke_denial
    );
    assert!(
        report.new_request_denial.contains("revoked"),
        "{}",
        report.new_request_denial
    );
    let actions: Vec<&str> = report.audit.iter().map(|e| e.action.as_str()).collect();
    for expected in [
        "record.create",
        "record.read",
        "share.publish",
        "share.request",
        "share.grant",
        "share.open",
        "share.reencrypt",
        "share.revoke",
    ] {
        assert!(actions.contains(&expected), "no {expected} in {actions:?}");
    }
    assert_eq!(
        actions.iter().filter(|a| **a == "share.reencrypt").count(),
        2
    );

    // Scan: no plaintext section, nor any 16-byte window of one, in the object store folder,
    // the proxies' storage or anywhere on either channel.
    let proxy_files: usize = env
        .proxies
        .iter()
        .map(|p| demo::files_under(p.storage_dir.as_ref().unwrap()).len())
        .sum();
    assert_eq!(proxy_files, 3, "each proxy keeps its sealed fragment");
    let plaintexts: Vec<&[u8]> = sections.iter().map(|s| s.bytes.as_slice()).collect();
    let public = demo::public_metadata(&sections);
    let public: Vec<&str> = public.iter().map(String::as_str).collect();
    let scan = demo::scan_for_plaintext(&env, &plaintexts, &public).await;
    assert!(scan.files >= sections.len() + 1 + 3, "{scan:?}");
    assert!(scan.ledger_values > 100, "{scan:?}");
    assert!(scan.windows > 40_000, "{scan:?}");
    assert!(scan.findings.is_empty(), "{:?}", scan.findings);

    // The scan does find plaintext where there is some.
    let leak = env.store_dir.join("leak.json");
    std::fs::write(&leak, &sections[2].bytes[10..40]).unwrap();
    let caught = demo::scan_for_plaintext(&env, &plaintexts, &public).await;
    assert_eq!(caught.findings.len(), 1, "{:?}", caught.findings);
    std::fs::remove_file(leak).unwrap();
    env.shutdown().await;
}
