//! Conveniences over [`Ledger`]: composite keys, partial-key queries, JSON values and
//! key-level endorsement policies. Everything here is built from the trait's required methods.

use prost::Message as _;
use serde::{Serialize, de::DeserializeOwned};

use medfabric_protos::common::{
    MspPrincipal, MspRole, SignaturePolicy, SignaturePolicyEnvelope, msp_principal, msp_role,
    signature_policy,
};

use crate::error::{ContractError, LedgerError};
use crate::ledger::{KeyValue, Ledger, VALIDATION_PARAMETER};

/// Separator and namespace marker of composite keys.
const COMPOSITE_SEPARATOR: char = '\u{0}';
/// The largest Unicode scalar value, which ends a partial composite key range.
const MAX_UNICODE: char = '\u{10FFFF}';

/// Builds a composite key: `U+0000 objectType U+0000 attr1 U+0000 ... attrN U+0000`.
pub fn create_composite_key(object_type: &str, attributes: &[&str]) -> Result<String, LedgerError> {
    validate_composite_part(object_type)?;
    let mut key = String::with_capacity(
        2 + object_type.len() + attributes.iter().map(|a| a.len() + 1).sum::<usize>(),
    );
    key.push(COMPOSITE_SEPARATOR);
    key.push_str(object_type);
    key.push(COMPOSITE_SEPARATOR);
    for attribute in attributes {
        validate_composite_part(attribute)?;
        key.push_str(attribute);
        key.push(COMPOSITE_SEPARATOR);
    }
    Ok(key)
}

/// Splits a composite key into its object type and attributes.
pub fn split_composite_key(key: &str) -> Result<(String, Vec<String>), LedgerError> {
    let rest = key
        .strip_prefix(COMPOSITE_SEPARATOR)
        .ok_or_else(|| LedgerError::InvalidKey(format!("{key:?} is not a composite key")))?;
    let mut parts: Vec<String> = rest.split(COMPOSITE_SEPARATOR).map(str::to_owned).collect();
    // A well-formed key ends with the separator, which leaves one empty trailing part.
    if parts.pop().as_deref() != Some("") || parts.is_empty() {
        return Err(LedgerError::InvalidKey(format!(
            "{key:?} is not a composite key"
        )));
    }
    let object_type = parts.remove(0);
    Ok((object_type, parts))
}

fn validate_composite_part(part: &str) -> Result<(), LedgerError> {
    if part.contains(COMPOSITE_SEPARATOR) || part.contains(MAX_UNICODE) {
        return Err(LedgerError::InvalidKey(format!(
            "composite key part {part:?} contains U+0000 or U+10FFFF, which are reserved"
        )));
    }
    Ok(())
}

/// Checks a simple (non-composite) key as Fabric's shim does.
pub(crate) fn validate_simple_key(key: &str) -> Result<(), LedgerError> {
    if key.starts_with(COMPOSITE_SEPARATOR) {
        return Err(LedgerError::InvalidKey(format!(
            "first character of the key {key:?} is U+0000, which is reserved for composite keys"
        )));
    }
    Ok(())
}

/// Rejects the empty key, which Fabric does not store.
pub(crate) fn validate_key(key: &str) -> Result<(), LedgerError> {
    if key.is_empty() {
        return Err(LedgerError::InvalidKey("key must not be empty".into()));
    }
    Ok(())
}

/// Private data always names its collection.
pub(crate) fn validate_collection(collection: &str) -> Result<(), LedgerError> {
    if collection.is_empty() {
        return Err(LedgerError::InvalidKey(
            "collection must not be empty".into(),
        ));
    }
    Ok(())
}

/// Arguments of a private data operation: a collection and a non-empty key.
pub(crate) fn validate_private(collection: &str, key: &str) -> Result<(), LedgerError> {
    validate_collection(collection)?;
    validate_key(key)
}

/// Arguments of a private data write: Fabric refuses empty private values.
pub(crate) fn validate_private_write(
    collection: &str,
    key: &str,
    value: &[u8],
) -> Result<(), LedgerError> {
    validate_private(collection, key)?;
    if value.is_empty() {
        return Err(LedgerError::InvalidKey(format!(
            "private value of {key:?} must not be empty"
        )));
    }
    Ok(())
}

/// The range `[start, end)` covering every composite key that begins with the given parts.
pub fn partial_composite_range(
    object_type: &str,
    attributes: &[&str],
) -> Result<(String, String), LedgerError> {
    let start = create_composite_key(object_type, attributes)?;
    let mut end = start.clone();
    end.push(MAX_UNICODE);
    Ok((start, end))
}

/// An endorsement policy for one key: `n` of the listed organisations' peers must endorse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEndorsementPolicy {
    /// How many distinct organisations must endorse.
    pub required: u32,
    /// The organisations (MSP ids), sorted and without duplicates.
    pub organizations: Vec<String>,
}

impl KeyEndorsementPolicy {
    /// Every listed organisation must endorse.
    pub fn all_of(organizations: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut organizations: Vec<String> = organizations.into_iter().map(Into::into).collect();
        organizations.sort();
        organizations.dedup();
        Self {
            required: organizations.len() as u32,
            organizations,
        }
    }

    /// `required` of the listed organisations must endorse (e.g. 2 of 3 for `MAJORITY`).
    pub fn n_of(required: u32, organizations: impl IntoIterator<Item = impl Into<String>>) -> Self {
        let mut policy = Self::all_of(organizations);
        policy.required = required;
        policy
    }

    /// Encodes as the `SignaturePolicyEnvelope` Fabric's validator reads (peer role principals).
    pub fn to_bytes(&self) -> Vec<u8> {
        let identities = self
            .organizations
            .iter()
            .map(|msp| MspPrincipal {
                principal_classification: msp_principal::Classification::Role as i32,
                principal: MspRole {
                    msp_identifier: msp.clone(),
                    role: msp_role::MspRoleType::Peer as i32,
                }
                .encode_to_vec(),
            })
            .collect();
        let rules = (0..self.organizations.len() as i32)
            .map(|i| SignaturePolicy {
                r#type: Some(signature_policy::Type::SignedBy(i)),
            })
            .collect();
        SignaturePolicyEnvelope {
            version: 0,
            rule: Some(SignaturePolicy {
                r#type: Some(signature_policy::Type::NOutOf(signature_policy::NOutOf {
                    n: self.required as i32,
                    rules,
                })),
            }),
            identities,
        }
        .encode_to_vec()
    }

    /// Decodes a policy written by [`Self::to_bytes`] (or any n-of-signed-by policy over roles).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LedgerError> {
        let malformed = |why: &str| LedgerError::Protocol(format!("endorsement policy: {why}"));
        let envelope =
            SignaturePolicyEnvelope::decode(bytes).map_err(|e| malformed(&e.to_string()))?;
        let mut organizations = Vec::with_capacity(envelope.identities.len());
        for identity in &envelope.identities {
            if identity.principal_classification != msp_principal::Classification::Role as i32 {
                return Err(malformed("only role principals are supported"));
            }
            let role = MspRole::decode(identity.principal.as_slice())
                .map_err(|e| malformed(&e.to_string()))?;
            organizations.push(role.msp_identifier);
        }
        let required = match envelope.rule.and_then(|r| r.r#type) {
            Some(signature_policy::Type::NOutOf(n)) => {
                u32::try_from(n.n).map_err(|_| malformed("negative n"))?
            }
            Some(signature_policy::Type::SignedBy(_)) => 1,
            None => return Err(malformed("no rule")),
        };
        organizations.sort();
        organizations.dedup();
        Ok(Self {
            required,
            organizations,
        })
    }

    /// Whether endorsements from these organisations satisfy the policy.
    pub fn is_satisfied_by<'a>(&self, endorsers: impl IntoIterator<Item = &'a str>) -> bool {
        let mut endorsers: Vec<&str> = endorsers.into_iter().collect();
        endorsers.sort_unstable();
        endorsers.dedup();
        let matched = self
            .organizations
            .iter()
            .filter(|org| endorsers.contains(&org.as_str()))
            .count();
        matched as u32 >= self.required
    }
}

/// Conveniences available on every [`Ledger`].
pub trait LedgerExt: Ledger {
    /// Reads and JSON-decodes a key.
    fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ContractError> {
        match self.get_state(key)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                ContractError::rejected(format!("stored value of {key:?} is not valid JSON: {e}"))
            }),
        }
    }

    /// JSON-encodes and writes a key.
    fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), ContractError> {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| ContractError::rejected(format!("cannot encode {key:?}: {e}")))?;
        Ok(self.put_state(key, &bytes)?)
    }

    /// Collects every key of a range into a vector.
    fn collect_range(&self, start: &str, end: &str) -> Result<Vec<KeyValue>, LedgerError> {
        self.get_state_by_range(start, end)?.collect()
    }

    /// Ties a key to an endorsement policy (state-based endorsement).
    fn set_key_endorsement_policy(
        &self,
        key: &str,
        policy: &KeyEndorsementPolicy,
    ) -> Result<(), LedgerError> {
        self.put_state_metadata("", key, VALIDATION_PARAMETER, &policy.to_bytes())
    }

    /// The endorsement policy tied to a key, if any.
    fn key_endorsement_policy(
        &self,
        key: &str,
    ) -> Result<Option<KeyEndorsementPolicy>, LedgerError> {
        match self.get_state_metadata("", key)?.get(VALIDATION_PARAMETER) {
            Some(bytes) if !bytes.is_empty() => KeyEndorsementPolicy::from_bytes(bytes).map(Some),
            _ => Ok(None),
        }
    }
}

impl<L: Ledger + ?Sized> LedgerExt for L {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn composite_keys_round_trip() {
        let key = create_composite_key("asset", &["blue", "42"]).unwrap();
        assert_eq!(key, "\u{0}asset\u{0}blue\u{0}42\u{0}");
        let (object_type, attributes) = split_composite_key(&key).unwrap();
        assert_eq!(object_type, "asset");
        assert_eq!(attributes, vec!["blue", "42"]);
        assert!(split_composite_key("plain").is_err());
        assert!(split_composite_key("\u{0}asset").is_err());
        assert!(create_composite_key("a\u{0}b", &[]).is_err());
        assert!(create_composite_key("a", &["\u{10FFFF}"]).is_err());
    }

    #[test]
    fn endorsement_policy_round_trips_and_evaluates() {
        let policy = KeyEndorsementPolicy::all_of(["Org2", "Org1", "Org1"]);
        assert_eq!(policy.organizations, vec!["Org1", "Org2"]);
        let decoded = KeyEndorsementPolicy::from_bytes(&policy.to_bytes()).unwrap();
        assert_eq!(decoded, policy);
        assert!(policy.is_satisfied_by(["Org1", "Org2", "Org3"]));
        assert!(!policy.is_satisfied_by(["Org1", "Org1"]));
        assert!(KeyEndorsementPolicy::from_bytes(b"\xff\xff").is_err());
    }
}
