//! Encrypts a 100 MiB section from a generated stream to a file and decrypts it back, to show
//! that streaming memory stays at one segment whatever the size. Measure peak RSS with:
//!
//! `cargo build --release -p medfabric-crypto --example stream_100mib`
//! `/usr/bin/time -v target/release/examples/stream_100mib [MiB]`

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};

use medfabric_crypto::envelope::{self, SectionContext, SectionKey};
use medfabric_crypto::record::{RecordId, SectionId};
use rand::SeedableRng;
use rand::rngs::StdRng;

/// Byte `pos` of the plaintext: a position-keyed pattern, so any chunking reproduces it.
fn pattern(pos: u64) -> u8 {
    (pos.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// The plaintext, `left` bytes, generated as it is read (never held in memory).
struct Generated {
    pos: u64,
    left: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        for b in &mut buf[..n] {
            *b = pattern(self.pos);
            self.pos += 1;
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Checks the decrypted stream against the pattern without keeping it.
struct Compare {
    pos: u64,
    ok: bool,
}

impl Write for Compare {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for &b in buf {
            self.ok &= b == pattern(self.pos);
            self.pos += 1;
        }
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
    let out = BufWriter::new(File::create(&path)?);
    let n = envelope::encrypt_stream(&key, &ctx, &mut rng, Generated { pos: 0, left: len }, out)?;
    let enc = started.elapsed();

    let started = std::time::Instant::now();
    let mut check = Compare { pos: 0, ok: true };
    let input = BufReader::new(File::open(&path)?);
    let m = envelope::decrypt_stream(&key, &ctx, input, &mut check)?;
    let dec = started.elapsed();
    let ct_len = std::fs::metadata(&path)?.len();
    std::fs::remove_file(&path)?;

    if !(check.ok && n == len && m == len) {
        return Err("round trip mismatch".into());
    }
    println!(
        "{mib} MiB: ciphertext {ct_len} bytes; encrypt {:.3} s, decrypt {:.3} s \
         (including file I/O and pattern generation/check)",
        enc.as_secs_f64(),
        dec.as_secs_f64()
    );
    Ok(())
}
