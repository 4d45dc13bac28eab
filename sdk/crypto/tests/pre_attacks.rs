//! Attacks on the PRE layer that must fail: forged and misdirected key fragments, tampered
//! capsules and proofs, too few or mixed fragments, and a colluding grantee.
#![allow(clippy::unwrap_used)]

mod pre_support;

use k256::elliptic_curve::bigint::U256;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::{Field, PrimeField};
use k256::{NonZeroScalar, ProjectivePoint, Scalar};
use medfabric_crypto::Error;
use medfabric_crypto::pre::{
    self, Capsule, CapsuleFrag, KeyFrag, OwnerMasterKey, PublicKey, SecretKey, Signer,
    VerifiedCapsuleFrag, VerifiedKeyFrag,
};
use pre_support::{Parties, bin_fields, subsets};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use umbral_pre::{DefaultDeserialize, DefaultSerialize};

// Field positions in the wire forms (see `bin_fields`).
const KFRAG_ID: usize = 1;
const KFRAG_KEY: usize = 2;
const KFRAG_PRECURSOR: usize = 3;
const KFRAG_COMMITMENT: usize = 4;

/// Re-encrypts with a fragment that did *not* pass verification, using umbral-pre's explicit
/// `skip_verification` as the malicious proxy's tool (our API has no way to do this).
fn rogue_reencrypt(capsule: &Capsule, kfrag_bytes: &[u8]) -> CapsuleFrag {
    let kfrag = umbral_pre::KeyFrag::from_bytes(kfrag_bytes)
        .unwrap()
        .skip_verification();
    let capsule = umbral_pre::Capsule::from_bytes(&capsule.to_bytes()).unwrap();
    let cfrag = umbral_pre::reencrypt(&capsule, kfrag).unverify();
    CapsuleFrag::from_bytes(&cfrag.to_bytes().unwrap()).unwrap()
}

fn verified_cfrags(
    p: &Parties,
    capsule: &Capsule,
    kfrags: &[VerifiedKeyFrag],
) -> Vec<VerifiedCapsuleFrag> {
    p.reencrypt_all(capsule, kfrags)
        .into_iter()
        .map(|c| p.verify_cfrag(capsule, c))
        .collect()
}

fn scalar_bytes(s: &Scalar) -> [u8; 32] {
    s.to_repr().into()
}

fn point_bytes(p: &ProjectivePoint) -> Vec<u8> {
    p.to_affine().to_encoded_point(true).as_bytes().to_vec()
}

#[test]
fn kfrag_signed_by_someone_else_is_refused_by_the_proxy() {
    let p = Parties::new();
    // Mallory signs fragments of her own key for the same receiver and passes them off as
    // the delegator's.
    let mallory_sk = SecretKey::random(&mut OsRng);
    let mallory_signer = Signer::new(SecretKey::random(&mut OsRng));
    let forged = pre::generate_kfrags(
        &mut OsRng,
        &mallory_sk,
        &p.receiving_pk,
        &mallory_signer,
        1,
        2,
    )
    .unwrap();
    for kfrag in forged {
        let kfrag = KeyFrag::from_bytes(&kfrag.to_bytes()).unwrap();
        assert!(matches!(
            kfrag.verify(&p.delegating_pk, &p.receiving_pk, &p.verifying_pk),
            Err(Error::Verification)
        ));
    }
}

#[test]
fn tampered_kfrags_are_refused_by_the_proxy() {
    let p = Parties::new();
    let kfrag = p.kfrags(2, 3).remove(0).to_bytes();
    let fields = bin_fields(&kfrag);
    // A different share, with or without a matching recomputed commitment.
    let fake_key = Scalar::random(&mut OsRng);
    let u_bytes = &kfrag[fields[0].clone()];
    let u = k256::PublicKey::from_sec1_bytes(u_bytes)
        .unwrap()
        .to_projective();
    for fix_commitment in [false, true] {
        let mut bytes = kfrag.to_vec();
        bytes[fields[KFRAG_KEY].clone()].copy_from_slice(&scalar_bytes(&fake_key));
        if fix_commitment {
            bytes[fields[KFRAG_COMMITMENT].clone()].copy_from_slice(&point_bytes(&(u * fake_key)));
        }
        let kfrag = KeyFrag::from_bytes(&bytes).unwrap();
        assert!(matches!(
            kfrag.verify(&p.delegating_pk, &p.receiving_pk, &p.verifying_pk),
            Err(Error::Verification)
        ));
    }
    // Any single flipped bit.
    for i in 0..kfrag.len() {
        let mut bytes = kfrag.to_vec();
        bytes[i] ^= 1 << OsRng.gen_range(0..8);
        if let Ok(kfrag) = KeyFrag::from_bytes(&bytes) {
            assert!(
                kfrag
                    .verify(&p.delegating_pk, &p.receiving_pk, &p.verifying_pk)
                    .is_err(),
                "byte {i}"
            );
        }
    }
}

#[test]
fn cfrag_from_a_proxy_with_a_wrong_or_forged_kfrag_fails_verification() {
    let p = Parties::new();
    let (capsule, _) = p.encapsulate();
    let kfrag = p.kfrags(2, 3).remove(0).to_bytes();
    let fields = bin_fields(&kfrag);

    // 1. Forged share, commitment left alone: the re-encryption proof fails.
    let mut forged = kfrag.to_vec();
    forged[fields[KFRAG_KEY].clone()].copy_from_slice(&scalar_bytes(&Scalar::random(&mut OsRng)));
    let cfrag = rogue_reencrypt(&capsule, &forged);
    assert!(matches!(
        cfrag.verify(&capsule, &p.delegating_pk, &p.receiving_pk, &p.verifying_pk),
        Err(Error::Verification)
    ));

    // 2. Forged share with a matching commitment: the delegator's signature fails.
    let mut forged = kfrag.to_vec();
    let fake_key = Scalar::random(&mut OsRng);
    let u = k256::PublicKey::from_sec1_bytes(&kfrag[fields[0].clone()])
        .unwrap()
        .to_projective();
    forged[fields[KFRAG_KEY].clone()].copy_from_slice(&scalar_bytes(&fake_key));
    forged[fields[KFRAG_COMMITMENT].clone()].copy_from_slice(&point_bytes(&(u * fake_key)));
    let cfrag = rogue_reencrypt(&capsule, &forged);
    assert!(matches!(
        cfrag.verify(&capsule, &p.delegating_pk, &p.receiving_pk, &p.verifying_pk),
        Err(Error::Verification)
    ));

    // 3. A valid fragment of another delegation (Mallory's key and signer).
    let mallory_sk = SecretKey::random(&mut OsRng);
    let mallory_signer = Signer::new(SecretKey::random(&mut OsRng));
    let mallory_kfrag = pre::generate_kfrags(
        &mut OsRng,
        &mallory_sk,
        &p.receiving_pk,
        &mallory_signer,
        1,
        1,
    )
    .unwrap()
    .remove(0);
    let cfrag = pre::reencrypt(&mut OsRng, &capsule, &mallory_kfrag);
    assert!(matches!(
        cfrag.verify(&capsule, &p.delegating_pk, &p.receiving_pk, &p.verifying_pk),
        Err(Error::Verification)
    ));

    // 4. An honest fragment whose E1 a lazy proxy swapped for a random point.
    let honest = p.kfrags(1, 1).remove(0);
    let good = pre::reencrypt(&mut OsRng, &capsule, &honest).to_bytes();
    let f = bin_fields(&good);
    let mut bad = good.clone();
    bad[f[0].clone()].copy_from_slice(&point_bytes(
        &(ProjectivePoint::GENERATOR * Scalar::random(&mut OsRng)),
    ));
    let cfrag = CapsuleFrag::from_bytes(&bad).unwrap();
    assert!(
        cfrag
            .verify(&capsule, &p.delegating_pk, &p.receiving_pk, &p.verifying_pk)
            .is_err()
    );
}

#[test]
fn tampered_capsules_are_rejected() {
    let p = Parties::new();
    let (capsule, seed) = p.encapsulate();
    let bytes = capsule.to_bytes();
    // Every single-bit change is caught by the decoder (format or self-check).
    for i in 0..bytes.len() {
        for bit in 0..8 {
            let mut t = bytes.clone();
            t[i] ^= 1 << bit;
            assert!(Capsule::from_bytes(&t).is_err(), "byte {i} bit {bit}");
        }
    }
    // Replacing V by another point with a recomputed s is impossible without r; with the old
    // s the self-check fails.
    let fields = bin_fields(&bytes);
    let mut t = bytes.clone();
    t[fields[1].clone()].copy_from_slice(&point_bytes(
        &(ProjectivePoint::GENERATOR * Scalar::random(&mut OsRng)),
    ));
    assert!(matches!(Capsule::from_bytes(&t), Err(Error::Malformed(_))));

    // A well-formed capsule swapped in after re-encryption: fragments for the real capsule
    // do not verify against it, and fragments verified against the real one do not open it.
    let kfrags = p.kfrags(2, 3);
    let cfrags = p.reencrypt_all(&capsule, &kfrags);
    let (other, other_seed) = p.encapsulate();
    for c in &cfrags {
        assert!(
            c.clone()
                .verify(&other, &p.delegating_pk, &p.receiving_pk, &p.verifying_pk)
                .is_err()
        );
    }
    let verified: Vec<_> = cfrags
        .into_iter()
        .map(|c| p.verify_cfrag(&capsule, c))
        .collect();
    assert!(matches!(
        p.decrypt(&other, &verified),
        Err(Error::Decryption)
    ));
    assert_eq!(
        p.decrypt(&capsule, &verified).unwrap().as_bytes(),
        seed.as_bytes()
    );
    assert_ne!(seed.as_bytes(), other_seed.as_bytes());
}

#[test]
fn tampered_cfrag_proofs_are_rejected() {
    let p = Parties::new();
    let (capsule, _) = p.encapsulate();
    let kfrags = p.kfrags(2, 3);
    let good = pre::reencrypt(&mut OsRng, &capsule, &kfrags[0]).to_bytes();
    let donor = pre::reencrypt(&mut OsRng, &capsule, &kfrags[1]).to_bytes();
    let fields = bin_fields(&good);
    assert_eq!(fields.len(), 10);
    let verify = |bytes: &[u8]| match CapsuleFrag::from_bytes(bytes) {
        Ok(c) => c
            .verify(&capsule, &p.delegating_pk, &p.receiving_pk, &p.verifying_pk)
            .map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(verify(&good).is_ok());
    // Each field replaced by the same field of another valid fragment (E1, V1, id, precursor,
    // E2, V2, U1, U2, z, signature): every one is caught.
    for (n, range) in fields.iter().enumerate() {
        let mut t = good.clone();
        t[range.clone()].copy_from_slice(&donor[range.clone()]);
        if t == good {
            continue;
        }
        assert!(verify(&t).is_err(), "field {n}");
    }
    // z + 1.
    let z =
        Scalar::from_repr(k256::FieldBytes::clone_from_slice(&good[fields[8].clone()])).unwrap();
    let mut t = good.clone();
    t[fields[8].clone()].copy_from_slice(&scalar_bytes(&(z + Scalar::ONE)));
    assert!(matches!(verify(&t), Err(Error::Verification)));
    // Any single flipped bit.
    for i in 0..good.len() {
        let mut t = good.clone();
        t[i] ^= 1 << OsRng.gen_range(0..8);
        assert!(verify(&t).is_err(), "byte {i}");
    }
}

#[test]
fn fewer_than_threshold_fragments_give_no_key() {
    for (m, n) in [(2, 3), (3, 5), (5, 7)] {
        let p = Parties::new();
        let (capsule, _) = p.encapsulate();
        let cfrags = verified_cfrags(&p, &capsule, &p.kfrags(m, n));
        for set in subsets(n, m - 1) {
            let chosen: Vec<_> = set.iter().map(|&i| cfrags[i].clone()).collect();
            assert!(
                matches!(p.decrypt(&capsule, &chosen), Err(Error::Decryption)),
                "{m}-of-{n} {set:?}"
            );
        }
        assert!(matches!(p.decrypt(&capsule, &[]), Err(Error::Decryption)));
    }
}

#[test]
fn repeating_a_fragment_does_not_count_twice() {
    let p = Parties::new();
    let (capsule, _) = p.encapsulate();
    let cfrags = verified_cfrags(&p, &capsule, &p.kfrags(2, 3));
    let twice = [cfrags[0].clone(), cfrags[0].clone()];
    assert!(matches!(
        p.decrypt(&capsule, &twice),
        Err(Error::Decryption)
    ));
    // One proxy re-encrypting twice (fresh proof randomness, same share) is still one share.
    let kfrags = p.kfrags(2, 3);
    let same = verified_cfrags(&p, &capsule, &[kfrags[0].clone(), kfrags[0].clone()]);
    assert_ne!(same[0], same[1]);
    assert!(matches!(p.decrypt(&capsule, &same), Err(Error::Decryption)));
}

#[test]
fn fragments_from_two_kfrag_sets_do_not_mix() {
    let p = Parties::new();
    let (capsule, seed) = p.encapsulate();
    let a = verified_cfrags(&p, &capsule, &p.kfrags(2, 3));
    let b = verified_cfrags(&p, &capsule, &p.kfrags(2, 3));
    assert!(matches!(
        p.decrypt(&capsule, &[a[0].clone(), b[1].clone()]),
        Err(Error::Decryption)
    ));
    let a5 = verified_cfrags(&p, &capsule, &p.kfrags(3, 5));
    let b5 = verified_cfrags(&p, &capsule, &p.kfrags(3, 5));
    let mixed = [a5[0].clone(), a5[1].clone(), b5[2].clone()];
    assert!(matches!(
        p.decrypt(&capsule, &mixed),
        Err(Error::Decryption)
    ));
    // Each set alone still works.
    assert_eq!(p.decrypt(&capsule, &a).unwrap().as_bytes(), seed.as_bytes());
    assert_eq!(
        p.decrypt(&capsule, &b5[2..]).unwrap().as_bytes(),
        seed.as_bytes()
    );
}

#[test]
fn kfrag_for_receiver_a_is_useless_to_receiver_b() {
    let p = Parties::new(); // receiver A = p.receiving_*
    let b_sk = SecretKey::random(&mut OsRng);
    let b_pk = b_sk.public_key();
    let (capsule, _) = p.encapsulate();
    let kfrags = p.kfrags(1, 2);

    // The proxy checks for whom the fragment is: not for B.
    let kfrag = KeyFrag::from_bytes(&kfrags[0].to_bytes()).unwrap();
    assert!(matches!(
        kfrag.verify(&p.delegating_pk, &b_pk, &p.verifying_pk),
        Err(Error::Verification)
    ));

    // Fragments re-encrypted for A do not verify as B's ...
    let cfrags = p.reencrypt_all(&capsule, &kfrags);
    for c in &cfrags {
        assert!(
            c.clone()
                .verify(&capsule, &p.delegating_pk, &b_pk, &p.verifying_pk)
                .is_err()
        );
    }
    // ... and, verified as A's (they are), they do not open for B.
    let verified: Vec<_> = cfrags
        .into_iter()
        .map(|c| p.verify_cfrag(&capsule, c))
        .collect();
    assert!(matches!(
        pre::decrypt_reencrypted(&b_sk, &p.delegating_pk, &capsule, &verified),
        Err(Error::Decryption)
    ));
}

// --- Collusion ------------------------------------------------------------------------------

fn hash_to_scalar(tag: &[u8], parts: &[&[u8]]) -> Scalar {
    let mut h = Sha256::new();
    h.update((tag.len() as u32).to_be_bytes());
    h.update(tag);
    for part in parts {
        h.update(part);
    }
    *<NonZeroScalar as Reduce<U256>>::reduce_bytes(&h.finalize())
}

/// What a receiver and `m` proxies can do together: interpolate the re-encryption key
/// `f(0) = a·d⁻¹` from the proxies' shares, and multiply by `d` (which the receiver can
/// compute) to get the delegating secret key `a`.
fn collude(receiver_sk: &SecretKey, proxy_kfrags: &[Vec<u8>]) -> SecretKey {
    let b = Scalar::from_repr((*receiver_sk.to_be_bytes()).into()).unwrap();
    let b_pk = point_bytes(&(ProjectivePoint::GENERATOR * b));
    let fields = bin_fields(&proxy_kfrags[0]);
    let precursor_bytes = proxy_kfrags[0][fields[KFRAG_PRECURSOR].clone()].to_vec();
    let precursor = k256::PublicKey::from_sec1_bytes(&precursor_bytes)
        .unwrap()
        .to_projective();
    let dh = point_bytes(&(precursor * b));
    let d = hash_to_scalar(b"SHARED_SECRET", &[&precursor_bytes, &b_pk, &dh]);
    let shares: Vec<(Scalar, Scalar)> = proxy_kfrags
        .iter()
        .map(|k| {
            let id = &k[fields[KFRAG_ID].clone()];
            let x = hash_to_scalar(b"POLYNOMIAL_ARG", &[&precursor_bytes, &b_pk, &dh, id]);
            let y = Scalar::from_repr(k256::FieldBytes::clone_from_slice(
                &k[fields[KFRAG_KEY].clone()],
            ))
            .unwrap();
            (x, y)
        })
        .collect();
    let mut f0 = Scalar::ZERO;
    for (i, (xi, yi)) in shares.iter().enumerate() {
        let mut l = Scalar::ONE;
        for (j, (xj, _)) in shares.iter().enumerate() {
            if i != j {
                l = l * xj * (*xj - xi).invert().unwrap();
            }
        }
        f0 += l * yi;
    }
    SecretKey::from_be_bytes(&scalar_bytes(&(f0 * d))).unwrap()
}

#[test]
fn grantee_and_colluding_proxies_expose_at_most_one_record() {
    let owner = OwnerMasterKey::random(&mut OsRng);
    let signer = owner.signer();
    let verifying_pk = signer.verifying_key();
    let grantee_sk = SecretKey::random(&mut OsRng);
    let grantee_pk = grantee_sk.public_key();
    let carol_sk = SecretKey::random(&mut OsRng);
    let carol_pk = carol_sk.public_key();

    let (r1, r2) = (b"record-1".as_slice(), b"record-2".as_slice());
    let (r1_sk, r2_sk) = (owner.record_key(r1).unwrap(), owner.record_key(r2).unwrap());
    let (r1_pk, r2_pk) = (r1_sk.public_key(), r2_sk.public_key());
    let mut key1 = [0u8; 32];
    let mut key2 = [0u8; 32];
    OsRng.fill_bytes(&mut key1);
    OsRng.fill_bytes(&mut key2);
    let wrapped1 = pre::wrap_data_key(&mut OsRng, &r1_pk, &key1, b"record-1/0").unwrap();
    let wrapped2 = pre::wrap_data_key(&mut OsRng, &r2_pk, &key2, b"record-2/0").unwrap();

    // Record 1 is shared with the grantee, record 2 with Carol, both 2-of-3 on the same proxies.
    let to_grantee: Vec<Vec<u8>> =
        pre::generate_kfrags(&mut OsRng, &r1_sk, &grantee_pk, &signer, 2, 3)
            .unwrap()
            .iter()
            .map(|k| k.to_bytes().to_vec())
            .collect();
    let to_carol = pre::generate_kfrags(&mut OsRng, &r2_sk, &carol_pk, &signer, 2, 3).unwrap();

    // The grantee plus m = 2 proxies of record 1 recover record 1's delegating key (the
    // caveat of the scheme is real) ...
    let stolen = collude(&grantee_sk, &to_grantee[..2]);
    assert_eq!(stolen.public_key(), r1_pk);
    assert_eq!(
        *wrapped1.open_original(&stolen, b"record-1/0").unwrap(),
        key1
    );
    // ... which opens nothing of record 2: a different per-record key.
    assert_ne!(stolen.public_key(), r2_pk);
    assert!(matches!(
        wrapped2.open_original(&stolen, b"record-2/0"),
        Err(Error::Decryption)
    ));

    // The grantee with m - 1 = 1 proxy re-encrypting record 2 (with its fragment for Carol):
    let cfrag = pre::reencrypt(&mut OsRng, wrapped2.capsule(), &to_carol[0]);
    // not verifiable as the grantee's,
    assert!(
        cfrag
            .clone()
            .verify(wrapped2.capsule(), &r2_pk, &grantee_pk, &verifying_pk)
            .is_err()
    );
    // and, verified as Carol's, useless to the grantee even with record 1's fragments added.
    let for_carol = cfrag
        .verify(wrapped2.capsule(), &r2_pk, &carol_pk, &verifying_pk)
        .unwrap();
    assert!(
        wrapped2
            .open_reencrypted(
                &grantee_sk,
                &r2_pk,
                std::slice::from_ref(&for_carol),
                b"record-2/0"
            )
            .is_err()
    );
    // Record 1's proxies re-encrypting record 2's capsule: they verify only as record 1's
    // delegation, and open record 2 under neither record key.
    let r1_cfrags: Vec<_> = to_grantee[..2]
        .iter()
        .map(|k| {
            let k = KeyFrag::from_bytes(k)
                .unwrap()
                .verify(&r1_pk, &grantee_pk, &verifying_pk)
                .unwrap();
            let c = pre::reencrypt(&mut OsRng, wrapped2.capsule(), &k);
            assert!(
                c.clone()
                    .verify(wrapped2.capsule(), &r2_pk, &grantee_pk, &verifying_pk)
                    .is_err()
            );
            c.verify(wrapped2.capsule(), &r1_pk, &grantee_pk, &verifying_pk)
                .unwrap()
        })
        .collect();
    for pk in [&r1_pk, &r2_pk] {
        assert!(
            wrapped2
                .open_reencrypted(&grantee_sk, pk, &r1_cfrags, b"record-2/0")
                .is_err()
        );
    }
    let mut with_carols = r1_cfrags.clone();
    with_carols.push(for_carol);
    assert!(
        wrapped2
            .open_reencrypted(&grantee_sk, &r2_pk, &with_carols, b"record-2/0")
            .is_err()
    );
}

#[test]
fn with_one_owner_key_the_same_coalition_would_open_everything() {
    // The contrast that motivates per-record keys.
    let owner_sk = SecretKey::random(&mut OsRng);
    let owner_pk: PublicKey = owner_sk.public_key();
    let signer = Signer::new(SecretKey::random(&mut OsRng));
    let grantee_sk = SecretKey::random(&mut OsRng);
    let other_record = pre::wrap_data_key(&mut OsRng, &owner_pk, &[9u8; 32], b"other").unwrap();
    let kfrags: Vec<Vec<u8>> = pre::generate_kfrags(
        &mut OsRng,
        &owner_sk,
        &grantee_sk.public_key(),
        &signer,
        2,
        3,
    )
    .unwrap()
    .iter()
    .map(|k| k.to_bytes().to_vec())
    .collect();
    let stolen = collude(&grantee_sk, &kfrags[1..]);
    assert_eq!(
        *other_record.open_original(&stolen, b"other").unwrap(),
        [9u8; 32]
    );
}
