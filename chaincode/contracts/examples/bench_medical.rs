//! Benchmarks of the medical chaincode on the real test network (issue 5); prints one JSON
//! object.
//!
//! ```sh
//! test-network/network.sh up
//! test-network/network.sh deploy --name medfabric --binary target/release/medfabric-chaincode \
//!     --channels "storage sharing" --port 9997 --collections collections/medfabric.json
//! test-network/network.sh deploy        # asset-transfer-basic as `basic` (port 9999)
//! test-network/network.sh deploy --name conformance --binary target/release/conformance-chaincode \
//!     --channels storage --port 9998 --collections collections/conformance.json   # floor arms
//! cargo run --release -p medfabric-contracts --example bench_medical -- [options]
//! ```
//!
//! Options: `--reps R` (latency samples per share size, default 30), `--baseline-reps B`
//! (runs of the 64-transaction baselines, default 3), `--n N` and `--concurrency C`
//! (throughput: N submits, C in flight, defaults 200 and 50), `--rounds K` (throughput rounds
//! per chaincode, alternated, default 3). Network folder and chaincode names as in
//! `tests/peer_network/mod.rs` (`MEDFABRIC_STATE` / `MEDFABRIC_NETWORK_DIR`,
//! `MEDFABRIC_MEDICAL_CHAINCODE`, `MEDFABRIC_BASIC_CHAINCODE`).
//!
//! What is measured (every submit is the full client flow of medfabric-gateway: endorse on
//! the peers the gateway picks for the endorsement policy, submit to the orderer, wait for the
//! commit status from the client's own peer):
//!
//! (a) **Request latency.** A researcher (ResearchMSP, `role=researcher`) sends one
//!     `Sharing:Request` (one transaction) for a share of 1 section and for a share of 64
//!     sections (the chaincode's maximum) of the same 64-section record; samples alternate
//!     between the two shares. Each section carries a 98-byte PRE capsule and a 200-byte
//!     CP-ABE ciphertext. Reported: median, mean, p90 per size and `request64 / request1` of
//!     the medians (target <= 1.1).
//!
//!     **Baseline (BPDS model: one transaction per section).** The same request for 64
//!     sections made as 64 *sequential* transactions, one per section, each carrying that
//!     section's request data. Modelled with asset-transfer-basic `CreateAsset(id, color,
//!     size, owner, appraisedValue)`: `id` = request id + section index, `color` = section id,
//!     `size` = section index, `owner` = the per-section request as JSON (request id, share
//!     id, purpose, grantee key, section id, index, PRE capsule, CP-ABE ciphertext; about
//!     550 bytes), `appraisedValue` = 0. Sequential because each BPDS step waits for the
//!     previous commit. Reported: total time of the 64 transactions and `baseline64 /
//!     request64` (median of the baseline runs over the median 64-section request). A second
//!     baseline does the same with the medical chaincode itself: 64 sequential
//!     `Sharing:Request`s, one per one-section share of the same record (published
//!     beforehand), i.e. per-section requests with the same policy check and audit entry.
//!
//! (b) **Record-index creation throughput.** N `Record:Create` (a five-section manifest, as
//!     in the tests: about 3.4 KB of JSON, sent as the SDK sends it: in transient field
//!     `record`, so the transaction carries it once, as the index in its write set) by a
//!     Hospital1 physician, C in flight, against N
//!     asset-transfer-basic `CreateAsset(id, "blue", "5", "Tom", "300")` by the same identity
//!     on the same channel (`storage`), alternated for K rounds in the same run. Throughput
//!     = committed-valid transactions / wall time from the first proposal to the last commit
//!     status. Reported per round and `record / basic` of the medians (target >= 0.8), with
//!     the CPU time each process group (peers, orderer, chaincode servers, this client) spent
//!     per committed transaction (from `/proc/<pid>/stat` of the network's recorded pids).
//!     Control arm: `CreateAsset` whose `owner` is the same Record:Create manifest JSON (same
//!     argument bytes, one key written), to separate the cost of the bytes from the contract's
//!     work (policy, record and owner reads, the CES signature check, the index with its
//!     key-level endorsement policy, an audit entry). Arm `recordArgument`: `Record:Create`
//!     with the manifest as its argument (carried twice: input and write set).
//!
//!     **Floor arms** (the conformance chaincode's `Conformance:Ops`, which runs a list of
//!     ledger operations with no logic around them; list and values in transient data):
//!     `floor` makes exactly the ledger calls `Record:Create` makes, in its order, on keys and
//!     values of the same sizes (read the author policy, the head and the owner's pseudonym;
//!     write the index, its key-level policy and the audit entry; set the event), so
//!     `record / floor` is the cost of the contract's own logic and `floor / basic` the cost
//!     Fabric charges for the operations the contract's rules need. `floorBytes` moves the same
//!     bytes in `CreateAsset`'s shape (one read, one write), `floorTiny` is `CreateAsset`
//!     through `Ops` (checks that the mechanism itself costs what `basic` costs). The rule arms
//!     `floorNoAuthorPolicy`, `floorNoOwner`, `floorNoKeyPolicy` and `floorNoAudit` each leave
//!     one rule's ledger operation out of `floor` (the author-policy read, the owner's
//!     pseudonym read, the key-level policy, the audit entry), so `floorNo… / floor` is the
//!     price of that rule alone (`ruleRatiosOverFloor`). Needs the
//!     conformance chaincode on `storage` (`MEDFABRIC_CONFORMANCE_CHAINCODE`, default
//!     `conformance`).
//!
//! `--parts a|b|ab` runs part (a), (b) or both (default); `--arms` picks throughput arms
//! (comma-separated from `basic,record,basicSameBytes,recordArgument,floor,floorBytes,
//! floorTiny,floorNoAuthorPolicy,floorNoOwner,floorNoKeyPolicy,floorNoAudit`, default all).
//!
//! Records are CES-signed by the physician's enrolment key and shares carry real subset
//! proofs (the chaincode verifies both); the 64-section record is created on `storage` before
//! its shares are published (`Sharing:Publish` checks it there).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/medical/mod.rs"]
mod medical;
#[path = "../tests/peer_network/mod.rs"]
mod peer_network;

use std::sync::Arc;
use std::time::{Duration, Instant};

use medfabric_gateway::Contract;
use medical::{Backend, Call, Channel, SHARE_POLICY, User, b64, call};
use peer_network::{PeerBackend, basic_chaincode, error_text, submit_call};
use serde_json::{Value, json};
use sha2::Digest as _;

const SECTIONS: u32 = 64;
/// The throughput arms of part (b).
const ARMS: [&str; 11] = [
    "basic",
    "record",
    "basicSameBytes",
    "recordArgument",
    "floor",
    "floorBytes",
    "floorTiny",
    "floorNoAuthorPolicy",
    "floorNoOwner",
    "floorNoKeyPolicy",
    "floorNoAudit",
];
/// The rules whose ledger operations a `floorNo…` arm leaves out (see `floor_call`).
const RULE_ARMS: [&str; 4] = [
    "floorNoAuthorPolicy",
    "floorNoOwner",
    "floorNoKeyPolicy",
    "floorNoAudit",
];
/// Latency samples dropped at the start of part (a).
const WARMUP: usize = 3;

struct Options {
    /// Which parts run: `a` (request latency and baselines), `b` (creation throughput).
    parts: String,
    /// Which throughput arms run (default: all).
    arms: Vec<String>,
    reps: usize,
    baseline_reps: usize,
    n: usize,
    concurrency: usize,
    rounds: usize,
}

fn options() -> Options {
    let mut o = Options {
        parts: "ab".into(),
        arms: ARMS.iter().map(|a| (*a).to_owned()).collect(),
        reps: 30,
        baseline_reps: 3,
        n: 200,
        concurrency: 50,
        rounds: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = || -> usize {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{} needs a number", args[i]))
        };
        match args[i].as_str() {
            "--parts" => o.parts = args.get(i + 1).cloned().unwrap_or_default(),
            "--arms" => {
                o.arms = args
                    .get(i + 1)
                    .map(|v| v.split(',').map(str::to_owned).collect())
                    .unwrap_or_default();
            }
            "--reps" => o.reps = value(),
            "--baseline-reps" => o.baseline_reps = value(),
            "--n" => o.n = value(),
            "--concurrency" => o.concurrency = value(),
            "--rounds" => o.rounds = value(),
            other => panic!(
                "unknown option {other}; options: --parts ab --arms {} --reps R --baseline-reps B --n N --concurrency C --rounds K",
                ARMS.join(",")
            ),
        }
        i += 2;
    }
    assert!(o.reps > 0 && o.baseline_reps > 0 && o.n > 0 && o.concurrency > 0 && o.rounds > 0);
    assert!(
        !o.parts.is_empty() && o.parts.chars().all(|c| c == 'a' || c == 'b'),
        "--parts takes a, b or ab"
    );
    assert!(
        !o.arms.is_empty() && o.arms.iter().all(|a| ARMS.contains(&a.as_str())),
        "--arms takes a comma-separated list of {}",
        ARMS.join(", ")
    );
    o
}

fn section(i: u32) -> Value {
    json!({
        "id": format!("section-{i:02}"),
        "index": i,
        "preCapsule": b64(&[i as u8 + 1; 98]),
        "cpabe": b64(&[0xCB; 200]),
    })
}

fn share(b: &mut PeerBackend, share_id: &str, record_id: &str, indices: &[u32]) -> Value {
    let proof = medical::ces_proof(b, record_id, 1, indices);
    json!({
        "shareId": share_id,
        "recordId": record_id,
        "recordVersion": 1,
        "location": format!("s3://medfabric-records/{record_id}/v1"),
        "sections": indices.iter().map(|i| section(*i)).collect::<Vec<_>>(),
        "extractionProof": b64(&proof),
        "policy": SHARE_POLICY,
    })
}

/// A record of 64 sections `section-00`..`section-63`, as the shares name them (Sharing:Publish
/// checks the record on `storage`).
fn record64(b: &mut PeerBackend, record_id: &str, owner: &str) -> Value {
    let mut record = medical::record_json(b, User::Physician, record_id, 1, owner);
    let template = record["sections"][1].clone();
    record["sections"] = (0..SECTIONS)
        .map(|i| {
            let mut s = template.clone();
            s["id"] = json!(format!("section-{i:02}"));
            s["digest"] = json!(format!("{:064x}", i + 1));
            s
        })
        .collect();
    record["cesSignature"] = json!(b64(&medical::ces_sign(
        b,
        User::Physician,
        record_id,
        1,
        SECTIONS
    )));
    record
}

fn request(request_id: &str, share_id: &str) -> String {
    medical::request_json(request_id, share_id, "research").to_string()
}

/// Milliseconds.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn stats(samples: &[f64]) -> Value {
    if samples.is_empty() {
        return Value::Null;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let pick = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    json!({
        "n": s.len(),
        "median": r3(median(&s)),
        "mean": r3(mean),
        "p90": r3(pick(0.9)),
        "min": r3(s[0]),
        "max": r3(s[s.len() - 1]),
    })
}

fn median(samples: &[f64]) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// `median(a) / median(b)`, or null when an arm did not run.
fn ratio(a: &[f64], b: &[f64]) -> Value {
    if a.is_empty() || b.is_empty() {
        Value::Null
    } else {
        json!(r3(median(a) / median(b)))
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One submit (no peer synchronisation), timed; panics on failure.
async fn timed_submit(contract: &Contract, c: &Call) -> Duration {
    let start = Instant::now();
    if let Err((e, _)) = submit_call(contract, c).await {
        panic!("{} failed: {}", c.function, error_text(&e));
    }
    start.elapsed()
}

/// N submits with C in flight; returns (wall time, successes, first errors, highest block).
/// The conformance chaincode (`MEDFABRIC_CONFORMANCE_CHAINCODE`, default `conformance`), whose
/// `Ops` runs the floor arm.
fn conformance_chaincode() -> String {
    std::env::var("MEDFABRIC_CONFORMANCE_CHAINCODE").unwrap_or_else(|_| "conformance".into())
}

/// Sizes of the two values `Record:Create` reads besides the (absent) head: the stored
/// `record.author` policy and the owner's pseudonym registration, as read off committed blocks.
const FLOOR_POLICY_BYTES: usize = 379;
const FLOOR_PSEUDONYM_BYTES: usize = 672;

fn floor_policy_key(run: &str) -> String {
    format!("{run}-floor-policy")
}

fn floor_pseudonym_key(run: &str) -> String {
    format!("{run}-floor-pseudonym")
}

/// Writes the policy and pseudonym values the floor arm reads.
fn floor_setup(b: &PeerBackend, contract: &Contract, run: &str) {
    let ops = json!([
        {"put": {"key": floor_policy_key(run), "transient": "policy"}},
        {"put": {"key": floor_pseudonym_key(run), "transient": "pseudonym"}},
    ]);
    let setup = call("Ops", &[&ops.to_string()])
        .transient("policy", &vec![b'p'; FLOOR_POLICY_BYTES])
        .transient("pseudonym", &vec![b'q'; FLOOR_PSEUDONYM_BYTES]);
    if let Err((e, _)) = b.runtime.block_on(submit_call(contract, &setup)) {
        panic!(
            "the floor arm needs the conformance chaincode on storage ({}): {}; deploy it with \
             test-network/network.sh deploy --name conformance --binary target/release/conformance-chaincode \
             --channels storage --port 9998 --collections collections/conformance.json",
            conformance_chaincode(),
            error_text(&e)
        );
    }
}

/// One floor transaction: exactly the ledger operations `Record:Create` makes, in its order,
/// on keys and values of the same sizes, with no contract logic around them (conformance
/// `Ops`, list in transient data): read the author policy, the head (absent) and the owner's
/// pseudonym; write the index; set its key-level policy (the holding hospital); write the audit
/// entry; set the event.
///
/// Two decompositions use the same mechanism: `floorBytes` moves the same bytes in the shape
/// of `CreateAsset` (read the head, write index and audit entry as one value: two round trips,
/// one key, no key-level policy), and `floorTiny` is `CreateAsset` itself through `Ops` (read
/// a key, write a 90-byte value), i.e. the conformance chaincode's cost against `basic`.
fn floor_call(b: &mut PeerBackend, shape: &str, run: &str, record_id: &str, owner: &str) -> Call {
    let author = b.fingerprint(User::Physician);
    let msp = User::Physician.spec().msp;
    let mut index = medical::record_json(b, User::Physician, record_id, 1, owner);
    // The fields the chaincode adds to the manifest when it stores the index.
    let actor = json!({"fingerprint": author, "msp": msp});
    // A timestamp of the same width as the transaction's (its value does not matter).
    let (seconds, nanos) = (1_795_283_416u64, 103_522_037u32);
    let at = json!({"seconds": seconds, "nanos": nanos});
    // Unique per transaction, as the real audit key is (it ends with the transaction id).
    let tx_id = hex::encode(sha2::Sha256::digest(record_id.as_bytes()));
    for (name, value) in [
        ("rightsVersion", json!(0)),
        ("author", actor.clone()),
        ("versionAuthor", actor.clone()),
        ("holderMsp", json!(msp)),
        ("createdAt", at.clone()),
        ("versionAt", at.clone()),
        ("updatedAt", at.clone()),
        ("txId", json!(tx_id)),
    ] {
        index[name] = value;
    }
    for section in index["sections"].as_array_mut().into_iter().flatten() {
        if section.get("cpabe").is_none() {
            section["cpabe"] = Value::Null;
        }
    }
    let audit = json!({
        "owner": owner, "channel": "storage", "txId": tx_id, "at": at, "actor": actor,
        "action": "record.create", "recordId": record_id, "recordVersion": 1,
        "sections": medical::SECTION_IDS,
    });
    let event = json!({"recordId": record_id, "version": 1, "holderMsp": msp});
    // The length of the composite key `\0mf.record\0<id>\0`.
    let head = format!("~mf.record~{record_id}~");
    let audit_key = format!("audit/{owner}/{seconds:020}.{nanos:09}/{tx_id}/00");
    let (index, audit, event) = (index.to_string(), audit.to_string(), event.to_string());
    let (ops, index) = match shape {
        "floor" | "floorNoAuthorPolicy" | "floorNoOwner" | "floorNoKeyPolicy" | "floorNoAudit" => {
            // Each rule with the ledger operation it needs; a `floorNo…` arm leaves one out,
            // so its throughput against `floor` is the price of that rule alone.
            let ops = [
                ("AuthorPolicy", json!({"get": floor_policy_key(run)})),
                ("", json!({"get": head})),
                ("Owner", json!({"get": floor_pseudonym_key(run)})),
                ("", json!({"put": {"key": head, "transient": "index"}})),
                ("KeyPolicy", json!({"keyPolicy": {"key": head, "organizations": [msp]}})),
                ("Audit", json!({"put": {"key": audit_key, "transient": "audit"}})),
                ("", json!({"event": {"name": "Record:Create", "transient": "event"}})),
            ];
            let left_out = shape.strip_prefix("floorNo");
            let ops: Vec<Value> = ops
                .into_iter()
                .filter(|(rule, _)| left_out != Some(*rule))
                .map(|(_, op)| op)
                .collect();
            (Value::Array(ops), index)
        }
        "floorBytes" => (
            json!([
                {"get": head},
                {"put": {"key": head, "transient": "index"}},
                {"event": {"name": "Record:Create", "transient": "event"}},
            ]),
            format!("[{index},{audit}]"),
        ),
        "floorTiny" => (
            json!([{"get": head}, {"put": {"key": head, "transient": "index"}}]),
            json!({"ID": record_id, "Color": "blue", "Size": 5, "Owner": "Tom", "AppraisedValue": 300})
                .to_string(),
        ),
        other => panic!("no floor shape {other}"),
    };
    call("Ops", &[""])
        .transient("ops", ops.to_string().as_bytes())
        .transient("index", index.as_bytes())
        .transient("audit", audit.as_bytes())
        .transient("event", event.as_bytes())
}

async fn burst(
    contract: &Contract,
    calls: Vec<Call>,
    concurrency: usize,
) -> (Duration, usize, Vec<String>, u64) {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    for c in calls {
        let permit = semaphore.clone().acquire_owned().await.unwrap();
        let contract = contract.clone();
        tasks.spawn(async move {
            let result = submit_call(&contract, &c).await;
            drop(permit);
            result
                .map(|o| o.block_number)
                .map_err(|(e, _)| error_text(&e))
        });
    }
    let mut ok = 0;
    let mut errors = Vec::new();
    let mut last_block = 0;
    while let Some(joined) = tasks.join_next().await {
        match joined.unwrap() {
            Ok(block) => {
                ok += 1;
                last_block = last_block.max(block);
            }
            Err(e) if errors.len() < 5 => errors.push(e),
            Err(_) => {}
        }
    }
    (start.elapsed(), ok, errors, last_block)
}

/// CPU time (user + system, ms) of every process the network recorded in its `pids` file,
/// grouped (orderer, peers, each chaincode server, Fabric CAs), and of this client.
fn cpu_times() -> std::collections::BTreeMap<String, f64> {
    let ticks = |pid: &str| -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let utime: f64 = rest.get(11)?.parse().ok()?;
        let stime: f64 = rest.get(12)?.parse().ok()?;
        // USER_HZ is 100 on Linux.
        Some((utime + stime) * 10.0)
    };
    let mut out = std::collections::BTreeMap::new();
    let pids =
        std::fs::read_to_string(peer_network::network_dir().join("pids")).unwrap_or_default();
    for line in pids.lines() {
        let mut parts = line.split_whitespace();
        let (Some(pid), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let group = if name.starts_with("peer") {
            "peers".to_owned()
        } else if name.starts_with("orderer") {
            "orderers".to_owned()
        } else if name.starts_with("ca-") {
            "cas".to_owned()
        } else {
            name.to_owned()
        };
        if let Some(ms) = ticks(pid) {
            *out.entry(group).or_insert(0.0) += ms;
        }
    }
    if let Some(ms) = ticks("self") {
        out.insert("client".into(), ms);
    }
    out
}

/// CPU ms per committed transaction, by process group, between two [`cpu_times`].
fn cpu_per_tx(
    before: &std::collections::BTreeMap<String, f64>,
    after: &std::collections::BTreeMap<String, f64>,
    committed: usize,
) -> Value {
    let mut out = serde_json::Map::new();
    let mut total = 0.0;
    for (group, end) in after {
        let used = end - before.get(group).copied().unwrap_or(0.0);
        total += used;
        out.insert(group.clone(), json!(r3(used / committed.max(1) as f64)));
    }
    out.insert("total".into(), json!(r3(total / committed.max(1) as f64)));
    Value::Object(out)
}

fn machine() -> Value {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned());
    let mem_kib = read("/proc/meminfo")
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned));
    let network_env: serde_json::Map<String, Value> = read(
        &peer_network::network_dir()
            .join("network.env")
            .display()
            .to_string(),
    )
    .lines()
    .filter_map(|l| l.split_once('='))
    .map(|(k, v)| (k.to_owned(), json!(v)))
    .collect();
    json!({
        "cpuModel": model,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).ok(),
        "memTotalKiB": mem_kib,
        "kernel": read("/proc/sys/kernel/osrelease").trim(),
        "loadAverage": read("/proc/loadavg").trim(),
        "network": network_env,
    })
}

/// Part (a): request latency for 1 and 64 sections, and the two per-section baselines.
/// Returns the report's `requestLatencyMs` and `baselinePerSectionMs`.
fn latency_part(
    b: &mut PeerBackend,
    o: &Options,
    run: &str,
    patient: &str,
    researcher: &str,
) -> (Value, Value) {
    // ---- (a) request latency, 1 vs 64 sections --------------------------------------------
    let record_id = format!("{run}-rec64");
    let all: Vec<u32> = (0..SECTIONS).collect();
    let share1 = format!("{run}-share1");
    let share64 = format!("{run}-share64");
    let record = record64(b, &record_id, patient).to_string();
    medical::submit_ok(
        b,
        Channel::Storage,
        User::Physician,
        call("Record:Create", &[&record]),
    );
    for (id, indices) in [(&share1, &all[..1]), (&share64, &all[..])] {
        let s = share(b, id, &record_id, indices).to_string();
        medical::submit_ok(
            b,
            Channel::Sharing,
            User::Patient,
            call("Sharing:Publish", &[&s]),
        );
    }
    let share64_bytes = share(b, &share64, &record_id, &all).to_string().len();
    let requester = b.contract(Channel::Sharing, User::Researcher);
    let (mut one, mut sixty_four) = (Vec::new(), Vec::new());
    b.runtime.block_on(async {
        for rep in 0..(o.reps + WARMUP) {
            let order = if rep % 2 == 0 {
                [(&share1, 1), (&share64, 64)]
            } else {
                [(&share64, 64), (&share1, 1)]
            };
            for (share_id, size) in order {
                let id = format!("{run}-lat{size}-{rep}");
                let c = call("Sharing:Request", &[&request(&id, share_id)]);
                let took = ms(timed_submit(&requester, &c).await);
                if rep >= WARMUP {
                    (if size == 1 { &mut one } else { &mut sixty_four }).push(took);
                }
            }
        }
    });
    eprintln!(
        "[bench] request latency: 1 section {:.1} ms, 64 sections {:.1} ms (medians)",
        median(&one),
        median(&sixty_four)
    );

    // Baseline 1: 64 sequential asset-transfer-basic CreateAssets, one per section.
    let basic_sharing = b.users[&User::Researcher]
        .gateway
        .network("sharing")
        .contract(basic_chaincode(), None);
    let mut baseline_basic = Vec::new();
    let mut baseline_tx_bytes = 0;
    b.runtime.block_on(async {
        for rep in 0..o.baseline_reps {
            let request_id = format!("{run}-bpds-{rep}");
            let start = Instant::now();
            for i in 0..SECTIONS {
                let per_section = json!({
                    "requestId": request_id,
                    "shareId": share64,
                    "purpose": "research",
                    "granteeKey": b64(&[0x02; 33]),
                    "requester": researcher,
                    "section": section(i),
                })
                .to_string();
                baseline_tx_bytes = per_section.len();
                let c = call(
                    "CreateAsset",
                    &[
                        &format!("{request_id}-s{i:02}"),
                        &format!("section-{i:02}"),
                        &i.to_string(),
                        &per_section,
                        "0",
                    ],
                );
                timed_submit(&basic_sharing, &c).await;
            }
            baseline_basic.push(ms(start.elapsed()));
        }
    });
    eprintln!(
        "[bench] baseline (64 x CreateAsset): {:.0} ms (median)",
        median(&baseline_basic)
    );

    // Baseline 2: 64 sequential Sharing:Requests, one per one-section share.
    let single_shares: Vec<String> = (0..SECTIONS)
        .map(|i| format!("{run}-single{i:02}"))
        .collect();
    let publisher = b.contract(Channel::Sharing, User::Patient);
    let publishes: Vec<Call> = single_shares
        .iter()
        .zip(0u32..)
        .map(|(id, i)| {
            call(
                "Sharing:Publish",
                &[&share(b, id, &record_id, &[i]).to_string()],
            )
        })
        .collect();
    let (_, published, errors, last_block) = b.runtime.block_on(burst(&publisher, publishes, 16));
    assert_eq!(
        published, SECTIONS as usize,
        "publishing one-section shares: {errors:?}"
    );
    // Every peer has the shares before the researcher's requests are endorsed.
    b.sync(Channel::Sharing, last_block);
    let mut baseline_medical = Vec::new();
    b.runtime.block_on(async {
        for rep in 0..o.baseline_reps {
            let start = Instant::now();
            for (i, share_id) in single_shares.iter().enumerate() {
                let id = format!("{run}-per-section-{rep}-{i:02}");
                let c = call("Sharing:Request", &[&request(&id, share_id)]);
                timed_submit(&requester, &c).await;
            }
            baseline_medical.push(ms(start.elapsed()));
        }
    });
    eprintln!(
        "[bench] baseline (64 x Sharing:Request on one-section shares): {:.0} ms (median)",
        median(&baseline_medical)
    );

    let request1 = median(&one);
    let request64 = median(&sixty_four);
    (
        json!({
            "sections1": stats(&one),
            "sections64": stats(&sixty_four),
            "share64ArgumentBytes": share64_bytes,
            "ratioRequest64OverRequest1": r3(request64 / request1),
            "target": "<= 1.1",
        }),
        json!({
            "createAsset64Sequential": stats(&baseline_basic),
            "createAssetOwnerBytes": baseline_tx_bytes,
            "sharingRequest64Sequential": stats(&baseline_medical),
            "ratioBaselineCreateAsset64OverRequest64": r3(median(&baseline_basic) / request64),
            "ratioBaselineSharingRequest64OverRequest64": r3(median(&baseline_medical) / request64),
        }),
    )
}

fn main() {
    let o = options();
    let machine_before = machine();
    let mut b = PeerBackend::new();
    medical::setup(&mut b);
    let run = format!("bench{}", b.run);
    let patient = b.fingerprint(User::Patient);
    let researcher = b.fingerprint(User::Researcher);
    eprintln!("[bench] run {run}: identities enrolled, channels initialised");

    let (request_latency, baseline_per_section) = if o.parts.contains('a') {
        latency_part(&mut b, &o, &run, &patient, &researcher)
    } else {
        (Value::Null, Value::Null)
    };

    // ---- (b) record-index creation throughput vs CreateAsset ------------------------------
    let physician = b.contract(Channel::Storage, User::Physician);
    let basic_storage = b.users[&User::Physician]
        .gateway
        .network("storage")
        .contract(basic_chaincode(), None);
    let record_bytes = medical::record_json(
        &mut b,
        User::Physician,
        &format!("{run}-tp-0-0"),
        1,
        &patient,
    )
    .to_string()
    .len();
    let floor_contract = b.users[&User::Physician]
        .gateway
        .network("storage")
        .contract(conformance_chaincode(), None);
    if o.parts.contains('b') && o.arms.iter().any(|a| a.starts_with("floor")) {
        floor_setup(&b, &floor_contract, &run);
    }
    let mut rounds = Vec::new();
    // Throughput samples per arm.
    let mut tps_of: std::collections::BTreeMap<&str, Vec<f64>> = std::collections::BTreeMap::new();
    let throughput_rounds = if o.parts.contains('b') { o.rounds } else { 0 };
    for round in 0..throughput_rounds {
        // Alternate which goes first.
        let mut order = ARMS.to_vec();
        if round % 2 == 1 {
            order.reverse();
        }
        for which in order.into_iter().filter(|w| o.arms.iter().any(|a| a == w)) {
            let (contract, calls): (&Contract, Vec<Call>) = if which == "basicSameBytes" {
                // Control: CreateAsset whose `owner` is a Record:Create manifest, i.e. the same
                // argument bytes, to tell the cost of the bytes from that of the logic.
                let calls = (0..o.n)
                    .map(|i| {
                        let r = medical::record_json(
                            &mut b,
                            User::Physician,
                            &format!("{run}-ctl-{round}-{i}"),
                            1,
                            &patient,
                        );
                        call(
                            "CreateAsset",
                            &[
                                &format!("{run}-big-{round}-{i}"),
                                "blue",
                                "5",
                                &r.to_string(),
                                "300",
                            ],
                        )
                    })
                    .collect();
                (&basic_storage, calls)
            } else if which.starts_with("floor") {
                let calls = (0..o.n)
                    .map(|i| {
                        let id = format!("{run}-{which}-{round}-{i}");
                        floor_call(&mut b, which, &run, &id, &patient)
                    })
                    .collect();
                (&floor_contract, calls)
            } else if which == "record" || which == "recordArgument" {
                let as_argument = which == "recordArgument";
                let calls = (0..o.n)
                    .map(|i| {
                        let r = medical::record_json(
                            &mut b,
                            User::Physician,
                            &format!("{run}-{which}-{round}-{i}"),
                            1,
                            &patient,
                        );
                        if as_argument {
                            // The manifest as the argument: carried twice, as input and
                            // as the index in the write set.
                            call("Record:Create", &[&r.to_string()])
                        } else {
                            // As the SDK sends it: in transient data, so the transaction
                            // carries it once (the index in the write set).
                            call("Record:Create", &[""])
                                .transient("record", r.to_string().as_bytes())
                        }
                    })
                    .collect();
                (&physician, calls)
            } else {
                let calls = (0..o.n)
                    .map(|i| {
                        call(
                            "CreateAsset",
                            &[
                                &format!("{run}-asset-{round}-{i}"),
                                "blue",
                                "5",
                                "Tom",
                                "300",
                            ],
                        )
                    })
                    .collect();
                (&basic_storage, calls)
            };
            let cpu_before = cpu_times();
            let (wall, ok, errors, _) = b.runtime.block_on(burst(contract, calls, o.concurrency));
            let cpu = cpu_per_tx(&cpu_before, &cpu_times(), ok);
            let tps = ok as f64 / wall.as_secs_f64();
            eprintln!(
                "[bench] round {round} {which}: {ok}/{} committed in {:.2} s = {tps:.1} tx/s {errors:?}",
                o.n,
                wall.as_secs_f64()
            );
            assert!(errors.is_empty(), "{which} round {round}: {errors:?}");
            tps_of.entry(which).or_default().push(tps);
            rounds.push(json!({
                "round": round,
                "chaincode": which,
                "committed": ok,
                "wallSeconds": r3(wall.as_secs_f64()),
                "tps": r3(tps),
                "cpuMsPerTx": cpu,
            }));
        }
    }

    let arm_ratio = |a: &str, b: &str| match (tps_of.get(a), tps_of.get(b)) {
        (Some(a), Some(b)) => ratio(a, b),
        _ => Value::Null,
    };
    let report = json!({
        "run": run,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "options": {"parts": o.parts, "arms": o.arms, "reps": o.reps, "warmup": WARMUP, "baselineReps": o.baseline_reps, "n": o.n, "concurrency": o.concurrency, "rounds": o.rounds},
        "chaincodes": {"medical": b.chaincode, "basic": basic_chaincode()},
        "machineBefore": machine_before,
        "machineAfter": machine(),
        "requestLatencyMs": request_latency,
        "baselinePerSectionMs": baseline_per_section,
        "throughput": {
            "recordCreateArgumentBytes": record_bytes,
            "rounds": rounds,
            "tps": tps_of.iter().map(|(arm, tps)| (arm.to_string(), stats(tps))).collect::<serde_json::Map<_, _>>(),
            "ratioRecordOverBasic": arm_ratio("record", "basic"),
            "ratioRecordOverBasicSameBytes": arm_ratio("record", "basicSameBytes"),
            "ratioRecordManifestAsArgumentOverBasic": arm_ratio("recordArgument", "basic"),
            "ratioFloorOverBasic": arm_ratio("floor", "basic"),
            "ratioRecordOverFloor": arm_ratio("record", "floor"),
            "ratioFloorBytesOverBasic": arm_ratio("floorBytes", "basic"),
            "ratioFloorTinyOverBasic": arm_ratio("floorTiny", "basic"),
            // What each rule's ledger operation costs: the floor without it, against the floor.
            "ruleRatiosOverFloor": RULE_ARMS
                .iter()
                .map(|arm| (arm.to_string(), arm_ratio(arm, "floor")))
                .collect::<serde_json::Map<_, _>>(),
            "target": ">= 0.8",
        },
    });
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
}
