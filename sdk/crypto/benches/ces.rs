//! Content extraction signatures: sign, extract and verify for records of 1, 8 and 64 sections
//! of 2 KiB each (FHIR-resource sized).
//!
//! `cargo bench -p medfabric-crypto --bench ces`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use medfabric_crypto::ces::{self, Disclosure, ExtractionPolicy};
use medfabric_crypto::keys::P256SigningKey;
use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section, SectionId};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const SECTION_BYTES: usize = 2048;

fn record(n: usize, rng: &mut StdRng) -> Record {
    let sections = (0..n)
        .map(|i| {
            let mut b = vec![0u8; SECTION_BYTES];
            rng.fill_bytes(&mut b);
            Section::fhir(SectionId::new(format!("s{i}")).expect("valid id"), b)
        })
        .collect();
    Record::new(
        RecordId::new("bench-record").expect("valid id"),
        1,
        Pseudonym::new("dr").expect("valid"),
        Pseudonym::new("pt").expect("valid"),
        sections,
    )
    .expect("valid record")
}

fn bench(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let author = P256SigningKey::generate(&mut rng).expect("keygen");
    let key = author.verifying_key();
    let mut group = c.benchmark_group("ces");
    for n in [1usize, 8, 64] {
        let rec = record(n, &mut rng);
        let all: Vec<u32> = (0..n as u32).collect();
        let half: Vec<u32> = (0..n as u32).step_by(2).collect();
        group.bench_function(BenchmarkId::new("sign", n), |b| {
            b.iter(|| {
                ces::sign(&mut rng, &author, black_box(&rec), ExtractionPolicy::new())
                    .expect("sign")
            })
        });
        let signed = ces::sign(&mut rng, &author, &rec, ExtractionPolicy::new()).expect("sign");
        group.bench_function(BenchmarkId::new("extract_half", n), |b| {
            b.iter(|| signed.extract(black_box(&rec), &half).expect("extract"))
        });
        for (label, subset) in [("verify_all", &all), ("verify_half", &half)] {
            let bytes = signed.extract(&rec, subset).expect("extract").to_bytes();
            group.bench_function(BenchmarkId::new(label, n), |b| {
                b.iter(|| {
                    Disclosure::from_bytes(black_box(&bytes))
                        .expect("decode")
                        .verify(key)
                        .expect("verify")
                })
            });
        }
        let proof = signed.extract_digests(&rec, &all).expect("extract");
        group.bench_function(BenchmarkId::new("verify_digests_all", n), |b| {
            b.iter(|| black_box(&proof).verify(key).expect("verify"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
