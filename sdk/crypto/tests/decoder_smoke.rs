//! Smoke run of every decoder of untrusted bytes with a few thousand random and mutated inputs:
//! none may panic, and whatever decodes must re-encode to the same bytes (strict, canonical).
//! The cargo-fuzz targets in `fuzz/` explore the same decoders for longer; this runs on stable.
#![allow(clippy::unwrap_used)]

use medfabric_crypto::ces::{
    self, CesSignature, Disclosure, ExtractionPolicy, SignedRecord, SubsetProof,
};
use medfabric_crypto::envelope::{self, Header, SectionContext, SectionKey};
use medfabric_crypto::keys::{
    P256SigningKey, P256VerifyingKey, PasswordKdf, Pkcs8PrivateKey, Secp256k1PublicKey,
    Secp256k1SecretKey, SpkiPublicKey,
};
use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section, SectionId};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

const ROUNDS: usize = 3000;

/// Random bytes, or a valid sample mutated by bit flips, truncation, byte insertion/deletion or
/// splicing with another sample.
fn mutate(rng: &mut StdRng, samples: &[Vec<u8>]) -> Vec<u8> {
    if rng.gen_ratio(1, 8) {
        let mut v = vec![0u8; rng.gen_range(0..256)];
        rng.fill_bytes(&mut v);
        return v;
    }
    let mut v = samples[rng.gen_range(0..samples.len())].clone();
    for _ in 0..rng.gen_range(1..4) {
        match rng.gen_range(0..6) {
            0 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v.truncate(i);
            }
            2 => {
                let i = rng.gen_range(0..=v.len());
                v.insert(i, rng.r#gen());
            }
            3 if !v.is_empty() => {
                let i = rng.gen_range(0..v.len());
                v.remove(i);
            }
            4 if !v.is_empty() => {
                // Overwrite a byte with an extreme value (lengths and counts).
                let i = rng.gen_range(0..v.len());
                v[i] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.gen_range(0..5)];
            }
            _ => {
                let other = &samples[rng.gen_range(0..samples.len())];
                let cut = rng.gen_range(0..=v.len());
                let from = rng.gen_range(0..=other.len());
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v
}

fn record(n: usize) -> Record {
    let sections = (0..n)
        .map(|i| {
            Section::fhir(
                SectionId::new(format!("s{i}")).unwrap(),
                vec![i as u8; i * 3],
            )
        })
        .collect();
    Record::new(
        RecordId::new("rec").unwrap(),
        1,
        Pseudonym::new("a").unwrap(),
        Pseudonym::new("o").unwrap(),
        sections,
    )
    .unwrap()
}

#[test]
fn envelope_decoders_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xe4e1);
    let rid = RecordId::new("rec").unwrap();
    let sid = SectionId::new("s").unwrap();
    let ctx = SectionContext::new(&rid, 1, &sid);
    let key = SectionKey::generate(&mut rng);
    let samples: Vec<Vec<u8>> = [0usize, 1, 100, 70_000]
        .iter()
        .map(|&n| envelope::encrypt(&key, &ctx, &mut rng, &vec![7u8; n]).unwrap())
        .collect();
    for _ in 0..ROUNDS {
        let input = mutate(&mut rng, &samples);
        if let Ok(h) = Header::decode(&input) {
            assert_eq!(h.encode()[..], input[..envelope::HEADER_LEN]);
        }
        let _ = envelope::plaintext_len(input.len() as u64);
        // Decryption of mutated ciphertext must fail (mutations that leave it intact aside).
        if let Ok(pt) = envelope::decrypt(&key, &ctx, &input) {
            assert!(
                samples.contains(&input),
                "mutated ciphertext decrypted to {} bytes",
                pt.len()
            );
        }
        let mut sink = Vec::new();
        let _ = envelope::decrypt_stream(&key, &ctx, &input[..], &mut sink);
    }
}

#[test]
fn ces_decoders_never_panic() {
    let mut rng = StdRng::seed_from_u64(0xce5);
    let author = P256SigningKey::generate(&mut rng).unwrap();
    let mut samples = Vec::new();
    for n in [1usize, 3, 8] {
        let rec = record(n);
        let policy = if n >= 3 {
            ExtractionPolicy::new()
                .together([0, 1])
                .unwrap()
                .never_alone(2)
                .unwrap()
                .requires(2, [0])
                .unwrap()
        } else {
            ExtractionPolicy::new()
        };
        let signed = ces::sign(&mut rng, &author, &rec, policy).unwrap();
        let subset: Vec<u32> = if n >= 3 { vec![0, 1, 2] } else { vec![0] };
        let d = signed.extract(&rec, &subset).unwrap();
        samples.push(signed.signature().to_bytes());
        samples.push(signed.to_bytes());
        samples.push(d.to_subset_proof().to_bytes());
        samples.push(d.to_bytes());
    }
    let key = author.verifying_key();
    let mut decoded = 0usize;
    for _ in 0..ROUNDS * 2 {
        let input = mutate(&mut rng, &samples);
        if let Ok(s) = CesSignature::from_bytes(&input) {
            assert_eq!(s.to_bytes(), input);
            let _ = s.verify(key);
            decoded += 1;
        }
        if let Ok(s) = SignedRecord::from_bytes(&input) {
            assert_eq!(s.to_bytes(), input);
            decoded += 1;
        }
        if let Ok(p) = SubsetProof::from_bytes(&input) {
            assert_eq!(p.to_bytes(), input);
            if p.verify(key).is_ok() {
                assert!(samples.contains(&input), "mutated subset proof verified");
            }
            decoded += 1;
        }
        if let Ok(d) = Disclosure::from_bytes(&input) {
            assert_eq!(d.to_bytes(), input);
            if d.verify(key).is_ok() {
                assert!(samples.contains(&input), "mutated disclosure verified");
            }
            decoded += 1;
        }
    }
    assert!(
        decoded > 0,
        "mutations never produced a decodable input: the smoke test is too blunt"
    );
}

#[test]
fn key_decoders_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x6e75);
    let p = P256SigningKey::generate(&mut rng).unwrap();
    let k = Secp256k1SecretKey::generate(&mut rng);
    let kdf = PasswordKdf::Pbkdf2Sha256 { iterations: 1000 };
    let samples = vec![
        p.to_pkcs8_der().unwrap().to_vec(),
        k.to_pkcs8_der().unwrap().to_vec(),
        p.verifying_key().to_spki_der().unwrap(),
        k.public_key().to_spki_der().unwrap(),
        k.to_encrypted_pkcs8_der(&mut rng, b"pw", kdf).unwrap(),
        p.sign(b"m").unwrap(),
    ];
    for _ in 0..ROUNDS {
        let input = mutate(&mut rng, &samples);
        let _ = P256SigningKey::from_pkcs8_der(&input);
        let _ = Secp256k1SecretKey::from_pkcs8_der(&input);
        let _ = P256VerifyingKey::from_spki_der(&input);
        let _ = Secp256k1PublicKey::from_spki_der(&input);
        let _ = P256VerifyingKey::from_sec1_bytes(&input);
        let _ = Secp256k1PublicKey::from_sec1_bytes(&input);
        let _ = p.verifying_key().verify(b"m", &input);
        let _ = medfabric_crypto::keys::is_low_s_der(&input);
        if let Ok(s) = std::str::from_utf8(&input) {
            let _ = P256SigningKey::from_pkcs8_pem(s);
            let _ = P256VerifyingKey::from_spki_pem(s);
        }
    }
    // Encrypted PKCS#8 runs a KDF per attempt: fewer rounds.
    for _ in 0..ROUNDS / 10 {
        let input = mutate(&mut rng, &samples[4..5]);
        let _ = Secp256k1SecretKey::from_encrypted_pkcs8_der(&input, b"pw");
    }
}
