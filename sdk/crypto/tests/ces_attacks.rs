//! Forgeries that CES verification must reject: altered section, salt, index or proof node,
//! extra or missing proof nodes, another author's signature, a subset of another record (or
//! version) passed off under this record's signature, subsets the policy forbids, an altered
//! policy, and high-S signatures.
#![allow(clippy::unwrap_used)]

use medfabric_crypto::Error;
use medfabric_crypto::ces::{
    self, CesSignature, DisclosedSection, Disclosure, ExtractionPolicy, SignedRecord,
};
use medfabric_crypto::keys::{P256SigningKey, P256VerifyingKey};
use medfabric_crypto::record::{ContentType, Pseudonym, Record, RecordId, Section, SectionId};
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Fixture {
    author: P256SigningKey,
    rec: Record,
    signed: SignedRecord,
}

fn record(id: &str, version: u64, tag: &str) -> Record {
    let sections = (0..8)
        .map(|i| {
            Section::fhir(
                SectionId::new(format!("s{i}")).unwrap(),
                format!("{{\"{tag}\":{i}}}").into_bytes(),
            )
        })
        .collect();
    Record::new(
        RecordId::new(id).unwrap(),
        version,
        Pseudonym::new("dr").unwrap(),
        Pseudonym::new("pt").unwrap(),
        sections,
    )
    .unwrap()
}

fn policy() -> ExtractionPolicy {
    // 0 and 1 together; 2 never alone; 7 (an image) only with 6 (its report).
    ExtractionPolicy::new()
        .together([0, 1])
        .unwrap()
        .never_alone(2)
        .unwrap()
        .requires(7, [6])
        .unwrap()
}

impl Fixture {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(11);
        let author = P256SigningKey::generate(&mut rng).unwrap();
        let rec = record("rec-1", 4, "a");
        let signed = ces::sign(&mut rng, &author, &rec, policy()).unwrap();
        Self {
            author,
            rec,
            signed,
        }
    }

    fn key(&self) -> &P256VerifyingKey {
        self.author.verifying_key()
    }

    fn disclosure(&self, subset: &[u32]) -> Disclosure {
        self.signed.extract(&self.rec, subset).unwrap()
    }

    fn assert_rejected(&self, d: Disclosure, what: &str) {
        let sp = d.to_subset_proof();
        assert!(
            sp.verify(self.key()).is_err(),
            "{what}: subset proof accepted"
        );
        assert!(
            matches!(d.verify(self.key()), Err(Error::Verification)),
            "{what}: disclosure accepted"
        );
    }
}

fn rebuild(
    d: &Disclosure,
    f: impl FnOnce(&mut Vec<DisclosedSection>, &mut Vec<[u8; 32]>),
) -> Disclosure {
    let mut sections = d.sections().to_vec();
    let mut proof = d.proof().to_vec();
    f(&mut sections, &mut proof);
    Disclosure::from_parts(d.signature().clone(), sections, proof)
}

#[test]
fn honest_disclosures_verify() {
    let f = Fixture::new();
    for subset in [
        &[0, 1][..],
        &[3],
        &[2, 3],
        &[6, 7],
        &[0, 1, 2, 3, 4, 5, 6, 7],
        &[4, 5, 6],
    ] {
        f.disclosure(subset).verify(f.key()).unwrap();
    }
}

#[test]
fn altered_section_content_id_or_type_is_rejected() {
    let f = Fixture::new();
    let d = f.disclosure(&[3, 4]);
    f.assert_rejected(
        rebuild(&d, |s, _| s[0].section.bytes.push(b' ')),
        "content appended",
    );
    f.assert_rejected(
        rebuild(&d, |s, _| s[1].section.bytes[0] ^= 1),
        "content bit flip",
    );
    f.assert_rejected(
        rebuild(&d, |s, _| s[0].section.id = SectionId::new("s9").unwrap()),
        "id changed",
    );
    f.assert_rejected(
        rebuild(&d, |s, _| {
            s[0].section.content_type = ContentType::attachment("text/plain").unwrap()
        }),
        "relabelled",
    );
    // Swap the contents of the two disclosed sections.
    f.assert_rejected(
        rebuild(&d, |s, _| {
            let tmp = s[0].section.clone();
            s[0].section = s[1].section.clone();
            s[1].section = tmp;
        }),
        "contents swapped",
    );
}

#[test]
fn altered_salt_or_index_is_rejected() {
    let f = Fixture::new();
    let d = f.disclosure(&[3, 5]);
    f.assert_rejected(
        rebuild(&d, |s, _| {
            let mut b = *s[0].salt.as_bytes();
            b[15] ^= 0x80;
            s[0].salt = ces::Salt::from_bytes(b);
        }),
        "salt changed",
    );
    f.assert_rejected(rebuild(&d, |s, _| s[1].index = 4), "index changed");
    f.assert_rejected(rebuild(&d, |s, _| s.swap(0, 1)), "sections out of order");
    f.assert_rejected(
        rebuild(&d, |s, _| s.push(s[1].clone())),
        "section duplicated",
    );
}

#[test]
fn altered_missing_or_extra_proof_nodes_are_rejected() {
    let f = Fixture::new();
    let d = f.disclosure(&[3]);
    assert_eq!(d.proof().len(), 3, "one leaf of eight needs three siblings");
    for i in 0..d.proof().len() {
        f.assert_rejected(rebuild(&d, |_, p| p[i][0] ^= 1), "proof node altered");
    }
    f.assert_rejected(rebuild(&d, |_, p| p.reverse()), "proof nodes reordered");
    f.assert_rejected(
        rebuild(&d, |_, p| {
            p.pop();
        }),
        "proof node missing",
    );
    f.assert_rejected(rebuild(&d, |_, p| p.push([0; 32])), "extra proof node");
    // Dropping a disclosed section without supplying its hash breaks the proof.
    let d2 = f.disclosure(&[3, 4]);
    f.assert_rejected(
        rebuild(&d2, |s, _| {
            s.pop();
        }),
        "disclosed section removed",
    );
}

#[test]
fn signature_from_another_key_is_rejected() {
    let f = Fixture::new();
    let mut rng = StdRng::seed_from_u64(12);
    let mallory = P256SigningKey::generate(&mut rng).unwrap();
    // Mallory signs the same record herself: valid under her key, not under the author's.
    let forged = ces::sign(&mut rng, &mallory, &f.rec, policy()).unwrap();
    let d = forged.extract(&f.rec, &[3]).unwrap();
    d.clone().verify(mallory.verifying_key()).unwrap();
    f.assert_rejected(d, "signed by another key");
}

#[test]
fn subset_of_another_record_or_version_is_rejected() {
    let f = Fixture::new();
    let mut rng = StdRng::seed_from_u64(13);
    // Another record by the same author.
    let other = record("rec-2", 4, "b");
    let other_signed = ces::sign(&mut rng, &f.author, &other, policy()).unwrap();
    let theirs = other_signed.extract(&other, &[3]).unwrap();
    theirs.clone().verify(f.key()).unwrap();
    // Its sections and proof under this record's signature.
    let swapped = Disclosure::from_parts(
        f.signed.signature().clone(),
        theirs.sections().to_vec(),
        theirs.proof().to_vec(),
    );
    f.assert_rejected(swapped, "other record's subset under this signature");
    // This record's sections under the other signature.
    let ours = f.disclosure(&[3]);
    let swapped = Disclosure::from_parts(
        other_signed.signature().clone(),
        ours.sections().to_vec(),
        ours.proof().to_vec(),
    );
    f.assert_rejected(swapped, "this subset under another record's signature");
    // Same content as a different version: different signature message.
    let v5 = record("rec-1", 5, "a");
    let v5_signed = ces::sign(&mut rng, &f.author, &v5, policy()).unwrap();
    let mixed = Disclosure::from_parts(
        v5_signed.signature().clone(),
        ours.sections().to_vec(),
        ours.proof().to_vec(),
    );
    f.assert_rejected(mixed, "subset moved to another version");
}

#[test]
fn forbidden_subsets_are_refused_at_extraction_and_rejected_at_verification() {
    let f = Fixture::new();
    let forbidden: [&[u32]; 5] = [&[0], &[1, 3], &[2], &[7], &[7, 5]];
    for subset in forbidden {
        assert!(
            matches!(
                f.signed.extract(&f.rec, subset),
                Err(Error::InvalidInput(_))
            ),
            "{subset:?}"
        );
    }
    // A holder who builds the proof by hand (from an allowed superset) is still rejected.
    let all = f.disclosure(&[0, 1, 2, 3, 4, 5, 6, 7]);
    let only = |keep: &[u32]| {
        let sections: Vec<DisclosedSection> = all
            .sections()
            .iter()
            .filter(|d| keep.contains(&d.index))
            .cloned()
            .collect();
        (sections, keep.to_vec())
    };
    // Leaf 0 alone (breaks "together"): proof = leaf 1, node(2,3), node(4..7).
    let (sections, _) = only(&[0]);
    let leaf = |i: usize| {
        ces::leaf_digest(
            &all.sections()[i].salt,
            i as u32,
            &all.sections()[i].section,
        )
    };
    let node = |l: [u8; 32], r: [u8; 32]| {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update([1u8]);
        h.update(l);
        h.update(r);
        let out: [u8; 32] = h.finalize().into();
        out
    };
    let n23 = node(leaf(2), leaf(3));
    let n4567 = node(node(leaf(4), leaf(5)), node(leaf(6), leaf(7)));
    let hand_made = Disclosure::from_parts(
        f.signed.signature().clone(),
        sections.clone(),
        vec![leaf(1), n23, n4567],
    );
    // The proof is correct (it rebuilds the signed root) …
    let root = node(node(node(leaf(0), leaf(1)), n23), n4567);
    assert_eq!(&root, f.signed.signature().root());
    assert!(
        f.signed
            .signature()
            .verify_leaves(f.key(), &[(0, leaf(0))], &[leaf(1), n23, n4567])
            .is_err(),
        "policy must reject even a correct proof"
    );
    // … but the policy forbids the subset.
    f.assert_rejected(hand_made, "section 0 without its group");
    // Leaf 7 alone (needs 6).
    let (sections7, _) = only(&[7]);
    let n0123 = node(node(leaf(0), leaf(1)), n23);
    assert_eq!(
        &node(n0123, node(node(leaf(4), leaf(5)), node(leaf(6), leaf(7)))),
        f.signed.signature().root()
    );
    let hand_made7 = Disclosure::from_parts(
        f.signed.signature().clone(),
        sections7,
        vec![leaf(6), node(leaf(4), leaf(5)), n0123],
    );
    f.assert_rejected(hand_made7, "image without its report");
}

#[test]
fn altered_policy_is_rejected() {
    let f = Fixture::new();
    let bytes = f.signed.signature().to_bytes();
    // Replace the signed policy by the empty one: the signature no longer matches.
    let mut rng = StdRng::seed_from_u64(14);
    let loose = ces::sign(&mut rng, &f.author, &f.rec, ExtractionPolicy::new()).unwrap();
    let mut sig_with_loose_policy = loose.signature().to_bytes();
    // Take the DER signature from the strict one (the last byte run) and graft it on.
    let strict = CesSignature::from_bytes(&bytes).unwrap();
    let der = strict.signature_der();
    let loose_der_len = loose.signature().signature_der().len();
    sig_with_loose_policy.truncate(sig_with_loose_policy.len() - loose_der_len - 1);
    sig_with_loose_policy.push(der.len() as u8);
    sig_with_loose_policy.extend_from_slice(der);
    let grafted = CesSignature::from_bytes(&sig_with_loose_policy).unwrap();
    assert!(grafted.verify(f.key()).is_err());
}

#[test]
fn high_s_signature_is_rejected() {
    let f = Fixture::new();
    let sig = f.signed.signature();
    let der = sig.signature_der();
    assert!(medfabric_crypto::keys::is_low_s_der(der));
    let high = to_high_s(der);
    assert!(!medfabric_crypto::keys::is_low_s_der(&high));
    // Swap the high-S twin into the encoded signature: ECDSA would accept it, we must not.
    let mut bytes = sig.to_bytes();
    bytes.truncate(bytes.len() - der.len() - 1);
    bytes.push(high.len() as u8);
    bytes.extend_from_slice(&high);
    let twin = CesSignature::from_bytes(&bytes).unwrap();
    assert!(matches!(twin.verify(f.key()), Err(Error::Verification)));
    assert!(f.key().verify(&sig.signed_message(), &high).is_err());
    // Plain ECDSA accepts the twin, so the rejection above is the low-S rule at work.
    let raw = aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        f.key().to_sec1_bytes(),
    );
    assert!(raw.verify(&sig.signed_message(), &high).is_ok());
    assert!(f.key().verify(&sig.signed_message(), der).is_ok());
}

/// The malleated twin (r, n - s) of a low-S DER signature.
fn to_high_s(der: &[u8]) -> Vec<u8> {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63,
        0x25, 0x51,
    ];
    let rlen = der[3] as usize;
    let r = &der[4..4 + rlen];
    let s_raw = &der[6 + rlen..];
    let mut s = [0u8; 32];
    let s_trim = if s_raw[0] == 0 { &s_raw[1..] } else { s_raw };
    s[32 - s_trim.len()..].copy_from_slice(s_trim);
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = N[i] as i16 - s[i] as i16 - borrow;
        borrow = if d < 0 { 1 } else { 0 };
        if d < 0 {
            d += 256;
        }
        out[i] = d as u8;
    }
    let mut s_enc = out
        .iter()
        .copied()
        .skip_while(|&b| b == 0)
        .collect::<Vec<u8>>();
    if s_enc[0] & 0x80 != 0 {
        s_enc.insert(0, 0);
    }
    let mut body = vec![0x02, r.len() as u8];
    body.extend_from_slice(r);
    body.push(0x02);
    body.push(s_enc.len() as u8);
    body.extend_from_slice(&s_enc);
    let mut sig = vec![0x30, body.len() as u8];
    sig.extend_from_slice(&body);
    sig
}

/// `verify_against_indexed` (what the chaincode checks on `sharing`, holding the signature
/// indexed on `storage` but not the author's key): honest proofs pass; a proof under another
/// signature (re-signed, other version, other record), altered leaves, swapped or extra nodes
/// and forbidden subsets fail.
#[test]
fn proofs_are_checked_against_the_indexed_signature() {
    let f = Fixture::new();
    let indexed = f.signed.signature().clone();
    for subset in [&[0, 1][..], &[3], &[6, 7], &[4, 5, 6]] {
        let proof = f.signed.extract_digests(&f.rec, subset).unwrap();
        proof.verify_against_indexed(&indexed).unwrap();
    }
    let honest = f.disclosure(&[3, 4]);
    let rejected = |d: Disclosure, what: &str| {
        assert!(
            d.to_subset_proof()
                .verify_against_indexed(&indexed)
                .is_err(),
            "{what}: accepted"
        );
    };
    rejected(
        rebuild(&honest, |s, _| s[0].section.bytes.push(b' ')),
        "altered section",
    );
    rejected(rebuild(&honest, |s, _| s.swap(0, 1)), "sections swapped");
    rejected(rebuild(&honest, |_, p| p.push([0; 32])), "extra proof node");
    // The same sections signed again (another signature over the same root) or another
    // record's proof are not this indexed signature.
    let mut rng = StdRng::seed_from_u64(12);
    let again = ces::sign(&mut rng, &f.author, &f.rec, policy()).unwrap();
    let other_signature = again.extract_digests(&f.rec, &[3, 4]).unwrap();
    assert!(other_signature.verify_against_indexed(&indexed).is_err());
    let other = record("rec-2", 4, "a");
    let signed_other = ces::sign(&mut rng, &f.author, &other, policy()).unwrap();
    let foreign = signed_other.extract_digests(&other, &[3, 4]).unwrap();
    assert!(foreign.verify_against_indexed(&indexed).is_err());
    // A subset the signed policy forbids.
    let forbidden = rebuild(&f.disclosure(&[0, 1]), |s, _| {
        s.truncate(1);
    });
    rejected(forbidden, "forbidden subset");
}
