//! PRE round trips: the KEM, m-of-n re-encryption, wire forms, and the medfabric wrapping.
#![allow(clippy::unwrap_used)]

mod pre_support;

use medfabric_crypto::Error;
use medfabric_crypto::pre::{
    self, Capsule, CapsuleFrag, KeyFrag, OwnerMasterKey, PublicKey, SecretKey, WrappedDataKey,
};
use pre_support::{Parties, subsets};
use rand::rngs::OsRng;

#[test]
fn original_decapsulation_recovers_the_seed() {
    let p = Parties::new();
    for _ in 0..8 {
        let (capsule, seed) = p.encapsulate();
        let opened = pre::decapsulate_original(&p.delegating_sk, &capsule);
        assert_eq!(opened.as_bytes(), seed.as_bytes());
        // Through the wire form too.
        let capsule = Capsule::from_bytes(&capsule.to_bytes()).unwrap();
        assert_eq!(
            pre::decapsulate_original(&p.delegating_sk, &capsule).as_bytes(),
            seed.as_bytes()
        );
    }
}

#[test]
fn another_key_decapsulates_to_something_else() {
    let p = Parties::new();
    let (capsule, seed) = p.encapsulate();
    let other = SecretKey::random(&mut OsRng);
    assert_ne!(
        pre::decapsulate_original(&other, &capsule).as_bytes(),
        seed.as_bytes()
    );
}

fn check_threshold(threshold: usize, shares: usize, all_subsets: bool) {
    let p = Parties::new();
    let (capsule, seed) = p.encapsulate();
    let kfrags = p.kfrags(threshold, shares);
    assert_eq!(kfrags.len(), shares);
    let cfrags: Vec<_> = p
        .reencrypt_all(&capsule, &kfrags)
        .into_iter()
        .map(|c| p.verify_cfrag(&capsule, c))
        .collect();
    let sets = if all_subsets {
        subsets(shares, threshold)
    } else {
        vec![
            (0..threshold).collect(),
            (shares - threshold..shares).collect(),
        ]
    };
    for set in sets {
        let chosen: Vec<_> = set.iter().map(|&i| cfrags[i].clone()).collect();
        let opened = p.decrypt(&capsule, &chosen).unwrap();
        assert_eq!(opened.as_bytes(), seed.as_bytes(), "subset {set:?}");
    }
    // More than the threshold works as well.
    let opened = p.decrypt(&capsule, &cfrags).unwrap();
    assert_eq!(opened.as_bytes(), seed.as_bytes());
}

#[test]
fn one_of_one() {
    check_threshold(1, 1, true);
}

#[test]
fn one_of_three() {
    check_threshold(1, 3, true);
}

#[test]
fn two_of_three_any_subset() {
    check_threshold(2, 3, true);
}

#[test]
fn three_of_five_any_subset() {
    check_threshold(3, 5, true);
}

#[test]
fn five_of_five() {
    check_threshold(5, 5, true);
}

#[test]
fn four_of_ten() {
    check_threshold(4, 10, false);
}

#[test]
fn fragments_reordered_still_open() {
    let p = Parties::new();
    let (capsule, seed) = p.encapsulate();
    let kfrags = p.kfrags(3, 5);
    let mut cfrags: Vec<_> = p
        .reencrypt_all(&capsule, &kfrags)
        .into_iter()
        .map(|c| p.verify_cfrag(&capsule, c))
        .collect();
    cfrags.reverse();
    let opened = p.decrypt(&capsule, &cfrags[1..4]).unwrap();
    assert_eq!(opened.as_bytes(), seed.as_bytes());
}

#[test]
fn one_kfrag_set_serves_many_capsules() {
    let p = Parties::new();
    let kfrags = p.kfrags(2, 3);
    for _ in 0..4 {
        let (capsule, seed) = p.encapsulate();
        let cfrags: Vec<_> = p
            .reencrypt_all(&capsule, &kfrags[1..])
            .into_iter()
            .map(|c| p.verify_cfrag(&capsule, c))
            .collect();
        assert_eq!(
            p.decrypt(&capsule, &cfrags).unwrap().as_bytes(),
            seed.as_bytes()
        );
    }
}

#[test]
fn invalid_thresholds_are_refused() {
    let p = Parties::new();
    for (m, n) in [(0, 0), (0, 3), (4, 3), (2, 1)] {
        let res = pre::generate_kfrags(
            &mut OsRng,
            &p.delegating_sk,
            &p.receiving_pk,
            &p.signer,
            m,
            n,
        );
        assert!(matches!(res, Err(Error::InvalidInput(_))), "({m}, {n})");
    }
}

#[test]
fn wire_forms_round_trip_byte_for_byte() {
    let p = Parties::new();
    let (capsule, _) = p.encapsulate();
    let bytes = capsule.to_bytes();
    assert_eq!(bytes.len(), Capsule::ENCODED_LEN);
    assert_eq!(Capsule::from_bytes(&bytes).unwrap(), capsule);
    assert_eq!(Capsule::from_bytes(&bytes).unwrap().to_bytes(), bytes);

    let kfrags = p.kfrags(2, 3);
    for vk in &kfrags {
        let bytes = vk.to_bytes();
        assert_eq!(bytes.len(), KeyFrag::ENCODED_LEN);
        let decoded = KeyFrag::from_bytes(&bytes).unwrap();
        assert_eq!(decoded.id(), vk.id());
        assert_eq!(*decoded.to_bytes(), *bytes);
        assert_eq!(decoded, vk.clone().unverify());
    }

    let cfrag = pre::reencrypt(&mut OsRng, &capsule, &kfrags[0]);
    let bytes = cfrag.to_bytes();
    assert_eq!(bytes.len(), CapsuleFrag::ENCODED_LEN);
    let decoded = CapsuleFrag::from_bytes(&bytes).unwrap();
    assert_eq!(decoded, cfrag);
    assert_eq!(decoded.kfrag_id(), kfrags[0].id());
    let verified = p.verify_cfrag(&capsule, decoded);
    assert_eq!(verified.to_bytes(), bytes);

    let pk_bytes = p.delegating_pk.to_compressed_bytes();
    assert_eq!(
        PublicKey::from_compressed_bytes(&pk_bytes).unwrap(),
        p.delegating_pk
    );
    let sk = SecretKey::from_be_bytes(&*p.delegating_sk.to_be_bytes()).unwrap();
    assert_eq!(sk.public_key(), p.delegating_pk);
}

/// `SecretKey`, `Signer`, `KeySeed` and `OwnerMasterKey` have no `Debug` at all; a key
/// fragment's `Debug` shows its id only, never the share.
#[test]
fn kfrag_debug_shows_no_share() {
    let p = Parties::new();
    let kfrag = &p.kfrags(1, 1)[0];
    let bytes = kfrag.to_bytes();
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    let printed = format!("{kfrag:?} {:?}", kfrag.clone().unverify());
    // The share is the third field of the wire form.
    assert!(!printed.contains(&hex(&bytes[73..105])));
    assert!(printed.contains(&hex(kfrag.id())));
}

#[test]
fn wrapped_data_key_opens_on_both_paths() {
    let owner = OwnerMasterKey::random(&mut OsRng);
    let record = b"urn:medfabric:record:7f3c";
    let record_sk = owner.record_key(record).unwrap();
    let record_pk = owner.record_public_key(record).unwrap();
    assert_eq!(record_sk.public_key(), record_pk);
    let signer = owner.signer();
    let grantee_sk = SecretKey::random(&mut OsRng);
    let grantee_pk = grantee_sk.public_key();

    let data_key = [0x5a; 32];
    let ctx = b"record 7f3c v1 section 2";
    let wrapped = pre::wrap_data_key(&mut OsRng, &record_pk, &data_key, ctx).unwrap();
    let wrapped = WrappedDataKey::from_bytes(&wrapped.to_bytes()).unwrap();
    assert_eq!(wrapped.to_bytes().len(), WrappedDataKey::ENCODED_LEN);

    // Owner path.
    assert_eq!(*wrapped.open_original(&record_sk, ctx).unwrap(), data_key);
    // Wrong context: the wrapping is bound to its section.
    assert!(matches!(
        wrapped.open_original(&record_sk, b"record 7f3c v1 section 3"),
        Err(Error::Decryption)
    ));

    // Grantee path, 2 of 3.
    let kfrags = pre::generate_kfrags(&mut OsRng, &record_sk, &grantee_pk, &signer, 2, 3).unwrap();
    let verifying_pk = signer.verifying_key();
    let cfrags: Vec<_> = kfrags[1..]
        .iter()
        .map(|k| {
            let k = KeyFrag::from_bytes(&k.to_bytes())
                .unwrap()
                .verify(&record_pk, &grantee_pk, &verifying_pk)
                .unwrap();
            pre::reencrypt(&mut OsRng, wrapped.capsule(), &k)
                .verify(wrapped.capsule(), &record_pk, &grantee_pk, &verifying_pk)
                .unwrap()
        })
        .collect();
    assert_eq!(
        *wrapped
            .open_reencrypted(&grantee_sk, &record_pk, &cfrags, ctx)
            .unwrap(),
        data_key
    );
    assert!(matches!(
        wrapped.open_reencrypted(&grantee_sk, &record_pk, &cfrags[..1], ctx),
        Err(Error::Decryption)
    ));
}

#[test]
fn record_keys_are_deterministic_and_distinct() {
    let owner = OwnerMasterKey::random(&mut OsRng);
    let restored = OwnerMasterKey::from_bytes(&*owner.to_bytes()).unwrap();
    let a1 = owner.record_public_key(b"record-a").unwrap();
    assert_eq!(restored.record_public_key(b"record-a").unwrap(), a1);
    assert_ne!(owner.record_public_key(b"record-b").unwrap(), a1);
    assert_ne!(owner.record_public_key(b"record-a ").unwrap(), a1);
    assert_eq!(
        owner.signer().verifying_key(),
        restored.signer().verifying_key()
    );
    assert_ne!(owner.signer().verifying_key(), a1);
    let other = OwnerMasterKey::random(&mut OsRng);
    assert_ne!(other.record_public_key(b"record-a").unwrap(), a1);
    assert!(matches!(owner.record_key(b""), Err(Error::InvalidInput(_))));
    assert!(OwnerMasterKey::from_bytes(&[0u8; 31]).is_err());
}
