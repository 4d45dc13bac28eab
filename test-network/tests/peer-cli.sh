#!/usr/bin/env bash
# The Rust asset-transfer-basic chaincode through Fabric's own peer CLI, on both channels:
# invoke (endorsed by two organisations, waiting for commit) and query.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fail() { echo "peer-cli: FAILED: $*" >&2; exit 1; }
eval "$("$here/network.sh" env hospital1 --user User1)"

for ch in storage sharing; do
  id="cli-$ch-$RANDOM$RANDOM"
  peer chaincode invoke -C "$ch" -n basic -o "$ORDERER_ADDRESS" --tls --cafile "$ORDERER_CA" \
    --peerAddresses "$PEER_HOSPITAL1_ADDRESS" --tlsRootCertFiles "$PEER_HOSPITAL1_TLS_CA" \
    --peerAddresses "$PEER_HOSPITAL2_ADDRESS" --tlsRootCertFiles "$PEER_HOSPITAL2_TLS_CA" \
    --waitForEvent -c "{\"Args\":[\"CreateAsset\",\"$id\",\"teal\",\"7\",\"Ana\",\"900\"]}" \
    >/tmp/peer-cli-invoke.log 2>&1 || fail "invoke on $ch: $(cat /tmp/peer-cli-invoke.log)"
  grep -q "status:200" /tmp/peer-cli-invoke.log || fail "invoke on $ch did not succeed: $(cat /tmp/peer-cli-invoke.log)"
  got=$(peer chaincode query -C "$ch" -n basic -c "{\"Args\":[\"ReadAsset\",\"$id\"]}")
  want="{\"AppraisedValue\":900,\"Color\":\"teal\",\"ID\":\"$id\",\"Owner\":\"Ana\",\"Size\":7}"
  [ "$got" = "$want" ] || fail "query on $ch returned $got, expected $want"
  # A chaincode error comes back as an error, not a crash.
  if peer chaincode query -C "$ch" -n basic -c '{"Args":["ReadAsset","no-such-asset"]}' >/tmp/peer-cli-err.log 2>&1; then
    fail "reading a missing asset succeeded on $ch"
  fi
  grep -q "the asset no-such-asset does not exist" /tmp/peer-cli-err.log || fail "unexpected error text: $(cat /tmp/peer-cli-err.log)"
  echo "peer-cli: $ch ok"
done
