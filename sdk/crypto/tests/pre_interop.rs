//! Interoperability with the `umbral-pre` crate (0.11, a GPL-3.0 dev-dependency only): keys,
//! capsules, key fragments, capsule fragments and wrapped data keys made by one side are
//! accepted by the other, byte for byte, in both directions and mixed.
#![allow(clippy::unwrap_used)]

use hkdf::Hkdf;
use medfabric_crypto::pre::{self, Capsule, CapsuleFrag, KeyFrag, SecretKey, WrappedDataKey};
use rand::rngs::OsRng;
use sha2::Sha256;
use umbral_pre::{DefaultDeserialize, DefaultSerialize};

/// One set of parties, held by both implementations: every secret key is made by umbral-pre
/// and imported into ours through its 32-byte form.
struct Both {
    u_alice_sk: umbral_pre::SecretKey,
    u_alice_pk: umbral_pre::PublicKey,
    u_bob_sk: umbral_pre::SecretKey,
    u_bob_pk: umbral_pre::PublicKey,
    u_signer: umbral_pre::Signer,
    u_verifying_pk: umbral_pre::PublicKey,
    alice_sk: SecretKey,
    alice_pk: pre::PublicKey,
    bob_sk: SecretKey,
    bob_pk: pre::PublicKey,
    signer: pre::Signer,
    verifying_pk: pre::PublicKey,
}

fn import_sk(sk: &umbral_pre::SecretKey) -> SecretKey {
    SecretKey::from_be_bytes(sk.to_be_bytes().as_secret()).unwrap()
}

impl Both {
    fn new() -> Self {
        let u_alice_sk = umbral_pre::SecretKey::random();
        let u_bob_sk = umbral_pre::SecretKey::random();
        let u_signer_sk = umbral_pre::SecretKey::random();
        let signer = pre::Signer::new(import_sk(&u_signer_sk));
        let u_signer = umbral_pre::Signer::new(u_signer_sk);
        let alice_sk = import_sk(&u_alice_sk);
        let bob_sk = import_sk(&u_bob_sk);
        let both = Self {
            u_alice_pk: u_alice_sk.public_key(),
            u_bob_pk: u_bob_sk.public_key(),
            u_verifying_pk: u_signer.verifying_key(),
            alice_pk: alice_sk.public_key(),
            bob_pk: bob_sk.public_key(),
            verifying_pk: signer.verifying_key(),
            u_alice_sk,
            u_bob_sk,
            u_signer,
            alice_sk,
            bob_sk,
            signer,
        };
        // Public keys agree byte for byte, both ways.
        for (ours, theirs) in [
            (&both.alice_pk, &both.u_alice_pk),
            (&both.bob_pk, &both.u_bob_pk),
            (&both.verifying_pk, &both.u_verifying_pk),
        ] {
            assert_eq!(
                &ours.to_compressed_bytes()[..],
                &theirs.to_compressed_bytes()[..]
            );
            assert_eq!(
                pre::PublicKey::from_compressed_bytes(&theirs.to_compressed_bytes()).unwrap(),
                *ours
            );
            assert_eq!(
                umbral_pre::PublicKey::try_from_compressed_bytes(&ours.to_compressed_bytes())
                    .unwrap(),
                *theirs
            );
        }
        both
    }
}

fn to_umbral_capsule(c: &Capsule) -> umbral_pre::Capsule {
    let theirs = umbral_pre::Capsule::from_bytes(&c.to_bytes()).unwrap();
    assert_eq!(&theirs.to_bytes().unwrap()[..], &c.to_bytes()[..]);
    theirs
}

fn from_umbral_capsule(c: &umbral_pre::Capsule) -> Capsule {
    let bytes = c.to_bytes().unwrap();
    let ours = Capsule::from_bytes(&bytes).unwrap();
    assert_eq!(ours.to_bytes(), &bytes[..]);
    ours
}

/// umbral-pre's raw KEM seed is the 33-byte shared point; its DEM key (and our seed) is
/// HKDF-SHA256 of it with no salt and no info.
fn umbral_seed_to_ours(raw: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    Hkdf::<Sha256>::new(None, raw)
        .expand(&[], &mut out)
        .unwrap();
    out
}

#[test]
fn kem_interoperates_both_ways() {
    let b = Both::new();
    for _ in 0..4 {
        // umbral-pre encapsulates, we decapsulate.
        let (u_capsule, u_seed) = umbral_pre::bench::capsule_from_public_key(&b.u_alice_pk);
        let capsule = from_umbral_capsule(&u_capsule);
        assert_eq!(
            pre::decapsulate_original(&b.alice_sk, &capsule).as_bytes(),
            &umbral_seed_to_ours(u_seed.as_secret())
        );
        // We encapsulate, umbral-pre decapsulates.
        let (capsule, seed) = pre::encapsulate(&mut OsRng, &b.alice_pk);
        let u_capsule = to_umbral_capsule(&capsule);
        let u_seed = umbral_pre::bench::capsule_open_original(&u_capsule, &b.u_alice_sk);
        assert_eq!(seed.as_bytes(), &umbral_seed_to_ours(u_seed.as_secret()));
    }
}

#[test]
fn wrapped_data_keys_are_umbral_dem_ciphertexts() {
    let b = Both::new();
    let data_key = [0x42u8; 32];

    // Ours (empty context) opened by umbral-pre.
    let wrapped = pre::wrap_data_key(&mut OsRng, &b.alice_pk, &data_key, b"").unwrap();
    let u_capsule = to_umbral_capsule(wrapped.capsule());
    let opened =
        umbral_pre::decrypt_original(&b.u_alice_sk, &u_capsule, wrapped.dem_ciphertext()).unwrap();
    assert_eq!(&opened[..], &data_key);

    // umbral-pre's `encrypt` of a 32-byte key opened by ours.
    let (u_capsule, ciphertext) = umbral_pre::encrypt(&b.u_alice_pk, &data_key).unwrap();
    let wrapped = WrappedDataKey::from_parts(from_umbral_capsule(&u_capsule), &ciphertext).unwrap();
    assert_eq!(*wrapped.open_original(&b.alice_sk, b"").unwrap(), data_key);
    // A non-empty context is medfabric's own binding; umbral-pre's wrapping lacks it.
    assert!(wrapped.open_original(&b.alice_sk, b"section 1").is_err());
}

/// Who plays each role in one end-to-end run.
#[derive(Clone, Copy, Debug)]
enum Side {
    Ours,
    Umbral,
}

/// Runs a 2-of-3 delegation where kfrags are made by `maker`, proxy 0 is `proxy0`, proxy 1 is
/// `proxy1`, and the receiver (verification and decryption) is `receiver`. Every object crosses
/// between implementations through its serialized form.
fn end_to_end(maker: Side, proxy0: Side, proxy1: Side, receiver: Side) {
    let b = Both::new();
    let data_key = [0x17u8; 32];
    // The data key is wrapped by the side opposite the receiver.
    let (capsule_bytes, dem_ciphertext) = match receiver {
        Side::Ours => {
            let (c, ct) = umbral_pre::encrypt(&b.u_alice_pk, &data_key).unwrap();
            (c.to_bytes().unwrap().to_vec(), ct.to_vec())
        }
        Side::Umbral => {
            let w = pre::wrap_data_key(&mut OsRng, &b.alice_pk, &data_key, b"").unwrap();
            (w.capsule().to_bytes(), w.dem_ciphertext())
        }
    };

    let kfrag_bytes: Vec<Vec<u8>> = match maker {
        Side::Ours => pre::generate_kfrags(&mut OsRng, &b.alice_sk, &b.bob_pk, &b.signer, 2, 3)
            .unwrap()
            .iter()
            .map(|k| k.to_bytes().to_vec())
            .collect(),
        Side::Umbral => {
            umbral_pre::generate_kfrags(&b.u_alice_sk, &b.u_bob_pk, &b.u_signer, 2, 3, true, true)
                .iter()
                .map(|k| k.clone().unverify().to_bytes().unwrap().to_vec())
                .collect()
        }
    };

    let proxy = |side: Side, bytes: &[u8]| -> Vec<u8> {
        match side {
            Side::Ours => {
                let capsule = Capsule::from_bytes(&capsule_bytes).unwrap();
                let kfrag = KeyFrag::from_bytes(bytes).unwrap();
                assert_eq!(&kfrag.to_bytes()[..], bytes);
                let kfrag = kfrag
                    .verify(&b.alice_pk, &b.bob_pk, &b.verifying_pk)
                    .unwrap();
                pre::reencrypt(&mut OsRng, &capsule, &kfrag).to_bytes()
            }
            Side::Umbral => {
                let capsule = umbral_pre::Capsule::from_bytes(&capsule_bytes).unwrap();
                let kfrag = umbral_pre::KeyFrag::from_bytes(bytes).unwrap();
                assert_eq!(&kfrag.to_bytes().unwrap()[..], bytes);
                let kfrag = kfrag
                    .verify(&b.u_verifying_pk, Some(&b.u_alice_pk), Some(&b.u_bob_pk))
                    .unwrap();
                umbral_pre::reencrypt(&capsule, kfrag)
                    .unverify()
                    .to_bytes()
                    .unwrap()
                    .to_vec()
            }
        }
    };
    let cfrag_bytes = [
        proxy(proxy0, &kfrag_bytes[0]),
        proxy(proxy1, &kfrag_bytes[2]),
    ];

    let opened: Vec<u8> = match receiver {
        Side::Ours => {
            let capsule = Capsule::from_bytes(&capsule_bytes).unwrap();
            let verified: Vec<_> = cfrag_bytes
                .iter()
                .map(|bytes| {
                    let cfrag = CapsuleFrag::from_bytes(bytes).unwrap();
                    assert_eq!(&cfrag.to_bytes(), bytes);
                    cfrag
                        .verify(&capsule, &b.alice_pk, &b.bob_pk, &b.verifying_pk)
                        .unwrap()
                })
                .collect();
            let wrapped = WrappedDataKey::from_parts(capsule, &dem_ciphertext).unwrap();
            wrapped
                .open_reencrypted(&b.bob_sk, &b.alice_pk, &verified, b"")
                .unwrap()
                .to_vec()
        }
        Side::Umbral => {
            let capsule = umbral_pre::Capsule::from_bytes(&capsule_bytes).unwrap();
            let verified: Vec<_> = cfrag_bytes
                .iter()
                .map(|bytes| {
                    let cfrag = umbral_pre::CapsuleFrag::from_bytes(bytes).unwrap();
                    assert_eq!(&cfrag.to_bytes().unwrap()[..], &bytes[..]);
                    cfrag
                        .verify(&capsule, &b.u_verifying_pk, &b.u_alice_pk, &b.u_bob_pk)
                        .unwrap()
                })
                .collect();
            umbral_pre::decrypt_reencrypted(
                &b.u_bob_sk,
                &b.u_alice_pk,
                &capsule,
                verified,
                &dem_ciphertext,
            )
            .unwrap()
            .to_vec()
        }
    };
    assert_eq!(
        opened, data_key,
        "maker {maker:?}, proxies {proxy0:?}/{proxy1:?}, receiver {receiver:?}"
    );
}

#[test]
fn umbral_kfrags_our_proxies_our_receiver() {
    end_to_end(Side::Umbral, Side::Ours, Side::Ours, Side::Ours);
}

#[test]
fn our_kfrags_umbral_proxies_umbral_receiver() {
    end_to_end(Side::Ours, Side::Umbral, Side::Umbral, Side::Umbral);
}

#[test]
fn umbral_everything_but_our_receiver() {
    end_to_end(Side::Umbral, Side::Umbral, Side::Umbral, Side::Ours);
}

#[test]
fn ours_everything_but_umbral_receiver() {
    end_to_end(Side::Ours, Side::Ours, Side::Ours, Side::Umbral);
}

#[test]
fn mixed_proxies_every_combination() {
    let sides = [Side::Ours, Side::Umbral];
    for maker in sides {
        for p0 in sides {
            for p1 in sides {
                for receiver in sides {
                    end_to_end(maker, p0, p1, receiver);
                }
            }
        }
    }
}

#[test]
fn umbral_kfrags_that_leave_out_a_key_are_refused() {
    let b = Both::new();
    for (sign_delegating, sign_receiving) in [(false, false), (true, false), (false, true)] {
        let kfrags = umbral_pre::generate_kfrags(
            &b.u_alice_sk,
            &b.u_bob_pk,
            &b.u_signer,
            1,
            1,
            sign_delegating,
            sign_receiving,
        );
        let bytes = kfrags[0].clone().unverify().to_bytes().unwrap();
        // Well-formed (it decodes and re-encodes identically) ...
        let kfrag = KeyFrag::from_bytes(&bytes).unwrap();
        assert_eq!(&kfrag.to_bytes()[..], &bytes[..]);
        // ... but medfabric requires both keys under the signature.
        assert!(
            kfrag
                .verify(&b.alice_pk, &b.bob_pk, &b.verifying_pk)
                .is_err()
        );
    }
}

#[test]
fn umbral_refuses_what_we_refuse() {
    let b = Both::new();
    let (capsule, _) = pre::encapsulate(&mut OsRng, &b.alice_pk);
    let mut bytes = capsule.to_bytes();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(Capsule::from_bytes(&bytes).is_err());
    assert!(umbral_pre::Capsule::from_bytes(&bytes).is_err());

    // A cfrag for another receiver verifies on neither side.
    let kfrags =
        pre::generate_kfrags(&mut OsRng, &b.alice_sk, &b.alice_pk, &b.signer, 1, 1).unwrap();
    let cfrag = pre::reencrypt(&mut OsRng, &capsule, &kfrags[0]).to_bytes();
    let u_capsule = to_umbral_capsule(&capsule);
    assert!(
        umbral_pre::CapsuleFrag::from_bytes(&cfrag)
            .unwrap()
            .verify(&u_capsule, &b.u_verifying_pk, &b.u_alice_pk, &b.u_bob_pk)
            .is_err()
    );
    assert!(
        CapsuleFrag::from_bytes(&cfrag)
            .unwrap()
            .verify(&capsule, &b.alice_pk, &b.bob_pk, &b.verifying_pk)
            .is_err()
    );
}
