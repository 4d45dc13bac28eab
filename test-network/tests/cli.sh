#!/usr/bin/env bash
# The `medfabric` command on the real test network, as integrators and channel admins use it:
# identities enrolled at the organisations' Fabric CAs, policy administration, three proxy
# processes (`medfabric proxy serve`), and a record's whole life with the objects in the
# network's MinIO: put, get, share, request, grant, open (2 of 3 proxies), revoke, history,
# audit, gc. Every output is checked; any failure fails the script.
#
#   test-network/tests/cli.sh [MEDFABRIC BINARY]   (default target/release/medfabric)
#
# Needs: network.sh up (with MinIO) and the medical chaincode deployed as `medfabric`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/.." && pwd)
state=${MEDFABRIC_STATE:-$here/.state}
bin=$(readlink -f "${1:-$root/target/release/medfabric}")
fail() { echo "cli.sh: FAILED: $*" >&2; exit 1; }
say() { echo "cli.sh: $*"; }
[ -x "$bin" ] || fail "no medfabric binary at $bin (cargo build --release -p medfabric-cli)"
[ -f "$state/minio/env" ] || fail "the network in $state has no MinIO (test-network/network.sh up starts it)"

work=$(mktemp -d)
proxy_pids=()
cleanup() {
  for p in "${proxy_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The network, the chaincode and the MinIO store, for every command below.
set -a
# shellcheck disable=SC1091 # MEDFABRIC_S3_* written by scripts/minio.sh
. "$state/minio/env"
set +a
export MEDFABRIC_NETWORK=$state MEDFABRIC_CHAINCODE=medfabric MEDFABRIC_STORE=s3://medfabric/cli-test
export MEDFABRIC_WALLET=$work/wallet
unset MEDFABRIC_CONFIG
cd "$work" # no ./medfabric.toml of the caller
tag=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')

# as ORG MSP_DIR -- medfabric ARGS...
as() {
  local org=$1 msp=$2
  shift 3
  MEDFABRIC_ORG=$org MEDFABRIC_MSP_DIR=$msp "$bin" "$@"
}
json() { jq -er "$1"; }

say "identities (Fabric CA, with attributes)"
enroll() { # org name out attrs...
  local org=$1 name=$2 out=$3
  shift 3
  MEDFABRIC_ORG=$org "$bin" --json identity enroll "$name-$tag" --out "$out" "$@" | json .fingerprint
}
enroll hospital1 admin "$work/admin" --type admin >/dev/null
enroll hospital1 dr "$work/dr" --attr role=physician >/dev/null
patient=$(enroll hospital1 pn "$work/pn" --attr role=patient)
enroll research curie "$work/curie" --attr role=researcher >/dev/null
enroll hospital1 nurse "$work/nurse" --attr role=nurse >/dev/null
enroll hospital2 auditor "$work/auditor" --attr role=auditor >/dev/null
i=0
for org in hospital1 hospital2 research; do
  i=$((i + 1))
  enroll "$org" "proxy$i" "$work/proxy$i" --attr role=proxy >/dev/null
done
out=$(MEDFABRIC_ORG=hospital1 "$bin" identity enroll "dr-$tag" --out "$work/again" 2>&1) &&
  fail "enrolling a taken name succeeded: $out"
grep -q "registering dr-$tag" <<<"$out" || fail "unclear error for a taken name: $out"
# A registrar of the hospital's own (an enrolled MSP folder, no secret in the profile) registers
# members within its rights; the CA refuses what they do not cover, and a non-registrar.
enroll hospital1 registrar "$work/registrar" --attr hf.Registrar.Roles=client \
  --attr hf.Registrar.Attributes=role >/dev/null
enroll hospital1 dr2 "$work/dr2" --registrar-msp-dir "$work/registrar" --attr role=physician >/dev/null
[ -s "$work/dr2/signcerts/cert.pem" ] || fail "the registrar's member has no certificate"
out=$(MEDFABRIC_ORG=hospital1 "$bin" identity enroll "x-$tag" --registrar-msp-dir "$work/registrar" \
  --attr dept=cardiology --out "$work/x" 2>&1) && fail "a registrar exceeded its attribute rights: $out"
grep -q "may not register it" <<<"$out" || fail "unclear error for a registrar without the right: $out"
out=$(MEDFABRIC_ORG=hospital1 "$bin" identity enroll "y-$tag" --registrar-msp-dir "$work/nurse" \
  --attr role=physician --out "$work/y" 2>&1) && fail "a nurse registered a physician: $out"
grep -q "HTTP 403" <<<"$out" || fail "unclear error for a non-registrar: $out"
[ "$(as hospital1 "$work/pn" -- --json identity show | json .fingerprint)" = "$patient" ] ||
  fail "identity show does not name the patient's pseudonym"
roots=$(for o in admin curie auditor; do printf '%s,' "$work/$o/cacerts/ca-1.pem"; done)
export MEDFABRIC_ROOTS=${roots%,}

say "policies (channel admins)"
out=$(as hospital1 "$work/admin" -- policy init ou:admin 2>&1) ||
  grep -q "already initialised" <<<"$out" || fail "policy init: $out"
as hospital1 "$work/admin" -- policy set record.author "role:physician AND (org:Hospital1MSP OR org:Hospital2MSP)" >/dev/null
as hospital1 "$work/admin" -- policy set pseudonym.register "role:patient" >/dev/null
as hospital1 "$work/admin" -- policy set auditor "role:auditor" >/dev/null
[ "$(as hospital1 "$work/admin" -- --json policy get auditor --channel sharing | json .policy)" = "role:auditor" ] ||
  fail "policy get does not show the policy just set"
out=$(as hospital1 "$work/dr" -- policy set auditor "role:physician" 2>&1) && fail "a physician changed a policy: $out"
grep -qi "denied" <<<"$out" || fail "unclear denial for a non-admin policy change: $out"

say "three proxies (medfabric proxy serve, HTTPS with certificates from their organisations' TLS CAs)"
# proxy_tls ORG NAME -> writes $work/NAME-tls.{key,crt}: a server certificate for 127.0.0.1
# signed by ORG's TLS CA (the one that issued its peer's TLS certificate).
proxy_tls() {
  local org=$1 name=$2 tlsca
  tlsca=$state/crypto/peerOrganizations/$org.medfabric.local/tlsca
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/$name-tls.key" 2>/dev/null
  openssl req -new -key "$work/$name-tls.key" -subj "/CN=$name.$org.medfabric.local" -out "$work/$name-tls.csr"
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' \
    >"$work/$name-tls.ext"
  openssl x509 -req -in "$work/$name-tls.csr" -CA "$tlsca"/tlsca.*-cert.pem -CAkey "$tlsca/priv_sk" \
    -set_serial "0x$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')" -days 2 \
    -extfile "$work/$name-tls.ext" -out "$work/$name-tls.crt" 2>/dev/null
}
tls_roots=$(for org in hospital1 hospital2 research; do
  printf '%s,' "$state"/crypto/peerOrganizations/$org.medfabric.local/tlsca/tlsca.*-cert.pem
done)
export MEDFABRIC_PROXY_TLS_ROOTS=${tls_roots%,}
out=$(as hospital1 "$work/proxy1" -- proxy serve --listen 0.0.0.0:0 2>&1) &&
  fail "a proxy served plain HTTP beyond loopback: $out"
grep -q "needs TLS" <<<"$out" || fail "unclear refusal of plain HTTP beyond loopback: $out"
ports=()
for i in 1 2 3; do
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  ports+=("$port")
  org=$(sed -n "${i}p" <<<$'hospital1\nhospital2\nresearch')
  proxy_tls "$org" "proxy$i"
  as "$org" "$work/proxy$i" -- proxy serve --listen "127.0.0.1:$port" --storage "$work/proxy$i-storage" \
    --tls-cert "$work/proxy$i-tls.crt" --tls-key "$work/proxy$i-tls.key" >"$work/proxy$i.log" 2>&1 &
  proxy_pids+=($!)
done
for i in 0 1 2; do # up? (the certificate is checked below and by every client call)
  up=0
  for _ in $(seq 100); do
    curl -sk -o /dev/null "https://127.0.0.1:${ports[$i]}/v1/info" && { up=1; break; }
    sleep 0.1
  done
  [ $up = 1 ] || fail "proxy $((i + 1)) did not come up: $(cat "$work/proxy$((i + 1)).log")"
done
# The proxies answer HTTPS only, with a certificate their organisation's TLS CA signed.
curl -s -o /dev/null "http://127.0.0.1:${ports[1]}/v1/info" && fail "a proxy answered plain HTTP"
h2ca=$(ls "$state"/crypto/peerOrganizations/hospital2.medfabric.local/tlsca/tlsca.*-cert.pem)
curl -sf -o /dev/null --cacert "$h2ca" "https://127.0.0.1:${ports[1]}/v1/info" ||
  fail "proxy 2's certificate does not verify against Hospital2's TLS CA"
export MEDFABRIC_PROXIES=https://127.0.0.1:${ports[0]},https://127.0.0.1:${ports[1]},https://127.0.0.1:${ports[2]}

say "a record: register, put, get"
as hospital1 "$work/pn" -- identity register --patient-number "H1-$tag" >/dev/null
rec=rec-$tag
key=$(as hospital1 "$work/pn" -- --json record key "$rec" | json .ownerKey)
bundle=$root/testdata/fhir/hl7/Bundle-father.json
dicom=$root/testdata/dicom/CT_small.dcm
put=$(as hospital1 "$work/dr" -- --json record put "$bundle" --id "$rec" --owner "$patient" --owner-key "$key" \
  --attach "$dicom:application/dicom")
sections=$(json '.sections | length' <<<"$put")
[ "$sections" -ge 5 ] || fail "record put stored $sections sections: $put"
as hospital1 "$work/pn" -- record get "$rec" --out "$work/own" >/dev/null
cmp -s "$(ls "$work"/own/*-CT_small)" "$dicom" ||
  fail "the owner's copy of the image differs: $(ls "$work/own")"
out=$(as hospital1 "$work/nurse" -- record get "$rec" 2>&1) && fail "a nurse read the patient's record: $out"

say "share, request, grant, open through 2 of 3 proxies"
share_sections=$(json '.sections | .[0:2] + [.[-1]] | join(",")' <<<"$put")
as hospital1 "$work/pn" -- record share "$rec" --sections "$share_sections" \
  --policy "role:researcher AND org:ResearchMSP AND purpose:research" --share-id "share-$tag" >/dev/null
as research "$work/curie" -- record request "share-$tag" --purpose research --request-id "req-$tag" >/dev/null
out=$(as hospital1 "$work/nurse" -- record request "share-$tag" --purpose research --request-id "req-n-$tag" 2>&1) &&
  fail "a nurse's request was accepted: $out"
as hospital1 "$work/pn" -- record grant "req-$tag" --threshold 2 --days 1 >/dev/null
kill "${proxy_pids[0]}"
opened=$(as research "$work/curie" -- --json record open "req-$tag" --out "$work/opened")
[ "$(json '.sections | length' <<<"$opened")" = 3 ] || fail "open returned: $opened"
cmp -s "$(ls "$work"/opened/*-CT_small)" "$dicom" ||
  fail "the researcher's copy of the image differs: $(ls "$work/opened")"

say "revoke; the grantee is refused"
as hospital1 "$work/pn" -- record revoke "req-$tag" --reason "study finished" >/dev/null
out=$(as research "$work/curie" -- record open "req-$tag" 2>&1) && fail "opened after revocation: $out"
grep -q "revoked" <<<"$out" || fail "unclear refusal after revocation: $out"

say "history, audit, gc"
as hospital1 "$work/pn" -- --json record history "$rec" | json '.versions | length' >/dev/null
audit=$(as hospital1 "$work/pn" -- --json record audit)
for action in record.create share.publish share.request share.grant share.reencrypt share.revoke; do
  jq -e --arg a "$action" 'map(select(.action == $a)) | length > 0' <<<"$audit" >/dev/null ||
    fail "the audit trail has no $action: $audit"
done
gc=$(as hospital2 "$work/auditor" -- --json gc --older-than-hours 0 --dry-run)
jq -e --arg d "$(json '.location' <<<"$put" | sed 's/^mfblob:sha256:\([0-9a-f]*\):.*/\1/')" \
  '.unreferenced | index($d) == null' <<<"$gc" >/dev/null || fail "gc would delete the record's manifest: $gc"
say "passed (record $rec, $sections sections, proxies on ${ports[*]})"
