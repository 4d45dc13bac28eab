//! The ledger conformance suite: one list of expectations, run against every backend
//! (the in-memory ledger, and a real Fabric peer through the official Node gateway client).
//! Every operation of the chaincode protocol is exercised through the `Conformance` contract.

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One call of the conformance chaincode.
#[derive(Clone, Debug, Default)]
pub struct Call {
    pub function: String,
    pub args: Vec<String>,
    pub transient: BTreeMap<String, Vec<u8>>,
    pub endorsing_orgs: Option<Vec<String>>,
}

pub fn call(function: &str, args: &[&str]) -> Call {
    Call {
        function: function.into(),
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..Call::default()
    }
}

impl Call {
    pub fn transient(mut self, key: &str, value: &[u8]) -> Self {
        self.transient.insert(key.into(), value.to_vec());
        self
    }
    pub fn endorsed_by(mut self, orgs: &[&str]) -> Self {
        self.endorsing_orgs = Some(orgs.iter().map(|o| (*o).to_owned()).collect());
        self
    }
}

/// What a committed transaction produced.
#[derive(Clone, Debug, Default)]
pub struct Submitted {
    pub payload: Vec<u8>,
    pub tx_id: String,
    pub event: Option<(String, Vec<u8>)>,
}

/// A ledger the suite can drive.
pub trait Backend {
    /// Endorse, order and commit; `Err` carries the error text (chaincode message, or the
    /// validation code name when the commit failed).
    fn submit(&mut self, call: Call) -> Result<Submitted, String>;
    /// Evaluate only.
    fn evaluate(&mut self, call: Call) -> Result<Vec<u8>, String>;
    /// The channel the chaincode runs on.
    fn channel(&self) -> String;
    /// The client's MSP id.
    fn msp_id(&self) -> String;
    /// The two organisations used for the key-level endorsement test, and a third.
    fn organizations(&self) -> [String; 3];
    /// Seconds since the epoch, as the client stamps transactions.
    fn now_seconds(&self) -> i64;
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

fn eval_json(b: &mut dyn Backend, c: Call) -> Value {
    let name = c.function.clone();
    json_of(
        &b.evaluate(c)
            .unwrap_or_else(|e| panic!("{name} failed: {e}")),
    )
}

fn submit_ok(b: &mut dyn Backend, c: Call) -> Submitted {
    let name = c.function.clone();
    b.submit(c).unwrap_or_else(|e| panic!("{name} failed: {e}"))
}

fn expect_error(result: Result<impl std::fmt::Debug, String>, needle: &str) {
    match result {
        Ok(v) => panic!("expected an error containing {needle:?}, got {v:?}"),
        Err(e) => assert!(
            e.contains(needle),
            "error {e:?} does not contain {needle:?}"
        ),
    }
}

/// Runs every check. `run` makes keys unique so the suite can run again on a persistent ledger.
pub fn run_suite(b: &mut dyn Backend, run: &str) {
    state(b, run);
    ranges(b, run);
    composite_keys(b, run);
    private_data(b, run);
    key_level_endorsement(b, run);
    context(b, run);
    events_and_invocation(b, run);
    ops_script(b, run);
    errors(b, run);
}

fn state(b: &mut dyn Backend, run: &str) {
    let key = format!("{run}-k1");
    let t1 = submit_ok(b, call("Put", &[&key, "v1"]));
    assert_eq!(eval_json(b, call("Get", &[&key])), json!("v1"));
    assert_eq!(
        eval_json(b, call("Get", &[&format!("{run}-missing")])),
        Value::Null
    );
    // A transaction does not read its own writes.
    let t2 = submit_ok(b, call("PutThenGet", &[&key, "v2"]));
    assert_eq!(json_of(&t2.payload), json!("v1"));
    assert_eq!(eval_json(b, call("Get", &[&key])), json!("v2"));
    let t3 = submit_ok(b, call("Delete", &[&key]));
    assert_eq!(eval_json(b, call("Get", &[&key])), Value::Null);
    // History: newest first, with the writing transactions' ids.
    let history = eval_json(b, call("History", &[&key]));
    let entries = history.as_array().unwrap();
    assert_eq!(entries.len(), 3, "history {history}");
    assert_eq!(entries[0]["txId"], json!(t3.tx_id));
    assert_eq!(entries[0]["isDelete"], json!(true));
    assert_eq!(entries[1]["txId"], json!(t2.tx_id));
    assert_eq!(entries[1]["value"], json!("v2"));
    assert_eq!(entries[2]["txId"], json!(t1.tx_id));
    assert_eq!(entries[2]["value"], json!("v1"));
    // Empty value is a delete, as in Fabric's write set.
    let key2 = format!("{run}-k2");
    submit_ok(b, call("Put", &[&key2, "x"]));
    submit_ok(b, call("Put", &[&key2, ""]));
    assert_eq!(eval_json(b, call("Get", &[&key2])), Value::Null);
}

fn ranges(b: &mut dyn Backend, run: &str) {
    let prefix = format!("{run}-r");
    // More than one batch of query results (the peer sends 100 at a time).
    submit_ok(b, call("PutMany", &[&prefix, "250"]));
    let end = format!("{prefix}~");
    assert_eq!(
        eval_json(b, call("RangeCount", &[&prefix, &end])),
        json!(250)
    );
    // End is exclusive.
    let three = eval_json(
        b,
        call(
            "Range",
            &[&format!("{prefix}0000"), &format!("{prefix}0003")],
        ),
    );
    let keys: Vec<&str> = three
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| kv[0].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        vec![
            format!("{prefix}0000"),
            format!("{prefix}0001"),
            format!("{prefix}0002")
        ]
    );
    assert_eq!(three[1][1], json!("v1"));
    // An iterator dropped early is closed and a new one works.
    let first = eval_json(b, call("RangeFirst", &[&prefix, &end]));
    assert_eq!(
        first,
        json!([format!("{prefix}0000"), format!("{prefix}0000")])
    );
    // Pagination: 100 + 100 + 50, every key once, in order.
    let pages = eval_json(b, call("RangePages", &[&prefix, &end, "100"]));
    let pages = pages.as_array().unwrap();
    let counts: Vec<u64> = pages.iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(counts, vec![100, 100, 50], "pages {pages:?}");
    let all: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            p["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_owned())
        })
        .collect();
    let expected: Vec<String> = (0..250).map(|i| format!("{prefix}{i:04}")).collect();
    assert_eq!(all, expected);
}

fn composite_keys(b: &mut dyn Backend, run: &str) {
    let object_type = format!("{run}-pc");
    submit_ok(
        b,
        call("PutComposite", &[&object_type, r#"["blue","1"]"#, "b1"]),
    );
    submit_ok(
        b,
        call("PutComposite", &[&object_type, r#"["blue","2"]"#, "b2"]),
    );
    submit_ok(
        b,
        call("PutComposite", &[&object_type, r#"["red","1"]"#, "r1"]),
    );
    let blue = eval_json(b, call("PartialComposite", &[&object_type, r#"["blue"]"#]));
    assert_eq!(
        blue,
        json!([
            [object_type, ["blue", "1"], "b1"],
            [object_type, ["blue", "2"], "b2"]
        ])
    );
    let all = eval_json(b, call("PartialComposite", &[&object_type, "[]"]));
    assert_eq!(all.as_array().unwrap().len(), 3);
    // Simple-key ranges never return composite keys.
    let first = eval_json(b, call("RangeFirst", &["", ""]));
    assert!(
        !first[0].as_str().unwrap_or("").starts_with('\u{0}'),
        "composite key in a simple range: {first}"
    );
    expect_error(b.evaluate(call("Range", &["\u{0}x", ""])), "U+0000");
}

fn private_data(b: &mut dyn Backend, run: &str) {
    let key = format!("{run}-p1");
    submit_ok(b, call("PutPrivate", &[&key]).transient("value", b"secret"));
    assert_eq!(eval_json(b, call("GetPrivate", &[&key])), json!("secret"));
    let hash: String = Sha256::digest(b"secret")
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert_eq!(eval_json(b, call("GetPrivateHash", &[&key])), json!(hash));
    let range = eval_json(
        b,
        call("PrivateRange", &[&format!("{run}-p"), &format!("{run}-p~")]),
    );
    assert_eq!(range, json!([[key, "secret"]]));
    submit_ok(b, call("DeletePrivate", &[&key]));
    assert_eq!(eval_json(b, call("GetPrivate", &[&key])), Value::Null);
    submit_ok(b, call("PutPrivate", &[&key]).transient("value", b"again"));
    assert_eq!(eval_json(b, call("GetPrivate", &[&key])), json!("again"));
    submit_ok(b, call("PurgePrivate", &[&key]));
    assert_eq!(eval_json(b, call("GetPrivate", &[&key])), Value::Null);
    assert_eq!(eval_json(b, call("GetPrivateHash", &[&key])), Value::Null);
    // The value must come through transient data, never as an argument.
    expect_error(b.submit(call("PutPrivate", &[&key])), "transient field");
}

fn key_level_endorsement(b: &mut dyn Backend, run: &str) {
    let [org1, org2, org3] = b.organizations();
    let key = format!("{run}-kp");
    submit_ok(b, call("Put", &[&key, "v1"]).endorsed_by(&[&org1, &org2]));
    let orgs = serde_json::to_string(&[&org2, &org1]).unwrap();
    submit_ok(
        b,
        call("SetKeyPolicy", &[&key, &orgs]).endorsed_by(&[&org1, &org2]),
    );
    let mut sorted = vec![org1.clone(), org2.clone()];
    sorted.sort();
    assert_eq!(
        eval_json(b, call("GetKeyPolicy", &[&key])),
        json!({"required": 2, "organizations": sorted})
    );
    // Endorsed by org1 and org3 only: the key's policy (org1 AND org2) is not met.
    expect_error(
        b.submit(call("Put", &[&key, "v2"]).endorsed_by(&[&org1, &org3])),
        "ENDORSEMENT_POLICY_FAILURE",
    );
    assert_eq!(eval_json(b, call("Get", &[&key])), json!("v1"));
    submit_ok(b, call("Put", &[&key, "v3"]).endorsed_by(&[&org1, &org2]));
    assert_eq!(eval_json(b, call("Get", &[&key])), json!("v3"));
}

fn context(b: &mut dyn Backend, _run: &str) {
    assert_eq!(
        String::from_utf8(
            b.evaluate(call("Transient", &["t"]).transient("t", b"hello"))
                .unwrap()
        )
        .unwrap(),
        "hello"
    );
    expect_error(
        b.evaluate(call("Transient", &["missing"])),
        "transient field",
    );
    let creator = eval_json(b, call("Creator", &[]));
    assert_eq!(creator, json!({"mspId": b.msp_id(), "isCertificate": true}));
    let info = eval_json(b, call("TxInfo", &[]));
    assert_eq!(info["channel"], json!(b.channel()));
    assert_eq!(info["hasSignedProposal"], json!(true));
    let tx_id = info["txId"].as_str().unwrap();
    assert!(
        tx_id.len() == 64 && tx_id.chars().all(|c| c.is_ascii_hexdigit()),
        "tx id {tx_id}"
    );
    let skew = (info["seconds"].as_i64().unwrap() - b.now_seconds()).abs();
    assert!(
        skew < 300,
        "transaction timestamp is {skew} s away from the client clock"
    );
}

fn events_and_invocation(b: &mut dyn Backend, run: &str) {
    let submitted = submit_ok(b, call("Event", &["medical", "payload-1"]));
    assert_eq!(
        submitted.event,
        Some(("medical".to_owned(), b"payload-1".to_vec())),
        "only the last event is kept"
    );
    let asset = format!("{run}-asset");
    let create =
        serde_json::to_string(&["CreateAsset", asset.as_str(), "blue", "5", "Ann", "100"]).unwrap();
    let created = json_of(&submit_ok(b, call("InvokeOther", &["basic", &create])).payload);
    assert_eq!(created["status"], json!(200), "{created}");
    let read = serde_json::to_string(&["ReadAsset", asset.as_str()]).unwrap();
    let response = eval_json(b, call("InvokeOther", &["basic", &read]));
    assert_eq!(response["status"], json!(200));
    let asset_json: Value = serde_json::from_str(response["payload"].as_str().unwrap()).unwrap();
    assert_eq!(
        asset_json,
        json!({"AppraisedValue": 100, "Color": "blue", "ID": asset, "Owner": "Ann", "Size": 5})
    );
    let missing = serde_json::to_string(&["ReadAsset", "no-such-asset"]).unwrap();
    let response = eval_json(b, call("InvokeOther", &["basic", &missing]));
    assert_eq!(response["status"], json!(500));
    assert!(
        response["message"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{response}"
    );
}

/// `Ops`: a list of ledger operations run in order in one transaction.
fn ops_script(b: &mut dyn Backend, run: &str) {
    let [org1, org2, _] = b.organizations();
    let (old, new) = (format!("{run}-ops-old"), format!("{run}-ops-new"));
    submit_ok(b, call("Put", &[&old, "12345"]));
    let ops = json!([
        {"get": old},
        {"get": new},
        {"put": {"key": new, "transient": "value"}},
        {"keyPolicy": {"key": new, "organizations": [org1, org2]}},
        // A transaction does not read its own writes.
        {"get": new},
        {"event": {"name": "ops", "transient": "event"}},
    ]);
    let submitted = submit_ok(
        b,
        call("Ops", &[&ops.to_string()])
            .transient("value", b"written by ops")
            .transient("event", b"event payload")
            .endorsed_by(&[&org1, &org2]),
    );
    assert_eq!(
        json_of(&submitted.payload),
        json!([5, null, null, null, null, null])
    );
    assert_eq!(
        submitted.event,
        Some(("ops".to_owned(), b"event payload".to_vec()))
    );
    assert_eq!(eval_json(b, call("Get", &[&new])), json!("written by ops"));
    // With an empty argument the list comes from transient field `ops`.
    let third = format!("{run}-ops-third");
    let from_transient = json!([{"get": new}, {"put": {"key": third, "transient": "value"}}]);
    let submitted = submit_ok(
        b,
        call("Ops", &[""])
            .transient("ops", from_transient.to_string().as_bytes())
            .transient("value", b"third")
            .endorsed_by(&[&org1, &org2]),
    );
    assert_eq!(json_of(&submitted.payload), json!([14, null]));
    assert_eq!(eval_json(b, call("Get", &[&third])), json!("third"));
    let mut sorted = vec![org1, org2];
    sorted.sort();
    assert_eq!(
        eval_json(b, call("GetKeyPolicy", &[&new])),
        json!({"required": 2, "organizations": sorted})
    );
    // Refused before anything is written: a missing transient field, an unknown operation,
    // an empty list.
    let missing = format!("{run}-ops-missing");
    let put_missing = json!([{"put": {"key": missing, "transient": "absent"}}]).to_string();
    expect_error(b.submit(call("Ops", &[&put_missing])), "transient field");
    expect_error(
        b.submit(call("Ops", &[r#"[{"scan": "a"}]"#])),
        "not the expected JSON",
    );
    expect_error(b.submit(call("Ops", &["[]"])), "between 1 and 64");
    expect_error(b.submit(call("Ops", &[""])), "transient field \"ops\"");
    assert_eq!(eval_json(b, call("Get", &[&missing])), Value::Null);
}

fn errors(b: &mut dyn Backend, run: &str) {
    expect_error(b.evaluate(call("Panic", &[])), "panicked");
    // The server survived the panic.
    assert_eq!(
        eval_json(b, call("Get", &[&format!("{run}-missing")])),
        Value::Null
    );
    expect_error(
        b.evaluate(call("Fail", &["refused on purpose"])),
        "refused on purpose",
    );
    expect_error(b.evaluate(call("NoSuchFunction", &[])), "not found");
    expect_error(b.evaluate(call("NoSuchContract:Get", &["x"])), "not found");
    expect_error(b.evaluate(call("Get", &[])), "takes 1 arguments");
    expect_error(
        b.submit(call("PutMany", &["p", "many"])),
        "expected an integer",
    );
    expect_error(
        b.submit(call("PutComposite", &["t", "not json", "v"])),
        "not the expected JSON",
    );
    expect_error(b.submit(call("Put", &["", "v"])), "key must not be empty");
    let metadata = eval_json(b, call("org.hyperledger.fabric:GetMetadata", &[]));
    let transactions = metadata["contracts"]["Conformance"]["transactions"]
        .as_array()
        .unwrap();
    assert!(transactions.iter().any(|t| t["name"] == json!("PutMany")));
}
