//! CES round trips: sign once, extract allowed subsets, verify; wire encodings; a property test
//! over random records and subsets.
#![allow(clippy::unwrap_used)]

use medfabric_crypto::ces::{
    self, CesSignature, Disclosure, ExtractionPolicy, ExtractionRule, SignedRecord, SubsetProof,
};
use medfabric_crypto::keys::P256SigningKey;
use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section, SectionId};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

fn record(id: &str, version: u64, sizes: &[usize], seed: u64) -> Record {
    let mut rng = StdRng::seed_from_u64(seed);
    let sections = sizes
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let mut b = vec![0u8; len];
            rng.fill_bytes(&mut b);
            let id = SectionId::new(format!("s{i}")).unwrap();
            if i % 3 == 2 {
                Section::attachment(id, "application/dicom", b).unwrap()
            } else {
                Section::fhir(id, b)
            }
        })
        .collect();
    Record::new(
        RecordId::new(id).unwrap(),
        version,
        Pseudonym::new("dr-1").unwrap(),
        Pseudonym::new("pt-1").unwrap(),
        sections,
    )
    .unwrap()
}

#[test]
fn sign_extract_verify_every_subset_of_a_small_record() {
    let mut rng = StdRng::seed_from_u64(1);
    let author = P256SigningKey::generate(&mut rng).unwrap();
    let rec = record("rec-1", 2, &[10, 0, 300, 7, 64], 1);
    let signed = ces::sign(&mut rng, &author, &rec, ExtractionPolicy::new()).unwrap();
    signed.signature().verify(author.verifying_key()).unwrap();
    for mask in 1u32..32 {
        let subset: Vec<u32> = (0..5).filter(|i| mask & (1 << i) != 0).collect();
        let d = signed.extract(&rec, &subset).unwrap();
        let bytes = d.to_bytes();
        let decoded = Disclosure::from_bytes(&bytes).unwrap();
        assert_eq!(decoded, d);
        let sp = signed.extract_digests(&rec, &subset).unwrap();
        assert_eq!(sp, d.to_subset_proof());
        let sp2 = SubsetProof::from_bytes(&sp.to_bytes()).unwrap();
        sp2.verify(author.verifying_key()).unwrap();
        let v = decoded.verify(author.verifying_key()).unwrap();
        assert_eq!(v.record_id(), &rec.id);
        assert_eq!(v.version(), 2);
        for (i, s) in v.sections() {
            assert_eq!(s, &rec.sections()[*i as usize]);
        }
        assert_eq!(v.sections().len(), subset.len());
    }
}

#[test]
fn disclosure_order_in_request_does_not_matter_but_duplicates_do() {
    let mut rng = StdRng::seed_from_u64(2);
    let author = P256SigningKey::generate(&mut rng).unwrap();
    let rec = record("rec-1", 1, &[1, 2, 3, 4], 2);
    let signed = ces::sign(&mut rng, &author, &rec, ExtractionPolicy::new()).unwrap();
    assert_eq!(
        signed.extract(&rec, &[3, 1]).unwrap(),
        signed.extract(&rec, &[1, 3]).unwrap()
    );
    assert!(signed.extract(&rec, &[1, 1]).is_err());
    assert!(signed.extract(&rec, &[]).is_err());
    assert!(signed.extract(&rec, &[4]).is_err());
}

#[test]
fn encodings_round_trip() {
    let mut rng = StdRng::seed_from_u64(3);
    let author = P256SigningKey::generate(&mut rng).unwrap();
    let rec = record("rec-enc", 9, &[5, 6, 7, 8, 9, 10], 3);
    let policy = ExtractionPolicy::new()
        .together([0, 1])
        .unwrap()
        .never_alone(2)
        .unwrap()
        .requires(5, [3, 4])
        .unwrap();
    let signed = ces::sign(&mut rng, &author, &rec, policy.clone()).unwrap();
    assert_eq!(signed.signature().policy(), &policy);
    let sig = CesSignature::from_bytes(&signed.signature().to_bytes()).unwrap();
    assert_eq!(&sig, signed.signature());
    sig.verify(author.verifying_key()).unwrap();
    let back = SignedRecord::from_bytes(&signed.to_bytes()).unwrap();
    assert_eq!(back, signed);
    // The restored holder state still extracts.
    back.extract(&rec, &[0, 1, 2])
        .unwrap()
        .verify(author.verifying_key())
        .unwrap();
}

#[test]
fn policy_is_canonical_whatever_the_build_order() {
    let a = ExtractionPolicy::new()
        .together([2, 1, 1])
        .unwrap()
        .never_alone(0)
        .unwrap();
    let b = ExtractionPolicy::new()
        .never_alone(0)
        .unwrap()
        .together([1, 2])
        .unwrap()
        .never_alone(0)
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(
        a.rules(),
        &[
            ExtractionRule::Together(vec![1, 2]),
            ExtractionRule::NeverAlone(0)
        ]
    );
    assert!(ExtractionPolicy::new().together([1]).is_err());
    assert!(ExtractionPolicy::new().requires(1, []).is_err());
    assert!(ExtractionPolicy::new().requires(1, [1]).is_err());
}

#[test]
fn single_section_record() {
    let mut rng = StdRng::seed_from_u64(4);
    let author = P256SigningKey::generate(&mut rng).unwrap();
    let rec = record("rec-one", 1, &[42], 4);
    let signed = ces::sign(&mut rng, &author, &rec, ExtractionPolicy::new()).unwrap();
    let d = signed.extract(&rec, &[0]).unwrap();
    assert!(d.proof().is_empty());
    d.verify(author.verifying_key()).unwrap();
}

fn sizes_strategy() -> impl Strategy<Value = Vec<usize>> {
    let size = prop_oneof![9 => 0usize..2048, 1 => 2048usize..(128 << 10)];
    (
        proptest::collection::vec(size, 1..=64),
        proptest::option::weighted(0.1, (0usize..64, (1usize << 20)..=(8 << 20))),
    )
        .prop_map(|(mut sizes, huge)| {
            if let Some((i, len)) = huge {
                let i = i % sizes.len();
                sizes[i] = len;
            }
            sizes
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn random_records_and_subsets_verify(sizes in sizes_strategy(), seed in any::<u64>(), mask in any::<u64>()) {
        let mut rng = StdRng::seed_from_u64(seed);
        let author = P256SigningKey::generate(&mut rng).unwrap();
        let rec = record("rec-prop", seed, &sizes, seed);
        let n = sizes.len() as u32;
        let signed = ces::sign(&mut rng, &author, &rec, ExtractionPolicy::new()).unwrap();
        let mut subset: Vec<u32> = (0..n).filter(|i| mask & (1 << (i % 64)) != 0).collect();
        if subset.is_empty() {
            subset.push((seed % u64::from(n)) as u32);
        }
        let d = signed.extract(&rec, &subset).unwrap();
        // A multiproof never needs more nodes than the tree has edges to cut.
        prop_assert!(d.proof().len() < n as usize);
        let decoded = Disclosure::from_bytes(&d.to_bytes()).unwrap();
        let v = decoded.verify(author.verifying_key()).unwrap();
        prop_assert_eq!(v.sections().len(), subset.len());
        let sp = SubsetProof::from_bytes(&d.to_subset_proof().to_bytes()).unwrap();
        prop_assert!(sp.verify(author.verifying_key()).is_ok());
    }
}
