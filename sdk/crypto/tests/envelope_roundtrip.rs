//! Envelope encryption round trips: in memory, streaming, segment boundaries, and a property
//! test over random records (1 to 64 sections, 0 bytes to 8 MiB).
#![allow(clippy::unwrap_used)]

use std::io::{self, Read};

use medfabric_crypto::envelope::{
    self, HEADER_LEN, SEGMENT_SIZE, SectionContext, SectionKey, SegmentDecryptor, SegmentEncryptor,
    TAG_LEN,
};
use medfabric_crypto::record::{RecordId, SectionId};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

fn ids() -> (RecordId, SectionId) {
    (
        RecordId::new("rec-1").unwrap(),
        SectionId::new("sec-a").unwrap(),
    )
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// A reader that hands out at most `max` bytes per call, to exercise partial reads.
struct ShortReads<R> {
    inner: R,
    max: usize,
}

impl<R: Read> Read for ShortReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max);
        self.inner.read(&mut buf[..n])
    }
}

const BOUNDARY_SIZES: &[usize] = &[
    0,
    1,
    15,
    16,
    17,
    SEGMENT_SIZE - 1,
    SEGMENT_SIZE,
    SEGMENT_SIZE + 1,
    2 * SEGMENT_SIZE - 1,
    2 * SEGMENT_SIZE,
    2 * SEGMENT_SIZE + 1,
    3 * SEGMENT_SIZE + 12345,
];

#[test]
fn in_memory_round_trip_at_segment_boundaries() {
    let (rid, sid) = ids();
    let ctx = SectionContext::new(&rid, 7, &sid);
    let mut rng = StdRng::seed_from_u64(1);
    for &len in BOUNDARY_SIZES {
        let key = SectionKey::generate(&mut rng);
        let pt = bytes(len as u64, len);
        let ct = envelope::encrypt(&key, &ctx, &mut rng, &pt).unwrap();
        assert_eq!(
            ct.len() as u64,
            envelope::ciphertext_len(len as u64).unwrap(),
            "len {len}"
        );
        assert_eq!(
            envelope::plaintext_len(ct.len() as u64).unwrap(),
            len as u64
        );
        assert_eq!(envelope::decrypt(&key, &ctx, &ct).unwrap(), pt, "len {len}");
    }
}

#[test]
fn streaming_matches_in_memory_byte_for_byte() {
    let (rid, sid) = ids();
    let ctx = SectionContext::new(&rid, 7, &sid);
    let key = SectionKey::generate(&mut StdRng::seed_from_u64(2));
    for &len in BOUNDARY_SIZES {
        let pt = bytes(len as u64 + 99, len);
        let in_memory = envelope::encrypt(&key, &ctx, &mut StdRng::seed_from_u64(3), &pt).unwrap();
        let mut streamed = Vec::new();
        let reader = ShortReads {
            inner: &pt[..],
            max: 4093,
        };
        let n = envelope::encrypt_stream(
            &key,
            &ctx,
            &mut StdRng::seed_from_u64(3),
            reader,
            &mut streamed,
        )
        .unwrap();
        assert_eq!(n, len as u64);
        assert_eq!(streamed, in_memory, "len {len}");

        let mut out = Vec::new();
        let reader = ShortReads {
            inner: &streamed[..],
            max: 7001,
        };
        let n = envelope::decrypt_stream(&key, &ctx, reader, &mut out).unwrap();
        assert_eq!(n, len as u64);
        assert_eq!(out, pt, "len {len}");
    }
}

#[test]
fn segment_api_round_trip_and_layout() {
    let (rid, sid) = ids();
    let ctx = SectionContext::new(&rid, 1, &sid);
    let mut rng = StdRng::seed_from_u64(4);
    let key = SectionKey::generate(&mut rng);
    let (mut enc, header) = SegmentEncryptor::new(&key, &ctx, &mut rng).unwrap();
    assert_eq!(&header[..4], b"MFSE");
    assert_eq!(header.len(), HEADER_LEN);
    let mut seg1 = vec![1u8; SEGMENT_SIZE];
    let mut seg2 = vec![2u8; 10];
    // A non-final segment must be full; a short one is refused.
    assert!(enc.seal_segment(&mut vec![0u8; 10], false).is_err());
    enc.seal_segment(&mut seg1, false).unwrap();
    enc.seal_segment(&mut seg2, true).unwrap();
    assert_eq!(seg1.len(), SEGMENT_SIZE + TAG_LEN);
    // Nothing may follow the last segment.
    assert!(enc.seal_segment(&mut vec![3u8; 1], true).is_err());

    let mut dec = SegmentDecryptor::new(&key, &ctx, &header).unwrap();
    dec.open_segment(&mut seg1, false).unwrap();
    dec.open_segment(&mut seg2, true).unwrap();
    assert_eq!(seg1, vec![1u8; SEGMENT_SIZE]);
    assert_eq!(seg2, vec![2u8; 10]);
}

#[test]
fn same_key_twice_gives_unrelated_ciphertexts() {
    let (rid, sid) = ids();
    let ctx = SectionContext::new(&rid, 1, &sid);
    let mut rng = StdRng::seed_from_u64(5);
    let key = SectionKey::generate(&mut rng);
    let a = envelope::encrypt(&key, &ctx, &mut rng, &[0u8; 100]).unwrap();
    let b = envelope::encrypt(&key, &ctx, &mut rng, &[0u8; 100]).unwrap();
    assert_ne!(a[HEADER_LEN..], b[HEADER_LEN..]);
}

#[test]
fn section_key_from_slice() {
    let mut rng = StdRng::seed_from_u64(6);
    let key = SectionKey::generate(&mut rng);
    let copy = SectionKey::from_slice(key.expose_secret()).unwrap();
    assert_eq!(copy.expose_secret(), key.expose_secret());
    assert!(SectionKey::from_slice(&[0u8; 31]).is_err());
}

#[test]
fn length_helpers_reject_impossible_lengths() {
    assert!(envelope::plaintext_len(0).is_err());
    assert!(envelope::plaintext_len(HEADER_LEN as u64).is_err());
    assert!(envelope::plaintext_len((HEADER_LEN + TAG_LEN - 1) as u64).is_err());
    assert_eq!(
        envelope::plaintext_len((HEADER_LEN + TAG_LEN) as u64).unwrap(),
        0
    );
    // A full segment followed by a bare tag would be an empty final segment: not canonical.
    let odd = (HEADER_LEN + SEGMENT_SIZE + TAG_LEN + TAG_LEN) as u64;
    assert!(envelope::plaintext_len(odd).is_err());
}

/// Section sizes for one random record: mostly small (FHIR-sized), some up to 256 KiB, and in
/// about one case in six a single section of up to 8 MiB, so the suite stays fast in debug.
fn record_sizes() -> impl Strategy<Value = Vec<usize>> {
    let small = prop_oneof![
        8 => 0usize..4096,
        2 => 4096usize..(256 << 10),
    ];
    (
        proptest::collection::vec(small, 1..=64),
        proptest::option::weighted(0.17, (0usize..64, (1usize << 20)..=(8 << 20))),
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
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_records_round_trip(sizes in record_sizes(), seed in any::<u64>(), version in any::<u64>()) {
        let rid = RecordId::new(format!("rec-{seed:x}")).unwrap();
        let mut rng = StdRng::seed_from_u64(seed);
        for (i, &len) in sizes.iter().enumerate() {
            let sid = SectionId::new(format!("s{i}")).unwrap();
            let ctx = SectionContext::new(&rid, version, &sid);
            let key = SectionKey::generate(&mut rng);
            let pt = bytes(seed ^ i as u64, len);
            let ct = envelope::encrypt(&key, &ctx, &mut rng, &pt).unwrap();
            prop_assert_eq!(ct.len() as u64, envelope::ciphertext_len(len as u64).unwrap());
            if i % 2 == 0 {
                prop_assert_eq!(envelope::decrypt(&key, &ctx, &ct).unwrap(), pt);
            } else {
                let mut out = Vec::with_capacity(len);
                envelope::decrypt_stream(&key, &ctx, &ct[..], &mut out).unwrap();
                prop_assert_eq!(out, pt);
            }
        }
    }
}
