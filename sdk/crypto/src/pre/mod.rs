//! Threshold proxy re-encryption (PRE) after Umbral.
//!
//! Reference: David Nuñez, *Umbral: A Threshold Proxy Re-Encryption Scheme*, NuCypher
//! technical report, 2018. The scheme is a key-encapsulation mechanism (KEM) whose capsules a
//! set of `n` semi-trusted proxies can re-encrypt from a delegator (the record owner) to a
//! receiver (a grantee) so that any `m` of their outputs let the receiver recover the
//! encapsulated key, while the proxies learn nothing. Every fragment is verifiable: a proxy
//! checks that its key fragment was made by the delegator for this receiver, and the receiver
//! checks each proxy's output against a proof of correct re-encryption.
//!
//! # Construction
//!
//! On secp256k1 with generator `G`, a second generator `U` of unknown discrete log, and
//! domain-separated hashes `H(tag, …)` to non-zero scalars. Delegator keys `(a, A = a·G)`,
//! receiver keys `(b, B = b·G)`.
//!
//! - **Encapsulate** ([`encapsulate`]): random `r, u`; `E = r·G`, `V = u·G`,
//!   `s = u + r·H(E, V)`; the shared point is `(r + u)·A` and the [`KeySeed`] is HKDF-SHA256
//!   of it. The capsule `(E, V, s)` proves its own well-formedness: `s·G = V + H(E, V)·E`,
//!   checked on every decode.
//! - **Open as delegator** ([`decapsulate_original`]): `a·(E + V)`.
//! - **Key fragments** ([`generate_kfrags`]): an ephemeral `x` gives the precursor `X = x·G`
//!   and `D = x·B`; `d = H(X, B, D)`. A random polynomial `f` of degree `m − 1` has
//!   `f(0) = a·d⁻¹`; fragment `i` has a random id, share index `xᵢ = H(X, B, D, idᵢ)`, share
//!   `rkᵢ = f(xᵢ)`, commitment `U1ᵢ = rkᵢ·U`, and the delegator's ECDSA signature over
//!   `(idᵢ, U1ᵢ, X, A, B)`. [`KeyFrag::verify`] checks signature and commitment.
//! - **Re-encrypt** ([`reencrypt`]): `E1 = rk·E`, `V1 = rk·V`, with a proof of equal
//!   discrete logs: random `t`, `E2 = t·E`, `V2 = t·V`, `U2 = t·U`,
//!   `h = H(E, E1, E2, V, V1, V2, U, U1, U2)`, `z = t + h·rk`. [`CapsuleFrag::verify`]
//!   checks the signature and `z·P = P2 + h·P1` for `P ∈ {E, V, U}`.
//! - **Decrypt** ([`decrypt_reencrypted`]): the receiver recomputes `D = b·X`, `d` and the
//!   `xᵢ`, interpolates `E' = Σλᵢ·E1ᵢ`, `V' = Σλᵢ·V1ᵢ` (Lagrange at zero), checks
//!   `(s·d⁻¹)·A = H(E, V)·E' + V'`, and takes `d·(E' + V') = a·(E + V)`.
//!
//! Hash inputs, domain tags, the derivation of `U`, the key-seed KDF and the serialized forms
//! are those of the `umbral-pre` crate 0.11, so capsules and fragments interoperate with it
//! both ways (tested in `tests/pre_interop.rs`; umbral-pre is only a dev-dependency).
//! Decoders are strict: every structure has exactly one accepted encoding.
//!
//! # Caveat: collusion recovers the delegating key
//!
//! The receiver together with `m` proxies can interpolate `f(0) = a·d⁻¹` and, knowing `d`,
//! recover `a`. medfabric therefore never delegates from a long-lived key: [`wrap`] derives
//! one delegating key per record ([`OwnerMasterKey::record_key`]), so such a coalition
//! learns the key of one record it was already allowed to read, and nothing else.
//!
//! # Example
//!
//! ```
//! use medfabric_crypto::pre::{self, CapsuleFrag, KeyFrag, OwnerMasterKey, SecretKey};
//! # fn main() -> Result<(), medfabric_crypto::Error> {
//! let mut rng = rand::rngs::OsRng;
//! let owner = OwnerMasterKey::random(&mut rng);
//! let record_pk = owner.record_public_key(b"record-42")?;
//! let signer = owner.signer();
//! let grantee_sk = SecretKey::random(&mut rng);
//! let grantee_pk = grantee_sk.public_key();
//!
//! // Owner: wrap a section's data key for the record.
//! let data_key = [7u8; 32];
//! let wrapped = pre::wrap_data_key(&mut rng, &record_pk, &data_key, b"record-42/section-0")?;
//!
//! // Owner: grant the grantee through 2-of-3 proxies.
//! let record_sk = owner.record_key(b"record-42")?;
//! let kfrags = pre::generate_kfrags(&mut rng, &record_sk, &grantee_pk, &signer, 2, 3)?;
//!
//! // Each proxy: verify its fragment, re-encrypt the capsule.
//! let verifying_pk = signer.verifying_key();
//! let mut cfrags = Vec::new();
//! for kfrag in kfrags.into_iter().take(2) {
//!     let kfrag = KeyFrag::from_bytes(&kfrag.to_bytes())?;
//!     let kfrag = kfrag.verify(&record_pk, &grantee_pk, &verifying_pk)?;
//!     cfrags.push(pre::reencrypt(&mut rng, wrapped.capsule(), &kfrag).to_bytes());
//! }
//!
//! // Grantee: verify the fragments, open the data key.
//! let verified = cfrags
//!     .iter()
//!     .map(|bytes| {
//!         CapsuleFrag::from_bytes(bytes)?.verify(
//!             wrapped.capsule(),
//!             &record_pk,
//!             &grantee_pk,
//!             &verifying_pk,
//!         )
//!     })
//!     .collect::<Result<Vec<_>, _>>()?;
//! let opened =
//!     wrapped.open_reencrypted(&grantee_sk, &record_pk, &verified, b"record-42/section-0")?;
//! assert_eq!(*opened, data_key);
//! # Ok(())
//! # }
//! ```

mod capsule;
mod cfrag;
mod curve;
mod keys;
mod kfrag;
mod wire;
pub mod wrap;

pub use capsule::{Capsule, KEY_SEED_LEN, KeySeed, decapsulate_original, encapsulate};
pub use cfrag::{CapsuleFrag, VerifiedCapsuleFrag, decrypt_reencrypted, reencrypt};
pub use keys::{PublicKey, SecretKey, Signer};
pub use kfrag::{KFRAG_ID_LEN, KeyFrag, VerifiedKeyFrag, generate_kfrags};
pub use wrap::{DATA_KEY_LEN, OwnerMasterKey, WrappedDataKey, wrap_data_key};
