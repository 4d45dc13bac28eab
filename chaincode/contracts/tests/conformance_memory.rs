//! The conformance suite on the in-memory ledger.

#![allow(clippy::unwrap_used)]

mod conformance;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use conformance::{Backend, Call, Submitted};
use medfabric_shim::ledger::{Creator, TxTimestamp};
use medfabric_shim::memory::{Invocation, MemoryChannel};

const ORGS: [&str; 3] = ["Hospital1MSP", "Hospital2MSP", "ResearchMSP"];

struct Memory {
    channel: Arc<MemoryChannel>,
    creator: Creator,
}

impl Memory {
    fn new() -> Self {
        let channel = MemoryChannel::new("storage");
        channel.install(
            "conformance",
            Arc::new(medfabric_contracts::conformance::chaincode()),
        );
        channel.install("basic", Arc::new(medfabric_contracts::basic::chaincode()));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["user1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let creator = Creator {
            msp_id: ORGS[0].into(),
            id_bytes: cert.pem().into_bytes(),
        };
        Self { channel, creator }
    }

    fn invocation(&self, call: Call) -> Invocation {
        let args: Vec<&str> = call.args.iter().map(String::as_str).collect();
        let mut invocation =
            Invocation::new("conformance", self.creator.clone(), &call.function, &args);
        invocation.transient = call.transient;
        if let Some(orgs) = call.endorsing_orgs {
            invocation.endorsers = orgs;
        }
        invocation.timestamp = Some(TxTimestamp {
            seconds: self.now_seconds(),
            nanos: 0,
        });
        invocation
    }
}

impl Backend for Memory {
    fn submit(&mut self, call: Call) -> Result<Submitted, String> {
        let outcome = self.channel.submit(&self.invocation(call));
        if !outcome.response.is_success() {
            return Err(outcome.response.message);
        }
        if !outcome.is_committed() {
            let code = format!("{:?}", outcome.validation);
            // Same names as Fabric's TxValidationCode.
            let name = match outcome.validation {
                Some(medfabric_shim::memory::ValidationCode::EndorsementPolicyFailure) => {
                    "ENDORSEMENT_POLICY_FAILURE"
                }
                Some(medfabric_shim::memory::ValidationCode::MvccReadConflict) => {
                    "MVCC_READ_CONFLICT"
                }
                _ => code.as_str(),
            };
            return Err(format!(
                "transaction {} failed to commit: {name}",
                outcome.tx_id
            ));
        }
        Ok(Submitted {
            payload: outcome.response.payload,
            tx_id: outcome.tx_id,
            event: outcome.event,
        })
    }

    fn evaluate(&mut self, call: Call) -> Result<Vec<u8>, String> {
        let response = self.channel.evaluate(&self.invocation(call));
        if response.is_success() {
            Ok(response.payload)
        } else {
            Err(response.message)
        }
    }

    fn channel(&self) -> String {
        "storage".into()
    }

    fn msp_id(&self) -> String {
        ORGS[0].into()
    }

    fn organizations(&self) -> [String; 3] {
        ORGS.map(String::from)
    }

    fn now_seconds(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }
}

#[test]
fn conformance_suite_on_the_memory_ledger() {
    let mut backend = Memory::new();
    conformance::run_suite(&mut backend, "mem");
}

#[test]
fn mvcc_conflict_between_two_endorsed_transactions() {
    let backend = Memory::new();
    let put = |value: &str| backend.invocation(conformance::call("PutThenGet", &["shared", value]));
    let first = backend.channel.prepare(&put("a"));
    let second = backend.channel.prepare(&put("b"));
    assert!(backend.channel.commit(first).is_committed());
    let outcome = backend.channel.commit(second);
    assert_eq!(
        outcome.validation,
        Some(medfabric_shim::memory::ValidationCode::MvccReadConflict)
    );
}
