//! Rights change without re-upload: a section's ciphertext is made once; sharing it, and taking
//! it back to private, only re-wraps its 32-byte data key. The uploaded bytes never change.

#![allow(clippy::unwrap_used)]

use medfabric_crypto::envelope::{self, SectionContext, SectionKey};
use medfabric_crypto::pre::{
    CapsuleFrag, OwnerMasterKey, SecretKey, VerifiedCapsuleFrag, WrappedDataKey, generate_kfrags,
    reencrypt, wrap_data_key,
};
use medfabric_crypto::record::{RecordId, SectionId};
use rand::SeedableRng;
use rand::rngs::StdRng;

const CONTEXT: &[u8] = b"rec-1/v1/Observation-1";

fn cfrags_for(
    rng: &mut StdRng,
    master: &OwnerMasterKey,
    delegation: &[u8],
    wrapping: &WrappedDataKey,
    grantee: &SecretKey,
    proxies: usize,
) -> Vec<VerifiedCapsuleFrag> {
    let record_sk = master.record_key(delegation).unwrap();
    let record_pk = master.record_public_key(delegation).unwrap();
    let signer = master.signer();
    let kfrags = generate_kfrags(rng, &record_sk, &grantee.public_key(), &signer, 2, 3).unwrap();
    kfrags
        .iter()
        .take(proxies)
        .map(|kfrag| {
            let cfrag = reencrypt(rng, wrapping.capsule(), kfrag);
            let bytes = cfrag.to_bytes();
            CapsuleFrag::from_bytes(&bytes)
                .unwrap()
                .verify(
                    wrapping.capsule(),
                    &record_pk,
                    &grantee.public_key(),
                    &signer.verifying_key(),
                )
                .unwrap()
        })
        .collect()
}

#[test]
fn sharing_and_unsharing_a_section_rewraps_only_its_key() {
    let mut rng = StdRng::seed_from_u64(42);
    let record_id = RecordId::new("rec-1").unwrap();
    let section_id = SectionId::new("Observation-1").unwrap();
    let context = SectionContext::new(&record_id, 1, &section_id);
    let plaintext = br#"{"resourceType":"Observation","valueQuantity":{"value":72}}"#.repeat(500);

    // Upload once: the ciphertext and the owner-only wrapping of its key (a private section).
    let section_key = SectionKey::generate(&mut rng);
    let uploaded = envelope::encrypt(&section_key, &context, &mut rng, &plaintext).unwrap();
    let uploaded_copy = uploaded.clone();
    let master = OwnerMasterKey::random(&mut rng);
    let private_wrapping = wrap_data_key(
        &mut rng,
        &master.record_public_key(b"rec-1").unwrap(),
        section_key.expose_secret(),
        CONTEXT,
    )
    .unwrap();
    drop(section_key);

    // Share with Bob: the owner opens the key and delegates to Bob through 2-of-3 proxies.
    let bob = SecretKey::random(&mut rng);
    let owner_key = private_wrapping
        .open_original(&master.record_key(b"rec-1").unwrap(), CONTEXT)
        .unwrap();
    let cfrags = cfrags_for(&mut rng, &master, b"rec-1", &private_wrapping, &bob, 2);
    let bob_key = private_wrapping
        .open_reencrypted(
            &bob,
            &master.record_public_key(b"rec-1").unwrap(),
            &cfrags,
            CONTEXT,
        )
        .unwrap();
    assert_eq!(*bob_key, *owner_key);
    let bob_plaintext = envelope::decrypt(
        &SectionKey::from_slice(bob_key.as_slice()).unwrap(),
        &context,
        &uploaded,
    )
    .unwrap();
    assert_eq!(bob_plaintext, plaintext);

    // Back to private: the key is re-wrapped under a fresh delegation (rights version 2).
    // Bob's fragments for the old delegation open nothing, the owner still reads, and the
    // ciphertext is the same bytes as uploaded.
    let rewrapped = wrap_data_key(
        &mut rng,
        &master.record_public_key(b"rec-1#rights-2").unwrap(),
        &owner_key,
        CONTEXT,
    )
    .unwrap();
    assert!(
        rewrapped
            .open_reencrypted(
                &bob,
                &master.record_public_key(b"rec-1#rights-2").unwrap(),
                &cfrags,
                CONTEXT
            )
            .is_err(),
        "fragments from the old delegation must not open the new wrapping"
    );
    assert!(
        rewrapped
            .open_reencrypted(
                &bob,
                &master.record_public_key(b"rec-1").unwrap(),
                &cfrags,
                CONTEXT
            )
            .is_err(),
        "nor when the grantee names the old record key"
    );
    let owner_again = rewrapped
        .open_original(&master.record_key(b"rec-1#rights-2").unwrap(), CONTEXT)
        .unwrap();
    let owner_plaintext = envelope::decrypt(
        &SectionKey::from_slice(owner_again.as_slice()).unwrap(),
        &context,
        &uploaded,
    )
    .unwrap();
    assert_eq!(owner_plaintext, plaintext);
    assert_eq!(
        uploaded, uploaded_copy,
        "no rights change touches the uploaded ciphertext"
    );
    // The wrapping is small: re-wrapping costs bytes on the ledger, not a re-upload.
    assert_eq!(rewrapped.to_bytes().len(), WrappedDataKey::ENCODED_LEN);
    const { assert!(WrappedDataKey::ENCODED_LEN < 256) };

    // A wrapping moved to another section does not open.
    assert!(
        rewrapped
            .open_original(
                &master.record_key(b"rec-1#rights-2").unwrap(),
                b"rec-1/v1/other"
            )
            .is_err()
    );
}
