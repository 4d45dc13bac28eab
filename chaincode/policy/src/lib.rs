//! medfabric's attribute policies: the language in which access to a record section is written,
//! and the certified attributes of the caller it is decided against.
//!
//! Deterministic, no I/O, no randomness, no clock: the chaincode links this crate, and every
//! endorsing peer must reach the same decision. The CP-ABE layer uses the same [`Policy`] type
//! (and refuses policies that are not [`Policy::is_monotone`]).
//!
//! * [`expr`]: the policy language — parsing with positioned errors and size [`Limits`], a
//!   canonical form, evaluation, serde as the canonical string.
//! * [`caller`]: a caller's MSP id, subject CN and OUs, Fabric CA attributes, validity and
//!   fingerprint from its X.509 certificate, and the [`AttributeSet`] derived from them.
//!
//! ```
//! use medfabric_policy::{Attribute, AttributeSet, Policy};
//!
//! // AND and OR may not be mixed without parentheses; keywords are case-insensitive.
//! let policy = Policy::parse(
//!     "(role:physician and dept:cardiology and org:Hospital1MSP) OR role:auditor \
//!      OR (2 of (role:researcher, purpose:research, org:UniMSP) AND NOT ou:suspended)",
//! )?;
//! assert!(!policy.is_monotone()); // it uses NOT: CP-ABE cannot encrypt under it
//!
//! // Equivalent spellings canonicalise to the same policy.
//! let respelled = Policy::parse(
//!     "role:auditor OR (NOT ou:suspended AND 2 of (org:UniMSP, purpose:research, role:researcher)) \
//!      OR (org:Hospital1MSP AND (dept:cardiology AND role:physician))",
//! )?;
//! assert_eq!(policy, respelled);
//! assert_eq!(policy.to_string().parse::<Policy>()?, policy);
//!
//! let physician: AttributeSet = ["role:physician", "dept:cardiology", "org:Hospital1MSP"]
//!     .into_iter()
//!     .map(Attribute::parse)
//!     .collect::<Result<_, _>>()?;
//! assert!(policy.evaluate(&physician));
//!
//! let researcher: AttributeSet = ["role:researcher", "org:UniMSP"]
//!     .into_iter()
//!     .map(Attribute::parse)
//!     .collect::<Result<_, _>>()?;
//! assert!(policy.evaluate(&researcher));
//!
//! let mut suspended = researcher.clone();
//! suspended.insert(Attribute::new("ou", "suspended")?);
//! assert!(!policy.evaluate(&suspended));
//!
//! // Errors say where and what.
//! let err = Policy::parse("role:physician AND (dept:cardiology").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "expected AND, OR or ')' at byte 35, found end of input"
//! );
//! # Ok::<(), medfabric_policy::PolicyError>(())
//! ```

pub mod caller;
pub mod expr;

pub use caller::{CallerIdentity, Error as CallerError};
pub use expr::{Attribute, AttributeSet, Error as PolicyError, Expr, Limits, Policy};
