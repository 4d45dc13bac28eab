//! Transactions that exercise every ledger operation and report what they observed as JSON.
//!
//! The conformance suite (`tests/conformance/`) drives these against the in-memory ledger and
//! against a real peer and expects identical observations. Nothing here is medical logic.

use serde::Deserialize;
use serde_json::{Value, json};

use medfabric_shim::contract::{Contract, Json, Router};
use medfabric_shim::error::ContractError;
use medfabric_shim::ext::{KeyEndorsementPolicy, LedgerExt, split_composite_key};
use medfabric_shim::ledger::{KeyValue, Ledger};

/// The private data collection the conformance chaincode is deployed with.
pub const COLLECTION: &str = "conformancePrivate";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn records(
    iter: impl Iterator<Item = Result<KeyValue, medfabric_shim::error::LedgerError>>,
) -> Result<Value, ContractError> {
    let mut out = Vec::new();
    for kv in iter {
        let kv = kv?;
        out.push(json!([kv.key, text(&kv.value)]));
    }
    Ok(Value::Array(out))
}

fn transient_value(ledger: &dyn Ledger, name: &str) -> Result<Vec<u8>, ContractError> {
    ledger
        .transient()
        .get(name)
        .cloned()
        .ok_or_else(|| ContractError::BadArguments(format!("transient field {name:?} is required")))
}

/// One ledger operation of `Conformance:Ops`. Values come from transient fields, so a script
/// can write large values without carrying them in the proposal's arguments.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Op {
    /// `{"get": key}`: read a key; observed as the value's length, or null when absent.
    Get(String),
    /// `{"put": {"key": k, "transient": name}}`: write transient field `name` under `k`.
    Put { key: String, transient: String },
    /// `{"keyPolicy": {"key": k, "organizations": [msp, ...]}}`: every one of them must endorse
    /// the next change of `k`.
    KeyPolicy {
        key: String,
        organizations: Vec<String>,
    },
    /// `{"event": {"name": n, "transient": name}}`: set the transaction's event.
    Event { name: String, transient: String },
}

/// The most operations one `Ops` transaction runs.
pub const MAX_OPS: usize = 64;

/// Runs `ops` in order, one ledger call each: the ledger cost of a transaction's operations
/// without any contract logic around them (the floor arm of `examples/bench_medical.rs`).
fn run_ops(ledger: &dyn Ledger, ops: Vec<Op>) -> Result<Value, ContractError> {
    if ops.is_empty() || ops.len() > MAX_OPS {
        return Err(ContractError::BadArguments(format!(
            "argument ops: between 1 and {MAX_OPS} operations, got {}",
            ops.len()
        )));
    }
    let mut observed = Vec::with_capacity(ops.len());
    for op in ops {
        observed.push(match op {
            Op::Get(key) => json!(ledger.get_state(&key)?.map(|v| v.len())),
            Op::Put { key, transient } => {
                ledger.put_state(&key, &transient_value(ledger, &transient)?)?;
                Value::Null
            }
            Op::KeyPolicy { key, organizations } => {
                ledger.set_key_endorsement_policy(
                    &key,
                    &KeyEndorsementPolicy::all_of(organizations),
                )?;
                Value::Null
            }
            Op::Event { name, transient } => {
                ledger.set_event(&name, &transient_value(ledger, &transient)?)?;
                Value::Null
            }
        });
    }
    Ok(Value::Array(observed))
}

/// The conformance contract.
pub fn contract() -> Contract {
    Contract::new("Conformance")
        .submit("Put", &["key", "value"], |l: &dyn Ledger, (key, value): (String, String)| {
            Ok(l.put_state(&key, value.as_bytes())?)
        })
        .submit("PutMany", &["prefix", "count"], |l: &dyn Ledger, (prefix, count): (String, u32)| {
            if count > 1000 {
                return Err(ContractError::BadArguments("count must be at most 1000".into()));
            }
            for i in 0..count {
                l.put_state(&format!("{prefix}{i:04}"), format!("v{i}").as_bytes())?;
            }
            Ok(())
        })
        .submit("Ops", &["ops"], |l: &dyn Ledger, (ops,): (String,)| {
            // An empty argument takes the list from transient field `ops`, so a benchmark can
            // keep it out of the transaction as the SDK keeps a record's manifest out.
            let ops = if ops.is_empty() { text(&transient_value(l, "ops")?) } else { ops };
            let ops: Vec<Op> = serde_json::from_str(&ops)
                .map_err(|e| ContractError::BadArguments(format!("argument ops is not the expected JSON: {e}")))?;
            run_ops(l, ops).map(Json)
        })
        .evaluate("Get", &["key"], |l: &dyn Ledger, (key,): (String,)| {
            Ok(Json(l.get_state(&key)?.map(|v| text(&v))))
        })
        .submit("Delete", &["key"], |l: &dyn Ledger, (key,): (String,)| Ok(l.delete_state(&key)?))
        .submit("PutThenGet", &["key", "value"], |l: &dyn Ledger, (key, value): (String, String)| {
            // Fabric does not let a transaction read its own writes: the get sees the old value.
            l.put_state(&key, value.as_bytes())?;
            Ok(Json(l.get_state(&key)?.map(|v| text(&v))))
        })
        .evaluate("Range", &["start", "end"], |l: &dyn Ledger, (start, end): (String, String)| {
            records(l.get_state_by_range(&start, &end)?).map(Json)
        })
        .evaluate("RangeCount", &["start", "end"], |l: &dyn Ledger, (start, end): (String, String)| {
            let mut count = 0u64;
            for kv in l.get_state_by_range(&start, &end)? {
                kv?;
                count += 1;
            }
            Ok(count)
        })
        .evaluate("RangeFirst", &["start", "end"], |l: &dyn Ledger, (start, end): (String, String)| {
            // Dropping the iterator early closes it on the peer; the next query must still work.
            let first = l.get_state_by_range(&start, &end)?.next().transpose()?.map(|kv| kv.key);
            let again = l.get_state_by_range(&start, &end)?.next().transpose()?.map(|kv| kv.key);
            Ok(Json(json!([first, again])))
        })
        .evaluate(
            "RangePages",
            &["start", "end", "pageSize"],
            |l: &dyn Ledger, (start, end, page_size): (String, String, u32)| {
                let mut pages = Vec::new();
                let mut bookmark = String::new();
                loop {
                    let page = l.get_state_by_range_page(&start, &end, page_size, &bookmark)?;
                    let keys: Vec<String> = page.records.iter().map(|kv| kv.key.clone()).collect();
                    pages.push(json!({"keys": keys, "count": page.fetched_records_count}));
                    if page.bookmark.is_empty() || page.fetched_records_count < page_size || pages.len() > 1000 {
                        break;
                    }
                    bookmark = page.bookmark;
                }
                Ok(Json(Value::Array(pages)))
            },
        )
        .submit(
            "PutComposite",
            &["objectType", "attributes", "value"],
            |l: &dyn Ledger, (object_type, attributes, value): (String, Json<Vec<String>>, String)| {
                let parts: Vec<&str> = attributes.0.iter().map(String::as_str).collect();
                let key = medfabric_shim::ext::create_composite_key(&object_type, &parts)?;
                Ok(l.put_state(&key, value.as_bytes())?)
            },
        )
        .evaluate(
            "PartialComposite",
            &["objectType", "attributes"],
            |l: &dyn Ledger, (object_type, attributes): (String, Json<Vec<String>>)| {
                let parts: Vec<&str> = attributes.0.iter().map(String::as_str).collect();
                let mut out = Vec::new();
                for kv in l.get_state_by_partial_composite_key(&object_type, &parts)? {
                    let kv = kv?;
                    let (object_type, attributes) = split_composite_key(&kv.key)?;
                    out.push(json!([object_type, attributes, text(&kv.value)]));
                }
                Ok(Json(Value::Array(out)))
            },
        )
        .evaluate("History", &["key"], |l: &dyn Ledger, (key,): (String,)| {
            let mut out = Vec::new();
            for m in l.get_history_for_key(&key)? {
                let m = m?;
                out.push(json!({"txId": m.tx_id, "value": text(&m.value), "isDelete": m.is_delete, "seconds": m.timestamp.seconds}));
            }
            Ok(Json(Value::Array(out)))
        })
        .submit("PutPrivate", &["key"], |l: &dyn Ledger, (key,): (String,)| {
            let value = transient_value(l, "value")?;
            Ok(l.put_private_data(COLLECTION, &key, &value)?)
        })
        .evaluate("GetPrivate", &["key"], |l: &dyn Ledger, (key,): (String,)| {
            Ok(Json(l.get_private_data(COLLECTION, &key)?.map(|v| text(&v))))
        })
        .evaluate("GetPrivateHash", &["key"], |l: &dyn Ledger, (key,): (String,)| {
            Ok(Json(l.get_private_data_hash(COLLECTION, &key)?.map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>())))
        })
        .submit("DeletePrivate", &["key"], |l: &dyn Ledger, (key,): (String,)| Ok(l.delete_private_data(COLLECTION, &key)?))
        .submit("PurgePrivate", &["key"], |l: &dyn Ledger, (key,): (String,)| Ok(l.purge_private_data(COLLECTION, &key)?))
        .evaluate("PrivateRange", &["start", "end"], |l: &dyn Ledger, (start, end): (String, String)| {
            records(l.get_private_data_by_range(COLLECTION, &start, &end)?).map(Json)
        })
        .submit("SetKeyPolicy", &["key", "organizations"], |l: &dyn Ledger, (key, orgs): (String, Json<Vec<String>>)| {
            Ok(l.set_key_endorsement_policy(&key, &KeyEndorsementPolicy::all_of(orgs.0))?)
        })
        .evaluate("GetKeyPolicy", &["key"], |l: &dyn Ledger, (key,): (String,)| {
            Ok(Json(l.key_endorsement_policy(&key)?.map(|p| json!({"required": p.required, "organizations": p.organizations}))))
        })
        .evaluate("Transient", &["name"], |l: &dyn Ledger, (name,): (String,)| {
            transient_value(l, &name).map(|v| text(&v))
        })
        .evaluate("Creator", &[], |l: &dyn Ledger, (): ()| {
            let creator = l.creator();
            let pem = text(&creator.id_bytes);
            Ok(Json(json!({"mspId": creator.msp_id, "isCertificate": pem.starts_with("-----BEGIN CERTIFICATE-----")})))
        })
        .evaluate("TxInfo", &[], |l: &dyn Ledger, (): ()| {
            Ok(Json(json!({
                "txId": l.tx_id(),
                "channel": l.channel_id(),
                "seconds": l.tx_timestamp().seconds,
                "hasSignedProposal": l.signed_proposal().is_some(),
            })))
        })
        .submit("Event", &["name", "payload"], |l: &dyn Ledger, (name, payload): (String, String)| {
            // Only the last event of a transaction is kept.
            l.set_event("overwritten", b"first")?;
            Ok(l.set_event(&name, payload.as_bytes())?)
        })
        .evaluate(
            "InvokeOther",
            &["chaincode", "args"],
            |l: &dyn Ledger, (chaincode, args): (String, Json<Vec<String>>)| {
                let args: Vec<Vec<u8>> = args.0.into_iter().map(String::into_bytes).collect();
                let response = l.invoke_chaincode(&chaincode, &args, "")?;
                Ok(Json(json!({"status": response.status, "payload": text(&response.payload), "message": response.message})))
            },
        )
        .evaluate("Panic", &[], |_l: &dyn Ledger, (): ()| -> Result<(), ContractError> {
            panic!("conformance panic on purpose")
        })
        .evaluate("Fail", &["message"], |_l: &dyn Ledger, (message,): (String,)| -> Result<(), ContractError> {
            Err(ContractError::rejected(message))
        })
}

/// The conformance chaincode.
pub fn chaincode() -> Router {
    Router::new("medfabric-conformance", "1.0").with(contract())
}
