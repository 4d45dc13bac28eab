#![allow(clippy::unwrap_used)]
use bytes::Bytes;
use medfabric_blobstore::object_store::{ObjectStoreExt, WriteMultipart, path::Path};
use medfabric_blobstore::{BlobStore, BlobStoreConfig, Digest};
use std::time::Instant;
const MIB: usize = 1 << 20;
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let size: usize = std::env::args().nth(1).map_or(100, |s| s.parse().unwrap()) * MIB;
    let payload: Bytes = (0..size)
        .map(|i| (i * 7 + i / 4096) as u8)
        .collect::<Vec<u8>>()
        .into();
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&BlobStoreConfig::local(dir.path())).unwrap();
    let raw = store.unverified_object_store().clone();
    let digest = Digest::of(&payload);
    for _ in 0..5 {
        let t = Instant::now();
        let _ = Digest::of(&payload);
        let hash = t.elapsed();
        store.delete(&digest).await.unwrap();
        let chunks: Vec<std::io::Result<Bytes>> = (0..size)
            .step_by(MIB)
            .map(|i| Ok(payload.slice(i..(i + MIB).min(size))))
            .collect();
        let t = Instant::now();
        store
            .put_stream(futures_util::stream::iter(chunks))
            .await
            .unwrap();
        let ours = t.elapsed();
        let key = Path::from("raw");
        let _ = raw.delete(&key).await;
        let t = Instant::now();
        raw.put(&key, payload.clone().into()).await.unwrap();
        let rawput = t.elapsed();
        let _ = raw.delete(&key).await;
        let t = Instant::now();
        let mut w =
            WriteMultipart::new_with_chunk_size(raw.put_multipart(&key).await.unwrap(), 8 * MIB);
        for i in (0..size).step_by(MIB) {
            w.wait_for_capacity(2).await.unwrap();
            w.put(payload.slice(i..(i + MIB).min(size)));
        }
        w.finish().await.unwrap();
        let rawmp = t.elapsed();
        println!(
            "hash {hash:?} ours {ours:?} raw_put {rawput:?} raw_mp {rawmp:?} ratio {:.2}",
            rawput.as_secs_f64() / ours.as_secs_f64()
        );
    }
}
