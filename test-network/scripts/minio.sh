#!/usr/bin/env bash
# Starts and stops a single-node MinIO server for tests and local development (S3-compatible
# blob store for medfabric-blobstore).
#
#   minio.sh start  [--dir DIR] [--port PORT] [--bucket NAME] [--watch-pid PID]
#   minio.sh stop   [--dir DIR]
#   minio.sh kill   [--dir DIR]     SIGKILL (a crash, for tests); the data stays for a restart
#   minio.sh env    [--dir DIR]     prints the MEDFABRIC_S3_* variables of a running server
#   minio.sh status [--dir DIR]
#
#   --dir DIR        state folder (default test-network/.state/minio): data/, minio.log,
#                    pid ("PID EXECUTABLE"), env (the MEDFABRIC_S3_* lines)
#   --port PORT      S3 API port on 127.0.0.1 (default: the port of the previous start in DIR,
#                    else a free port)
#   --bucket NAME    bucket created on start (default: the bucket of the previous start in DIR,
#                    else medfabric-test)
#   --watch-pid PID  stop the server when process PID exits (test harnesses: no stray server
#                    when a test process dies)
#
# `start` prints, on stdout, lines to eval:
#   MEDFABRIC_S3_ENDPOINT=http://127.0.0.1:PORT MEDFABRIC_S3_BUCKET=... MEDFABRIC_S3_REGION=us-east-1
#   MEDFABRIC_S3_ACCESS_KEY_ID=... MEDFABRIC_S3_SECRET_ACCESS_KEY=... MEDFABRIC_MINIO_PID=...
# It is idempotent: a server already running from DIR is reused. Starting again after `kill`
# or `stop` reuses the data folder and (unless --port says otherwise) the port.
#
# The root credentials are fixed TEST credentials (the server listens on 127.0.0.1 only);
# never use this script for real data. Plain HTTP: clients must opt in to insecure transport.
#
# Binary: $MEDFABRIC_MINIO_BIN if set, else `install-binaries.sh minio` (builds the pinned
# MinIO once into ~/.cache/medfabric). Exit status 3: MinIO is not available.
#
# Note: `network.sh down` removes test-network/.state, including the default DIR: stop MinIO
# first.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ROOT_USER=medfabric-test
ROOT_PASSWORD=medfabric-test-secret # test-only, see above
REGION=us-east-1

log() { echo "minio.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

cmd=${1:-}
[ $# -gt 0 ] && shift
dir=$here/../.state/minio
port=
bucket=
watch_pid=
while [ $# -gt 0 ]; do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --bucket) bucket=$2; shift 2 ;;
    --watch-pid) watch_pid=$2; shift 2 ;;
    *) die "unknown argument $1 (see $0 --help)" ;;
  esac
done

port_busy() { ss -ltnH "sport = :$1" 2>/dev/null | grep -q .; }

free_port() {
  local p i
  for i in $(seq 1 200); do
    p=$((20000 + RANDOM % 40000))
    port_busy "$p" || { echo "$p"; return 0; }
  done
  die "no free port found"
}

pid_alive() { # pid exe: alive and still the program we started (guards against pid reuse)
  [ -d "/proc/$1" ] || return 1
  [ "$(readlink "/proc/$1/exe" 2>/dev/null || true)" = "$2" ]
}

recorded() { # prints "PID EXE" of the recorded server when it is alive
  local pid exe
  [ -f "$dir/pid" ] || return 1
  read -r pid exe <"$dir/pid" || return 1
  pid_alive "$pid" "$exe" || return 1
  echo "$pid $exe"
}

minio_bin() {
  if [ -n "${MEDFABRIC_MINIO_BIN:-}" ]; then
    [ -x "$MEDFABRIC_MINIO_BIN" ] || { log "MEDFABRIC_MINIO_BIN=$MEDFABRIC_MINIO_BIN is not executable"; exit 3; }
    echo "$MEDFABRIC_MINIO_BIN"
    return
  fi
  local bin
  bin=$(bash "$here/install-binaries.sh" minio) || { log "MinIO is not available (install-binaries.sh minio failed)"; exit 3; }
  echo "$bin/minio"
}

print_env() {
  cat "$dir/env"
}

# s3_put_bucket PORT NAME: CreateBucket with a SigV4-signed request (curl >= 7.75). MinIO
# answers /minio/health/ready before its object layer is up and then refuses requests with 503
# XMinioServerNotInitialized (or drops the connection): retry those for up to 60 s.
s3_put_bucket() {
  local code deadline=$((SECONDS + 60))
  while :; do
    code=$(curl -s -o "$dir/create-bucket.out" -w '%{http_code}' --max-time 10 -X PUT \
      --aws-sigv4 "aws:amz:$REGION:s3" --user "$ROOT_USER:$ROOT_PASSWORD" \
      "http://127.0.0.1:$1/$2") || true
    case $code in
      200) return 0 ;;
      409) grep -q BucketAlreadyOwnedByYou "$dir/create-bucket.out" && return 0 ;;
      000 | 503) [ $SECONDS -lt $deadline ] && { sleep 0.2; continue; } ;;
    esac
    die "creating bucket $2 failed (HTTP $code): $(cat "$dir/create-bucket.out" 2>/dev/null)"
  done
}

cmd_start() {
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  # a restart (after `kill` or `stop`) keeps the bucket, as it keeps the data and the port
  [ -n "$bucket" ] || bucket=$(cat "$dir/bucket" 2>/dev/null || echo medfabric-test)
  echo "$bucket" >"$dir/bucket"
  if recorded >/dev/null && [ -f "$dir/env" ]; then
    s3_put_bucket "$(sed -n 's/^MEDFABRIC_S3_ENDPOINT=.*:\([0-9]*\)$/\1/p' "$dir/env")" "$bucket"
    print_env
    return
  fi
  local exe
  exe=$(minio_bin)
  exe=$(readlink -f "$exe")
  if [ -z "$port" ] && [ -f "$dir/port" ]; then
    port=$(cat "$dir/port")
    port_busy "$port" && die "port $port (previous start in $dir) is busy; pass --port"
  fi
  [ -n "$port" ] || port=$(free_port)
  port_busy "$port" && die "port $port is busy"
  local console
  console=$(free_port)
  [ "$console" = "$port" ] && console=$(free_port)
  echo "$port" >"$dir/port"

  MINIO_ROOT_USER=$ROOT_USER MINIO_ROOT_PASSWORD=$ROOT_PASSWORD MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_REGION=$REGION \
    nohup "$exe" server --quiet --address "127.0.0.1:$port" --console-address "127.0.0.1:$console" \
    "$dir/data" >>"$dir/minio.log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid $exe" >"$dir/pid"

  local deadline=$((SECONDS + 30))
  until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$port/minio/health/ready"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 20 "$dir/minio.log" >&2 || true
      die "MinIO exited during start (log: $dir/minio.log)"
    fi
    [ $SECONDS -lt $deadline ] || { kill -TERM "$pid" 2>/dev/null || true; die "MinIO not ready after 30 s (log: $dir/minio.log)"; }
    sleep 0.1
  done
  cat >"$dir/env" <<EOF
MEDFABRIC_S3_ENDPOINT=http://127.0.0.1:$port
MEDFABRIC_S3_BUCKET=$bucket
MEDFABRIC_S3_REGION=$REGION
MEDFABRIC_S3_ACCESS_KEY_ID=$ROOT_USER
MEDFABRIC_S3_SECRET_ACCESS_KEY=$ROOT_PASSWORD
MEDFABRIC_MINIO_PID=$pid
EOF
  s3_put_bucket "$port" "$bucket"

  if [ -n "$watch_pid" ]; then
    # stops this server (and only it) when the watched process is gone
    (
      while kill -0 "$watch_pid" 2>/dev/null && pid_alive "$pid" "$exe"; do sleep 1; done
      pid_alive "$pid" "$exe" && kill -TERM "$pid" 2>/dev/null
    ) >/dev/null 2>&1 </dev/null &
    disown
  fi
  log "MinIO running: pid $pid, http://127.0.0.1:$port, bucket $bucket, data $dir/data"
  print_env
}

# stop_with SIGNAL
stop_with() {
  local pid exe entry
  entry=$(recorded) || { log "no MinIO running from $dir"; return 0; }
  read -r pid exe <<<"$entry"
  kill "-$1" "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while pid_alive "$pid" "$exe" && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if pid_alive "$pid" "$exe"; then
    log "pid $pid ignored SIG$1: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  log "MinIO stopped (pid $pid, SIG$1)"
}

case $cmd in
  start) cmd_start ;;
  stop) stop_with TERM ;;
  kill) stop_with KILL ;;
  env) recorded >/dev/null || die "no MinIO running from $dir"; print_env ;;
  status)
    if entry=$(recorded); then echo "running ${entry%% *} $(grep ENDPOINT "$dir/env")"; else echo "stopped"; exit 1; fi
    ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *) log "usage: $0 start|stop|kill|env|status [--dir DIR] [--port PORT] [--bucket NAME] [--watch-pid PID]"; exit 2 ;;
esac
