/// Every failure of the crypto core. Decryption and verification failures are deliberately
/// opaque: they never say which check failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Decryption failed (wrong key, tampered, truncated or reordered ciphertext).
    #[error("decryption failed")]
    Decryption,
    /// A signature, proof or fragment did not verify.
    #[error("verification failed")]
    Verification,
    /// Bytes could not be decoded as the named structure.
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// An argument was out of range or inconsistent (the named one): an empty or overlong id,
    /// a policy naming a section that does not exist, a disclosure the policy forbids.
    #[error("invalid {0}")]
    InvalidInput(&'static str),
    /// Reading the input or writing the output of a streaming operation failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The underlying crypto provider reported an internal failure (e.g. its RNG or a
    /// key-generation step failed); carries no detail on purpose.
    #[error("crypto provider failure")]
    Provider,
}
