//! PRE hot paths, medfabric's implementation against umbral-pre (GPL-3.0, dev-dependency
//! only) on the same machine in one run: a proxy's re-encryption, a receiver's verification
//! of one capsule fragment, and a receiver's 2-of-3 decryption.
//!
//! `cargo bench -p medfabric-crypto --bench pre`; figures in docs/benchmarks-crypto-pre.md.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use medfabric_crypto::pre::{self, SecretKey, Signer};
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Ours {
    capsule: pre::Capsule,
    kfrags: Vec<pre::VerifiedKeyFrag>,
    cfrags: Vec<pre::CapsuleFrag>,
    verified: Vec<pre::VerifiedCapsuleFrag>,
    delegating_pk: pre::PublicKey,
    receiving_sk: SecretKey,
    receiving_pk: pre::PublicKey,
    verifying_pk: pre::PublicKey,
}

struct Theirs {
    capsule: umbral_pre::Capsule,
    kfrags: Vec<umbral_pre::VerifiedKeyFrag>,
    cfrags: Vec<umbral_pre::CapsuleFrag>,
    delegating_pk: umbral_pre::PublicKey,
    receiving_sk: umbral_pre::SecretKey,
    receiving_pk: umbral_pre::PublicKey,
    verifying_pk: umbral_pre::PublicKey,
}

fn ours(rng: &mut StdRng) -> Ours {
    let delegating_sk = SecretKey::random(rng);
    let signer = Signer::new(SecretKey::random(rng));
    let receiving_sk = SecretKey::random(rng);
    let delegating_pk = delegating_sk.public_key();
    let receiving_pk = receiving_sk.public_key();
    let verifying_pk = signer.verifying_key();
    let (capsule, _) = pre::encapsulate(rng, &delegating_pk);
    let kfrags =
        pre::generate_kfrags(rng, &delegating_sk, &receiving_pk, &signer, 2, 3).expect("kfrags");
    let cfrags: Vec<_> = kfrags[..2]
        .iter()
        .map(|k| pre::reencrypt(rng, &capsule, k))
        .collect();
    let verified = cfrags
        .iter()
        .map(|c| {
            c.clone()
                .verify(&capsule, &delegating_pk, &receiving_pk, &verifying_pk)
                .expect("valid cfrag")
        })
        .collect();
    Ours {
        capsule,
        kfrags,
        cfrags,
        verified,
        delegating_pk,
        receiving_sk,
        receiving_pk,
        verifying_pk,
    }
}

fn theirs(rng: &mut StdRng) -> Theirs {
    let delegating_sk = umbral_pre::SecretKey::random_with_rng(rng);
    let signer = umbral_pre::Signer::new(umbral_pre::SecretKey::random_with_rng(rng));
    let receiving_sk = umbral_pre::SecretKey::random_with_rng(rng);
    let delegating_pk = delegating_sk.public_key();
    let receiving_pk = receiving_sk.public_key();
    let (capsule, _) =
        umbral_pre::encrypt_with_rng(rng, &delegating_pk, b"0123456789abcdef0123456789abcdef")
            .expect("encrypt");
    let kfrags: Vec<_> = umbral_pre::generate_kfrags_with_rng(
        rng,
        &delegating_sk,
        &receiving_pk,
        &signer,
        2,
        3,
        true,
        true,
    )
    .into_vec();
    let cfrags = kfrags[..2]
        .iter()
        .map(|k| umbral_pre::reencrypt_with_rng(rng, &capsule, k.clone()).unverify())
        .collect();
    Theirs {
        capsule,
        kfrags,
        cfrags,
        delegating_pk,
        receiving_sk,
        receiving_pk,
        verifying_pk: signer.verifying_key(),
    }
}

fn bench_pre(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(2018);
    let o = ours(&mut rng);
    let t = theirs(&mut rng);

    let mut group = c.benchmark_group("pre/reencrypt");
    group.bench_function("medfabric", |b| {
        b.iter(|| pre::reencrypt(&mut rng, black_box(&o.capsule), black_box(&o.kfrags[0])))
    });
    group.bench_function("umbral-pre", |b| {
        b.iter(|| {
            umbral_pre::reencrypt_with_rng(
                &mut rng,
                black_box(&t.capsule),
                black_box(t.kfrags[0].clone()),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("pre/cfrag_verify");
    group.bench_function("medfabric", |b| {
        b.iter(|| {
            black_box(o.cfrags[0].clone())
                .verify(
                    &o.capsule,
                    &o.delegating_pk,
                    &o.receiving_pk,
                    &o.verifying_pk,
                )
                .expect("valid")
        })
    });
    group.bench_function("umbral-pre", |b| {
        b.iter(|| {
            black_box(t.cfrags[0].clone())
                .verify(
                    &t.capsule,
                    &t.verifying_pk,
                    &t.delegating_pk,
                    &t.receiving_pk,
                )
                .expect("valid")
        })
    });
    group.finish();

    let mut group = c.benchmark_group("pre/decrypt_reencrypted_m2");
    group.bench_function("medfabric", |b| {
        b.iter(|| {
            pre::decrypt_reencrypted(
                &o.receiving_sk,
                &o.delegating_pk,
                black_box(&o.capsule),
                black_box(&o.verified),
            )
            .expect("opens")
        })
    });
    group.bench_function("umbral-pre", |b| {
        b.iter(|| {
            umbral_pre::bench::capsule_open_reencrypted(
                black_box(&t.capsule),
                &t.receiving_sk,
                &t.delegating_pk,
                black_box(&t.cfrags),
            )
            .expect("opens")
        })
    });
    group.finish();
}

/// Cross-check against the machine's background load: time the two implementations in
/// alternating short rounds, so both see the same load, and print the median per-round ratio.
/// Runs only under `cargo bench` (cargo passes `--bench`), not in `cargo test` smoke mode.
fn interleaved_ratios() {
    const ROUNDS: usize = 40;
    const ITERS: u32 = 20;
    fn time(iters: u32, mut f: impl FnMut()) -> f64 {
        let start = Instant::now();
        for _ in 0..iters {
            f();
        }
        start.elapsed().as_secs_f64() / f64::from(iters)
    }
    fn median(mut v: Vec<f64>) -> f64 {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
    let mut rng = StdRng::seed_from_u64(1);
    let o = ours(&mut rng);
    let t = theirs(&mut rng);
    let mut rows: [(&str, Vec<f64>, Vec<f64>); 3] = [
        ("pre/reencrypt", vec![], vec![]),
        ("pre/cfrag_verify", vec![], vec![]),
        ("pre/decrypt_reencrypted_m2", vec![], vec![]),
    ];
    for _ in 0..ROUNDS {
        rows[0].1.push(time(ITERS, || {
            black_box(pre::reencrypt(
                &mut rng,
                black_box(&o.capsule),
                &o.kfrags[0],
            ));
        }));
        rows[0].2.push(time(ITERS, || {
            black_box(umbral_pre::reencrypt_with_rng(
                &mut rng,
                black_box(&t.capsule),
                t.kfrags[0].clone(),
            ));
        }));
        rows[1].1.push(time(ITERS, || {
            let c = black_box(o.cfrags[0].clone());
            black_box(c.verify(
                &o.capsule,
                &o.delegating_pk,
                &o.receiving_pk,
                &o.verifying_pk,
            ))
            .expect("valid");
        }));
        rows[1].2.push(time(ITERS, || {
            let c = black_box(t.cfrags[0].clone());
            black_box(c.verify(
                &t.capsule,
                &t.verifying_pk,
                &t.delegating_pk,
                &t.receiving_pk,
            ))
            .expect("valid");
        }));
        rows[2].1.push(time(ITERS, || {
            black_box(pre::decrypt_reencrypted(
                &o.receiving_sk,
                &o.delegating_pk,
                black_box(&o.capsule),
                &o.verified,
            ))
            .expect("opens");
        }));
        rows[2].2.push(time(ITERS, || {
            black_box(umbral_pre::bench::capsule_open_reencrypted(
                black_box(&t.capsule),
                &t.receiving_sk,
                &t.delegating_pk,
                &t.cfrags,
            ))
            .expect("opens");
        }));
    }
    println!("interleaved ({ROUNDS} rounds x {ITERS} iterations; median of per-round values)");
    for (name, a, b) in rows {
        let ratio = median(a.iter().zip(&b).map(|(x, y)| x / y).collect());
        println!(
            "{name:28} medfabric {:7.1} us  umbral-pre {:7.1} us  medfabric/umbral-pre {ratio:.2}",
            median(a) * 1e6,
            median(b) * 1e6,
        );
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(60)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_pre
}

fn main() {
    if std::env::args().any(|a| a == "--bench") {
        interleaved_ratios();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
