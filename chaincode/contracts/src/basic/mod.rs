//! `asset-transfer-basic`, wire-compatible with Fabric's sample of that name (the Go
//! `chaincode-go` version): same transaction names, arguments, errors and JSON fields.
//! It is our smoke test, our interoperability test with the official clients, and the
//! baseline our benchmarks compare the medical contracts with.

use serde::{Deserialize, Serialize};

use medfabric_shim::contract::{Contract, Json, Router};
use medfabric_shim::error::ContractError;
use medfabric_shim::ext::LedgerExt;
use medfabric_shim::ledger::Ledger;

/// An asset. Fields are declared in alphabetical order, as in the Go sample, so the JSON is
/// byte-identical across implementations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asset {
    /// Appraised value.
    #[serde(rename = "AppraisedValue")]
    pub appraised_value: i64,
    /// Colour.
    #[serde(rename = "Color")]
    pub color: String,
    /// Asset id (also its key).
    #[serde(rename = "ID")]
    pub id: String,
    /// Current owner.
    #[serde(rename = "Owner")]
    pub owner: String,
    /// Size.
    #[serde(rename = "Size")]
    pub size: i64,
}

fn asset(id: &str, color: &str, size: i64, owner: &str, appraised_value: i64) -> Asset {
    Asset {
        appraised_value,
        color: color.into(),
        id: id.into(),
        owner: owner.into(),
        size,
    }
}

fn read_asset(ledger: &dyn Ledger, id: &str) -> Result<Asset, ContractError> {
    ledger
        .get_json(id)?
        .ok_or_else(|| ContractError::rejected(format!("the asset {id} does not exist")))
}

fn asset_exists(ledger: &dyn Ledger, id: &str) -> Result<bool, ContractError> {
    Ok(ledger.get_state(id)?.is_some())
}

/// The contract, named as the sample's Go struct.
pub fn contract() -> Contract {
    Contract::new("SmartContract")
        .submit("InitLedger", &[], |ledger: &dyn Ledger, (): ()| {
            let assets = [
                asset("asset1", "blue", 5, "Tomoko", 300),
                asset("asset2", "red", 5, "Brad", 400),
                asset("asset3", "green", 10, "Jin Soo", 500),
                asset("asset4", "yellow", 10, "Max", 600),
                asset("asset5", "black", 15, "Adriana", 700),
                asset("asset6", "white", 15, "Michel", 800),
            ];
            for a in &assets {
                ledger.put_json(&a.id, a)?;
            }
            Ok(())
        })
        .submit(
            "CreateAsset",
            &["id", "color", "size", "owner", "appraisedValue"],
            |ledger: &dyn Ledger,
             (id, color, size, owner, value): (String, String, i64, String, i64)| {
                if asset_exists(ledger, &id)? {
                    return Err(ContractError::rejected(format!(
                        "the asset {id} already exists"
                    )));
                }
                ledger.put_json(&id, &asset(&id, &color, size, &owner, value))
            },
        )
        .evaluate(
            "ReadAsset",
            &["id"],
            |ledger: &dyn Ledger, (id,): (String,)| read_asset(ledger, &id).map(Json),
        )
        .submit(
            "UpdateAsset",
            &["id", "color", "size", "owner", "appraisedValue"],
            |ledger: &dyn Ledger,
             (id, color, size, owner, value): (String, String, i64, String, i64)| {
                if !asset_exists(ledger, &id)? {
                    return Err(ContractError::rejected(format!(
                        "the asset {id} does not exist"
                    )));
                }
                ledger.put_json(&id, &asset(&id, &color, size, &owner, value))
            },
        )
        .submit(
            "DeleteAsset",
            &["id"],
            |ledger: &dyn Ledger, (id,): (String,)| {
                if !asset_exists(ledger, &id)? {
                    return Err(ContractError::rejected(format!(
                        "the asset {id} does not exist"
                    )));
                }
                Ok(ledger.delete_state(&id)?)
            },
        )
        .evaluate(
            "AssetExists",
            &["id"],
            |ledger: &dyn Ledger, (id,): (String,)| asset_exists(ledger, &id),
        )
        .submit(
            "TransferAsset",
            &["id", "newOwner"],
            |ledger: &dyn Ledger, (id, new_owner): (String, String)| {
                let mut current = read_asset(ledger, &id)?;
                let old_owner = std::mem::replace(&mut current.owner, new_owner);
                ledger.put_json(&id, &current)?;
                Ok(old_owner)
            },
        )
        .evaluate("GetAllAssets", &[], |ledger: &dyn Ledger, (): ()| {
            let mut assets = Vec::new();
            for kv in ledger.get_state_by_range("", "")? {
                let kv = kv?;
                let asset: Asset = serde_json::from_slice(&kv.value).map_err(|e| {
                    ContractError::rejected(format!("stored asset {} is not valid: {e}", kv.key))
                })?;
                assets.push(asset);
            }
            Ok(Json(assets))
        })
}

/// The chaincode: the asset contract as default.
pub fn chaincode() -> Router {
    Router::new("asset-transfer-basic", "1.0").with(contract())
}
