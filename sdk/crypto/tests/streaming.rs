//! The streaming forms used for large attachments: the incremental CES leaf hash
//! ([`LeafHasher`]), signing and proving from leaf hashes, and replaying an encryption from
//! its transcript (and refusing to when the plaintext changed in between).
#![allow(clippy::unwrap_used)]

use medfabric_crypto::Error;
use medfabric_crypto::ces::{self, ExtractionPolicy, LeafHasher, Salt, SubsetProof};
use medfabric_crypto::envelope::{
    self, SEGMENT_SIZE, SectionContext, SectionKey, SegmentEncryptor, TAG_LEN,
};
use medfabric_crypto::keys::P256SigningKey;
use medfabric_crypto::record::{Pseudonym, Record, RecordId, Section, SectionId};
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut v = vec![0u8; len];
    StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

fn record(sections: Vec<Section>) -> Record {
    Record::new(
        RecordId::new("rec-s").unwrap(),
        2,
        Pseudonym::new("dr").unwrap(),
        Pseudonym::new("pt").unwrap(),
        sections,
    )
    .unwrap()
}

#[test]
fn leaf_hasher_matches_leaf_digest_for_any_split() {
    let mut rng = StdRng::seed_from_u64(1);
    for len in [0usize, 1, 63, 64 * 1024, 200_001] {
        let section = Section::attachment(
            SectionId::new("img").unwrap(),
            "image/png",
            bytes(len as u64, len),
        )
        .unwrap();
        let salt = Salt::generate(&mut rng);
        let expected = ces::leaf_digest(&salt, 3, &section);
        let mut h = LeafHasher::new(&salt, 3, &section.id, &section.content_type);
        let mut rest = &section.bytes[..];
        while !rest.is_empty() {
            let n = rng.gen_range(1..=rest.len().min(70_000));
            h.update(&rest[..n]);
            rest = &rest[n..];
        }
        assert_eq!(h.finish(), expected, "len {len}");
        // and it is a commitment to index, salt and bytes
        let other = LeafHasher::new(&salt, 4, &section.id, &section.content_type).finish();
        assert_ne!(other, expected);
    }
}

#[test]
fn signing_and_proving_from_leaves_equals_signing_the_record() {
    let mut rng = StdRng::seed_from_u64(2);
    let author = P256SigningKey::generate(&mut rng).unwrap();
    let sections: Vec<Section> = (0..5)
        .map(|i| {
            Section::fhir(
                SectionId::new(format!("s{i}")).unwrap(),
                bytes(i, 100 + i as usize),
            )
        })
        .collect();
    let rec = record(sections);
    let salts: Vec<Salt> = (0..5).map(|_| Salt::generate(&mut rng)).collect();
    let leaves: Vec<[u8; 32]> = rec
        .sections()
        .iter()
        .zip(&salts)
        .zip(0u32..)
        .map(|((s, salt), i)| ces::leaf_digest(salt, i, s))
        .collect();
    let policy = ExtractionPolicy::new().requires(4, [3]).unwrap();
    let signed = ces::sign_leaves(
        &author,
        &rec.id,
        rec.version,
        salts.clone(),
        &leaves,
        policy.clone(),
    )
    .unwrap();
    signed.signature().verify(author.verifying_key()).unwrap();

    // Same subset proofs whether proved from the record or from the leaves.
    let from_record = signed.extract_digests(&rec, &[3, 4]).unwrap();
    let from_leaves = signed
        .extract_digests_from_leaves(&leaves, &[4, 3])
        .unwrap();
    assert_eq!(from_record, from_leaves);
    SubsetProof::from_bytes(&from_leaves.to_bytes())
        .unwrap()
        .verify(author.verifying_key())
        .unwrap();

    // The policy still holds, and leaves that are not the signed ones are refused.
    assert!(signed.extract_digests_from_leaves(&leaves, &[4]).is_err());
    let mut wrong = leaves.clone();
    wrong[0][0] ^= 1;
    assert!(signed.extract_digests_from_leaves(&wrong, &[3]).is_err());
    assert!(
        signed
            .extract_digests_from_leaves(&leaves[..4], &[3])
            .is_err()
    );

    // Inconsistent input is refused before signing.
    let bad = ces::sign_leaves(
        &author,
        &rec.id,
        2,
        salts[..4].to_vec(),
        &leaves,
        policy.clone(),
    );
    assert!(matches!(bad, Err(Error::InvalidInput(_))));
    let none = ces::sign_leaves(&author, &rec.id, 2, vec![], &[], ExtractionPolicy::new());
    assert!(matches!(none, Err(Error::InvalidInput(_))));
    let out_of_range = ExtractionPolicy::new().never_alone(9).unwrap();
    assert!(ces::sign_leaves(&author, &rec.id, 2, salts, &leaves, out_of_range).is_err());
}

/// Encrypts `plaintext` segment by segment; returns the ciphertext and the transcript.
fn first_pass(
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    rng: &mut StdRng,
    plaintext: &[u8],
) -> (Vec<u8>, envelope::EncryptionTranscript) {
    let (mut enc, header) = SegmentEncryptor::new(key, ctx, rng).unwrap();
    let mut out = header.to_vec();
    let mut chunks = plaintext.chunks(SEGMENT_SIZE).peekable();
    if chunks.peek().is_none() {
        let mut buf = Vec::new();
        enc.seal_segment(&mut buf, true).unwrap();
        out.extend_from_slice(&buf);
    }
    while let Some(c) = chunks.next() {
        let mut buf = c.to_vec();
        enc.seal_segment(&mut buf, chunks.peek().is_none()).unwrap();
        out.extend_from_slice(&buf);
    }
    (out, enc.finish().unwrap())
}

fn replay(
    key: &SectionKey,
    ctx: &SectionContext<'_>,
    t: &envelope::EncryptionTranscript,
    plaintext: &[u8],
) -> Result<Vec<u8>, Error> {
    let mut r = t.replay(key, ctx)?;
    let mut out = t.header().to_vec();
    let mut chunks = plaintext.chunks(SEGMENT_SIZE).peekable();
    if chunks.peek().is_none() {
        let mut buf = Vec::new();
        r.seal_segment(&mut buf, true)?;
        out.extend_from_slice(&buf);
    }
    while let Some(c) = chunks.next() {
        let mut buf = c.to_vec();
        r.seal_segment(&mut buf, chunks.peek().is_none())?;
        out.extend_from_slice(&buf);
    }
    r.finish()?;
    Ok(out)
}

#[test]
fn replay_reproduces_the_ciphertext_byte_for_byte() {
    let mut rng = StdRng::seed_from_u64(3);
    let (rid, sid) = (RecordId::new("r").unwrap(), SectionId::new("s").unwrap());
    let ctx = SectionContext::new(&rid, 1, &sid);
    let key = SectionKey::generate(&mut rng);
    for len in [0usize, 5, SEGMENT_SIZE, 3 * SEGMENT_SIZE + 17] {
        let pt = bytes(len as u64, len);
        let (ct, t) = first_pass(&key, &ctx, &mut rng, &pt);
        assert_eq!(t.segments(), len.div_ceil(SEGMENT_SIZE).max(1));
        assert_eq!(replay(&key, &ctx, &t, &pt).unwrap(), ct);
        assert_eq!(envelope::decrypt(&key, &ctx, &ct).unwrap(), pt);
    }
}

#[test]
fn replay_refuses_a_changed_plaintext_and_releases_nothing() {
    let mut rng = StdRng::seed_from_u64(4);
    let (rid, sid) = (RecordId::new("r").unwrap(), SectionId::new("s").unwrap());
    let ctx = SectionContext::new(&rid, 1, &sid);
    let key = SectionKey::generate(&mut rng);
    let pt = bytes(9, 3 * SEGMENT_SIZE + 100);
    let (_, t) = first_pass(&key, &ctx, &mut rng, &pt);

    // one flipped bit in the second segment: refused at that segment, buffer wiped
    let mut r = t.replay(&key, &ctx).unwrap();
    let mut first = pt[..SEGMENT_SIZE].to_vec();
    r.seal_segment(&mut first, false).unwrap();
    let mut second = pt[SEGMENT_SIZE..2 * SEGMENT_SIZE].to_vec();
    second[7] ^= 0x10;
    let err = r.seal_segment(&mut second, false).unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(
        second.is_empty(),
        "the refused ciphertext is not handed out"
    );

    // longer, shorter, or cut at a segment boundary: all refused
    let mut longer = pt.clone();
    longer.extend_from_slice(&[1; SEGMENT_SIZE]);
    assert!(replay(&key, &ctx, &t, &longer).is_err());
    assert!(replay(&key, &ctx, &t, &pt[..pt.len() - 1]).is_err());
    assert!(replay(&key, &ctx, &t, &pt[..3 * SEGMENT_SIZE]).is_err());
    assert!(replay(&key, &ctx, &t, &pt[..2 * SEGMENT_SIZE]).is_err());

    // another key or context does not even start
    assert!(t.replay(&SectionKey::generate(&mut rng), &ctx).is_err());
    let other = SectionId::new("t").unwrap();
    let mut r = t
        .replay(&key, &SectionContext::new(&rid, 1, &other))
        .unwrap();
    let mut seg = pt[..SEGMENT_SIZE].to_vec();
    assert!(
        r.seal_segment(&mut seg, false).is_err(),
        "AAD differs: tag differs"
    );
    assert_eq!(TAG_LEN, 16);

    // an unfinished encryption has no transcript
    let (mut enc, _) = SegmentEncryptor::new(&key, &ctx, &mut rng).unwrap();
    let mut buf = vec![0; SEGMENT_SIZE];
    enc.seal_segment(&mut buf, false).unwrap();
    assert!(enc.finish().is_err());
}
