//! Object key layout.
//!
//! ```text
//! objects/sha256/<64 lowercase hex>   content-addressed objects (the only keys read back)
//! tmp/uploads/<32 hex>                multipart uploads in progress, before the create-only
//!                                     move to their content key
//! ```

use object_store::path::Path;

use crate::Digest;

/// The folder holding content-addressed objects.
pub(crate) const OBJECTS_PREFIX: &str = "objects/sha256";
/// The folder holding temporary uploads.
pub(crate) const TEMP_PREFIX: &str = "tmp/uploads";

pub(crate) fn objects_prefix() -> Path {
    Path::from_iter(["objects", "sha256"])
}

pub(crate) fn temp_prefix() -> Path {
    Path::from_iter(["tmp", "uploads"])
}

/// `objects/sha256/<hex>`.
pub(crate) fn object_key(digest: &Digest) -> Path {
    Path::from_iter(["objects", "sha256", digest.to_hex().as_str()])
}

/// A fresh temporary key. Random (not derived from the content, which is not known yet) so
/// that concurrent uploads never share one.
pub(crate) fn temp_key() -> Path {
    let id: [u8; 16] = rand::random();
    Path::from_iter(["tmp", "uploads", hex::encode(id).as_str()])
}

/// The digest named by a key under `objects/sha256/`, when the key is canonical.
pub(crate) fn digest_of_key(key: &Path) -> Option<Digest> {
    let mut parts = key.parts();
    let (a, b, c) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || a.as_ref() != "objects" || b.as_ref() != "sha256" {
        return None;
    }
    Digest::from_hex(c.as_ref()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip() {
        let d = Digest::of(b"x");
        let key = object_key(&d);
        assert_eq!(key.as_ref(), format!("{OBJECTS_PREFIX}/{d}"));
        assert_eq!(digest_of_key(&key), Some(d));
        assert_eq!(digest_of_key(&Path::from("objects/sha256/nothex")), None);
        assert_eq!(
            digest_of_key(&Path::from(format!("objects/sha256/{d}/extra"))),
            None
        );
        assert_eq!(
            digest_of_key(&Path::from(format!("other/sha256/{d}"))),
            None
        );
        assert!(temp_key().as_ref().starts_with(TEMP_PREFIX));
        assert_ne!(temp_key(), temp_key());
        assert_eq!(objects_prefix().as_ref(), OBJECTS_PREFIX);
        assert_eq!(temp_prefix().as_ref(), TEMP_PREFIX);
    }
}
