//! Argument types: every value a transaction accepts is validated while it is decoded, so a
//! handler only ever sees well-formed, bounded input and a malformed call fails before anything
//! is read or written.
//!
//! Scalars arrive as plain strings ([`Id`], [`Fingerprint`], [`Purpose`], [`Reason`], ...);
//! structured inputs arrive as one JSON argument ([`Input`]) whose type lists its fields with
//! `deny_unknown_fields`, bounds its encoded size ([`ArgSpec::MAX_BYTES`]) and checks
//! cross-field rules ([`ArgSpec::check`]). Opaque byte strings (key capsules, proofs, keys) are
//! standard base64 with padding ([`Bytes`]).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use medfabric_policy::{Limits, Policy};
use medfabric_shim::contract::FromArg;
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::Ledger;

/// Size limits of every field. They bound what one transaction may write and what the
/// chaincode allocates while decoding.
pub mod limits {
    /// Longest record, section, share or request id, in bytes (as `medfabric-crypto`'s ids).
    pub const MAX_ID_LEN: usize = 255;
    /// Longest policy name.
    pub const MAX_POLICY_NAME_LEN: usize = 64;
    /// Longest policy text (also the policy language's own default limit).
    pub const MAX_POLICY_LEN: usize = 4096;
    /// Longest object location (URL or object key of the ciphertext).
    pub const MAX_LOCATION_LEN: usize = 1024;
    /// Longest section content type.
    pub const MAX_CONTENT_TYPE_LEN: usize = 255;
    /// Longest purpose (an attribute value).
    pub const MAX_PURPOSE_LEN: usize = 64;
    /// Longest free-text reason or note, in bytes of UTF-8.
    pub const MAX_REASON_LEN: usize = 512;
    /// Most sections in a record, a rights update or a share.
    pub const MAX_SECTIONS: usize = 64;
    /// Largest ciphertext a record may announce (1 TiB).
    pub const MAX_CIPHERTEXT_SIZE: u64 = 1 << 40;
    /// Largest PRE capsule or wrapped data key.
    pub const MAX_CAPSULE_BYTES: usize = 1024;
    /// Largest CP-ABE ciphertext of a section key.
    pub const MAX_CPABE_BYTES: usize = 16 * 1024;
    /// Largest CES signature (author signature, root, extraction policy).
    pub const MAX_CES_SIGNATURE_BYTES: usize = 16 * 1024;
    /// Largest CES extraction (subset) proof.
    pub const MAX_EXTRACTION_PROOF_BYTES: usize = 256 * 1024;
    /// Most signed numeric commitments in a record.
    pub const MAX_COMMITMENTS: usize = 16;
    /// Largest numeric commitment.
    pub const MAX_COMMITMENT_BYTES: usize = 1024;
    /// Most PRE public keys per pseudonym.
    pub const MAX_PRE_KEYS: usize = 4;
    /// Largest PRE public key (or grantee key).
    pub const MAX_PUBLIC_KEY_BYTES: usize = 256;
    /// Largest public identity escrow transcript.
    pub const MAX_ESCROW_BYTES: usize = 16 * 1024;
    /// Largest private escrow shares value (transient `escrowShares`).
    pub const MAX_ESCROW_SHARES_BYTES: usize = 64 * 1024;
    /// Longest hospital patient number (transient `patientNumber`).
    pub const MAX_PATIENT_NUMBER_LEN: usize = 64;
    /// Shortest and longest salt of the patient number (transient `patientNumberSalt`).
    pub const PATIENT_NUMBER_SALT_LEN: (usize, usize) = (16, 64);
    /// Most re-encryption proxies in one grant.
    pub const MAX_PROXIES: usize = 16;
    /// Largest key fragment commitment of one proxy.
    pub const MAX_FRAGMENT_COMMITMENT_BYTES: usize = 1024;
    /// Longest grant, and longest automatic grant, in seconds (366 days).
    pub const MAX_GRANT_SECONDS: i64 = 366 * 24 * 3600;
    /// Largest page of a listing.
    pub const MAX_PAGE_SIZE: u32 = 100;
    /// Longest paging bookmark.
    pub const MAX_BOOKMARK_LEN: usize = 512;
    /// Longest release ticket (a transaction id).
    pub const MAX_TICKET_LEN: usize = 128;
}

/// A malformed argument.
pub(crate) fn bad(message: impl Into<String>) -> ContractError {
    ContractError::BadArguments(message.into())
}

/// A refusal on access grounds.
pub(crate) fn denied(message: impl fmt::Display) -> ContractError {
    ContractError::Rejected(format!("access denied: {message}"))
}

/// A refusal on business grounds (missing object, wrong state).
pub(crate) fn rejected(message: impl Into<String>) -> ContractError {
    ContractError::Rejected(message.into())
}

/// At most 40 characters of untrusted text, for error messages.
pub(crate) fn preview(text: &str) -> String {
    let mut out: String = text.chars().take(40).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    format!("{out:?}")
}

fn utf8<'a>(bytes: &'a [u8], name: &str) -> Result<&'a str, ContractError> {
    std::str::from_utf8(bytes).map_err(|_| bad(format!("argument {name} is not valid UTF-8")))
}

/// Declares a validated string newtype that is both a transaction argument and a JSON field.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $check:path) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps a value.
            ///
            /// # Errors
            /// A description of what is wrong.
            pub fn new(value: &str) -> Result<Self, String> {
                $check(value)?;
                Ok(Self(value.to_owned()))
            }
            /// The value.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The value, owned.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromArg for $name {
            fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
                Self::new(utf8(bytes, name)?).map_err(|e| bad(format!("argument {name}: {e}")))
            }
            fn schema() -> Value {
                json!({"type": "string"})
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::new(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn check_id(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > limits::MAX_ID_LEN {
        return Err(format!(
            "id must be 1 to {} bytes, got {}",
            limits::MAX_ID_LEN,
            value.len()
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "id {} may contain only printable ASCII without spaces",
            preview(value)
        ));
    }
    Ok(())
}

fn check_policy_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= limits::MAX_POLICY_NAME_LEN
        && value.as_bytes()[0].is_ascii_lowercase()
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "policy name {} must be 1 to {} characters of a-z, 0-9, '.', '_', '-', starting with a letter",
            preview(value),
            limits::MAX_POLICY_NAME_LEN
        ))
    }
}

/// 64 lower-case hex digits: how fingerprints and digests (SHA-256) are written.
fn is_sha256_hex(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn check_fingerprint(value: &str) -> Result<(), String> {
    if is_sha256_hex(value) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a pseudonym (the certificate's SHA-256 fingerprint: 64 lower-case hex digits)",
            preview(value)
        ))
    }
}

fn check_digest(value: &str) -> Result<(), String> {
    if is_sha256_hex(value) {
        Ok(())
    } else {
        Err(format!(
            "{} is not a SHA-256 digest (64 lower-case hex digits)",
            preview(value)
        ))
    }
}

fn check_purpose(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= limits::MAX_PURPOSE_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "purpose {} must be 1 to {} characters of A-Z, a-z, 0-9, '_', '-', '.', '@'",
            preview(value),
            limits::MAX_PURPOSE_LEN
        ))
    }
}

fn check_reason(value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err("a reason must be given".into());
    }
    if value.len() > limits::MAX_REASON_LEN {
        return Err(format!(
            "reason is {} bytes, the limit is {}",
            value.len(),
            limits::MAX_REASON_LEN
        ));
    }
    if value.chars().any(char::is_control) {
        return Err("reason must not contain control characters".into());
    }
    Ok(())
}

fn check_location(value: &str) -> Result<(), String> {
    if value.is_empty() || value.len() > limits::MAX_LOCATION_LEN {
        return Err(format!(
            "location must be 1 to {} bytes, got {}",
            limits::MAX_LOCATION_LEN,
            value.len()
        ));
    }
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("location may contain only printable ASCII without spaces".into());
    }
    Ok(())
}

fn check_content_type(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= limits::MAX_CONTENT_TYPE_LEN
        && value.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
        && value.trim() == value;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "content type {} must be 1 to {} bytes of printable ASCII, without leading or trailing spaces",
            preview(value),
            limits::MAX_CONTENT_TYPE_LEN
        ))
    }
}

fn check_ticket(value: &str) -> Result<(), String> {
    if !value.is_empty()
        && value.len() <= limits::MAX_TICKET_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        Ok(())
    } else {
        Err(format!(
            "{} is not a release ticket (the transaction id that issued it)",
            preview(value)
        ))
    }
}

text_type!(
    /// A record, section, share or request id: 1 to 255 bytes of printable ASCII, no spaces
    /// (the same rule as `medfabric-crypto`'s ids, so a CES signature's record id always fits).
    Id,
    check_id
);
text_type!(
    /// A policy name: `[a-z][a-z0-9._-]{0,63}`.
    PolicyName,
    check_policy_name
);
text_type!(
    /// A pseudonym: the lower-case hex SHA-256 fingerprint of the pseudonym certificate's DER.
    Fingerprint,
    check_fingerprint
);
text_type!(
    /// A SHA-256 digest in lower-case hex.
    Digest,
    check_digest
);
text_type!(
    /// A stated purpose (`treatment`, `research`, ...). It is an attribute value, so policies
    /// can name it as `purpose:<value>`.
    Purpose,
    check_purpose
);
text_type!(
    /// Free-text reason or note: 1 to 512 bytes of UTF-8, no control characters.
    Reason,
    check_reason
);
text_type!(
    /// Where the ciphertext is stored (URL or object key): 1 to 1024 bytes of printable ASCII.
    Location,
    check_location
);
text_type!(
    /// A section's content type, e.g. `application/fhir+json; fhirVersion=4.0`.
    ContentType,
    check_content_type
);
text_type!(
    /// A release ticket: the id of the submitted transaction that recorded the access.
    Ticket,
    check_ticket
);

/// An opaque byte string of 1 to `MAX` bytes, carried as standard base64 with padding.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes<const MAX: usize>(Vec<u8>);

impl<const MAX: usize> Bytes<MAX> {
    /// Wraps bytes.
    ///
    /// # Errors
    /// When `bytes` is empty or longer than `MAX`.
    pub fn new(bytes: Vec<u8>) -> Result<Self, String> {
        if bytes.is_empty() || bytes.len() > MAX {
            return Err(format!("must be 1 to {MAX} bytes, got {}", bytes.len()));
        }
        Ok(Self(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The base64 text.
    pub fn to_base64(&self) -> String {
        BASE64.encode(&self.0)
    }
}

impl<const MAX: usize> fmt::Debug for Bytes<MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl<const MAX: usize> Serialize for Bytes<MAX> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64())
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for Bytes<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        // Bound the text before decoding it.
        if text.len() > MAX.div_ceil(3) * 4 {
            return Err(serde::de::Error::custom(format!(
                "base64 value of {} characters decodes to more than {MAX} bytes",
                text.len()
            )));
        }
        let bytes = BASE64
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("invalid base64 ({e})")))?;
        Self::new(bytes).map_err(|e| serde::de::Error::custom(format!("decoded value {e}")))
    }
}

/// A policy given as an argument: parsed and canonicalised under the language's default limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyArg(pub Policy);

impl FromArg for PolicyArg {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        if bytes.len() > limits::MAX_POLICY_LEN {
            return Err(bad(format!(
                "argument {name}: policy is {} bytes, the limit is {}",
                bytes.len(),
                limits::MAX_POLICY_LEN
            )));
        }
        Policy::parse_with_limits(utf8(bytes, name)?, Limits::DEFAULT)
            .map(PolicyArg)
            .map_err(|e| bad(format!("argument {name}: invalid policy: {e}")))
    }
    fn schema() -> Value {
        json!({"type": "string", "description": "attribute policy"})
    }
}

/// A page size for listings: 1 to [`limits::MAX_PAGE_SIZE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageSize(pub u32);

impl FromArg for PageSize {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        let n = u32::from_arg(bytes, name)?;
        if n == 0 || n > limits::MAX_PAGE_SIZE {
            return Err(bad(format!(
                "argument {name}: page size must be 1 to {}, got {n}",
                limits::MAX_PAGE_SIZE
            )));
        }
        Ok(Self(n))
    }
    fn schema() -> Value {
        json!({"type": "integer", "minimum": 1, "maximum": limits::MAX_PAGE_SIZE})
    }
}

/// A paging bookmark: empty for the first page, else what the previous page returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bookmark(pub String);

impl FromArg for Bookmark {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        if bytes.len() > limits::MAX_BOOKMARK_LEN {
            return Err(bad(format!(
                "argument {name}: bookmark is {} bytes, the limit is {}",
                bytes.len(),
                limits::MAX_BOOKMARK_LEN
            )));
        }
        let text = utf8(bytes, name)?;
        if !text.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(format!("argument {name}: malformed bookmark")));
        }
        Ok(Self(text.to_owned()))
    }
    fn schema() -> Value {
        json!({"type": "string"})
    }
}

/// An optional pseudonym filter: empty means "every owner" (auditors only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnerFilter(pub Option<Fingerprint>);

impl FromArg for OwnerFilter {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        Fingerprint::from_arg(bytes, name).map(|f| Self(Some(f)))
    }
    fn schema() -> Value {
        json!({"type": "string"})
    }
}

/// A structured input carried as one JSON argument.
pub trait ArgSpec: DeserializeOwned {
    /// Largest accepted encoding, checked before decoding.
    const MAX_BYTES: usize;
    /// Rules across fields (counts, uniqueness, ranges).
    ///
    /// # Errors
    /// A description of the first rule broken.
    fn check(&self) -> Result<(), String>;
}

/// A JSON argument: size-checked, decoded strictly (unknown fields are errors), then checked.
#[derive(Clone, Debug)]
pub struct Input<T>(pub T);

impl<T: ArgSpec> Input<T> {
    /// Decodes `bytes`; `what` names where they came from in errors (`argument record`).
    fn decode(bytes: &[u8], what: &str) -> Result<Self, ContractError> {
        if bytes.len() > T::MAX_BYTES {
            return Err(bad(format!(
                "{what} is {} bytes, the limit is {}",
                bytes.len(),
                T::MAX_BYTES
            )));
        }
        let mut decoder = serde_json::Deserializer::from_slice(bytes);
        let value: T = serde_path_to_error::deserialize(&mut decoder).map_err(|e| {
            let path = e.path().to_string();
            if path == "." {
                bad(format!("{what} is not valid: {}", e.into_inner()))
            } else {
                bad(format!(
                    "{what} is not valid: field {path}: {}",
                    e.into_inner()
                ))
            }
        })?;
        decoder
            .end()
            .map_err(|e| bad(format!("{what} is not valid: {e}")))?;
        value.check().map_err(|e| bad(format!("{what}: {e}")))?;
        Ok(Self(value))
    }
}

impl<T: ArgSpec> FromArg for Input<T> {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        Self::decode(bytes, &format!("argument {name}"))
    }
    fn schema() -> Value {
        json!({"type": "object"})
    }
}

/// A JSON input given as its argument or, when that argument is empty, as the transient
/// field of the same name. Transient data stays out of the transaction: a large input that
/// the transaction writes to the ledger anyway (a record's manifest is the index) then
/// travels once, in the write set, instead of twice. Either way it is decoded and checked
/// exactly like [`Input`].
#[derive(Clone, Debug)]
pub struct InputOrTransient<T>(Option<Input<T>>);

impl<T: ArgSpec> InputOrTransient<T> {
    /// The input, from the argument or from transient field `name`; refuses both or neither.
    ///
    /// # Errors
    /// A bad-input error naming where the input came from and what is wrong with it.
    pub fn resolve(self, ledger: &dyn Ledger, name: &str) -> Result<T, ContractError> {
        match (self.0, ledger.transient().get(name)) {
            (Some(_), Some(_)) => Err(bad(format!(
                "{name} given twice: as the argument and as transient field {name:?}; give it once"
            ))),
            (Some(input), None) => Ok(input.0),
            (None, Some(bytes)) => Ok(Input::decode(bytes, &format!("transient field {name}"))?.0),
            (None, None) => Err(bad(format!(
                "argument {name} is empty and there is no transient field {name:?}: pass the {name} as the argument or, with an empty argument, as transient field {name:?}"
            ))),
        }
    }
}

impl<T: ArgSpec> FromArg for InputOrTransient<T> {
    fn from_arg(bytes: &[u8], name: &str) -> Result<Self, ContractError> {
        if bytes.is_empty() {
            return Ok(Self(None));
        }
        Input::from_arg(bytes, name).map(|i| Self(Some(i)))
    }
    fn schema() -> Value {
        json!({"type": ["object", "string"], "description": "JSON, or empty with the JSON in the transient field of the same name"})
    }
}

/// Checks that `ids` has no repeats; names the first repeated one.
pub(crate) fn check_unique<'a>(
    what: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        if !seen.insert(id) {
            return Err(format!("{what} {} is given twice", preview(id)));
        }
    }
    Ok(())
}

/// Checks a count lies in `1..=max`.
pub(crate) fn check_count(what: &str, count: usize, max: usize) -> Result<(), String> {
    if count == 0 || count > max {
        return Err(format!("{what}: between 1 and {max} expected, got {count}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ids_follow_the_crypto_crate_rule() {
        assert!(Id::new("rec-1").is_ok());
        assert!(Id::new("").is_err());
        assert!(Id::new("a b").is_err());
        assert!(Id::new(&"x".repeat(256)).is_err());
        assert!(Id::new("é").is_err());
    }

    #[test]
    fn bytes_are_strict_base64_and_bounded() {
        let ok: Bytes<4> = serde_json::from_str("\"AQIDBA==\"").unwrap();
        assert_eq!(ok.as_bytes(), &[1, 2, 3, 4]);
        assert!(serde_json::from_str::<Bytes<3>>("\"AQIDBA==\"").is_err());
        assert!(serde_json::from_str::<Bytes<4>>("\"\"").is_err());
        assert!(serde_json::from_str::<Bytes<4>>("\"AQID BA==\"").is_err());
        // Non-canonical trailing bits are refused.
        assert!(serde_json::from_str::<Bytes<4>>("\"AR==\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"AQIDBA==\"");
    }

    #[test]
    fn policy_names_and_purposes() {
        assert!(PolicyName::new("record.author").is_ok());
        assert!(PolicyName::new("Admin").is_err());
        assert!(PolicyName::new("1x").is_err());
        assert!(Purpose::new("research").is_ok());
        assert!(Purpose::new("re search").is_err());
        assert!(Reason::new("  ").is_err());
        assert!(Reason::new("cardiac arrest, patient unconscious").is_ok());
        assert!(Reason::new("a\nb").is_err());
    }
}
