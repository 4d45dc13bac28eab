#!/usr/bin/env bash
# End-to-end figures on the running test network, in one run:
#  - our Rust gateway client vs the official Node client (@hyperledger/fabric-gateway) on the same
#    chaincode: evaluate latency and submit throughput, and their ratios (issue 4);
#  - the Rust asset-transfer-basic chaincode server's resident memory next to the peers' (issue 2).
# Needs `test-network/network.sh up && test-network/network.sh deploy` first.
#   scripts/bench-network.sh [--submits 200] [--concurrency 50] [--n 500] [--warmup 50]
set -euo pipefail
cd "$(dirname "$0")/.."
submits=200 concurrency=50 n=500 warmup=50
while [ $# -gt 0 ]; do
  case $1 in
    --submits) submits=$2 ;; --concurrency) concurrency=$2 ;; --n) n=$2 ;; --warmup) warmup=$2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
state=${MEDFABRIC_STATE:-test-network/.state}
[ -f "$state/pids" ] || { echo "no test network in $state: run test-network/network.sh up && test-network/network.sh deploy" >&2; exit 1; }
cargo build --release --locked -q -p medfabric-gateway --example bench
(cd test-network/node && [ -d node_modules ] || npm ci --no-audit --no-fund --loglevel=error)

args=(--submits "$submits" --concurrency "$concurrency" --n "$n" --warmup "$warmup")
node_args=(--channel storage --chaincode basic --submits "$submits" --concurrency "$concurrency" --n "$n" --warmup "$warmup")
# Alternate the clients twice so neither always runs on a warmer network.
results=()
for round in 1 2; do
  results+=("$(node test-network/node/bench.mjs "${node_args[@]}")")
  results+=("$(target/release/examples/bench --network "$state" "${args[@]}")")
done
printf '%s\n' "${results[@]}"

jq -s '
  def med(f): (map(f) | add / length);  # mean of the rounds
  map(select(.error == null)) as $ok |
  ($ok | map(select((.client // "") | test("Rust")))) as $rs |
  ($ok | map(select((.client // "") | test("Rust") | not))) as $js |
  {
    evaluate_median_ms: {rust: ($rs | med(.evaluate_ms.median)), node: ($js | med(.evaluate.median_ms))},
    submit_tx_per_s: {rust: ($rs | med(.submit.tx_per_second)), node: ($js | med(.submit.tx_per_s))}
  }
  | .ratio_evaluate_latency_rust_over_node = (.evaluate_median_ms.rust / .evaluate_median_ms.node)
  | .ratio_submit_throughput_node_over_rust = (.submit_tx_per_s.node / .submit_tx_per_s.rust)
' <(printf '%s\n' "${results[@]}") || echo "(could not compute ratios: see the raw lines above)"

echo "resident memory (VmRSS, KiB):"
while read -r pid name _; do
  [ -r "/proc/$pid/status" ] && printf '  %-40s %s\n' "$name" "$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")"
done <"$state/pids"
