//! The hook through which the contracts check content extraction signatures (CES).
//!
//! CES verification (P-256 ECDSA over the Merkle root, multiproof walk) belongs to the no-I/O
//! crypto core (`medfabric-crypto::ces`), which the chaincode links: [`CesCrypto`], the default
//! of [`super::Config`], checks structure and binding and then the cryptography. The weaker
//! [`CesStructureOnly`] checks only that the bytes decode strictly as `medfabric-crypto`'s
//! format version 1 and bind the record id, the version, the number of sections and the
//! disclosed section indices the transaction claims; **it does not verify the author's
//! signature** and is kept for tests of those binding checks.

use std::fmt;

/// What a transaction claims about a CES signature or subset proof.
#[derive(Clone, Copy, Debug)]
pub struct CesClaim<'a> {
    /// The record id the author signed.
    pub record_id: &'a str,
    /// The record version the author signed.
    pub version: u64,
    /// The number of sections (CES leaves) of the record, when the transaction knows it
    /// (`storage` indexes every section; `sharing` only the shared ones).
    pub leaf_count: Option<u32>,
    /// The certificate (PEM, as in the proposal) of the author, when the transaction has it
    /// (the author creates the record on `storage`).
    pub author_certificate: Option<&'a [u8]>,
    /// The author's public key (SEC1 point of that certificate), when the transaction has it.
    pub author_public_key: Option<&'a [u8]>,
    /// The record's CES signature as indexed on `storage` (where it was verified against its
    /// author), when a subset proof is checked for a record read from there.
    pub indexed_signature: Option<&'a [u8]>,
}

/// Checks CES material. Implementations must be deterministic and do no I/O.
pub trait CesVerifier: Send + Sync + fmt::Debug {
    /// Checks an author's CES signature (`medfabric_crypto::ces::CesSignature::to_bytes`)
    /// against the record it is indexed with.
    ///
    /// # Errors
    /// Why the signature is refused.
    fn check_signature(&self, claim: &CesClaim<'_>, signature: &[u8]) -> Result<(), String>;

    /// Checks a digest-only extraction proof (`medfabric_crypto::ces::SubsetProof::to_bytes`)
    /// for the section indices `disclosed` (strictly increasing).
    ///
    /// # Errors
    /// Why the proof is refused.
    fn check_subset_proof(
        &self,
        claim: &CesClaim<'_>,
        disclosed: &[u32],
        proof: &[u8],
    ) -> Result<(), String>;
}

/// Structure-only CES checks: format, sizes, and binding to the claimed record, version,
/// section count and disclosed indices. **Does not verify the author's signature.**
#[derive(Clone, Copy, Debug, Default)]
pub struct CesStructureOnly;

const FORMAT_VERSION: u8 = 1;
const MAGIC_SIGNATURE: &[u8; 4] = b"MFCS";
const MAGIC_SUBSET: &[u8; 4] = b"MFCP";
const MAX_LEAVES: u32 = 4096;
const MAX_SIG_LEN: usize = 72;
const MIN_SIG_LEN: usize = 8;

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() < n {
            return Err("truncated".into());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A count of items of at least `item_size` bytes each, bounded by `max` and the input left.
    fn count(&mut self, n: usize, max: usize, item_size: usize) -> Result<usize, String> {
        if n > max || n.saturating_mul(item_size) > self.buf.len() {
            return Err("count out of range".into());
        }
        Ok(n)
    }
    fn finish(&self) -> Result<(), String> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(format!("{} trailing bytes", self.buf.len()))
        }
    }
}

/// The signed part common to a signature and a subset proof; returns the leaf count.
fn read_signature_body(r: &mut Reader<'_>, claim: &CesClaim<'_>) -> Result<u32, String> {
    let id_len = usize::from(r.u8()?);
    let id = r.take(id_len)?;
    if id != claim.record_id.as_bytes() {
        return Err(format!(
            "signs record {:?}, not {:?}",
            String::from_utf8_lossy(id),
            claim.record_id
        ));
    }
    let version = r.u64()?;
    if version != claim.version {
        return Err(format!("signs version {version}, not {}", claim.version));
    }
    let leaf_count = r.u32()?;
    if leaf_count == 0 || leaf_count > MAX_LEAVES {
        return Err(format!("leaf count {leaf_count} is out of range"));
    }
    if let Some(expected) = claim.leaf_count
        && leaf_count != expected
    {
        return Err(format!(
            "signs {leaf_count} sections, the record has {expected}"
        ));
    }
    r.take(32)?; // root
    // Extraction policy: rules referring to section indices.
    let rules = usize::from(r.u16()?);
    let rules = r.count(rules, MAX_LEAVES as usize, 5)?;
    let in_range = |i: u32| {
        if i < leaf_count {
            Ok(())
        } else {
            Err(format!("extraction rule names section {i}"))
        }
    };
    for _ in 0..rules {
        match r.u8()? {
            1 => {
                let k = usize::from(r.u16()?);
                for _ in 0..r.count(k, MAX_LEAVES as usize, 4)? {
                    in_range(r.u32()?)?;
                }
            }
            2 => in_range(r.u32()?)?,
            3 => {
                in_range(r.u32()?)?;
                let k = usize::from(r.u16()?);
                for _ in 0..r.count(k, MAX_LEAVES as usize, 4)? {
                    in_range(r.u32()?)?;
                }
            }
            other => return Err(format!("unknown extraction rule {other}")),
        }
    }
    let sig_len = usize::from(r.u8()?);
    if !(MIN_SIG_LEN..=MAX_SIG_LEN).contains(&sig_len) {
        return Err(format!("signature of {sig_len} bytes"));
    }
    r.take(sig_len)?;
    Ok(leaf_count)
}

fn header(r: &mut Reader<'_>, magic: &[u8; 4]) -> Result<(), String> {
    if r.take(4)? != magic {
        return Err(format!(
            "does not start with {:?}",
            String::from_utf8_lossy(magic)
        ));
    }
    let version = r.u8()?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}, expected {FORMAT_VERSION}"
        ));
    }
    Ok(())
}

impl CesVerifier for CesStructureOnly {
    fn check_signature(&self, claim: &CesClaim<'_>, signature: &[u8]) -> Result<(), String> {
        let mut r = Reader { buf: signature };
        header(&mut r, MAGIC_SIGNATURE)?;
        read_signature_body(&mut r, claim)?;
        r.finish()
    }

    fn check_subset_proof(
        &self,
        claim: &CesClaim<'_>,
        disclosed: &[u32],
        proof: &[u8],
    ) -> Result<(), String> {
        let mut r = Reader { buf: proof };
        header(&mut r, MAGIC_SUBSET)?;
        let leaf_count = read_signature_body(&mut r, claim)?;
        let n = r.u32()? as usize;
        let n = r.count(n, leaf_count as usize, 36)?;
        let mut indices = Vec::with_capacity(n);
        for _ in 0..n {
            let i = r.u32()?;
            if i >= leaf_count || indices.last().is_some_and(|p| *p >= i) {
                return Err(
                    "disclosed indices are not strictly increasing leaves of the record".into(),
                );
            }
            r.take(32)?;
            indices.push(i);
        }
        if indices != disclosed {
            return Err(format!(
                "discloses sections {indices:?}, the share lists {disclosed:?}"
            ));
        }
        let nodes = r.u32()? as usize;
        let nodes = r.count(nodes, leaf_count as usize, 32)?;
        r.take(nodes * 32)?;
        r.finish()
    }
}

/// CES checks with `medfabric-crypto`, deterministic and without I/O: the structure and binding
/// checks of [`CesStructureOnly`], then
/// - an author's signature (`Record:Create`, `Record:NewVersion`) must verify under the public
///   key of the certificate that signed the transaction: the author signs the record it
///   indexes, nobody signs for someone else;
/// - a subset proof (`Sharing:Publish`) must carry exactly the signature indexed on `storage`
///   for that record version (verified there against its author), and its leaves must rebuild
///   that signature's root under its extraction policy: no section swapped, added or taken
///   from another record or version.
///
/// Failures are reported without detail beyond which check failed.
#[derive(Clone, Copy, Debug, Default)]
pub struct CesCrypto;

impl CesVerifier for CesCrypto {
    fn check_signature(&self, claim: &CesClaim<'_>, signature: &[u8]) -> Result<(), String> {
        CesStructureOnly.check_signature(claim, signature)?;
        let key = claim
            .author_public_key
            .ok_or("there is no author key to verify the signature against")?;
        let key = medfabric_crypto::keys::P256VerifyingKey::from_sec1_bytes(key)
            .map_err(|_| "the author's certificate has no P-256 key".to_owned())?;
        medfabric_crypto::ces::CesSignature::from_bytes(signature)
            .map_err(|_| "malformed CES signature".to_owned())?
            .verify(&key)
            .map_err(|_| "the CES signature was not made by the transaction's signer".to_owned())
    }

    fn check_subset_proof(
        &self,
        claim: &CesClaim<'_>,
        disclosed: &[u32],
        proof: &[u8],
    ) -> Result<(), String> {
        CesStructureOnly.check_subset_proof(claim, disclosed, proof)?;
        let indexed = claim
            .indexed_signature
            .ok_or("there is no indexed CES signature to verify the proof against")?;
        let indexed = medfabric_crypto::ces::CesSignature::from_bytes(indexed)
            .map_err(|_| "the record's indexed CES signature is malformed".to_owned())?;
        medfabric_crypto::ces::SubsetProof::from_bytes(proof)
            .map_err(|_| "malformed CES subset proof".to_owned())?
            .verify_against_indexed(&indexed)
            .map_err(|_| "the proof does not match the record's indexed CES signature".to_owned())
    }
}

/// Test helpers: encodings in `medfabric-crypto`'s format version 1, with a dummy signature.
pub mod fixtures {
    /// A CES signature for `record_id` version `version` over `leaf_count` sections.
    pub fn signature(record_id: &str, version: u64, leaf_count: u32) -> Vec<u8> {
        let mut out = b"MFCS\x01".to_vec();
        body(&mut out, record_id, version, leaf_count);
        out
    }

    /// A subset proof disclosing `indices` of a record of `leaf_count` sections.
    pub fn subset_proof(
        record_id: &str,
        version: u64,
        leaf_count: u32,
        indices: &[u32],
    ) -> Vec<u8> {
        let mut out = b"MFCP\x01".to_vec();
        body(&mut out, record_id, version, leaf_count);
        out.extend_from_slice(&(indices.len() as u32).to_be_bytes());
        for (n, i) in indices.iter().enumerate() {
            out.extend_from_slice(&i.to_be_bytes());
            out.extend_from_slice(&[n as u8; 32]);
        }
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(&[0xAB; 32]);
        out
    }

    fn body(out: &mut Vec<u8>, record_id: &str, version: u64, leaf_count: u32) {
        out.push(record_id.len() as u8);
        out.extend_from_slice(record_id.as_bytes());
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&leaf_count.to_be_bytes());
        out.extend_from_slice(&[0x11; 32]);
        out.extend_from_slice(&0u16.to_be_bytes());
        out.push(70);
        out.extend_from_slice(&[0x30; 70]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(leaf_count: Option<u32>) -> CesClaim<'static> {
        CesClaim {
            record_id: "rec-1",
            version: 2,
            leaf_count,
            author_certificate: None,
            author_public_key: None,
            indexed_signature: None,
        }
    }

    #[test]
    fn signature_structure_binds_record_version_and_count() {
        let ok = fixtures::signature("rec-1", 2, 5);
        assert_eq!(
            CesStructureOnly.check_signature(&claim(Some(5)), &ok),
            Ok(())
        );
        assert!(
            CesStructureOnly
                .check_signature(&claim(Some(4)), &ok)
                .is_err()
        );
        assert!(
            CesStructureOnly
                .check_signature(&claim(Some(5)), &fixtures::signature("rec-2", 2, 5))
                .is_err()
        );
        assert!(
            CesStructureOnly
                .check_signature(&claim(Some(5)), &fixtures::signature("rec-1", 1, 5))
                .is_err()
        );
        let mut trailing = ok.clone();
        trailing.push(0);
        assert!(
            CesStructureOnly
                .check_signature(&claim(Some(5)), &trailing)
                .is_err()
        );
        for cut in 0..ok.len() {
            assert!(
                CesStructureOnly
                    .check_signature(&claim(Some(5)), &ok[..cut])
                    .is_err()
            );
        }
    }

    #[test]
    fn subset_proof_binds_disclosed_indices() {
        let ok = fixtures::subset_proof("rec-1", 2, 5, &[1, 3]);
        assert_eq!(
            CesStructureOnly.check_subset_proof(&claim(None), &[1, 3], &ok),
            Ok(())
        );
        assert!(
            CesStructureOnly
                .check_subset_proof(&claim(None), &[1, 2], &ok)
                .is_err()
        );
        assert!(
            CesStructureOnly
                .check_subset_proof(&claim(None), &[1, 3], &fixtures::signature("rec-1", 2, 5))
                .is_err()
        );
        assert!(
            CesStructureOnly
                .check_subset_proof(
                    &claim(None),
                    &[3, 1],
                    &fixtures::subset_proof("rec-1", 2, 5, &[3, 1])
                )
                .is_err()
        );
    }
}
