//! medfabric's record crypto core. No I/O, no global RNG: every operation that needs randomness
//! takes `&mut impl CryptoRngCore`, so the chaincode can link this crate for verification only.

pub mod ces;
pub mod envelope;
mod error;
pub mod keys;
pub mod pre;
pub mod record;

pub use error::Error;
