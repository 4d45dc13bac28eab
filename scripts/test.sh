#!/usr/bin/env bash
# Every test medfabric has: formatting, lints, unit and in-memory tests, then the real Fabric
# network (raft, then BFT) with the Rust chaincode, the peer CLI, the official Node gateway
# client, the conformance suite and the gateway SDK against it. Installs what it needs (Debian
# packages, Go-built Fabric binaries cached under ~/.cache/medfabric) and fails loudly: a part
# that cannot start is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# The suites that start their own servers (MinIO, Fabric CA) run, and fail rather than skip,
# in CI mode; run them the same way on a developer's machine.
export CI=true
# One network folder for everything below: network.sh writes it (MEDFABRIC_STATE), the Rust
# and Node clients read it (MEDFABRIC_NETWORK_DIR), so a caller's MEDFABRIC_STATE is followed
# by all of them.
export MEDFABRIC_STATE=${MEDFABRIC_STATE:-$PWD/test-network/.state}
export MEDFABRIC_NETWORK_DIR=$MEDFABRIC_STATE
step() { printf '\n=== %s (%s)\n' "$*" "$(date +%T)"; }

step "system packages"
missing=()
for pair in envsubst:gettext-base jq:jq curl:curl ss:iproute2 openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install these Debian packages first: ${missing[*]}" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
for tool in cargo go node npm; do
  command -v "$tool" >/dev/null || { echo "$tool is required and not installed" >&2; exit 1; }
done

step "Fabric, Fabric CA and MinIO binaries (go-built, cached)"
bash test-network/scripts/install-binaries.sh all

step "rust: format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "unit, property, decoder-smoke and in-memory tests"
cargo test --workspace --locked

step "fuzz targets: a short smoke run of each (cargo-fuzz, nightly)"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
for crate in chaincode/policy sdk/crypto sdk/gateway; do
  for target in $(cd "$crate" && cargo +nightly fuzz list); do
    (cd "$crate" && cargo +nightly fuzz run "$target" -- -max_total_time=10 -print_final_stats=0 2>&1 | tail -n 2)
  done
done

step "the README's main job: the embedded end-to-end demo"
cargo run --release --locked -q -p medfabric-cli -- demo

step "the bench command, once through every flow (1 MiB attachment, 10 proxy requests)"
cargo run --release --locked -q -p medfabric-cli -- bench --iterations 1 --attachment-mib 1 --proxy-requests 10

step "benchmarks compile"
cargo bench --workspace --locked --no-run

step "chaincode servers (release)"
cargo build --release --locked -p medfabric-contracts

step "official Node gateway client"
(cd test-network/node && npm ci --no-audit --no-fund --loglevel=error)

network() { test-network/network.sh "$@"; }
trap 'network down >/dev/null 2>&1 || true' EXIT
network down >/dev/null 2>&1 || true

deploy_all() {
  network deploy
  network deploy --name conformance --binary target/release/conformance-chaincode --channels storage \
    --port 9998 --collections collections/conformance.json
  network deploy --name medfabric --binary target/release/medfabric-chaincode --channels "storage sharing" \
    --port 9997 --collections collections/medfabric.json
}

step "real network: raft"
network up
deploy_all

step "peer CLI on both channels"
test-network/tests/peer-cli.sh

step "official Node gateway client on both channels"
(cd test-network/node && node --test smoke.test.mjs)

step "conformance suite on a real peer"
cargo test --locked -p medfabric-contracts --test conformance_peer -- --ignored

step "gateway SDK against the real network"
MEDFABRIC_REAL_NETWORK=1 cargo test --locked -p medfabric-gateway --test real_network -- --include-ignored

step "the gateway client while its peer is stopped and restarted"
MEDFABRIC_REAL_NETWORK=1 cargo test --locked -p medfabric-gateway --test peer_outage -- --include-ignored

step "Fabric CA users and pseudonyms accepted by the peers"
MEDFABRIC_REAL_NETWORK=1 cargo test --locked -p medfabric-ca --test test_network_ca

step "medical contracts on the real network (Fabric CA identities, both channels)"
cargo test --locked -p medfabric-contracts --test medical_peer -- --ignored

step "the medical benchmark, once through every arm (the figures of docs/benchmarks-medical.md)"
cargo run --release --locked -q -p medfabric-contracts --example bench_medical -- \
  --reps 3 --baseline-reps 1 --n 20 --concurrency 10 --rounds 1 > target/bench-medical-smoke.json

step "the end-to-end story on the real network (medfabric demo --network)"
cargo test --locked -p medfabric-records --test network -- --ignored
cargo run --release --locked -q -p medfabric-cli -- demo --network "$MEDFABRIC_STATE"

step "the medfabric command on the real network (identities, policies, proxies, a record's life)"
test-network/tests/cli.sh target/release/medfabric

step "chaincode server restart"
test-network/tests/chaincode-restart.sh

step "real network: BFT (4 orderers)"
network down
network up --bft
deploy_all
test-network/tests/peer-cli.sh
(cd test-network/node && node --test smoke.test.mjs)
cargo test --locked -p medfabric-contracts --test conformance_peer -- --ignored
network down

step "all tests passed"
