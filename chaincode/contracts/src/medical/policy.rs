//! `Policy`: named attribute policies stored on each channel, versioned, with history.
//!
//! The contracts consult policies by name ([`names`]). Who may change them is itself the policy
//! named `admin`, set once by `Policy:Init` and changed later like any other.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use medfabric_policy::{AttributeSet, Policy};
use medfabric_shim::contract::{Contract, Json};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

use super::Config;
use super::context::{Actor, Caller, TxTime};
use super::input::{PolicyArg, PolicyName, bad, denied, rejected};
use super::store::{self, kind};

/// Names of the policies the contracts consult.
pub mod names {
    /// Who may change policies (both channels). Set by `Policy:Init`.
    pub const ADMIN: &str = "admin";
    /// Who may create records (`storage`), e.g. `role:physician AND (org:Hospital1MSP OR org:Hospital2MSP)`.
    pub const RECORD_AUTHOR: &str = "record.author";
    /// Who may register a pseudonym (`storage`), e.g. `role:patient`.
    pub const PSEUDONYM_REGISTER: &str = "pseudonym.register";
    /// Who may read every audit trail and review break-glass accesses, e.g. `role:auditor`.
    pub const AUDITOR: &str = "auditor";
    /// Who may break the glass (`storage`), e.g. `role:emergency`.
    pub const EMERGENCY: &str = "emergency";
}

/// The OU an identity must carry to run `Policy:Init` (Fabric NodeOUs give MSP admins `admin`).
pub const INIT_OU: &str = "admin";

/// What changed a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyChange {
    /// The admin policy set by `Policy:Init`.
    Init,
    /// Created or replaced by `Policy:Set`.
    Set,
    /// Retired by `Policy:Retire`.
    Retire,
}

/// One version of a named policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedPolicy {
    /// The name.
    pub name: String,
    /// 1 for the first version, then +1 per change.
    pub version: u64,
    /// The policy (canonical text); kept when retired, for the record.
    pub policy: Policy,
    /// A retired policy is satisfied by nobody.
    pub retired: bool,
    /// What made this version.
    pub change: PolicyChange,
    /// Who made it.
    pub changed_by: Actor,
    /// When (transaction timestamp).
    pub changed_at: TxTime,
    /// The transaction that made it.
    pub tx_id: String,
}

fn head_key(name: &str) -> Result<String, ContractError> {
    store::key(kind::POLICY, &[name])
}

fn version_key(name: &str, version: u64) -> Result<String, ContractError> {
    store::key(kind::POLICY_VERSION, &[name, &format!("{version:010}")])
}

/// The current version of a policy, if any.
pub(crate) fn current(
    ledger: &dyn Ledger,
    name: &str,
) -> Result<Option<NamedPolicy>, ContractError> {
    store::read(ledger, &head_key(name)?)
}

/// Loads a policy the contracts consult; a missing or retired policy refuses everything.
pub(crate) fn load(ledger: &dyn Ledger, name: &str) -> Result<Policy, ContractError> {
    match current(ledger, name)? {
        None => Err(denied(format!(
            "policy {name:?} is not defined on channel {:?}; an admin sets it with Policy:Set",
            ledger.channel_id()
        ))),
        Some(p) if p.retired => Err(denied(format!(
            "policy {name:?} was retired at version {}; nobody satisfies it",
            p.version
        ))),
        Some(p) => Ok(p.policy),
    }
}

/// Refuses unless the caller's certified attributes satisfy the named policy.
pub(crate) fn require(
    ledger: &dyn Ledger,
    caller: &Caller,
    name: &str,
) -> Result<(), ContractError> {
    let policy = load(ledger, name)?;
    caller.require(&format!("policy {name:?}"), &policy, caller.attributes())
}

/// Whether the caller satisfies the named policy (false when it is missing or retired).
pub(crate) fn satisfies(
    ledger: &dyn Ledger,
    name: &str,
    attributes: &AttributeSet,
) -> Result<bool, ContractError> {
    Ok(match current(ledger, name)? {
        Some(p) if !p.retired => p.policy.evaluate(attributes),
        _ => false,
    })
}

fn store_version(ledger: &dyn Ledger, entry: &NamedPolicy) -> Result<(), ContractError> {
    store::write(ledger, &head_key(&entry.name)?, entry)?;
    store::write(ledger, &version_key(&entry.name, entry.version)?, entry)?;
    let event = format!("Policy:{:?}", entry.change);
    ledger.set_event(&event, &store::to_json(entry)?)?;
    Ok(())
}

fn new_version(
    ledger: &dyn Ledger,
    caller: &Caller,
    name: &str,
    previous: Option<&NamedPolicy>,
    policy: Policy,
    retired: bool,
    change: PolicyChange,
) -> NamedPolicy {
    NamedPolicy {
        name: name.to_owned(),
        version: previous.map_or(1, |p| p.version + 1),
        policy,
        retired,
        change,
        changed_by: caller.actor(),
        changed_at: caller.at(),
        tx_id: ledger.tx_id().to_owned(),
    }
}

fn init(ledger: &dyn Ledger, config: &Config, admin: Policy) -> Result<NamedPolicy, ContractError> {
    config.require_known_channel(ledger, "Policy:Init")?;
    let caller = Caller::of(ledger)?;
    if let Some(existing) = current(ledger, names::ADMIN)? {
        return Err(rejected(format!(
            "channel {:?} is already initialised (admin policy version {}); change it with Policy:Set",
            ledger.channel_id(),
            existing.version
        )));
    }
    if !caller.identity().has_ou(INIT_OU) {
        return Err(denied(format!(
            "Policy:Init needs an MSP admin identity (OU {INIT_OU:?}); {} has OUs {:?}",
            caller.describe(),
            caller.identity().organizational_units()
        )));
    }
    caller.require("the admin policy being set", &admin, caller.attributes())?;
    let entry = new_version(
        ledger,
        &caller,
        names::ADMIN,
        None,
        admin,
        false,
        PolicyChange::Init,
    );
    store_version(ledger, &entry)?;
    Ok(entry)
}

fn set(
    ledger: &dyn Ledger,
    config: &Config,
    name: PolicyName,
    policy: Policy,
) -> Result<NamedPolicy, ContractError> {
    config.require_known_channel(ledger, "Policy:Set")?;
    let caller = Caller::of(ledger)?;
    require(ledger, &caller, names::ADMIN)?;
    let name = name.as_str();
    if name == names::ADMIN {
        // An admin policy the caller does not meet would lock the caller (and maybe everyone) out.
        caller.require(
            "the new admin policy (an admin may not lock themselves out)",
            &policy,
            caller.attributes(),
        )?;
    }
    let previous = current(ledger, name)?;
    if let Some(p) = &previous
        && !p.retired
        && p.policy == policy
    {
        // Unchanged: nothing to write, no event.
        return Ok(p.clone());
    }
    let entry = new_version(
        ledger,
        &caller,
        name,
        previous.as_ref(),
        policy,
        false,
        PolicyChange::Set,
    );
    store_version(ledger, &entry)?;
    Ok(entry)
}

fn retire(
    ledger: &dyn Ledger,
    config: &Config,
    name: PolicyName,
) -> Result<NamedPolicy, ContractError> {
    config.require_known_channel(ledger, "Policy:Retire")?;
    let caller = Caller::of(ledger)?;
    require(ledger, &caller, names::ADMIN)?;
    let name = name.as_str();
    if name == names::ADMIN {
        return Err(bad(
            "the admin policy cannot be retired; replace it with Policy:Set",
        ));
    }
    let previous = current(ledger, name)?
        .ok_or_else(|| rejected(format!("policy {name:?} does not exist")))?;
    if previous.retired {
        return Err(rejected(format!(
            "policy {name:?} is already retired (version {})",
            previous.version
        )));
    }
    let entry = new_version(
        ledger,
        &caller,
        name,
        Some(&previous),
        previous.policy.clone(),
        true,
        PolicyChange::Retire,
    );
    store_version(ledger, &entry)?;
    Ok(entry)
}

fn get(
    ledger: &dyn Ledger,
    config: &Config,
    name: PolicyName,
) -> Result<NamedPolicy, ContractError> {
    config.require_known_channel(ledger, "Policy:Get")?;
    current(ledger, name.as_str())?
        .ok_or_else(|| rejected(format!("policy {:?} does not exist", name.as_str())))
}

fn list(ledger: &dyn Ledger, config: &Config) -> Result<Vec<NamedPolicy>, ContractError> {
    config.require_known_channel(ledger, "Policy:List")?;
    Ok(store::scan(ledger, kind::POLICY, &[])?
        .into_iter()
        .map(|(_, p)| p)
        .collect())
}

fn history(
    ledger: &dyn Ledger,
    config: &Config,
    name: PolicyName,
) -> Result<Vec<NamedPolicy>, ContractError> {
    config.require_known_channel(ledger, "Policy:History")?;
    let versions: Vec<NamedPolicy> = store::scan(ledger, kind::POLICY_VERSION, &[name.as_str()])?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if versions.is_empty() {
        return Err(rejected(format!(
            "policy {:?} does not exist",
            name.as_str()
        )));
    }
    Ok(versions)
}

/// The `Policy` contract (both channels).
pub fn contract(config: Arc<Config>) -> Contract {
    let (c1, c2, c3, c4, c5, c6) = (
        config.clone(),
        config.clone(),
        config.clone(),
        config.clone(),
        config.clone(),
        config,
    );
    Contract::new("Policy")
        .submit(
            "Init",
            &["adminPolicy"],
            move |l: &dyn Ledger, (admin,): (PolicyArg,)| init(l, &c1, admin.0).map(Json),
        )
        .submit(
            "Set",
            &["name", "policy"],
            move |l: &dyn Ledger, (name, policy): (PolicyName, PolicyArg)| {
                set(l, &c2, name, policy.0).map(Json)
            },
        )
        .submit(
            "Retire",
            &["name"],
            move |l: &dyn Ledger, (name,): (PolicyName,)| retire(l, &c3, name).map(Json),
        )
        .evaluate(
            "Get",
            &["name"],
            move |l: &dyn Ledger, (name,): (PolicyName,)| get(l, &c4, name).map(Json),
        )
        .evaluate("List", &[], move |l: &dyn Ledger, (): ()| {
            list(l, &c5).map(Json)
        })
        .evaluate(
            "History",
            &["name"],
            move |l: &dyn Ledger, (name,): (PolicyName,)| history(l, &c6, name).map(Json),
        )
}
