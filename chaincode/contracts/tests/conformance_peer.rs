//! The conformance suite on a real Fabric peer, driven through the official Node gateway client
//! (`test-network/node/driver.mjs`). Needs the test network with the conformance chaincode
//! deployed (`.ci/run` does that); run with `cargo test -p medfabric-contracts --test
//! conformance_peer -- --ignored`. Without a reachable network it fails, it never skips.

#![allow(clippy::unwrap_used)]

mod conformance;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use conformance::{Backend, Call, Submitted};
use serde_json::{Value, json};

const CHANNEL: &str = "storage";
const CHAINCODE: &str = "conformance";

struct NodeGateway {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    next_id: u64,
    msp_id: String,
    organizations: Vec<String>,
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn b64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn unb64(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {text}"),
        }
    };
    let clean: Vec<u8> = text.bytes().filter(|c| *c != b'=').collect();
    let mut out = Vec::new();
    for chunk in clean.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= value(*c) << (18 - 6 * i);
        }
        for i in 0..chunk.len().saturating_sub(1) {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

impl NodeGateway {
    fn start() -> Self {
        let root = repo_root();
        let driver = root.join("test-network/node/driver.mjs");
        assert!(driver.exists(), "{} is missing", driver.display());
        let network_dir = std::env::var("MEDFABRIC_NETWORK_DIR")
            .unwrap_or_else(|_| root.join("test-network/.state").display().to_string());
        let mut child = Command::new("node")
            .arg(&driver)
            .env("MEDFABRIC_NETWORK_DIR", network_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect(
                "cannot start node: is Node.js installed and `npm ci` run in test-network/node?",
            );
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut gateway = Self {
            child,
            stdin,
            stdout,
            next_id: 0,
            msp_id: String::new(),
            organizations: Vec::new(),
        };
        let info = gateway.request(json!({"op": "info"}));
        assert_eq!(info["ok"], json!(true), "driver info failed: {info}");
        gateway.msp_id = info["mspId"].as_str().unwrap().to_owned();
        gateway.organizations = info["organizations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap().to_owned())
            .collect();
        gateway
    }

    fn request(&mut self, mut request: Value) -> Value {
        self.next_id += 1;
        request["id"] = json!(self.next_id);
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        let read = self.stdout.read_line(&mut line).unwrap();
        assert!(
            read > 0,
            "the Node driver exited (is the test network up? see its stderr above)"
        );
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("driver answered non-JSON ({e}): {line}"))
    }

    fn call_json(&self, op: &str, call: &Call) -> Value {
        let transient: serde_json::Map<String, Value> = call
            .transient
            .iter()
            .map(|(k, v)| (k.clone(), json!(b64(v))))
            .collect();
        let mut request = json!({
            "op": op, "channel": CHANNEL, "chaincode": CHAINCODE,
            "fn": call.function, "args": call.args, "transient": transient,
        });
        if let Some(orgs) = &call.endorsing_orgs {
            request["endorsingOrgs"] = json!(orgs);
        }
        request
    }
}

impl Drop for NodeGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Backend for NodeGateway {
    fn submit(&mut self, call: Call) -> Result<Submitted, String> {
        let request = self.call_json("submit", &call);
        let answer = self.request(request);
        if answer["ok"] != json!(true) {
            return Err(answer["error"]
                .as_str()
                .unwrap_or("no error text")
                .to_owned());
        }
        let event = match &answer["event"] {
            Value::Null => None,
            e => Some((
                e["name"].as_str().unwrap().to_owned(),
                unb64(e["payload"].as_str().unwrap()),
            )),
        };
        Ok(Submitted {
            payload: unb64(answer["payload"].as_str().unwrap_or("")),
            tx_id: answer["txId"].as_str().unwrap().to_owned(),
            event,
        })
    }

    fn evaluate(&mut self, call: Call) -> Result<Vec<u8>, String> {
        let request = self.call_json("evaluate", &call);
        let answer = self.request(request);
        if answer["ok"] != json!(true) {
            return Err(answer["error"]
                .as_str()
                .unwrap_or("no error text")
                .to_owned());
        }
        Ok(unb64(answer["payload"].as_str().unwrap_or("")))
    }

    fn channel(&self) -> String {
        CHANNEL.into()
    }

    fn msp_id(&self) -> String {
        self.msp_id.clone()
    }

    fn organizations(&self) -> [String; 3] {
        let orgs = &self.organizations;
        assert!(
            orgs.len() >= 3,
            "the test network needs three peer organisations, has {orgs:?}"
        );
        let mut picked = [orgs[0].clone(), orgs[1].clone(), orgs[2].clone()];
        // The client's own organisation first, as in the memory backend.
        if let Some(i) = picked.iter().position(|o| *o == self.msp_id) {
            picked.swap(0, i);
        }
        picked
    }

    fn now_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}

#[test]
#[ignore = "needs the real test network (run by .ci/run, or: cargo test -p medfabric-contracts --test conformance_peer -- --ignored)"]
fn conformance_suite_on_a_real_peer() {
    let mut backend = NodeGateway::start();
    let run = format!(
        "peer{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    conformance::run_suite(&mut backend, &run);
}

#[test]
fn base64_round_trip() {
    for len in 0..20 {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        assert_eq!(unb64(&b64(&bytes)), bytes);
    }
    assert_eq!(b64(b"hello"), "aGVsbG8=");
}
