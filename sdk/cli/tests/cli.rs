//! The `medfabric` binary as a user runs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn medfabric(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_medfabric"))
        .args(args)
        .env_remove("MEDFABRIC_CONFIG")
        .env_remove("MEDFABRIC_NETWORK")
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap()
}

#[test]
fn demo_json_reports_every_step_and_a_clean_scan() {
    let store = tempfile::tempdir().unwrap();
    let out = medfabric(&["demo", "--json", "--store", store.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let steps = v["report"]["steps"].as_array().unwrap();
    let outcomes: Vec<&str> = steps
        .iter()
        .map(|s| s["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "done", "done", "done", "denied", "done", "done", "denied", "done", "denied", "done"
        ]
    );
    assert_eq!(v["report"]["openedMatchOriginal"], true);
    assert_eq!(v["report"]["opened"], v["report"]["shared"]);
    assert_eq!(v["plaintextScan"]["findings"].as_array().unwrap().len(), 0);
    // --store keeps the objects.
    assert!(store.path().join("objects").exists());
}

#[test]
fn demo_human_output_names_demo_identities_and_denials() {
    let out = medfabric(&["demo"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("DEMO identities"), "{text}");
    assert_eq!(text.matches("DENIED (as expected)").count(), 3, "{text}");
    assert!(text.contains("privacy check"), "{text}");
    assert!(text.contains("none found"), "{text}");
}

#[test]
fn errors_say_what_to_do_next() {
    let out = medfabric(&["demo", "--network", "/nonexistent"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("network.sh up") && err.contains("deploy --name medfabric"),
        "{err}"
    );

    let out = medfabric(&["record", "history", "rec-1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no network configured") && err.contains("MEDFABRIC_NETWORK"),
        "{err}"
    );

    let out = medfabric(&["demo", "--threshold", "4"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--threshold must be between 1 and --proxies")
    );
}

#[test]
fn config_precedence_is_flags_env_file_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("medfabric.toml");
    std::fs::write(&file, "org = \"hospital2\"\nstore = \"/from/file\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_medfabric"))
        .args(["--json", "--config", file.to_str().unwrap(), "config"])
        .env("MEDFABRIC_STORE", "/from/env")
        .env_remove("MEDFABRIC_ORG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["store"]["value"], "/from/env");
    assert_eq!(v["store"]["source"], "env MEDFABRIC_STORE");
    assert_eq!(v["org"]["value"], "hospital2");
    assert!(v["org"]["source"].as_str().unwrap().starts_with("file "));
    assert_eq!(v["user"]["source"], "default");

    std::fs::write(&file, "colour = \"blue\"\n").unwrap();
    let out = medfabric(&["--config", file.to_str().unwrap(), "config"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not valid"));
}
