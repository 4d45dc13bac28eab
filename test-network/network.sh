#!/usr/bin/env bash
# medfabric test network: a real Hyperledger Fabric network run natively (no Docker).
#
#   network.sh up [--bft]                 start orderer(s), 3 peers and their Fabric CAs, create `storage` and `sharing`,
#                                         and a MinIO object store (S3 API on BASE+20, bucket `medfabric`;
#                                         client settings in $STATE/minio/env)
#   network.sh deploy [--name NAME] [--binary PATH] [--channels "storage sharing"] [--port PORT]
#                     [--version V] [--collections FILE] [--policy EXPR] [--skip-server]
#                                         CCaaS chaincode: package, install, approve, commit, start
#   network.sh env ORG [--user Admin|User1|User2|User3]
#                                         export lines for the peer CLI (eval "$(network.sh env hospital1)")
#   network.sh status                     recorded processes and whether they run
#   network.sh stop-peer ORG              stop one organisation's peer (for client tests)
#   network.sh start-peer ORG             start it again with the same configuration and ledger
#   network.sh down                       stop exactly the recorded processes, delete the state
#
# Environment:
#   MEDFABRIC_STATE          state folder (default: test-network/.state)
#   MEDFABRIC_PORT_BASE      first port (default 7050); see README.md for the port map
#   MEDFABRIC_BATCH_TIMEOUT  block cut timeout / BFT batch interval (default 50ms)
#   MEDFABRIC_BATCH_MAX_COUNT  max transactions per block (default 500)
#   MEDFABRIC_FABRIC_BIN     folder with peer, orderer, ... (default: scripts/install-binaries.sh)
#   MEDFABRIC_CA_BIN         folder with fabric-ca-server (default: scripts/install-binaries.sh ca)
#   MEDFABRIC_CACHE          binary cache root used by install-binaries.sh
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
NETCFG=$ROOT/network
STATE=${MEDFABRIC_STATE:-$HERE/.state}
BUILDER_DIR=$HERE/ccaas-builder
CRYPTO=$STATE/crypto

ORGS=(hospital1 hospital2 research)
# node logs go to files: no colour codes
LOG_FORMAT=${FABRIC_LOGGING_FORMAT:-'%{time:2006-01-02 15:04:05.000 MST} %{id:04x} %{level:.4s} [%{module}] %{shortfunc} -> %{message}'}
export FABRIC_LOGGING_FORMAT=$LOG_FORMAT
CHANNELS=(storage sharing)

# ---------------------------------------------------------------------------------------------
# small helpers

log() { printf '[network.sh] %s\n' "$*" >&2; }
die() {
  printf '[network.sh] ERROR: %s\n' "$*" >&2
  exit 1
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

org_name() {
  case $1 in
    hospital1) echo Hospital1 ;;
    hospital2) echo Hospital2 ;;
    research) echo Research ;;
    *) die "unknown organisation '$1' (use one of: ${ORGS[*]})" ;;
  esac
}
org_index() {
  case $1 in hospital1) echo 0 ;; hospital2) echo 1 ;; research) echo 2 ;; *) org_name "$1" ;; esac
}
org_msp() { echo "$(org_name "$1")MSP"; }
org_domain() { echo "$1.medfabric.local"; }
peer_name() { echo "peer0.$(org_domain "$1")"; }

# Port map (PORT_BASE = 7050 by default):
#   orderer i (0..3): listen BASE+1000*i, admin +3, operations +4   -> 7050/7053/7054, 8050, 9050, 10050
#   peer of org p (0..2): listen BASE+1+2000*p, chaincode +1, operations +4 -> 7051/7052/7055, 9051, 11051
orderer_port() { echo $((PORT_BASE + 1000 * $1)); }
orderer_admin_port() { echo $((PORT_BASE + 1000 * $1 + 3)); }
orderer_ops_port() { echo $((PORT_BASE + 1000 * $1 + 4)); }
peer_port() { echo $((PORT_BASE + 1 + 2000 * $(org_index "$1"))); }
peer_cc_port() { echo $(($(peer_port "$1") + 1)); }
peer_ops_port() { echo $(($(peer_port "$1") + 4)); }
#   Fabric CA of org p (0..2): listen BASE+10+2000*p, operations +1 -> 7060/7061, 9060/9061, 11060/11061
ca_port() { echo $((PORT_BASE + 10 + 2000 * $(org_index "$1"))); }
ca_ops_port() { echo $(($(ca_port "$1") + 1)); }
minio_port() { echo $((PORT_BASE + 20)); }

orderer_dir() { echo "$CRYPTO/ordererOrganizations/medfabric.local/orderers/orderer$1.medfabric.local"; }
orderer_tlsca() { echo "$CRYPTO/ordererOrganizations/medfabric.local/tlsca/tlsca.medfabric.local-cert.pem"; }
orderer_admin_dir() { echo "$CRYPTO/ordererOrganizations/medfabric.local/users/Admin@medfabric.local"; }
peer_dir() { echo "$CRYPTO/peerOrganizations/$(org_domain "$1")/peers/$(peer_name "$1")"; }
peer_tlsca() {
  local d
  d=$(org_domain "$1")
  echo "$CRYPTO/peerOrganizations/$d/tlsca/tlsca.$d-cert.pem"
}
user_msp() {
  local d
  d=$(org_domain "$1")
  echo "$CRYPTO/peerOrganizations/$d/users/${2:-Admin}@$d/msp"
}

port_busy() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }
http_ok() { curl -sf -o /dev/null --max-time 1 "$1"; }

record_pid() { echo "$1 $2 $3" >>"$STATE/pids"; } # pid name executable

pid_alive() { # pid exe: alive and still the program we started (guards against pid reuse)
  [ -d "/proc/$1" ] || return 1
  [ "$(basename "$(readlink "/proc/$1/exe" 2>/dev/null || true)")" = "$(basename "$2")" ] && return 0
  # a script: the interpreter is the executable, the script path is in the command line
  { tr '\0' '\n' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qxF -- "$2"
}

# start_bg NAME LOGFILE EXE ARGS... (environment via `env` inside; nohup execs, so $! is the
# server's own pid)
start_bg() {
  local name=$1 logf=$2
  shift 2
  nohup "$@" >"$logf" 2>&1 </dev/null &
  local pid=$!
  local exe=$1
  [ "$exe" = env ] && exe=$(for a in "${@:2}"; do [[ $a == *=* ]] || {
    echo "$a"
    break
  }; done)
  record_pid "$pid" "$name" "$exe"
  echo "$pid"
}

# wait_until DESC TIMEOUT_S PID LOGFILE CMD...: poll CMD every 100 ms; fail early if PID died.
wait_until() {
  local desc=$1 timeout=$2 pid=$3 logf=$4
  shift 4
  local start
  start=$(now)
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      log "last lines of $logf:"
      tail -n 20 "$logf" >&2 || true
      die "$desc: the process exited (pid $pid); full log: $logf"
    fi
    if awk -v s="$start" -v t="$timeout" -v n="$(now)" 'BEGIN { exit !(n - s > t) }'; then
      [ -n "$logf" ] && { log "last lines of $logf:"; tail -n 20 "$logf" >&2 || true; }
      die "timed out after ${timeout}s waiting for $desc"
    fi
    sleep 0.1
  done
}

load_state() {
  [ -f "$STATE/network.env" ] || die "no network state in $STATE: run '$0 up' first"
  # shellcheck disable=SC1091 # MODE N_ORDERERS PORT_BASE BATCH_TIMEOUT FABRIC_BIN
  . "$STATE/network.env"
  : "${FABRIC_BIN:?$STATE/network.env has no FABRIC_BIN}"
  export PATH="$FABRIC_BIN:$PATH"
}

# as_org ORG [USER] -- CMD...: run a peer CLI command as ORG's admin (or USER) against its peer.
as_org() {
  local org=$1 user=Admin
  shift
  if [ "$1" != -- ]; then
    user=$1
    shift
  fi
  shift # --
  env FABRIC_CFG_PATH="$STATE/peers/$(peer_name "$org")" \
    CORE_PEER_TLS_ENABLED=true \
    CORE_PEER_LOCALMSPID="$(org_msp "$org")" \
    CORE_PEER_MSPCONFIGPATH="$(user_msp "$org" "$user")" \
    CORE_PEER_ADDRESS="127.0.0.1:$(peer_port "$org")" \
    CORE_PEER_TLS_ROOTCERT_FILE="$(peer_tlsca "$org")" \
    FABRIC_LOGGING_SPEC="${FABRIC_LOGGING_SPEC:-WARNING}" \
    "$@"
}

metric() { # ops_port regex -> value of the first matching metric line
  curl -sf --max-time 1 "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v re="$2" '$0 ~ re { print $2; exit }'
}

# orderer_leader CHANNEL -> index (0..) of the orderer to send transactions to.
orderer_leader() {
  if [ "$MODE" = bft ]; then
    local id
    id=$(metric "$(orderer_ops_port 0)" "^consensus_BFT_leader_id\\{channel=\"$1\"\\}")
    if [[ $id =~ ^[1-9][0-9]*$ ]] && [ "$id" -le "$N_ORDERERS" ]; then
      echo $((id - 1))
      return
    fi
  fi
  echo 0
}

raft_has_leader() {
  local i
  for ((i = 0; i < N_ORDERERS; i++)); do
    [ "$(metric "$(orderer_ops_port "$i")" "^consensus_etcdraft_is_leader\\{channel=\"$1\"\\}")" = 1 ] && return 0
  done
  return 1
}
bft_has_leader() {
  local id
  id=$(metric "$(orderer_ops_port 0)" "^consensus_BFT_leader_id\\{channel=\"$1\"\\}")
  [[ $id =~ ^[1-9] ]]
}

# true when every recorded network process (orderers, peers; not chaincode servers) runs
network_alive() {
  [ -s "$STATE/pids" ] || return 1
  local pid name exe
  while read -r pid name exe; do
    [[ $name == chaincode-* ]] && continue
    pid_alive "$pid" "$exe" || return 1
  done <"$STATE/pids"
}

# discovery_sees ORG CHANNEL CHAINCODE: true when ORG's peer (the gateway its clients use)
# knows, through gossip, a peer of every organisation on CHANNEL that has CHAINCODE. Until then
# its gateway answers "failed to find any endorsing peers for org(s): ..." to a transaction
# that names those organisations as endorsers.
discovery_sees() {
  local org=$1 ch=$2 cc=$3 msp out
  msp=$(user_msp "$org")
  out=$(discover peers --channel "$ch" --server "127.0.0.1:$(peer_port "$org")" \
    --peerTLSCA "$(peer_tlsca "$org")" --userKey "$(echo "$msp"/keystore/*)" \
    --userCert "$(echo "$msp"/signcerts/*)" --MSP "$(org_msp "$org")" 2>/dev/null) || return 1
  [ "$(jq --arg cc "$cc" '[.[] | select(.Chaincodes | index($cc)) | .MSPID] | unique | length' \
    <<<"$out")" = "${#ORGS[@]}" ]
}

# wait_for_discovery CHAINCODE CHANNEL...: until every organisation's peer discovers CHAINCODE
# on every organisation's peer on each CHANNEL (gossip needs a few seconds after a deploy or
# a peer restart).
wait_for_discovery() {
  local cc=$1 ch org
  shift
  for ch in "$@"; do
    for org in "${ORGS[@]}"; do
      wait_until "$(peer_name "$org") to discover $cc on every organisation's peer on $ch" 60 "" \
        "$STATE/logs/$(peer_name "$org").log" discovery_sees "$org" "$ch" "$cc"
    done
  done
}

# ---------------------------------------------------------------------------------------------
# Fabric CA: one fabric-ca-server per peer organisation (home $STATE/ca/<org>/, log
# $STATE/logs/ca-<org>.log). It signs with the organisation's cryptogen CA key and certificate,
# so the organisation's MSP already trusts every certificate it issues; its TLS certificate
# comes from the organisation's TLS CA. Configuration: ../network/fabric-ca-server-config.yaml.
# Bootstrap registrar admin / adminpw (test only).

ca_name() { echo "ca-$1"; }
ca_home() { echo "$STATE/ca/$1"; }

# start_ca ORG CA_BIN -> pid of its fabric-ca-server
start_ca() {
  local org=$1 ca_bin=$2 home d org_dir
  home=$(ca_home "$org") d=$(org_domain "$org")
  org_dir=$CRYPTO/peerOrganizations/$d
  mkdir -p "$home/tls"
  (
    set -e
    cd "$home/tls"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
    openssl req -new -key server.key -subj "/O=$d/CN=ca.$d" -out server.csr
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost,DNS:ca.%s\n' "$d" >server.ext
    openssl x509 -req -in server.csr -CA "$org_dir/tlsca/tlsca.$d-cert.pem" -CAkey "$org_dir/tlsca/priv_sk" \
      -set_serial "0x$(openssl rand -hex 16)" -days 3650 -sha256 -extfile server.ext -out server.crt
    rm -f server.csr server.ext
    chmod 600 server.key
  ) >"$STATE/logs/ca-$org-tls.log" 2>&1 ||
    die "openssl failed making the TLS certificate of $(ca_name "$org"): $(tail -n 5 "$STATE/logs/ca-$org-tls.log")"
  MF_CA_PORT=$(ca_port "$org") MF_CA_OPS_PORT=$(ca_ops_port "$org") MF_CA_HOME=$home MF_CA_NAME=$(ca_name "$org") \
    MF_CA_CERTFILE=$org_dir/ca/ca.$d-cert.pem MF_CA_KEYFILE=$org_dir/ca/priv_sk MF_ORG_KEY=$org MF_ORG_DOMAIN=$d \
    render "$NETCFG/fabric-ca-server-config.yaml" "$home/fabric-ca-server-config.yaml" \
    MF_CA_PORT MF_CA_OPS_PORT MF_CA_HOME MF_CA_NAME MF_CA_CERTFILE MF_CA_KEYFILE MF_ORG_KEY MF_ORG_DOMAIN
  start_bg "$(ca_name "$org")" "$STATE/logs/ca-$org.log" "$ca_bin/fabric-ca-server" start --home "$home"
}

# ---------------------------------------------------------------------------------------------
# up

render() { # template out VAR...  (only the listed variables are substituted)
  local tmpl=$1 out=$2
  shift 2
  local vars="" v
  for v in "$@"; do vars+="\${$v} "; done
  envsubst "$vars" <"$tmpl" >"$out"
}

up_failed() {
  local rc=$?
  [ "$rc" = 0 ] ||
    log "up failed: logs in $STATE/logs; processes started so far are in $STATE/pids (run '$0 down' to stop them)"
}

cmd_up() {
  local bft=0
  while [ $# -gt 0 ]; do
    case $1 in
      --bft) bft=1 ;;
      *) die "up: unknown option '$1' (usage: $0 up [--bft])" ;;
    esac
    shift
  done
  local mode=raft
  [ $bft = 1 ] && mode=bft

  if [ -f "$STATE/network.env" ]; then
    local old_mode
    old_mode=$(sed -n 's/^MODE=//p' "$STATE/network.env")
    if network_alive; then
      if [ "$old_mode" = "$mode" ]; then
        log "network already up ($mode); state in $STATE. Use '$0 down' first to start afresh."
        return 0
      fi
      die "network is up in $old_mode mode; run '$0 down' first"
    fi
    log "found stale state in $STATE (some processes are gone): cleaning it"
    cmd_down
  fi

  local t0
  t0=$(now)
  PORT_BASE=${MEDFABRIC_PORT_BASE:-7050}
  [[ $PORT_BASE =~ ^[0-9]+$ ]] || die "MEDFABRIC_PORT_BASE must be a number"
  local batch_timeout=${MEDFABRIC_BATCH_TIMEOUT:-50ms}
  local batch_max=${MEDFABRIC_BATCH_MAX_COUNT:-500}
  local n_orderers=1
  [ $bft = 1 ] && n_orderers=4
  MODE=$mode N_ORDERERS=$n_orderers

  # binaries
  local fabric_bin=${MEDFABRIC_FABRIC_BIN:-}
  if [ -z "$fabric_bin" ]; then
    fabric_bin=$("$HERE/scripts/install-binaries.sh" fabric) || die "could not get the Fabric binaries (see the message above)"
  fi
  local b
  for b in peer orderer configtxgen osnadmin cryptogen; do
    [ -x "$fabric_bin/$b" ] || die "$fabric_bin/$b not found or not executable (MEDFABRIC_FABRIC_BIN?)"
  done
  local ca_bin=${MEDFABRIC_CA_BIN:-}
  if [ -z "$ca_bin" ]; then
    ca_bin=$("$HERE/scripts/install-binaries.sh" ca) || die "could not get the Fabric CA binaries (see the message above)"
  fi
  [ -x "$ca_bin/fabric-ca-server" ] || die "$ca_bin/fabric-ca-server not found or not executable (MEDFABRIC_CA_BIN?)"
  export PATH="$fabric_bin:$PATH"
  for b in envsubst curl ss jq openssl; do
    command -v $b >/dev/null || die "'$b' is required (apt-get install gettext-base curl iproute2 jq openssl)"
  done

  # ports free?
  local ports=() i org p
  for ((i = 0; i < n_orderers; i++)); do
    ports+=("$(orderer_port $i)" "$(orderer_admin_port $i)" "$(orderer_ops_port $i)")
  done
  for org in "${ORGS[@]}"; do ports+=("$(peer_port "$org")" "$(peer_cc_port "$org")" "$(peer_ops_port "$org")"); done
  for org in "${ORGS[@]}"; do ports+=("$(ca_port "$org")" "$(ca_ops_port "$org")"); done
  for p in "${ports[@]}"; do
    port_busy "$p" && die "port $p is in use (another network? run '$0 down', or set MEDFABRIC_PORT_BASE)"
  done

  rm -rf "$STATE"
  mkdir -p "$STATE"/{config,channel-artifacts,logs,orderers,peers,connection,ca}
  trap up_failed EXIT
  : >"$STATE/pids"
  cat >"$STATE/network.env" <<EOF
MODE=$mode
N_ORDERERS=$n_orderers
PORT_BASE=$PORT_BASE
BATCH_TIMEOUT=$batch_timeout
FABRIC_BIN=$fabric_bin
CA_BIN=$ca_bin
EOF

  # crypto material
  cryptogen generate --config="$NETCFG/crypto-config.yaml" --output="$CRYPTO" >"$STATE/logs/cryptogen.log" 2>&1 ||
    die "cryptogen failed: $(cat "$STATE/logs/cryptogen.log")"

  # channel genesis blocks
  export MF_CRYPTO=$CRYPTO MF_BATCH_TIMEOUT=$batch_timeout MF_BATCH_MAX_COUNT=$batch_max
  export MF_ORDERER0_PORT MF_ORDERER1_PORT MF_ORDERER2_PORT MF_ORDERER3_PORT
  MF_ORDERER0_PORT=$(orderer_port 0) MF_ORDERER1_PORT=$(orderer_port 1)
  MF_ORDERER2_PORT=$(orderer_port 2) MF_ORDERER3_PORT=$(orderer_port 3)
  export MF_HOSPITAL1_PORT MF_HOSPITAL2_PORT MF_RESEARCH_PORT
  MF_HOSPITAL1_PORT=$(peer_port hospital1) MF_HOSPITAL2_PORT=$(peer_port hospital2) MF_RESEARCH_PORT=$(peer_port research)
  render "$NETCFG/configtx.yaml" "$STATE/config/configtx.yaml" MF_CRYPTO MF_BATCH_TIMEOUT MF_BATCH_MAX_COUNT \
    MF_ORDERER0_PORT MF_ORDERER1_PORT MF_ORDERER2_PORT MF_ORDERER3_PORT MF_HOSPITAL1_PORT MF_HOSPITAL2_PORT MF_RESEARCH_PORT
  local profile=MedfabricRaft ch
  [ $bft = 1 ] && profile=MedfabricBFT
  for ch in "${CHANNELS[@]}"; do
    configtxgen -configPath "$STATE/config" -profile $profile -channelID "$ch" \
      -outputBlock "$STATE/channel-artifacts/$ch.block" >"$STATE/logs/configtxgen-$ch.log" 2>&1 ||
      die "configtxgen for channel $ch failed: $(grep -m 1 -A 4 -E 'PANI|FATA|Error' "$STATE/logs/configtxgen-$ch.log" || tail -n 5 "$STATE/logs/configtxgen-$ch.log")"
  done

  # orderers
  local opids=() name
  for ((i = 0; i < n_orderers; i++)); do
    name=orderer$i
    mkdir -p "$STATE/orderers/$name/data"
    MF_NODE_DIR=$(orderer_dir $i) MF_DATA_DIR=$STATE/orderers/$name/data \
      MF_PORT=$(orderer_port $i) MF_ADMIN_PORT=$(orderer_admin_port $i) MF_OPS_PORT=$(orderer_ops_port $i) \
      MF_CONSENSUS_TYPE=$([ $bft = 1 ] && echo BFT || echo etcdraft) \
      render "$NETCFG/orderer.yaml" "$STATE/orderers/$name/orderer.yaml" \
      MF_NODE_DIR MF_DATA_DIR MF_PORT MF_ADMIN_PORT MF_OPS_PORT MF_CONSENSUS_TYPE
    opids+=("$(start_bg "$name" "$STATE/logs/$name.log" env FABRIC_CFG_PATH="$STATE/orderers/$name" FABRIC_LOGGING_FORMAT="$LOG_FORMAT" "$fabric_bin/orderer")")
  done

  # peers
  local ppids=()
  for org in "${ORGS[@]}"; do
    name=$(peer_name "$org")
    mkdir -p "$STATE/peers/$name/data"
    MF_PEER_NAME=$name MF_MSPID=$(org_msp "$org") MF_NODE_DIR=$(peer_dir "$org") \
      MF_DATA_DIR=$STATE/peers/$name/data MF_PORT=$(peer_port "$org") MF_CC_PORT=$(peer_cc_port "$org") \
      MF_OPS_PORT=$(peer_ops_port "$org") MF_BUILDER_DIR=$BUILDER_DIR \
      render "$NETCFG/core.yaml" "$STATE/peers/$name/core.yaml" \
      MF_PEER_NAME MF_MSPID MF_NODE_DIR MF_DATA_DIR MF_PORT MF_CC_PORT MF_OPS_PORT MF_BUILDER_DIR
    ppids+=("$(start_bg "$name" "$STATE/logs/$name.log" env FABRIC_CFG_PATH="$STATE/peers/$name" FABRIC_LOGGING_FORMAT="$LOG_FORMAT" "$fabric_bin/peer" node start)")
  done

  # Fabric CAs (see start_ca)
  local capids=()
  for org in "${ORGS[@]}"; do capids+=("$(start_ca "$org" "$ca_bin")"); done

  # orderers join the channels (channel participation API)
  local adm
  adm=$(orderer_admin_dir)
  for ((i = 0; i < n_orderers; i++)); do
    wait_until "orderer$i operations endpoint" 30 "${opids[$i]}" "$STATE/logs/orderer$i.log" \
      http_ok "http://127.0.0.1:$(orderer_ops_port $i)/healthz"
  done
  local out jpids=() jnames=() j
  for ch in "${CHANNELS[@]}"; do
    for ((i = 0; i < n_orderers; i++)); do
      osnadmin channel join --channelID "$ch" --config-block "$STATE/channel-artifacts/$ch.block" \
        -o "127.0.0.1:$(orderer_admin_port $i)" --ca-file "$(orderer_tlsca)" \
        --client-cert "$adm/tls/client.crt" --client-key "$adm/tls/client.key" \
        >"$STATE/logs/join-orderer$i-$ch.log" 2>&1 &
      jpids+=($!)
      jnames+=("orderer$i-$ch")
    done
  done
  for j in "${!jpids[@]}"; do
    wait "${jpids[$j]}" || die "osnadmin channel join (${jnames[$j]}) failed: $(cat "$STATE/logs/join-${jnames[$j]}.log")"
    grep -q 'Status: 201' "$STATE/logs/join-${jnames[$j]}.log" ||
      die "osnadmin channel join (${jnames[$j]}) refused: $(cat "$STATE/logs/join-${jnames[$j]}.log")"
  done

  # peers join the channels
  for ((i = 0; i < ${#ORGS[@]}; i++)); do
    org=${ORGS[$i]}
    wait_until "$(peer_name "$org") operations endpoint" 30 "${ppids[$i]}" "$STATE/logs/$(peer_name "$org").log" \
      http_ok "http://127.0.0.1:$(peer_ops_port "$org")/healthz"
  done
  jpids=() jnames=()
  for org in "${ORGS[@]}"; do
    for ch in "${CHANNELS[@]}"; do
      as_org "$org" -- peer channel join -b "$STATE/channel-artifacts/$ch.block" \
        >"$STATE/logs/join-$org-$ch.log" 2>&1 &
      jpids+=($!)
      jnames+=("$org-$ch")
    done
  done
  for j in "${!jpids[@]}"; do
    wait "${jpids[$j]}" || die "peer channel join (${jnames[$j]}) failed: $(cat "$STATE/logs/join-${jnames[$j]}.log")"
  done
  # Anchor peers are part of the genesis blocks (AnchorPeers in configtx.yaml): no update tx.

  # a leader must exist before the first transaction (otherwise SERVICE_UNAVAILABLE)
  for ch in "${CHANNELS[@]}"; do
    if [ $bft = 1 ]; then
      wait_until "a BFT leader on $ch" 30 "${opids[0]}" "$STATE/logs/orderer0.log" bft_has_leader "$ch"
    else
      wait_until "a raft leader on $ch" 30 "${opids[0]}" "$STATE/logs/orderer0.log" raft_has_leader "$ch"
    fi
  done

  for ((i = 0; i < ${#ORGS[@]}; i++)); do
    org=${ORGS[$i]}
    # its operations endpoint comes up first: wait for the API listener itself
    wait_until "$(ca_name "$org") on 127.0.0.1:$(ca_port "$org")" 30 "${capids[$i]}" "$STATE/logs/ca-$org.log" \
      port_busy "$(ca_port "$org")"
  done

  # the consortium's S3-compatible object store for encrypted records (scripts/minio.sh)
  bash "$HERE/scripts/minio.sh" start --dir "$STATE/minio" \
    --port "$(minio_port)" --bucket medfabric >/dev/null 2>"$STATE/logs/minio-start.log" ||
    die "MinIO did not start: $(tail -n 5 "$STATE/logs/minio-start.log")"

  write_connection_profiles
  trap - EXIT
  log "network up ($mode, $n_orderers orderer(s), BatchTimeout $batch_timeout) in $(elapsed "$t0") s"
  log "state: $STATE   logs: $STATE/logs   connection profiles: $STATE/connection/<org>.json"
  log "object store: MinIO at http://127.0.0.1:$(minio_port), bucket medfabric (settings: $STATE/minio/env)"
  log "peer CLI: eval \"\$($0 env hospital1)\""
}

write_connection_profiles() {
  local orderers='{}' names='[]' i org o1 o2 n
  for ((i = 0; i < N_ORDERERS; i++)); do
    n=orderer$i.medfabric.local
    orderers=$(jq -c --arg n "$n" --arg url "grpcs://127.0.0.1:$(orderer_port $i)" --arg ca "$(orderer_tlsca)" \
      '. + {($n): {url: $url, tlsCACerts: {path: $ca}, grpcOptions: {"ssl-target-name-override": $n, hostnameOverride: $n}}}' <<<"$orderers")
    names=$(jq -c --arg n "$n" '. + [$n]' <<<"$names")
  done
  for org in "${ORGS[@]}"; do
    local others=()
    for o1 in "${ORGS[@]}"; do [ "$o1" != "$org" ] && others+=("$o1"); done
    o1=${others[0]} o2=${others[1]}
    MF_ORG_KEY=$org MF_ORG_NAME=$(org_name "$org") MF_MSPID=$(org_msp "$org") MF_ORG_DOMAIN=$(org_domain "$org") \
      MF_OTHER1_NAME=$(org_name "$o1") MF_OTHER1_MSPID=$(org_msp "$o1") MF_OTHER1_DOMAIN=$(org_domain "$o1") \
      MF_OTHER2_NAME=$(org_name "$o2") MF_OTHER2_MSPID=$(org_msp "$o2") MF_OTHER2_DOMAIN=$(org_domain "$o2") \
      MF_ORDERERS_JSON=$orderers MF_ORDERER_NAMES=$names MF_CRYPTO=$CRYPTO MF_CA_PORT=$(ca_port "$org") \
      render "$NETCFG/connection-profile.json.tmpl" "$STATE/connection/$org.json.tmp" \
      MF_ORG_KEY MF_ORG_NAME MF_MSPID MF_ORG_DOMAIN MF_OTHER1_NAME MF_OTHER1_MSPID MF_OTHER1_DOMAIN \
      MF_OTHER2_NAME MF_OTHER2_MSPID MF_OTHER2_DOMAIN MF_ORDERERS_JSON MF_ORDERER_NAMES MF_CRYPTO \
      MF_HOSPITAL1_PORT MF_HOSPITAL2_PORT MF_RESEARCH_PORT MF_CA_PORT
    jq . "$STATE/connection/$org.json.tmp" >"$STATE/connection/$org.json" ||
      die "rendered connection profile for $org is not valid JSON: $STATE/connection/$org.json.tmp"
    rm -f "$STATE/connection/$org.json.tmp"
  done
}

# ---------------------------------------------------------------------------------------------
# down / status

cmd_down() {
  if [ ! -d "$STATE" ]; then
    log "nothing to stop ($STATE does not exist)"
    return 0
  fi
  local pid name exe killed=()
  if [ -f "$STATE/pids" ]; then
    while read -r pid name exe; do
      [ -n "$pid" ] || continue
      if pid_alive "$pid" "$exe"; then
        kill -TERM "$pid" 2>/dev/null || true
        killed+=("$pid:$exe")
      fi
    done <"$STATE/pids"
    local deadline=$((SECONDS + 10)) entry
    for entry in "${killed[@]}"; do
      pid=${entry%%:*} exe=${entry#*:}
      while pid_alive "$pid" "$exe" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
      if pid_alive "$pid" "$exe"; then
        log "pid $pid ($exe) ignored SIGTERM: sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  fi
  # MinIO may have been restarted by a test (new pid): stop whatever runs from its folder
  [ -d "$STATE/minio" ] && bash "$HERE/scripts/minio.sh" stop --dir "$STATE/minio" >/dev/null 2>&1 || true
  rm -rf "$STATE"
  log "network down (${#killed[@]} process(es) stopped, $STATE removed)"
}

cmd_status() {
  [ -f "$STATE/pids" ] || {
    log "no network state in $STATE"
    return 1
  }
  cat "$STATE/network.env"
  local pid name exe
  while read -r pid name exe; do
    if pid_alive "$pid" "$exe"; then echo "running  $pid  $name"; else echo "STOPPED  $pid  $name"; fi
  done <"$STATE/pids"
  echo "minio    $(bash "$HERE/scripts/minio.sh" status --dir "$STATE/minio" 2>/dev/null || true)"
}

# ---------------------------------------------------------------------------------------------
# env

cmd_env() {
  local org=${1:-} user=Admin
  [ -n "$org" ] || die "usage: $0 env ORG [--user Admin|User1|User2|User3]   (ORG: ${ORGS[*]})"
  shift
  while [ $# -gt 0 ]; do
    case $1 in
      --user) user=$2; shift ;;
      *) die "env: unknown option '$1'" ;;
    esac
    shift
  done
  org_name "$org" >/dev/null
  load_state
  [ -d "$(user_msp "$org" "$user")" ] || die "no identity $user in $(org_name "$org")"
  local leader o
  leader=$(orderer_leader storage)
  cat <<EOF
export PATH="$FABRIC_BIN:\$PATH"
export FABRIC_CFG_PATH="$STATE/peers/$(peer_name "$org")"
export CORE_PEER_TLS_ENABLED=true
export CORE_PEER_LOCALMSPID=$(org_msp "$org")
export CORE_PEER_MSPCONFIGPATH="$(user_msp "$org" "$user")"
export CORE_PEER_ADDRESS=127.0.0.1:$(peer_port "$org")
export CORE_PEER_TLS_ROOTCERT_FILE="$(peer_tlsca "$org")"
export ORDERER_ADDRESS=127.0.0.1:$(orderer_port "$leader")
export ORDERER_CA="$(orderer_tlsca)"
export FABRIC_CA_URL=https://127.0.0.1:$(ca_port "$org")
export FABRIC_CA_NAME=$(ca_name "$org")
export FABRIC_CA_CLIENT_TLS_CERTFILES="$(peer_tlsca "$org")"
EOF
  for o in "${ORGS[@]}"; do
    local up=${o^^}
    echo "export PEER_${up}_ADDRESS=127.0.0.1:$(peer_port "$o")"
    echo "export PEER_${up}_TLS_CA=\"$(peer_tlsca "$o")\""
  done
}

# ---------------------------------------------------------------------------------------------
# deploy (chaincode as a service)

ccaas_tls() { # one CA for all chaincode servers: server cert (127.0.0.1, localhost) + peer client cert
  local d=$STATE/ccaas/tls
  [ -f "$d/client.crt" ] && return 0
  mkdir -p "$d"
  (
    set -e
    cd "$d"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
    openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/O=medfabric/CN=medfabric chaincode TLS CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.crt
    for kind in server client; do
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out $kind.key
      openssl req -new -key $kind.key -subj "/O=medfabric/CN=chaincode-$kind" -out $kind.csr
      if [ $kind = server ]; then
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >$kind.ext
      else
        printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyAgreement\nextendedKeyUsage=clientAuth\n' >$kind.ext
      fi
      openssl x509 -req -in $kind.csr -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
        -days 3650 -sha256 -extfile $kind.ext -out $kind.crt
      rm -f $kind.csr $kind.ext
    done
    chmod 600 ./*.key
  ) >"$STATE/logs/ccaas-tls.log" 2>&1 || die "openssl failed making the chaincode TLS material: $(tail -n 5 "$STATE/logs/ccaas-tls.log")"
}

# reproducible tar.gz of the given files in the current folder
repro_tgz() {
  local out=$1
  shift
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --mode=u=rw,go=r,a-s --format=ustar \
    -cf - "$@" | gzip -n -9 >"$out"
}

all_approved() { # org channel name version sequence extra... -> every org approved on org's peer
  local org=$1 ch=$2 name=$3 version=$4 seq=$5
  shift 5
  as_org "$org" -- peer lifecycle chaincode checkcommitreadiness -C "$ch" -n "$name" -v "$version" \
    --sequence "$seq" "$@" -O json 2>/dev/null | jq -e '[.approvals[]] | all' >/dev/null
}

server_running() { # name -> pid of the recorded chaincode server if alive
  local pid name exe
  [ -f "$STATE/pids" ] || return 1
  while read -r pid name exe; do
    if [ "$name" = "chaincode-$1" ] && pid_alive "$pid" "$exe"; then
      echo "$pid"
      return 0
    fi
  done <"$STATE/pids"
  return 1
}

stop_server() { # name
  local pid exe
  if pid=$(server_running "$1"); then
    exe=$(awk -v p="$pid" '$1 == p { print $3 }' "$STATE/pids")
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 5))
    while pid_alive "$pid" "$exe" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    if pid_alive "$pid" "$exe"; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  awk -v n="chaincode-$1" '$2 != n' "$STATE/pids" >"$STATE/pids.tmp" && mv "$STATE/pids.tmp" "$STATE/pids"
}

cmd_deploy() {
  local name=basic binary="" channels="${CHANNELS[*]}" port=9999 version=1.0 collections="" policy=""
  local skip_server=0
  while [ $# -gt 0 ]; do
    case $1 in
      --name) name=$2; shift ;;
      --binary) binary=$2; shift ;;
      --channels) channels=$2; shift ;;
      --port) port=$2; shift ;;
      --version) version=$2; shift ;;
      --collections) collections=$2; shift ;;
      --policy) policy=$2; shift ;;
      --skip-server) skip_server=1 ;;
      *) die "deploy: unknown option '$1' (see '$0 help')" ;;
    esac
    shift
  done
  [[ $name =~ ^[a-zA-Z0-9][a-zA-Z0-9_-]*$ ]] || die "chaincode name '$name' is invalid"
  [[ $port =~ ^[0-9]+$ ]] || die "--port must be a number"
  load_state
  network_alive || die "some network processes are not running ('$0 status'); run '$0 down' and '$0 up'"
  local t0
  t0=$(now)

  # the chaincode server binary
  if [ $skip_server = 0 ]; then
    if [ -z "$binary" ]; then
      binary=$ROOT/target/release/asset-transfer-basic
      if [ ! -x "$binary" ]; then
        log "$binary missing: cargo build --release -p medfabric-contracts"
        (cd "$ROOT" && cargo build --release -p medfabric-contracts) >&2 ||
          die "cargo build --release -p medfabric-contracts failed"
      fi
    fi
    [ -x "$binary" ] || die "chaincode server binary '$binary' not found or not executable (--binary PATH)"
    binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
    if ! server_running "$name" >/dev/null && port_busy "$port"; then
      die "port $port is in use: choose another with --port"
    fi
  fi
  if [ -n "$collections" ]; then
    [ -f "$collections" ] || die "collections config '$collections' not found"
    collections=$(cd "$(dirname "$collections")" && pwd)/$(basename "$collections")
  fi

  # package (deterministic: same TLS material + address -> same package id)
  ccaas_tls
  local tls=$STATE/ccaas/tls pkgdir=$STATE/ccaas/$name label=${name}_${version}
  mkdir -p "$pkgdir/src"
  jq -n --arg addr "127.0.0.1:$port" --rawfile root "$tls/ca.crt" --rawfile key "$tls/client.key" \
    --rawfile cert "$tls/client.crt" \
    '{address: $addr, dial_timeout: "10s", tls_required: true, client_auth_required: true,
      root_cert: $root, client_key: $key, client_cert: $cert}' >"$pkgdir/src/connection.json"
  jq -n --arg lbl "$label" '{"type": "ccaas", "label": $lbl}' >"$pkgdir/src/metadata.json"
  (cd "$pkgdir/src" && repro_tgz code.tar.gz connection.json && repro_tgz "../$label.tar.gz" code.tar.gz metadata.json)
  local pkg=$pkgdir/$label.tar.gz pkgid
  pkgid=$(as_org hospital1 -- peer lifecycle chaincode calculatepackageid "$pkg" 2>&1) || die "calculatepackageid failed: $pkgid"
  log "package $pkgid"

  # install on every peer (skipped where already installed)
  local org ipids=() i
  mkdir -p "$STATE/logs/deploy"
  for org in "${ORGS[@]}"; do
    (
      as_org "$org" -- peer lifecycle chaincode queryinstalled -O json 2>/dev/null | grep -q "\"$pkgid\"" ||
        as_org "$org" -- peer lifecycle chaincode install "$pkg"
    ) >"$STATE/logs/deploy/install-$name-$org.log" 2>&1 &
    ipids+=($!)
  done
  for i in "${!ipids[@]}"; do
    wait "${ipids[$i]}" || die "install on $(peer_name "${ORGS[$i]}") failed: $(cat "$STATE/logs/deploy/install-$name-${ORGS[$i]}.log")"
  done

  # approve + commit per channel; channels and orgs run in parallel
  local ch extra=() lpids=() lnames=()
  [ -n "$collections" ] && extra+=(--collections-config "$collections")
  [ -n "$policy" ] && extra+=(--signature-policy "$policy")
  local commit_args=()
  for org in "${ORGS[@]}"; do
    commit_args+=(--peerAddresses "127.0.0.1:$(peer_port "$org")" --tlsRootCertFiles "$(peer_tlsca "$org")")
  done
  local defhash # what makes a definition: package, version, policy, collections
  defhash=$({ echo "$pkgid $version $policy"; [ -z "$collections" ] || cat "$collections"; } | sha256sum | cut -c1-64)
  for ch in $channels; do
    (
      set -e
      leader=$(orderer_leader "$ch")
      oargs=(-o "127.0.0.1:$(orderer_port "$leader")" --tls --cafile "$(orderer_tlsca)")
      seq=0
      if q=$(as_org hospital1 -- peer lifecycle chaincode querycommitted -C "$ch" -n "$name" -O json 2>/dev/null); then
        seq=$(jq -r .sequence <<<"$q")
        # committed by an earlier deploy with the same package and definition: nothing to do
        if [ "$(cat "$pkgdir/committed-$ch" 2>/dev/null)" = "$seq $defhash" ]; then
          echo "$ch: $name already committed at sequence $seq with this package and definition"
          exit 0
        fi
      fi
      seq=$((seq + 1))
      apids=()
      for org in "${ORGS[@]}"; do
        as_org "$org" -- peer lifecycle chaincode approveformyorg "${oargs[@]}" --channelID "$ch" --name "$name" \
          --version "$version" --package-id "$pkgid" --sequence "$seq" "${extra[@]}" \
          >"$STATE/logs/deploy/approve-$name-$ch-$org.log" 2>&1 &
        apids+=($!)
      done
      for i in "${!apids[@]}"; do
        wait "${apids[$i]}" || {
          echo "approveformyorg for ${ORGS[$i]} on $ch failed:" >&2
          cat "$STATE/logs/deploy/approve-$name-$ch-${ORGS[$i]}.log" >&2
          exit 1
        }
      done
      # every endorsing peer must have seen every approval, or their commit endorsements differ
      for org in "${ORGS[@]}"; do
        wait_until "$(peer_name "$org") to see all approvals of $name on $ch" 30 "" "" \
          all_approved "$org" "$ch" "$name" "$version" "$seq" "${extra[@]}"
      done
      as_org hospital1 -- peer lifecycle chaincode commit "${oargs[@]}" --channelID "$ch" --name "$name" \
        --version "$version" --sequence "$seq" "${extra[@]}" "${commit_args[@]}" \
        >"$STATE/logs/deploy/commit-$name-$ch.log" 2>&1 || {
        echo "commit on $ch failed:" >&2
        cat "$STATE/logs/deploy/commit-$name-$ch.log" >&2
        exit 1
      }
      echo "$seq $defhash" >"$pkgdir/committed-$ch"
      echo "$ch: $name committed at sequence $seq"
    ) >"$STATE/logs/deploy/$name-$ch.log" 2>&1 &
    lpids+=($!)
    lnames+=("$ch")
  done
  local failed=0
  for i in "${!lpids[@]}"; do
    if wait "${lpids[$i]}"; then
      log "$(cat "$STATE/logs/deploy/$name-${lnames[$i]}.log")"
    else
      log "lifecycle on ${lnames[$i]} failed:"
      cat "$STATE/logs/deploy/$name-${lnames[$i]}.log" >&2
      failed=1
    fi
  done
  [ $failed = 0 ] || die "deploy of $name failed (logs: $STATE/logs/deploy/)"

  if [ $skip_server = 1 ]; then
    log "definition committed in $(elapsed "$t0") s; --skip-server: start the server yourself with"
    log "  CHAINCODE_ID=$pkgid CHAINCODE_SERVER_ADDRESS=127.0.0.1:$port CHAINCODE_TLS_CERT_FILE=$tls/server.crt CHAINCODE_TLS_KEY_FILE=$tls/server.key CHAINCODE_TLS_CLIENT_CA_FILE=$tls/ca.crt MEDFABRIC_CHAINCODE_NAME=$name <binary>"
    return 0
  fi

  # chaincode server: (re)start unless the same binary already serves this package
  local info pid
  info="$pkgid 127.0.0.1:$port $binary $(stat -c %Y "$binary")"
  if pid=$(server_running "$name") && [ "$(cat "$pkgdir/server.info" 2>/dev/null)" = "$info" ]; then
    log "chaincode server $name already running (pid $pid)"
  else
    stop_server "$name"
    pid=$(start_bg "chaincode-$name" "$STATE/logs/chaincode-$name.log" env \
      CHAINCODE_ID="$pkgid" CHAINCODE_SERVER_ADDRESS="127.0.0.1:$port" \
      CHAINCODE_TLS_CERT_FILE="$tls/server.crt" CHAINCODE_TLS_KEY_FILE="$tls/server.key" \
      CHAINCODE_TLS_CLIENT_CA_FILE="$tls/ca.crt" MEDFABRIC_CHAINCODE_NAME="$name" \
      NO_COLOR="${NO_COLOR:-1}" "$binary")
    echo "$info" >"$pkgdir/server.info"
    wait_until "chaincode server $name on 127.0.0.1:$port" 20 "$pid" "$STATE/logs/chaincode-$name.log" port_busy "$port"
    log "chaincode server $name started (pid $pid, log $STATE/logs/chaincode-$name.log)"
  fi
  # every gateway must know every organisation's endorsing peer before a client uses it
  # shellcheck disable=SC2086 # $channels is a space-separated list
  wait_for_discovery "$name" $channels
  log "deployed $name on: $channels in $(elapsed "$t0") s"
}

# ---------------------------------------------------------------------------------------------
# stop-peer / start-peer: take one organisation's peer away and bring it back (same config and
# ledger), so tests can check what clients do while a peer is gone.

cmd_stop_peer() {
  local org=${1:-}
  [ -n "$org" ] || die "usage: $0 stop-peer ORG   (ORG: ${ORGS[*]})"
  org_name "$org" >/dev/null
  load_state
  local name pid n exe found=0 rest=()
  name=$(peer_name "$org")
  while read -r pid n exe; do
    [ -n "$pid" ] || continue
    if [ "$n" = "$name" ] && pid_alive "$pid" "$exe"; then
      found=1
      kill -TERM "$pid" 2>/dev/null || true
      local deadline=$((SECONDS + 10))
      while pid_alive "$pid" "$exe" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
      if pid_alive "$pid" "$exe"; then kill -KILL "$pid" 2>/dev/null || true; fi
    elif [ "$n" != "$name" ]; then
      rest+=("$pid $n $exe")
    fi
  done <"$STATE/pids"
  [ $found = 1 ] || die "$name is not running ('$0 status' lists what runs)"
  printf '%s\n' "${rest[@]}" >"$STATE/pids"
  log "$name stopped"
}

cmd_start_peer() {
  local org=${1:-}
  [ -n "$org" ] || die "usage: $0 start-peer ORG   (ORG: ${ORGS[*]})"
  org_name "$org" >/dev/null
  load_state
  local name pid
  name=$(peer_name "$org")
  [ -f "$STATE/peers/$name/core.yaml" ] || die "no configuration for $name in $STATE: run '$0 up' first"
  port_busy "$(peer_port "$org")" && die "port $(peer_port "$org") is in use: is $name already running?"
  pid=$(start_bg "$name" "$STATE/logs/$name.restart.log" env FABRIC_CFG_PATH="$STATE/peers/$name" \
    FABRIC_LOGGING_FORMAT="$LOG_FORMAT" "$FABRIC_BIN/peer" node start)
  wait_until "$name operations endpoint" 30 "$pid" "$STATE/logs/$name.restart.log" \
    http_ok "http://127.0.0.1:$(peer_ops_port "$org")/healthz"
  # back in every gateway's view for each deployed chaincode
  local f cc channels
  for f in "$STATE"/ccaas/*/committed-*; do
    [ -f "$f" ] || continue
    cc=$(basename "$(dirname "$f")")
    channels=$(basename "$f")
    wait_for_discovery "$cc" "${channels#committed-}"
  done
  log "$name started (pid $pid, log $STATE/logs/$name.restart.log)"
}

# ---------------------------------------------------------------------------------------------

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }

cmd=${1:-help}
[ $# -gt 0 ] && shift
case $cmd in
  up)
    cmd_up "$@"
    ;;
  down) cmd_down ;;
  deploy) cmd_deploy "$@" ;;
  env) cmd_env "$@" ;;
  status) cmd_status ;;
  stop-peer) cmd_stop_peer "$@" ;;
  start-peer) cmd_start_peer "$@" ;;
  help | -h | --help) usage ;;
  *)
    usage >&2
    exit 2
    ;;
esac
