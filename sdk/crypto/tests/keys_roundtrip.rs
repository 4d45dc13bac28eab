//! Key generation and encodings: PKCS#8 (plain and PBES2-encrypted), SPKI, PEM, for P-256 and
//! secp256k1; low-S signing; strict rejection of malformed or mislabelled keys; interoperability
//! with the `openssl` command when it is installed.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

use medfabric_crypto::Error;
use medfabric_crypto::keys::{
    P256SigningKey, P256VerifyingKey, PasswordKdf, Pkcs8PrivateKey, Secp256k1PublicKey,
    Secp256k1SecretKey, SpkiPublicKey, is_low_s_der,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Cheap KDF settings so debug-mode tests stay fast; the default is 600 000 iterations.
const FAST_PBKDF2: PasswordKdf = PasswordKdf::Pbkdf2Sha256 { iterations: 1000 };
const FAST_SCRYPT: PasswordKdf = PasswordKdf::Scrypt {
    log_n: 10,
    r: 8,
    p: 1,
};

#[test]
fn p256_generation_is_deterministic_in_the_rng() {
    let a = P256SigningKey::generate(&mut StdRng::seed_from_u64(1)).unwrap();
    let b = P256SigningKey::generate(&mut StdRng::seed_from_u64(1)).unwrap();
    let c = P256SigningKey::generate(&mut StdRng::seed_from_u64(2)).unwrap();
    assert_eq!(a.verifying_key(), b.verifying_key());
    assert_ne!(a.verifying_key(), c.verifying_key());
}

#[test]
fn p256_pkcs8_der_pem_and_encrypted_round_trip() {
    let mut rng = StdRng::seed_from_u64(3);
    let key = P256SigningKey::generate(&mut rng).unwrap();
    let der = key.to_pkcs8_der().unwrap();
    assert_eq!(
        P256SigningKey::from_pkcs8_der(&der)
            .unwrap()
            .verifying_key(),
        key.verifying_key()
    );
    let pem = key.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert_eq!(
        P256SigningKey::from_pkcs8_pem(&pem)
            .unwrap()
            .verifying_key(),
        key.verifying_key()
    );
    for kdf in [FAST_PBKDF2, FAST_SCRYPT] {
        let enc = key
            .to_encrypted_pkcs8_pem(&mut rng, b"correct horse", kdf)
            .unwrap();
        assert!(enc.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        let back = P256SigningKey::from_encrypted_pkcs8_pem(&enc, b"correct horse").unwrap();
        assert_eq!(back.verifying_key(), key.verifying_key());
        assert!(matches!(
            P256SigningKey::from_encrypted_pkcs8_pem(&enc, b"wrong horse"),
            Err(Error::Decryption | Error::Malformed(_))
        ));
    }
    let enc_der = key
        .to_encrypted_pkcs8_der(&mut rng, b"pw", FAST_PBKDF2)
        .unwrap();
    assert_eq!(
        P256SigningKey::from_encrypted_pkcs8_der(&enc_der, b"pw")
            .unwrap()
            .verifying_key(),
        key.verifying_key()
    );
}

#[test]
fn secp256k1_pkcs8_der_pem_and_encrypted_round_trip() {
    let mut rng = StdRng::seed_from_u64(4);
    let key = Secp256k1SecretKey::generate(&mut rng);
    let der = key.to_pkcs8_der().unwrap();
    assert_eq!(
        Secp256k1SecretKey::from_pkcs8_der(&der)
            .unwrap()
            .public_key(),
        key.public_key()
    );
    let pem = key.to_pkcs8_pem().unwrap();
    assert_eq!(
        Secp256k1SecretKey::from_pkcs8_pem(&pem)
            .unwrap()
            .public_key(),
        key.public_key()
    );
    let enc = key
        .to_encrypted_pkcs8_pem(&mut rng, b"pw", FAST_SCRYPT)
        .unwrap();
    assert_eq!(
        Secp256k1SecretKey::from_encrypted_pkcs8_pem(&enc, b"pw")
            .unwrap()
            .public_key(),
        key.public_key()
    );
    assert!(Secp256k1SecretKey::from_encrypted_pkcs8_pem(&enc, b"pw2").is_err());
}

#[test]
fn public_keys_spki_round_trip() {
    let mut rng = StdRng::seed_from_u64(5);
    let p = P256SigningKey::generate(&mut rng)
        .unwrap()
        .verifying_key()
        .clone();
    let spki = p.to_spki_der().unwrap();
    assert_eq!(P256VerifyingKey::from_spki_der(&spki).unwrap(), p);
    assert_eq!(
        P256VerifyingKey::from_spki_pem(&p.to_spki_pem().unwrap()).unwrap(),
        p
    );
    assert_eq!(
        P256VerifyingKey::from_sec1_bytes(&p.to_sec1_bytes()).unwrap(),
        p
    );

    let k = Secp256k1SecretKey::generate(&mut rng).public_key();
    let spki = k.to_spki_der().unwrap();
    assert_eq!(Secp256k1PublicKey::from_spki_der(&spki).unwrap(), k);
    assert_eq!(
        Secp256k1PublicKey::from_spki_pem(&k.to_spki_pem().unwrap()).unwrap(),
        k
    );
    assert_eq!(
        Secp256k1PublicKey::from_sec1_bytes(&k.to_sec1_bytes(true)).unwrap(),
        k
    );
    assert_eq!(
        Secp256k1PublicKey::from_sec1_bytes(&k.to_sec1_bytes(false)).unwrap(),
        k
    );
}

#[test]
fn curves_and_labels_are_not_confused() {
    let mut rng = StdRng::seed_from_u64(6);
    let p = P256SigningKey::generate(&mut rng).unwrap();
    let k = Secp256k1SecretKey::generate(&mut rng);
    assert!(Secp256k1SecretKey::from_pkcs8_der(&p.to_pkcs8_der().unwrap()).is_err());
    assert!(P256SigningKey::from_pkcs8_der(&k.to_pkcs8_der().unwrap()).is_err());
    assert!(Secp256k1PublicKey::from_spki_der(&p.verifying_key().to_spki_der().unwrap()).is_err());
    assert!(P256VerifyingKey::from_spki_der(&k.public_key().to_spki_der().unwrap()).is_err());
    // A private key PEM is not a public key PEM, nor an encrypted one.
    let pem = p.to_pkcs8_pem().unwrap();
    assert!(P256VerifyingKey::from_spki_pem(&pem).is_err());
    assert!(P256SigningKey::from_encrypted_pkcs8_pem(&pem, b"x").is_err());
    // A point that is not on the curve.
    let mut bad = p.verifying_key().to_sec1_bytes();
    bad[64] ^= 1;
    assert!(P256VerifyingKey::from_sec1_bytes(&bad).is_err());
}

#[test]
fn mismatched_embedded_public_key_is_rejected() {
    let mut rng = StdRng::seed_from_u64(7);
    let a = Secp256k1SecretKey::generate(&mut rng);
    let b = Secp256k1SecretKey::generate(&mut rng);
    let mut der = a.to_pkcs8_der().unwrap().to_vec();
    let pa = a.public_key().to_sec1_bytes(false);
    let pb = b.public_key().to_sec1_bytes(false);
    let at = der
        .windows(pa.len())
        .position(|w| w == pa.as_slice())
        .unwrap();
    der[at..at + pb.len()].copy_from_slice(&pb);
    assert!(Secp256k1SecretKey::from_pkcs8_der(&der).is_err());
}

#[test]
fn weak_kdf_settings_are_refused() {
    let mut rng = StdRng::seed_from_u64(8);
    let k = Secp256k1SecretKey::generate(&mut rng);
    assert!(
        k.to_encrypted_pkcs8_der(
            &mut rng,
            b"pw",
            PasswordKdf::Pbkdf2Sha256 { iterations: 10 }
        )
        .is_err()
    );
    assert_eq!(
        PasswordKdf::default(),
        PasswordKdf::Pbkdf2Sha256 {
            iterations: 600_000
        }
    );
}

#[test]
fn hostile_kdf_cost_is_refused_before_work() {
    use pkcs8::der::Encode;
    use pkcs8::pkcs5::pbes2;
    let iv = [0u8; 16];
    let salt = [0u8; 16];
    let encrypted_data = [0u8; 48];
    let file = |kdf: pbes2::Kdf<'_>| -> Vec<u8> {
        let params = pbes2::Parameters {
            kdf,
            encryption: pbes2::EncryptionScheme::Aes256Cbc { iv: &iv },
        };
        pkcs8::EncryptedPrivateKeyInfo {
            encryption_algorithm: params.into(),
            encrypted_data: &encrypted_data,
        }
        .to_der()
        .unwrap()
    };
    // scrypt N = 2^21, r = 8 would need 2 GiB.
    let scrypt = file(
        pbes2::ScryptParams {
            salt: &salt,
            cost_parameter: 1 << 21,
            block_size: 8,
            parallelization: 1,
            key_length: None,
        }
        .into(),
    );
    // PBKDF2 with 50 million iterations: within what the format allows (10^8), above our 10^7.
    let pbkdf2 = file(
        pbes2::Pbkdf2Params::hmac_with_sha256(50_000_000, &salt)
            .unwrap()
            .into(),
    );
    let start = std::time::Instant::now();
    for der in [scrypt, pbkdf2] {
        assert!(matches!(
            Secp256k1SecretKey::from_encrypted_pkcs8_der(&der, b"pw"),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            P256SigningKey::from_encrypted_pkcs8_der(&der, b"pw"),
            Err(Error::InvalidInput(_))
        ));
    }
    assert!(start.elapsed().as_secs() < 2);
}

#[test]
fn p256_signatures_are_always_low_s_and_verify() {
    let mut rng = StdRng::seed_from_u64(10);
    let key = P256SigningKey::generate(&mut rng).unwrap();
    for i in 0..200u32 {
        let msg = i.to_be_bytes();
        let sig = key.sign(&msg).unwrap();
        assert!(is_low_s_der(&sig), "signature {i} is high-S");
        key.verifying_key().verify(&msg, &sig).unwrap();
        assert!(key.verifying_key().verify(b"other", &sig).is_err());
    }
}

#[test]
fn non_strict_der_signatures_are_rejected() {
    let mut rng = StdRng::seed_from_u64(11);
    let key = P256SigningKey::generate(&mut rng).unwrap();
    let sig = key.sign(b"m").unwrap();
    // BER long-form length for the SEQUENCE.
    let mut ber = vec![0x30, 0x81, sig[1]];
    ber.extend_from_slice(&sig[2..]);
    assert!(key.verifying_key().verify(b"m", &ber).is_err());
    let mut trailing = sig.clone();
    trailing.push(0);
    assert!(key.verifying_key().verify(b"m", &trailing).is_err());
}

// ---- interoperability with the openssl command (skipped when it is not installed) ----

fn openssl_available() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn tmp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("medfabric-keys-{}-{name}", std::process::id()))
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn openssl_reads_our_encrypted_keys_and_we_read_its() {
    if !openssl_available() {
        eprintln!("openssl not installed: interop test skipped");
        return;
    }
    let mut rng = StdRng::seed_from_u64(12);
    // Ours → openssl: the public key it derives equals ours.
    let p = P256SigningKey::generate(&mut rng).unwrap();
    let path = tmp("p256.pem");
    std::fs::write(
        &path,
        p.to_encrypted_pkcs8_pem(&mut rng, b"s3cret", FAST_PBKDF2)
            .unwrap(),
    )
    .unwrap();
    let pubpem = openssl(&[
        "pkey",
        "-in",
        path.to_str().unwrap(),
        "-passin",
        "pass:s3cret",
        "-pubout",
    ]);
    assert_eq!(
        P256VerifyingKey::from_spki_pem(std::str::from_utf8(&pubpem).unwrap()).unwrap(),
        *p.verifying_key()
    );

    let k = Secp256k1SecretKey::generate(&mut rng);
    let path_k = tmp("k1.pem");
    std::fs::write(
        &path_k,
        k.to_encrypted_pkcs8_pem(&mut rng, b"s3cret", FAST_SCRYPT)
            .unwrap(),
    )
    .unwrap();
    let pubpem = openssl(&[
        "pkey",
        "-in",
        path_k.to_str().unwrap(),
        "-passin",
        "pass:s3cret",
        "-pubout",
    ]);
    assert_eq!(
        Secp256k1PublicKey::from_spki_pem(std::str::from_utf8(&pubpem).unwrap()).unwrap(),
        k.public_key()
    );

    // openssl → ours: PBES2 PBKDF2 and scrypt, both curves.
    for (curve, scrypt) in [("P-256", false), ("secp256k1", true)] {
        let raw = tmp(&format!("{curve}-raw.pem"));
        let enc = tmp(&format!("{curve}-enc.pem"));
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            raw.to_str().unwrap(),
        ]);
        let mut args = vec![
            "pkcs8",
            "-topk8",
            "-in",
            raw.to_str().unwrap(),
            "-out",
            enc.to_str().unwrap(),
            "-passout",
            "pass:pw",
        ];
        if scrypt {
            args.extend([
                "-scrypt",
                "-scrypt_N",
                "1024",
                "-scrypt_r",
                "8",
                "-scrypt_p",
                "1",
            ]);
        } else {
            args.extend(["-v2", "aes-256-cbc", "-iter", "2048"]);
        }
        openssl(&args);
        let pubpem =
            String::from_utf8(openssl(&["pkey", "-in", raw.to_str().unwrap(), "-pubout"])).unwrap();
        let enc_pem = std::fs::read_to_string(&enc).unwrap();
        if curve == "P-256" {
            let key = P256SigningKey::from_encrypted_pkcs8_pem(&enc_pem, b"pw").unwrap();
            assert_eq!(
                *key.verifying_key(),
                P256VerifyingKey::from_spki_pem(&pubpem).unwrap()
            );
        } else {
            let key = Secp256k1SecretKey::from_encrypted_pkcs8_pem(&enc_pem, b"pw").unwrap();
            assert_eq!(
                key.public_key(),
                Secp256k1PublicKey::from_spki_pem(&pubpem).unwrap()
            );
        }
        let _ = std::fs::remove_file(raw);
        let _ = std::fs::remove_file(enc);
    }

    // openssl verifies our low-S signature.
    let msg = tmp("msg");
    let sigf = tmp("sig");
    let pubf = tmp("pub.pem");
    std::fs::write(&msg, b"fabric proposal").unwrap();
    std::fs::write(&sigf, p.sign(b"fabric proposal").unwrap()).unwrap();
    std::fs::write(&pubf, p.verifying_key().to_spki_pem().unwrap()).unwrap();
    let out = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        pubf.to_str().unwrap(),
        "-signature",
        sigf.to_str().unwrap(),
        msg.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
    for f in [path, path_k, msg, sigf, pubf] {
        let _ = std::fs::remove_file(f);
    }
}
