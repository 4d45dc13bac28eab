//! Shared set-up for the PRE integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use medfabric_crypto::pre::{
    self, Capsule, CapsuleFrag, KeySeed, PublicKey, SecretKey, Signer, VerifiedCapsuleFrag,
    VerifiedKeyFrag,
};
use rand::rngs::OsRng;

/// A delegator (with its fragment signer) and a receiver.
pub struct Parties {
    pub delegating_sk: SecretKey,
    pub delegating_pk: PublicKey,
    pub signer: Signer,
    pub verifying_pk: PublicKey,
    pub receiving_sk: SecretKey,
    pub receiving_pk: PublicKey,
}

impl Parties {
    pub fn new() -> Self {
        let delegating_sk = SecretKey::random(&mut OsRng);
        let signer = Signer::new(SecretKey::random(&mut OsRng));
        let receiving_sk = SecretKey::random(&mut OsRng);
        Self {
            delegating_pk: delegating_sk.public_key(),
            verifying_pk: signer.verifying_key(),
            receiving_pk: receiving_sk.public_key(),
            delegating_sk,
            signer,
            receiving_sk,
        }
    }

    pub fn kfrags(&self, threshold: usize, shares: usize) -> Vec<VerifiedKeyFrag> {
        pre::generate_kfrags(
            &mut OsRng,
            &self.delegating_sk,
            &self.receiving_pk,
            &self.signer,
            threshold,
            shares,
        )
        .unwrap()
    }

    pub fn encapsulate(&self) -> (Capsule, KeySeed) {
        pre::encapsulate(&mut OsRng, &self.delegating_pk)
    }

    /// Re-encrypts with every fragment (each through its wire form, as a proxy would
    /// receive it) and returns the unverified capsule fragments.
    pub fn reencrypt_all(&self, capsule: &Capsule, kfrags: &[VerifiedKeyFrag]) -> Vec<CapsuleFrag> {
        kfrags
            .iter()
            .map(|k| {
                let kfrag = pre::KeyFrag::from_bytes(&k.to_bytes()).unwrap();
                let kfrag = kfrag
                    .verify(&self.delegating_pk, &self.receiving_pk, &self.verifying_pk)
                    .unwrap();
                let cfrag = pre::reencrypt(&mut OsRng, capsule, &kfrag);
                CapsuleFrag::from_bytes(&cfrag.to_bytes()).unwrap()
            })
            .collect()
    }

    pub fn verify_cfrag(&self, capsule: &Capsule, cfrag: CapsuleFrag) -> VerifiedCapsuleFrag {
        cfrag
            .verify(
                capsule,
                &self.delegating_pk,
                &self.receiving_pk,
                &self.verifying_pk,
            )
            .unwrap()
    }

    pub fn decrypt(
        &self,
        capsule: &Capsule,
        cfrags: &[VerifiedCapsuleFrag],
    ) -> Result<KeySeed, medfabric_crypto::Error> {
        pre::decrypt_reencrypted(&self.receiving_sk, &self.delegating_pk, capsule, cfrags)
    }
}

/// All `k`-element subsets of `0..n`, in lexicographic order.
pub fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    fn go(start: usize, n: usize, k: usize, cur: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if cur.len() == k {
            out.push(cur.clone());
            return;
        }
        for i in start..n {
            cur.push(i);
            go(i + 1, n, k, cur, out);
            cur.pop();
        }
    }
    let mut out = Vec::new();
    go(0, n, k, &mut Vec::new(), &mut out);
    out
}

/// The byte ranges of the `bin 8` fields of a serialized capsule or fragment, in order
/// (the wire forms are MessagePack arrays of byte strings and booleans).
pub fn bin_fields(bytes: &[u8]) -> Vec<std::ops::Range<usize>> {
    try_bin_fields(bytes).expect("a MessagePack wire form")
}

/// [`bin_fields`], or `None` if `bytes` is not such a sequence.
pub fn try_bin_fields(bytes: &[u8]) -> Option<Vec<std::ops::Range<usize>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0x90..=0x9f | 0xc2 | 0xc3 => i += 1,
            0xc4 => {
                let len = usize::from(*bytes.get(i + 1)?);
                if i + 2 + len > bytes.len() {
                    return None;
                }
                out.push(i + 2..i + 2 + len);
                i += 2 + len;
            }
            _ => return None,
        }
    }
    Some(out)
}
