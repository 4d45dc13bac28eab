//! Small shared pieces: hashing, nonces, timestamps and deadline-bound gRPC calls.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest as _, Sha256};

use crate::error::{Error, GrpcStatus};

/// Length of the nonce in a signature header (as Fabric's own clients use).
pub(crate) const NONCE_LEN: usize = 24;

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// A fresh random nonce from the operating system's CSPRNG.
pub(crate) fn nonce() -> Result<[u8; NONCE_LEN], Error> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).map_err(|e| Error::Sign(Box::new(e)))?;
    Ok(nonce)
}

/// Fabric's transaction id: hex(SHA-256(nonce ‖ creator)).
pub(crate) fn transaction_id(nonce: &[u8], creator: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(nonce);
    hasher.update(creator);
    hex::encode(hasher.finalize())
}

pub(crate) fn timestamp(now: SystemTime) -> prost_types::Timestamp {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    prost_types::Timestamp {
        seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
    }
}

/// A request carrying the deadline as `grpc-timeout`, so the server gives up too.
pub(crate) fn request<T>(message: T, deadline: Option<Duration>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(deadline) = deadline {
        request.set_timeout(deadline);
    }
    request
}

/// Runs a unary call, bounded by the deadline on this side as well (the server may never
/// answer at all).
pub(crate) async fn unary<T>(
    deadline: Option<Duration>,
    call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
) -> Result<T, GrpcStatus> {
    let Some(deadline) = deadline else {
        return call
            .await
            .map(tonic::Response::into_inner)
            .map_err(GrpcStatus::from);
    };
    let started = Instant::now();
    match tokio::time::timeout(deadline, call).await {
        Ok(Ok(response)) => Ok(response.into_inner()),
        Ok(Err(status)) => {
            let mut status = GrpcStatus::from(status);
            // Some servers (tonic's among them) answer an expired `grpc-timeout` with
            // CANCELLED; report it as the deadline it is, as grpc-go does.
            if status.code == tonic::Code::Cancelled && started.elapsed() >= deadline {
                status.code = tonic::Code::DeadlineExceeded;
            }
            Err(status)
        }
        Err(_) => Err(GrpcStatus::local(
            tonic::Code::DeadlineExceeded,
            format!("no answer within {deadline:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_id_is_the_hex_sha256_of_nonce_and_creator() {
        // Independent computation of the same rule.
        let id = transaction_id(b"nonce", b"creator");
        assert_eq!(id, hex::encode(sha256(b"noncecreator")));
        assert_eq!(id.len(), 64);
    }
}
