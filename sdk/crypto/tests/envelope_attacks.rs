//! Attacks on section ciphertexts that must all fail: bit flips in the header and in every
//! segment, truncation, reordering, swapping (within a ciphertext and between two sections under
//! the same key), moving a section to another record, version or section id, and wrong keys.
#![allow(clippy::unwrap_used)]

use medfabric_crypto::Error;
use medfabric_crypto::envelope::{
    self, HEADER_LEN, SEGMENT_SIZE, SectionContext, SectionKey, TAG_LEN,
};
use medfabric_crypto::record::{RecordId, SectionId};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

const FULL: usize = SEGMENT_SIZE + TAG_LEN;

struct Fixture {
    rid: RecordId,
    sid: SectionId,
    key: SectionKey,
    pt: Vec<u8>,
    ct: Vec<u8>,
}

impl Fixture {
    /// Three full segments and a short fourth.
    fn new() -> Self {
        let rid = RecordId::new("rec-1").unwrap();
        let sid = SectionId::new("imaging").unwrap();
        let mut rng = StdRng::seed_from_u64(42);
        let key = SectionKey::generate(&mut rng);
        let mut pt = vec![0u8; 3 * SEGMENT_SIZE + 1000];
        rng.fill_bytes(&mut pt);
        let ct =
            envelope::encrypt(&key, &SectionContext::new(&rid, 5, &sid), &mut rng, &pt).unwrap();
        Self {
            rid,
            sid,
            key,
            pt,
            ct,
        }
    }

    fn ctx(&self) -> SectionContext<'_> {
        SectionContext::new(&self.rid, 5, &self.sid)
    }

    /// Both decryption paths must reject `ct`; the in-memory one must return nothing.
    fn assert_rejected(&self, ct: &[u8], what: &str) {
        assert_rejected_with(&self.key, &self.ctx(), ct, what);
    }

    fn segment(&self, i: usize) -> &[u8] {
        let start = HEADER_LEN + i * FULL;
        &self.ct[start..(start + FULL).min(self.ct.len())]
    }
}

fn assert_rejected_with(key: &SectionKey, ctx: &SectionContext<'_>, ct: &[u8], what: &str) {
    let r = envelope::decrypt(key, ctx, ct);
    assert!(
        matches!(r, Err(Error::Decryption | Error::Malformed(_))),
        "{what}: in-memory decrypt accepted or failed oddly: {:?}",
        r.map(|v| v.len())
    );
    let mut sink = Vec::new();
    let r = envelope::decrypt_stream(key, ctx, ct, &mut sink);
    assert!(
        matches!(r, Err(Error::Decryption | Error::Malformed(_))),
        "{what}: stream decrypt accepted"
    );
}

#[test]
fn fixture_decrypts() {
    let f = Fixture::new();
    assert_eq!(envelope::decrypt(&f.key, &f.ctx(), &f.ct).unwrap(), f.pt);
}

#[test]
fn every_header_bit_flip_is_rejected() {
    let f = Fixture::new();
    for byte in 0..HEADER_LEN {
        for bit in 0..8 {
            let mut ct = f.ct.clone();
            ct[byte] ^= 1 << bit;
            f.assert_rejected(&ct, &format!("header byte {byte} bit {bit}"));
        }
    }
}

#[test]
fn bit_flips_in_every_segment_are_rejected() {
    let f = Fixture::new();
    let body = f.ct.len() - HEADER_LEN;
    let segments = body.div_ceil(FULL);
    for seg in 0..segments {
        let start = HEADER_LEN + seg * FULL;
        let end = (start + FULL).min(f.ct.len());
        // First byte, a middle byte, the first and last tag bytes.
        for pos in [start, (start + end) / 2, end - TAG_LEN, end - 1] {
            let mut ct = f.ct.clone();
            ct[pos] ^= 0x01;
            f.assert_rejected(&ct, &format!("segment {seg} byte {pos}"));
        }
    }
}

#[test]
fn truncation_is_rejected() {
    let f = Fixture::new();
    let last_start = HEADER_LEN + 3 * FULL;
    // Drop the last segment: the new last segment was sealed as non-final.
    f.assert_rejected(&f.ct[..last_start], "drop last segment");
    // Drop the last two segments.
    f.assert_rejected(&f.ct[..last_start - FULL], "drop two segments");
    // Cut mid-segment, inside the last and inside an earlier one.
    f.assert_rejected(&f.ct[..last_start + 100], "cut in last segment");
    f.assert_rejected(&f.ct[..HEADER_LEN + FULL + 5000], "cut in second segment");
    f.assert_rejected(&f.ct[..f.ct.len() - 1], "one byte short");
    // Header only, and a partial header.
    f.assert_rejected(&f.ct[..HEADER_LEN], "header only");
    f.assert_rejected(&f.ct[..HEADER_LEN - 1], "partial header");
    f.assert_rejected(&[], "empty");
}

#[test]
fn appended_data_is_rejected() {
    let f = Fixture::new();
    let mut ct = f.ct.clone();
    ct.push(0);
    f.assert_rejected(&ct, "one byte appended");
    let mut ct = f.ct.clone();
    ct.extend_from_slice(f.segment(0));
    f.assert_rejected(&ct, "segment replayed at the end");
}

#[test]
fn reordered_and_swapped_segments_are_rejected() {
    let f = Fixture::new();
    let header = &f.ct[..HEADER_LEN];
    let build = |order: &[usize]| -> Vec<u8> {
        let mut ct = header.to_vec();
        for &i in order {
            ct.extend_from_slice(f.segment(i));
        }
        ct
    };
    assert_eq!(
        envelope::decrypt(&f.key, &f.ctx(), &build(&[0, 1, 2, 3])).unwrap(),
        f.pt
    );
    f.assert_rejected(&build(&[1, 0, 2, 3]), "swap 0 and 1");
    f.assert_rejected(&build(&[0, 2, 1, 3]), "swap 1 and 2");
    f.assert_rejected(&build(&[0, 1, 3]), "drop a middle segment");
    f.assert_rejected(&build(&[0, 0, 2, 3]), "duplicate a segment");
    f.assert_rejected(&build(&[0, 1, 2, 2, 3]), "insert a duplicate");
}

#[test]
fn segments_do_not_move_between_sections_under_the_same_key() {
    // Same key, same context, two encryptions: header and segments must not mix.
    let f = Fixture::new();
    let mut rng = StdRng::seed_from_u64(7);
    let other = envelope::encrypt(&f.key, &f.ctx(), &mut rng, &f.pt).unwrap();
    let mut spliced = f.ct[..HEADER_LEN + FULL].to_vec();
    spliced.extend_from_slice(&other[HEADER_LEN + FULL..]);
    f.assert_rejected(&spliced, "second half from another encryption");
    let mut header_swapped = other[..HEADER_LEN].to_vec();
    header_swapped.extend_from_slice(&f.ct[HEADER_LEN..]);
    f.assert_rejected(&header_swapped, "header from another encryption");

    // Same key, different section id.
    let sid2 = SectionId::new("report").unwrap();
    let ctx2 = SectionContext::new(&f.rid, 5, &sid2);
    let ct2 = envelope::encrypt(&f.key, &ctx2, &mut rng, &f.pt).unwrap();
    let mut mixed = ct2[..HEADER_LEN + FULL].to_vec();
    mixed.extend_from_slice(&f.ct[HEADER_LEN + FULL..]);
    assert_rejected_with(&f.key, &ctx2, &mixed, "segments from another section");
    assert_rejected_with(
        &f.key,
        &f.ctx(),
        &mixed,
        "segments from another section (other ctx)",
    );
}

#[test]
fn section_moved_to_another_record_version_or_section_is_rejected() {
    let f = Fixture::new();
    let other_rid = RecordId::new("rec-2").unwrap();
    let other_sid = SectionId::new("imaging2").unwrap();
    assert_rejected_with(
        &f.key,
        &SectionContext::new(&other_rid, 5, &f.sid),
        &f.ct,
        "other record",
    );
    assert_rejected_with(
        &f.key,
        &SectionContext::new(&f.rid, 6, &f.sid),
        &f.ct,
        "other version",
    );
    assert_rejected_with(
        &f.key,
        &SectionContext::new(&f.rid, 4, &f.sid),
        &f.ct,
        "older version",
    );
    assert_rejected_with(
        &f.key,
        &SectionContext::new(&f.rid, 5, &other_sid),
        &f.ct,
        "other section",
    );
}

#[test]
fn wrong_key_is_rejected() {
    let f = Fixture::new();
    let wrong = SectionKey::generate(&mut StdRng::seed_from_u64(99));
    assert_rejected_with(&wrong, &f.ctx(), &f.ct, "wrong key");
}

#[test]
fn empty_plaintext_cannot_be_extended_or_emptied() {
    let rid = RecordId::new("r").unwrap();
    let sid = SectionId::new("s").unwrap();
    let ctx = SectionContext::new(&rid, 0, &sid);
    let mut rng = StdRng::seed_from_u64(8);
    let key = SectionKey::generate(&mut rng);
    let ct = envelope::encrypt(&key, &ctx, &mut rng, b"").unwrap();
    assert_eq!(ct.len(), HEADER_LEN + TAG_LEN);
    assert_eq!(envelope::decrypt(&key, &ctx, &ct).unwrap(), b"");
    assert_rejected_with(&key, &ctx, &ct[..HEADER_LEN], "tag removed");
    // An exactly-one-segment plaintext cut to an empty final segment is rejected too.
    let full = envelope::encrypt(&key, &ctx, &mut rng, &vec![9u8; SEGMENT_SIZE]).unwrap();
    let mut forged = full[..HEADER_LEN].to_vec();
    forged.extend_from_slice(&full[HEADER_LEN + SEGMENT_SIZE..]);
    assert_rejected_with(&key, &ctx, &forged, "only the tag kept");
}

#[test]
fn stream_decrypt_reports_failure_after_partial_output() {
    // Documented behaviour: authenticated segments are written before a later one fails.
    let f = Fixture::new();
    let mut ct = f.ct.clone();
    let last = ct.len() - 1;
    ct[last] ^= 1;
    let mut out = Vec::new();
    assert!(envelope::decrypt_stream(&f.key, &f.ctx(), &ct[..], &mut out).is_err());
    assert_eq!(out.len(), 3 * SEGMENT_SIZE);
    assert_eq!(out[..], f.pt[..3 * SEGMENT_SIZE]);
}
