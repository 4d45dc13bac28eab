//! Uploads a generated object (default 100 MiB) with `BlobStore::put_stream`, then reads it
//! back with `get_verified_stream`, for measuring peak memory:
//!
//! ```sh
//! cargo build --release -p medfabric-blobstore --example upload_100mib
//! /usr/bin/time -v target/release/examples/upload_100mib local /tmp/blobs      # local folder
//! /usr/bin/time -v target/release/examples/upload_100mib s3                    # MEDFABRIC_S3_* env
//! /usr/bin/time -v target/release/examples/upload_100mib local /tmp/blobs --raw-put
//! ```
//!
//! The bytes are generated 1 MiB at a time as they are pulled (like the output of the
//! streaming encryption), so the process never holds the object; `--raw-put` instead builds
//! the whole object in memory and sends it with one raw `object_store` put (the comparison).
//! `--expecting` uploads with `put_stream_expecting` instead (the record pipeline's path: the
//! digest is computed first, in a pass over the generated chunks that keeps none of them).
//! `--size MIB` changes the size.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use bytes::Bytes;
use futures_util::StreamExt;
use medfabric_blobstore::object_store::ObjectStoreExt;
use medfabric_blobstore::object_store::path::Path;
use medfabric_blobstore::{BlobStore, BlobStoreConfig, Digest, S3Config, S3Credentials};
use sha2::Digest as _;

const MIB: usize = 1024 * 1024;

fn chunk(index: usize) -> Bytes {
    let mut state = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(MIB);
    while out.len() < MIB {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.into()
}

fn open(args: &[String]) -> BlobStore {
    match args.first().map(String::as_str) {
        Some("local") => {
            let root = args.get(1).expect("usage: upload_100mib local DIR");
            BlobStore::open(&BlobStoreConfig::local(root)).unwrap()
        }
        Some("s3") => {
            let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
            let mut config = S3Config::new(
                Some(var("MEDFABRIC_S3_ENDPOINT")),
                var("MEDFABRIC_S3_BUCKET"),
                var("MEDFABRIC_S3_REGION"),
                S3Credentials::new(
                    var("MEDFABRIC_S3_ACCESS_KEY_ID"),
                    var("MEDFABRIC_S3_SECRET_ACCESS_KEY"),
                ),
            );
            config.dangerous_allow_http = config
                .endpoint
                .as_deref()
                .is_some_and(|e| e.starts_with("http://127.0.0.1:"));
            config.key_prefix = Some("example".into());
            BlobStore::open(&BlobStoreConfig::S3(config)).unwrap()
        }
        _ => panic!("usage: upload_100mib (local DIR | s3) [--raw-put] [--size MIB]"),
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store = open(&args);
    let raw_put = args.iter().any(|a| a == "--raw-put");
    let mib: usize = args
        .iter()
        .position(|a| a == "--size")
        .and_then(|i| args.get(i + 1))
        .map_or(100, |s| s.parse().expect("--size MIB"));

    let start = Instant::now();
    if raw_put {
        let mut whole = Vec::with_capacity(mib * MIB);
        for i in 0..mib {
            whole.extend_from_slice(&chunk(i));
        }
        let key = Path::from("example/raw-put");
        store
            .unverified_object_store()
            .put(&key, Bytes::from(whole).into())
            .await
            .unwrap();
        println!("raw put of {mib} MiB in {:?}", start.elapsed());
        return;
    }

    let input = futures_util::stream::iter(0..mib).map(|i| Ok::<_, std::io::Error>(chunk(i)));
    let receipt = if args.iter().any(|a| a == "--expecting") {
        let mut hasher = sha2::Sha256::new();
        for i in 0..mib {
            hasher.update(chunk(i));
        }
        let digest = Digest::from(<[u8; 32]>::from(hasher.finalize()));
        store
            .put_stream_expecting(&digest, (mib * MIB) as u64, input)
            .await
            .unwrap()
    } else {
        store.put_stream(input).await.unwrap()
    };
    let uploaded = start.elapsed();
    let mut stream = store
        .get_verified_stream(&receipt.digest, receipt.size)
        .await
        .unwrap();
    let mut read = 0u64;
    while let Some(bytes) = stream.next().await {
        read += bytes.unwrap().len() as u64;
    }
    assert_eq!(read, receipt.size);
    println!(
        "uploaded {} bytes as {} ({:?}, {} parts) in {uploaded:?}; verified read back in {:?}",
        receipt.size,
        receipt.key,
        receipt.outcome,
        receipt.parts,
        start.elapsed() - uploaded
    );
    store.delete(&receipt.digest).await.unwrap();
}
