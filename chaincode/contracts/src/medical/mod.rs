//! The medical record contracts: one chaincode serving both channels.
//!
//! The same binary (`medfabric-chaincode`) is deployed on `storage` and on `sharing`; each
//! transaction checks [`Ledger::channel_id`](medfabric_shim::ledger::Ledger::channel_id) and
//! refuses to run on the wrong channel with an error naming the right one.
//!
//! | contract | channel | transactions |
//! |---|---|---|
//! | [`policy`] `Policy` | both | `Init(adminPolicy)`, `Set(name, policy)`, `Retire(name)`; queries `Get(name)`, `List()`, `History(name)` |
//! | [`pseudonym`] `Pseudonym` | storage | `Register(registration)` + transient `escrowShares`; `MapPatient()` + transient `patientNumber`, `patientNumberSalt` (endorsed by the caller's hospital alone); query `Get(pseudonym)` |
//! | [`record`] `Record` | storage | `Create(record)`, `NewVersion(record)` (the record as argument, or empty with transient `record`), `UpdateRights(recordId, rights)`, `Read(recordId, purpose)`, `BreakGlass(recordId, reason)`; queries `Fetch(ticket)`, `Get(recordId)`, `History(recordId)` |
//! | [`sharing`] `Sharing` | sharing | `Publish(share)`, `Withdraw(shareId)`, `Request(request)`, `Grant(grant)`, `Revoke(requestId, reason)`, `CheckGrant(requestId)`, `Open(requestId)`; queries `Fetch(ticket)`, `Get(shareId)`, `GetRequest(requestId)`, `ListRequests(shareId)` |
//! | [`audit`] `Audit` | both (review: storage) | `Review(breakGlassId, verdict, note)`; queries `List(owner, pageSize, bookmark)`, `PendingReview()` |
//!
//! Structured arguments are one JSON object each (field names in camelCase, unknown fields
//! refused, opaque bytes in standard base64); scalars are plain strings. Every field has a size
//! limit ([`input::limits`]) and every transaction validates all of its input before it reads
//! or writes anything: a malformed call returns a precise error and, being an error response,
//! is never ordered.
//!
//! # Who the caller is
//!
//! Only the transaction's creator counts: the MSP id the peer validated and the certificate
//! it carried, read with `medfabric_policy::CallerIdentity` and checked valid at the
//! transaction timestamp ([`context::Caller`]). Attributes are the certificate's Fabric CA
//! attributes (`role:physician`), its OUs (`ou:admin`) and `org:<mspid>`; nothing passed as an
//! argument or in transient data is an attribute. The one attribute a caller chooses is the
//! purpose it declares when it reads or requests (`purpose:research`), which policies may name
//! and which is recorded in the audit entry of every access it allows (a certified `purpose:`
//! attribute is dropped in favour of the declared one).
//!
//! A pseudonym is the lower-case hex SHA-256 fingerprint of a pseudonym certificate's DER.
//! Owners are named by pseudonym only; an owner acts by signing with that certificate, so
//! "is the caller the owner" is "is the creator's fingerprint the owner's pseudonym", on either
//! channel, without a lookup.
//!
//! # Policies and bootstrap
//!
//! Named policies ([`policy::names`]) decide who may do what: `admin` (change policies),
//! `record.author` (create records), `pseudonym.register`, `auditor`, `emergency`. A missing or
//! retired policy refuses everyone. Bootstrap, once per channel after deployment: an MSP admin
//! (certificate OU `admin`, as Fabric NodeOUs issue) calls `Policy:Init` with the admin policy,
//! e.g. `ou:admin`, which the caller must itself satisfy; afterwards only callers satisfying
//! `admin` change policies, and a new `admin` policy must still be satisfied by whoever sets it.
//! Any MSP admin of the channel could be first to call `Policy:Init`: run it right after the
//! deployment and check `Policy:Get admin`. Every change is versioned (`Policy:History`) and
//! sets an event `Policy:Init|Set|Retire`.
//!
//! # Data model
//!
//! Objects are JSON under composite keys ([`store::kind`]); audit entries under simple keys.
//!
//! `storage`:
//! - `mf.policy/<name>` → [`policy::NamedPolicy`] (current), `mf.policyVersion/<name>/<v>` (each version).
//! - `mf.pseudonym/<pseudonym>` → [`pseudonym::PseudonymRegistration`]: fingerprint, MSP,
//!   certified attributes, validity, PRE public keys, optional public escrow transcript, and
//!   which collections hold its private data. Private data: `<hospital>PatientMap/<pseudonym>`
//!   (patient number with a client-chosen salt, so the on-channel hash cannot be guessed;
//!   written by `Pseudonym:MapPatient` alone, under the collection's own endorsement policy:
//!   the hospital's peer) and `identityEscrow/<pseudonym>` (escrow shares) — see
//!   `collections/medfabric.json`.
//! - `mf.record/<recordId>` → [`record::RecordIndex`], current version and rights: owner
//!   pseudonym, author and holding hospital, object location, ciphertext digest and size, the
//!   manifest of sections (id, content type, ciphertext digest, policy, key wrappings: PRE
//!   capsule and optional CP-ABE ciphertext), the CES signature, numeric commitments.
//!   `mf.recordVersion/<recordId>/<v>` keeps each version from 2 on as first indexed; version 1
//!   as first indexed is the head's creating write (its history). Both carry a key-level
//!   endorsement policy: the holding hospital's peers must endorse every change.
//! - `mf.breakGlass/<id>` → [`breakglass::BreakGlassAccess`] (reason, expiry, review), with
//!   `mf.breakGlassActive/<recordId>/<fingerprint>` and `mf.breakGlassPending/<id>`.
//!
//! `sharing`:
//! - `mf.share/<shareId>` → [`sharing::Share`]: record id and version, owner, location,
//!   shared sections (id, CES index, capsule, CP-ABE), extraction proof, request policy,
//!   optional automatic grant.
//! - `mf.request/<requestId>` → [`sharing::ShareRequest`] with its grant ([`sharing::GrantTerms`]:
//!   grantee, grantee key, proxies and fragment commitments, threshold, expiry) and revocation;
//!   `mf.requestByShare/<shareId>/<requestId>`; `mf.shareBlock/<shareId>/<fingerprint>` (a
//!   revoked requester may not ask again); `mf.reencryption/<requestId>/<txId>` (each proxy check).
//!
//! Both channels:
//! - `mf.ticket/<txId>` → [`ticket::Ticket`]: what an access transaction released (see below).
//! - `audit/<owner>/<time>/<txId>/<n>` → [`audit::AuditEntry`]: who (fingerprint + MSP), what
//!   (action, record, share, request, sections), when (transaction timestamp), why (purpose or
//!   reason), listed in time order by the owner and auditors (`Audit:List`).
//!
//! # Accesses are audited before anything is released
//!
//! A read that releases a location or key material is a submitted transaction that writes its
//! audit entry and a release ticket and returns only the ticket; the location and key material
//! come from `Record:Fetch` / `Sharing:Fetch` for a committed ticket ([`ticket`]). Evaluating
//! the access transaction instead of submitting it yields a ticket that never exists.
//!
//! # Sharing, consent and break-glass
//!
//! The owner publishes the shareable part of a record on `sharing` (`Sharing:Publish`, with the
//! CES extraction proof of exactly those sections). `sharing` cannot see `storage`'s state, so
//! Publish reads the record there by calling this chaincode on `storage` read-only through the
//! endorsing peer (`Config::storage_chaincode`): the publisher must own the record, name its
//! current version and its sections at their indices, and the proof must cover as many
//! sections as the record has. That read is the endorsing peers' word, not re-checked at
//! commit (the caveat is in `sharing::storage_record`). A requester asks with a purpose and its PRE
//! public key (`Sharing:Request`, one transaction for all sections) and must satisfy the share's
//! policy. The owner grants (`Sharing:Grant`: proxies with fragment commitments, threshold,
//! expiry) or, for a share published with `autoGrantSeconds`, the policy grants at once. Proxies
//! check the grant before re-encrypting (`Sharing:CheckGrant`, which records the re-encryption);
//! the grantee opens it (`Sharing:Open`). Grant and revocation return a
//! [`receipt::ConsentReceipt`]. The owner's `Sharing:Revoke` ends the grant and bars the
//! requester from asking for that share again.
//!
//! A holder of the `emergency` policy may open a record for [`breakglass::BREAK_GLASS_SECONDS`]
//! with a stated reason (`Record:BreakGlass`); the access is in the owner's audit trail, marked
//! `reviewPending` until an auditor (not the same person) records `Audit:Review`.
//!
//! # Determinism
//!
//! No randomness, no clock but the transaction timestamp, no I/O, no hash-map iteration: every
//! endorsing peer computes the same result. CES material goes through a pluggable
//! [`ces::CesVerifier`]; the default [`ces::CesCrypto`] verifies it with `medfabric-crypto`
//! (author signatures against the creator's certificate, subset proofs against the signature
//! indexed on `storage`).

pub mod audit;
pub mod breakglass;
pub mod ces;
pub mod context;
pub mod input;
pub mod policy;
pub mod pseudonym;
pub mod receipt;
pub mod record;
pub mod sharing;
pub mod store;
pub mod ticket;

use std::collections::BTreeMap;
use std::sync::Arc;

use medfabric_shim::contract::Router;

/// Default name of the channel that indexes complete records.
pub const STORAGE_CHANNEL: &str = "storage";
/// Default name of the channel that indexes shareable parts.
pub const SHARING_CHANNEL: &str = "sharing";
/// Default name the chaincode is deployed under (`network.sh deploy --name medfabric`).
pub const CHAINCODE_NAME: &str = "medfabric";
/// Default private data collection of identity escrow shares.
pub const ESCROW_COLLECTION: &str = "identityEscrow";

/// Deployment facts the contracts need, fixed when the chaincode is built.
#[derive(Clone, Debug)]
pub struct Config {
    /// The channel indexing complete records.
    pub storage_channel: String,
    /// The channel indexing shareable parts.
    pub sharing_channel: String,
    /// Each hospital MSP's patient-map collection (pseudonym → patient number).
    pub patient_map_collections: BTreeMap<String, String>,
    /// The identity escrow collection.
    pub escrow_collection: String,
    /// How CES material is checked.
    pub ces: Arc<dyn ces::CesVerifier>,
    /// The name this chaincode is deployed under on the storage channel: `sharing`
    /// transactions call it there, read-only, to check a record (`Sharing:Publish`).
    pub storage_chaincode: String,
}

impl Default for Config {
    /// `storage` and `sharing`; `hospital1PatientMap` for `Hospital1MSP` and
    /// `hospital2PatientMap` for `Hospital2MSP`; `identityEscrow`; CES verified with
    /// `medfabric-crypto` ([`ces::CesCrypto`]); chaincode `medfabric` on `storage`.
    fn default() -> Self {
        let patient_map_collections = [
            ("Hospital1MSP", "hospital1PatientMap"),
            ("Hospital2MSP", "hospital2PatientMap"),
        ]
        .into_iter()
        .map(|(m, c)| (m.to_owned(), c.to_owned()))
        .collect();
        Self {
            storage_channel: STORAGE_CHANNEL.into(),
            sharing_channel: SHARING_CHANNEL.into(),
            patient_map_collections,
            escrow_collection: ESCROW_COLLECTION.into(),
            ces: Arc::new(ces::CesCrypto),
            storage_chaincode: CHAINCODE_NAME.into(),
        }
    }
}

/// The medical chaincode with the default configuration.
pub fn chaincode() -> Router {
    chaincode_with(Config::default())
}

/// The medical chaincode with a given configuration.
pub fn chaincode_with(config: Config) -> Router {
    let config = Arc::new(config);
    Router::new("medfabric-medical", "1.0")
        .with(policy::contract(config.clone()))
        .with(pseudonym::contract(config.clone()))
        .with(record::contract(config.clone()))
        .with(sharing::contract(config.clone()))
        .with(audit::contract(config))
}
