//! Envelope throughput: encrypt and decrypt of a 1 MiB and a 100 MiB section, in memory and
//! streaming (Read → Write), AES-256-GCM STREAM with 64 KiB segments.
//!
//! `cargo bench -p medfabric-crypto --bench envelope`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medfabric_crypto::envelope::{self, SectionContext, SectionKey};
use medfabric_crypto::record::{RecordId, SectionId};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const SIZES: &[(&str, usize)] = &[("1MiB", 1 << 20), ("100MiB", 100 << 20)];

fn bench(c: &mut Criterion) {
    let rid = RecordId::new("bench-record").expect("valid id");
    let sid = SectionId::new("bench-section").expect("valid id");
    let ctx = SectionContext::new(&rid, 1, &sid);
    let mut rng = StdRng::seed_from_u64(1);
    let key = SectionKey::generate(&mut rng);

    let mut group = c.benchmark_group("envelope");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for &(name, len) in SIZES {
        let mut pt = vec![0u8; len];
        rng.fill_bytes(&mut pt);
        let ct = envelope::encrypt(&key, &ctx, &mut rng, &pt).expect("encrypt");
        let mut out = Vec::with_capacity(ct.len());
        group.throughput(Throughput::Bytes(len as u64));

        group.bench_function(BenchmarkId::new("encrypt", name), |b| {
            b.iter(|| envelope::encrypt(&key, &ctx, &mut rng, black_box(&pt)).expect("encrypt"))
        });
        group.bench_function(BenchmarkId::new("decrypt", name), |b| {
            b.iter(|| envelope::decrypt(&key, &ctx, black_box(&ct)).expect("decrypt"))
        });
        group.bench_function(BenchmarkId::new("encrypt_stream", name), |b| {
            b.iter(|| {
                out.clear();
                envelope::encrypt_stream(&key, &ctx, &mut rng, black_box(&pt[..]), &mut out)
                    .expect("encrypt")
            })
        });
        group.bench_function(BenchmarkId::new("decrypt_stream", name), |b| {
            b.iter(|| {
                out.clear();
                envelope::decrypt_stream(&key, &ctx, black_box(&ct[..]), &mut out).expect("decrypt")
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
