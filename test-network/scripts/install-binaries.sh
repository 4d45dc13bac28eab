#!/usr/bin/env bash
# Locates or builds the pinned Fabric, Fabric CA and MinIO binaries and prints their bin dir(s).
#
#   install-binaries.sh [fabric|ca|minio|all]     (default: fabric)
#
#   MEDFABRIC_CACHE   cache root (default: ~/.cache/medfabric); binaries go to
#                     $MEDFABRIC_CACHE/<name>-<version>/bin, sources to $MEDFABRIC_CACHE/src
#
# Binaries already on PATH are used when they report the pinned version; otherwise they are
# built once into the cache and reused.
#
# Why not Fabric v3.1.5: the Go module proxy used here refuses every Fabric 3.x-era version.
#   $ go install github.com/hyperledger/fabric/cmd/peer@86c1172bec37e6590c6b1ae6f847833df48d65fc
#   go: github.com/hyperledger/fabric/cmd/peer@86c1172bec37e6590c6b1ae6f847833df48d65fc:
#   github.com/hyperledger/fabric/cmd/peer@86c1172bec37e6590c6b1ae6f847833df48d65fc: invalid
#   version: reading https://proxy.golang.org/github.com/hyperledger/fabric/cmd/peer/@v/86c1172bec37e6590c6b1ae6f847833df48d65fc.info:
#   403 Forbidden
#           server response: This module version is not available.
# (86c1172 is tag v3.1.5; pseudo-versions dated 2024 and later are refused the same way.)
# The newest version it serves is github.com/hyperledger/fabric@v1.4.0-rc1.0.20230405174026-695dd57e01c2,
# Fabric main of 2023-04-05 (3.0.0 in development: V3_0 channel capability, no system channel,
# channel participation, gateway, SmartBFT orderer).
#
# How it is built: `go install <module>/cmd/x@<version>` fails for fabric and fabric-ca because
# it first reads the module's version list for deprecation notices, and the proxy refuses
#   reading https://proxy.golang.org/github.com/hyperledger/fabric-ca/@v/list: 403 Forbidden
# `go build -mod=vendor` in the module cache fails too: module zips never contain vendor/
# (only vendor/modules.txt survives), so every import is "cannot find module providing package
# ... import lookup disabled by -mod=vendor". What works: `go mod download` of the exact
# version (no list lookup), copy the module source to a writable folder, drop vendor/ and
# `go build -mod=mod` there; the dependencies come from the proxy, checked against the
# module's own go.sum. MinIO installs directly with `go install ...@<pseudo-version>`.
set -euo pipefail

FABRIC_MODULE=github.com/hyperledger/fabric
FABRIC_VERSION=v1.4.0-rc1.0.20230405174026-695dd57e01c2 # main of 2023-04-05, commit 695dd57e01c2
FABRIC_KEY=695dd57e01c2
FABRIC_STAMP=3.0.0-snapshot.20230405 # reported by `peer version` (Version), CommitSHA=$FABRIC_KEY
FABRIC_CMDS=(peer orderer configtxgen osnadmin cryptogen configtxlator discover)

CA_MODULE=github.com/hyperledger/fabric-ca
CA_VERSION=v1.5.15
CA_CMDS=(fabric-ca-server fabric-ca-client)

MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # what @latest resolved to on 2026-02
MINIO_COMMIT=7aac2a2c5b7c
MINIO_STAMP="-X github.com/minio/minio/cmd.Version=2026-02-12T20:18:48Z \
  -X github.com/minio/minio/cmd.ReleaseTag=DEVELOPMENT.2026-02-12T20-18-48Z \
  -X github.com/minio/minio/cmd.CommitID=$MINIO_COMMIT -X github.com/minio/minio/cmd.ShortCommitID=$MINIO_COMMIT"

cache=${MEDFABRIC_CACHE:-$HOME/.cache/medfabric}
fabric_bin=$cache/fabric-$FABRIC_KEY/bin
ca_bin=$cache/fabric-ca-$CA_VERSION/bin
minio_bin=$cache/minio-$MINIO_VERSION/bin

log() { echo "install-binaries: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

need_go() {
  command -v go >/dev/null ||
    die "Go is required to build $1 (https://go.dev/dl); or put binaries of the pinned version on PATH"
}

# fabric_ok DIR_OR_EMPTY: true when every Fabric binary is there (or on PATH when DIR is
# empty) and `peer version` reports the pinned commit.
fabric_ok() {
  local dir=$1 b p
  for b in "${FABRIC_CMDS[@]}"; do
    if [ -n "$dir" ]; then [ -x "$dir/$b" ] || return 1; else command -v "$b" >/dev/null || return 1; fi
  done
  p=${dir:+$dir/}peer
  "$p" version 2>/dev/null | grep -q "Commit SHA: $FABRIC_KEY"
}

ca_ok() {
  local dir=$1 b p
  for b in "${CA_CMDS[@]}"; do
    if [ -n "$dir" ]; then [ -x "$dir/$b" ] || return 1; else command -v "$b" >/dev/null || return 1; fi
  done
  p=${dir:+$dir/}fabric-ca-server
  "$p" version 2>/dev/null | grep -q "Version: $CA_VERSION"
}

minio_ok() {
  local dir=$1 p
  if [ -n "$dir" ]; then [ -x "$dir/minio" ] || return 1; else command -v minio >/dev/null || return 1; fi
  p=${dir:+$dir/}minio
  # our build is stamped with the commit (a plain `go install` says DEVELOPMENT.GOGET)
  "$p" --version 2>/dev/null | grep -q -- "commit-id=$MINIO_COMMIT"
}

# build_module MODULE VERSION SRC_DIR BIN_DIR LDFLAGS CMD...
build_module() {
  local module=$1 version=$2 src=$3 bin=$4 ldflags=$5
  shift 5
  local out dir c
  need_go "$module"
  log "downloading $module@$version"
  out=$(cd /tmp && GOFLAGS='' go mod download -json "$module@$version" 2>&1) ||
    die "go mod download $module@$version failed:
$out"
  dir=$(printf '%s\n' "$out" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$dir" ] || die "go mod download $module@$version gave no source folder:
$out"
  rm -rf "$src.tmp"
  mkdir -p "$(dirname "$src")"
  cp -R "$dir" "$src.tmp"
  chmod -R u+w "$src.tmp"
  rm -rf "$src.tmp/vendor" # only vendor/modules.txt is in the zip; it would force -mod=vendor
  rm -rf "$src"
  mv "$src.tmp" "$src"
  mkdir -p "$bin"
  for c in "$@"; do
    log "building $c ($module@$version) into $bin"
    if ! out=$(cd "$src" && go build -mod=mod -trimpath -ldflags "$ldflags" -o "$bin/$c.tmp" "./cmd/$c" 2>&1); then
      rm -f "$bin/$c.tmp"
      die "building $c failed (cd $src && go build -mod=mod -trimpath -o $bin/$c ./cmd/$c):
$out"
    fi
    mv "$bin/$c.tmp" "$bin/$c"
  done
}

install_fabric() {
  if fabric_ok ""; then dirname "$(command -v peer)"; return; fi
  if ! fabric_ok "$fabric_bin"; then
    log "building Fabric $FABRIC_VERSION (about 2-3 minutes on 2 cores, once)"
    build_module "$FABRIC_MODULE" "$FABRIC_VERSION" "$cache/src/fabric-$FABRIC_KEY" "$fabric_bin" \
      "-X $FABRIC_MODULE/common/metadata.Version=$FABRIC_STAMP -X $FABRIC_MODULE/common/metadata.CommitSHA=$FABRIC_KEY" \
      "${FABRIC_CMDS[@]}"
    fabric_ok "$fabric_bin" || die "built Fabric in $fabric_bin but \`peer version\` does not report $FABRIC_KEY"
  fi
  echo "$fabric_bin"
}

install_ca() {
  if ca_ok ""; then dirname "$(command -v fabric-ca-server)"; return; fi
  if ! ca_ok "$ca_bin"; then
    log "building Fabric CA $CA_VERSION (about 1.5 minutes, once)"
    build_module "$CA_MODULE" "$CA_VERSION" "$cache/src/fabric-ca-$CA_VERSION" "$ca_bin" \
      "-X $CA_MODULE/lib/metadata.Version=$CA_VERSION" "${CA_CMDS[@]}"
    ca_ok "$ca_bin" || die "built Fabric CA in $ca_bin but it does not report $CA_VERSION"
  fi
  echo "$ca_bin"
}

install_minio() {
  if minio_ok ""; then dirname "$(command -v minio)"; return; fi
  if ! minio_ok "$minio_bin"; then
    local out
    need_go MinIO
    log "building MinIO $MINIO_VERSION into $minio_bin (several minutes, once)"
    mkdir -p "$minio_bin"
    if ! out=$(cd /tmp && GOBIN=$minio_bin GOFLAGS='' go install -trimpath -ldflags "$MINIO_STAMP" "$MINIO_MODULE@$MINIO_VERSION" 2>&1); then
      die "go install $MINIO_MODULE@$MINIO_VERSION failed:
$out"
    fi
    minio_ok "$minio_bin" || die "built MinIO in $minio_bin but \`minio --version\` does not report commit-id=$MINIO_COMMIT"
  fi
  echo "$minio_bin"
}

what=${1:-fabric}
case $what in
  fabric) install_fabric ;;
  ca) install_ca ;;
  minio) install_minio ;;
  all)
    f=$(install_fabric)
    c=$(install_ca)
    m=$(install_minio)
    echo "$f:$c:$m"
    ;;
  -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" ;;
  *) log "usage: $0 [fabric|ca|minio|all]"; exit 2 ;;
esac
