//! Encrypts a 100 MiB section from a generated stream to a file and decrypts it back, to show
//! that streaming memory stays at one segment whatever the size. Measure peak RSS with:
//!
//! `cargo build --release -p medfabric-crypto --example stream_100mib`
//! `/usr/bin/time -v target/release/examples/stream_100mib [MiB]`

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

use medfabric_crypto::envelope::{self, SectionContext, SectionKey};
use medfabric_crypto::record::{RecordId, SectionId};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// A deterministic pseudo-random plaintext of `left` bytes, generated as it is read.
struct Generated {
    rng: StdRng,
    left: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        self.rng.fill_bytes(&mut buf[..n]);
        self.left -= n as u64;
        Ok(n)
    }
}

/// Checks the decrypted stream against the generator without keeping it.
struct Compare {
    rng: StdRng,
    scratch: Vec<u8>,
    ok: bool,
}

impl Write for Compare {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.scratch.resize(buf.len(), 0);
        self.rng.fill_bytes(&mut self.scratch);
        self.ok &= self.scratch == buf;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(100);
    let len = mib << 20;
    let rid = RecordId::new("example-record")?;
    let sid = SectionId::new("ct-scan")?;
    let ctx = SectionContext::new(&rid, 1, &sid);
    let mut rng = StdRng::from_entropy();
    let key = SectionKey::generate(&mut rng);
    let path = std::env::temp_dir().join(format!("medfabric-stream-{}.bin", std::process::id()));

    let started = std::time::Instant::now();
    let source = Generated {
        rng: StdRng::seed_from_u64(7),
        left: len,
    };
    let out = BufWriter::new(File::create(&path)?);
    let n = envelope::encrypt_stream(&key, &ctx, &mut rng, source, out)?;
    let enc = started.elapsed();

    let started = std::time::Instant::now();
    let mut check = Compare {
        rng: StdRng::seed_from_u64(7),
        scratch: Vec::new(),
        ok: true,
    };
    let m = envelope::decrypt_stream(&key, &ctx, BufReader::new(File::open(&path)?), &mut check)?;
    let dec = started.elapsed();
    let ct_len = std::fs::metadata(&path)?.len();
    std::fs::remove_file(&path)?;

    assert!(check.ok && n == len && m == len, "round trip mismatch");
    println!(
        "{mib} MiB: ciphertext {ct_len} bytes; encrypt {:.3} s, decrypt {:.3} s (including file I/O and data generation)",
        enc.as_secs_f64(),
        dec.as_secs_f64()
    );
    Ok(())
}
