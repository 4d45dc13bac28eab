#!/usr/bin/env bash
# Kills the `basic` chaincode server, shows that invocations fail while it is down, restarts it
# with `network.sh deploy` (same package, same definition) and shows that the peer redials and
# the next invocation succeeds.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
state=${MEDFABRIC_STATE:-$here/.state}
fail() { echo "chaincode-restart: FAILED: $*" >&2; exit 1; }
eval "$("$here/network.sh" env hospital1 --user User1)"
query() { peer chaincode query -C storage -n basic -c '{"Args":["AssetExists","asset1"]}' 2>&1; }

query >/dev/null || fail "chaincode not answering before the restart: $(query)"
pid=$(awk '$2 == "chaincode-basic" { p = $1 } END { print p }' "$state/pids")
[ -n "$pid" ] || fail "no chaincode-basic pid recorded in $state/pids"
kill "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if out=$(query); then fail "query succeeded while the chaincode server was down: $out"; fi
echo "chaincode-restart: while down: $(echo "$out" | tail -n 1)"
"$here/network.sh" deploy >/dev/null
for i in $(seq 100); do
  if out=$(query); then
    echo "chaincode-restart: answered after restart (attempt $i): $out"
    exit 0
  fi
  sleep 0.2
done
fail "no answer 20 s after restart: $out"
