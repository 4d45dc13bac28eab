//! Benchmark of this gateway client, the same phases as `test-network/node/bench.mjs` so the two
//! clients can be compared in one run (`scripts/bench-gateway.sh`):
//! submit phase — M `CreateAsset` submits kept C at a time in flight (endorse, submit, wait for
//! commit), throughput = commits / wall time; evaluate phase — `warmup` discarded calls, then N
//! sequential `ReadAsset` calls, latency median / p95 / mean / min / max.
//!
//! ```text
//! cargo run --release -p medfabric-gateway --example bench -- \
//!     [--network test-network/.state] [--org hospital1] [--user User1] [--channel storage] \
//!     [--chaincode basic] [--submits 200] [--concurrency 50] [--n 500] [--warmup 50]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use medfabric_gateway::ConnectionProfile;
use serde_json::{Value, json};

struct Options {
    network: PathBuf,
    org: String,
    user: String,
    channel: String,
    chaincode: String,
    submits: usize,
    concurrency: usize,
    n: usize,
    warmup: usize,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        network: PathBuf::from("test-network/.state"),
        org: "hospital1".into(),
        user: "User1".into(),
        channel: "storage".into(),
        chaincode: "basic".into(),
        submits: 200,
        concurrency: 50,
        n: 500,
        warmup: 50,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag} needs a number, not {value:?}"))
        };
        match flag.as_str() {
            "--network" => o.network = PathBuf::from(&value),
            "--org" => o.org = value.clone(),
            "--user" => o.user = value.clone(),
            "--channel" => o.channel = value.clone(),
            "--chaincode" => o.chaincode = value.clone(),
            "--submits" => o.submits = number()?,
            "--concurrency" => o.concurrency = number()?.max(1),
            "--n" => o.n = number()?,
            "--warmup" => o.warmup = number()?,
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn run(o: Options) -> Result<Value, String> {
    let profile =
        ConnectionProfile::load_from_network_dir(&o.network, &o.org).map_err(|e| e.to_string())?;
    let gateway = Arc::new(
        profile
            .connect(&o.user, SystemTime::now())
            .await
            .map_err(|e| e.to_string())?,
    );
    let run = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_millis();
    let mut figures = json!({"client": "medfabric-gateway (Rust)", "channel": o.channel, "chaincode": o.chaincode});

    // Submit phase.
    let first_asset = format!("bench-rs-{run}-0");
    if o.submits > 0 {
        let started = Instant::now();
        let semaphore = Arc::new(tokio::sync::Semaphore::new(o.concurrency));
        let mut tasks = Vec::with_capacity(o.submits);
        for i in 0..o.submits {
            let permit = Arc::clone(&semaphore)
                .acquire_owned()
                .await
                .map_err(|e| e.to_string())?;
            let gateway = Arc::clone(&gateway);
            let (channel, chaincode) = (o.channel.clone(), o.chaincode.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = permit;
                let id = format!("bench-rs-{run}-{i}");
                let contract = gateway.network(&channel).contract(&chaincode, None);
                contract
                    .submit("CreateAsset", &[&id, "blue", "5", "bench", "100"])
                    .await
                    .map(drop)
            }));
        }
        let mut committed = 0usize;
        let mut first_error = None;
        for task in tasks {
            match task.await.map_err(|e| e.to_string())? {
                Ok(()) => committed += 1,
                Err(e) => {
                    first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        if committed == 0 {
            return Err(format!(
                "no submit committed: {}",
                first_error.unwrap_or_default()
            ));
        }
        figures["submit"] = json!({
            "submits": o.submits, "committed": committed, "concurrency": o.concurrency,
            "seconds": seconds, "tx_per_second": committed as f64 / seconds, "first_error": first_error,
        });
    }

    // Evaluate phase.
    if o.n > 0 {
        let contract = gateway.network(&o.channel).contract(&o.chaincode, None);
        let asset = if o.submits > 0 {
            first_asset
        } else {
            "asset1".to_owned()
        };
        for _ in 0..o.warmup {
            contract
                .evaluate("ReadAsset", &[&asset])
                .await
                .map_err(|e| e.to_string())?;
        }
        let mut latencies = Vec::with_capacity(o.n);
        for _ in 0..o.n {
            let started = Instant::now();
            contract
                .evaluate("ReadAsset", &[&asset])
                .await
                .map_err(|e| e.to_string())?;
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        let mean = latencies.iter().sum::<f64>() / latencies.len() as f64;
        figures["evaluate_ms"] = json!({
            "n": o.n, "median": percentile(&latencies, 50.0), "p95": percentile(&latencies, 95.0),
            "mean": mean, "min": latencies[0], "max": latencies[latencies.len() - 1],
        });
    }
    Ok(figures)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let outcome = match parse() {
        Ok(options) => run(options).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(figures) => {
            println!("{figures}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("bench: {e}");
            println!("{}", json!({"error": e}));
            std::process::ExitCode::FAILURE
        }
    }
}
