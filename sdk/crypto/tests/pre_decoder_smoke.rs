//! Smoke test of every PRE decoder on thousands of random and mutated byte strings: none may
//! panic, and whatever one accepts must re-encode to exactly the input (one encoding per
//! value). The cargo-fuzz targets in `fuzz/` run the same decoders open-ended.
#![allow(clippy::unwrap_used)]

mod pre_support;

use medfabric_crypto::pre::{
    self, Capsule, CapsuleFrag, KeyFrag, OwnerMasterKey, PublicKey, SecretKey, WrappedDataKey,
};
use pre_support::{Parties, try_bin_fields};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use umbral_pre::DefaultSerialize;

/// Cases per decoder and kind (random, template-headed, mutated).
const CASES: usize = 1500;

type Decoder = fn(&[u8]) -> Option<Vec<u8>>;

fn capsule(b: &[u8]) -> Option<Vec<u8>> {
    Capsule::from_bytes(b).ok().map(|c| c.to_bytes())
}
fn kfrag(b: &[u8]) -> Option<Vec<u8>> {
    KeyFrag::from_bytes(b).ok().map(|k| k.to_bytes().to_vec())
}
fn cfrag(b: &[u8]) -> Option<Vec<u8>> {
    CapsuleFrag::from_bytes(b).ok().map(|c| c.to_bytes())
}
fn wrapped(b: &[u8]) -> Option<Vec<u8>> {
    WrappedDataKey::from_bytes(b).ok().map(|w| w.to_bytes())
}
fn public_key(b: &[u8]) -> Option<Vec<u8>> {
    PublicKey::from_compressed_bytes(b)
        .ok()
        .map(|k| k.to_compressed_bytes().to_vec())
}
fn secret_key(b: &[u8]) -> Option<Vec<u8>> {
    SecretKey::from_be_bytes(b)
        .ok()
        .map(|k| k.to_be_bytes().to_vec())
}
fn master_key(b: &[u8]) -> Option<Vec<u8>> {
    OwnerMasterKey::from_bytes(b)
        .ok()
        .map(|k| k.to_bytes().to_vec())
}

fn mutate(rng: &mut StdRng, valid: &[Vec<u8>]) -> Vec<u8> {
    let mut b = valid[rng.gen_range(0..valid.len())].clone();
    let rounds = rng.gen_range(1..=3);
    for _ in 0..rounds {
        if b.is_empty() {
            b.push(rng.r#gen());
            continue;
        }
        match rng.gen_range(0..8) {
            0 => {
                let i = rng.gen_range(0..b.len());
                b[i] ^= 1 << rng.gen_range(0..8);
            }
            1 => {
                let i = rng.gen_range(0..b.len());
                b[i] = rng.r#gen();
            }
            2 => b.truncate(rng.gen_range(0..b.len())),
            3 => {
                let extra = rng.gen_range(1..40);
                b.extend((0..extra).map(|_| rng.r#gen::<u8>()));
            }
            4 => {
                // Splice a field (same position) from another valid value.
                let other = &valid[rng.gen_range(0..valid.len())];
                if let Some(fields) = try_bin_fields(other).filter(|f| !f.is_empty()) {
                    let f = fields[rng.gen_range(0..fields.len())].clone();
                    if f.end <= b.len() {
                        b[f.clone()].copy_from_slice(&other[f]);
                    }
                }
            }
            5 => {
                // Corrupt a length byte or a structural byte.
                let i = rng.gen_range(0..b.len().min(8));
                b[i] = [
                    0x00, 0x01, 0x20, 0x21, 0x40, 0x90, 0x95, 0xc2, 0xc3, 0xc4, 0xc5, 0xff,
                ][rng.gen_range(0..12)];
            }
            6 => {
                let i = rng.gen_range(0..b.len());
                b.remove(i);
            }
            _ => {
                let i = rng.gen_range(0..=b.len());
                b.insert(i, rng.r#gen());
            }
        }
    }
    b
}

fn smoke(name: &str, decode: Decoder, valid: &[Vec<u8>], seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let max_len = valid.iter().map(Vec::len).max().unwrap() * 2 + 2;
    let mut accepted = 0usize;
    let mut check = |input: &[u8]| {
        if let Some(encoded) = decode(input) {
            assert_eq!(encoded, input, "{name}: accepted a non-canonical encoding");
            accepted += 1;
        }
    };
    for v in valid {
        assert!(decode(v).is_some(), "{name}: valid sample rejected");
    }
    for _ in 0..CASES {
        // Uniformly random bytes of random length.
        let len = rng.gen_range(0..max_len);
        let mut b = vec![0u8; len];
        rng.fill_bytes(&mut b);
        check(&b);
        // Random bytes behind a valid prefix, so the decoder gets past the first header.
        let template = &valid[rng.gen_range(0..valid.len())];
        let keep = rng.gen_range(0..template.len());
        let mut b = template[..keep].to_vec();
        let mut tail = vec![0u8; template.len() - keep];
        rng.fill_bytes(&mut tail);
        b.extend_from_slice(&tail);
        check(&b);
        // Mutations of valid encodings.
        check(&mutate(&mut rng, valid));
    }
    // Sanity: the valid samples themselves (and lucky mutations) were accepted.
    assert!(accepted > 0 || valid.is_empty(), "{name}");
}

struct Samples {
    capsules: Vec<Vec<u8>>,
    kfrags: Vec<Vec<u8>>,
    cfrags: Vec<Vec<u8>>,
    wrapped: Vec<Vec<u8>>,
    public_keys: Vec<Vec<u8>>,
    secret_keys: Vec<Vec<u8>>,
}

fn samples() -> Samples {
    let mut rng = rand::rngs::OsRng;
    let p = Parties::new();
    let mut s = Samples {
        capsules: vec![],
        kfrags: vec![],
        cfrags: vec![],
        wrapped: vec![],
        public_keys: vec![],
        secret_keys: vec![],
    };
    let kfrags = p.kfrags(2, 4);
    for _ in 0..3 {
        let (capsule, _) = p.encapsulate();
        s.capsules.push(capsule.to_bytes());
        for k in &kfrags[..2] {
            s.cfrags
                .push(pre::reencrypt(&mut rng, &capsule, k).to_bytes());
        }
        let w = pre::wrap_data_key(&mut rng, &p.delegating_pk, &[1u8; 32], b"ctx").unwrap();
        s.wrapped.push(w.to_bytes());
    }
    s.kfrags = kfrags.iter().map(|k| k.to_bytes().to_vec()).collect();
    // umbral-pre's encodings too.
    let u_sk = umbral_pre::SecretKey::random();
    let u_signer = umbral_pre::Signer::new(umbral_pre::SecretKey::random());
    let u_bob = umbral_pre::SecretKey::random().public_key();
    let (u_capsule, _) = umbral_pre::encrypt(&u_sk.public_key(), b"k").unwrap();
    s.capsules.push(u_capsule.to_bytes().unwrap().to_vec());
    for k in umbral_pre::generate_kfrags(&u_sk, &u_bob, &u_signer, 2, 2, true, false).iter() {
        s.kfrags
            .push(k.clone().unverify().to_bytes().unwrap().to_vec());
        let c = umbral_pre::reencrypt(&u_capsule, k.clone()).unverify();
        s.cfrags.push(c.to_bytes().unwrap().to_vec());
    }
    for _ in 0..4 {
        let sk = SecretKey::random(&mut rng);
        s.public_keys
            .push(sk.public_key().to_compressed_bytes().to_vec());
        s.secret_keys.push(sk.to_be_bytes().to_vec());
    }
    s
}

#[test]
fn capsule_decoder_survives_garbage() {
    smoke("capsule", capsule, &samples().capsules, 1);
}

#[test]
fn kfrag_decoder_survives_garbage() {
    smoke("kfrag", kfrag, &samples().kfrags, 2);
}

#[test]
fn cfrag_decoder_survives_garbage() {
    smoke("cfrag", cfrag, &samples().cfrags, 3);
}

#[test]
fn wrapped_key_decoder_survives_garbage() {
    smoke("wrapped data key", wrapped, &samples().wrapped, 4);
}

#[test]
fn key_decoders_survive_garbage() {
    let s = samples();
    smoke("public key", public_key, &s.public_keys, 5);
    smoke("secret key", secret_key, &s.secret_keys, 6);
    smoke("master key", master_key, &[vec![7u8; 32]], 7);
}
