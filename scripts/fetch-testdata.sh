#!/usr/bin/env bash
# Fetch the third-party example data under testdata/ from package registries, reproducibly.
#
#   scripts/fetch-testdata.sh           fetch whatever is missing or altered (no network if all is in place)
#   scripts/fetch-testdata.sh --force   download and extract again even if everything is in place
#   scripts/fetch-testdata.sh --check   offline: verify the committed files against the hashes below
#
# Sources (exact versions pinned, archive sha256 verified before anything is extracted):
#   - HL7 FHIR R4 official examples: npm package hl7.fhir.r4.examples (CC0-1.0)
#   - Synthea-generated FHIR R4 patient bundles shipped in the PyPI sdist of fhiry (MIT)
#   - small DICOM test files shipped in the PyPI wheel of pydicom (MIT)
#
# Only the curated files listed below are written, together with a NOTICE per folder (licence
# text copied verbatim from the package where it ships one) and testdata/README.md (file table
# with sizes and sha256). testdata/fhir/invalid/ is ours and is left alone.
#
# Needs: bash, npm, python3 with pip, tar, sha256sum.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TESTDATA="$ROOT/testdata"

# ---- pinned sources ---------------------------------------------------------------------------

HL7_PKG="hl7.fhir.r4.examples"
HL7_VERSION="4.0.1"
HL7_ARCHIVE="hl7.fhir.r4.examples-4.0.1.tgz"
HL7_SHA256="dce87f1b5b9341867033f7d1f544fa1b5232503f6d62813887ac6b8a8b6cb682"
HL7_CMD="npm pack ${HL7_PKG}@${HL7_VERSION}"

FHIRY_VERSION="5.2.2"
FHIRY_ARCHIVE="fhiry-5.2.2.tar.gz"
FHIRY_SHA256="f583412afeeb26714a2d2fc3e1bba80e5438804c3d12f257fb08c96538c6e047"
FHIRY_CMD="python3 -m pip download --no-deps --no-binary fhiry fhiry==${FHIRY_VERSION}"

PYDICOM_VERSION="3.0.2"
PYDICOM_ARCHIVE="pydicom-3.0.2-py3-none-any.whl"
PYDICOM_SHA256="abf971a5440f84dbaf42c4b6758e30e62480902584f8b270b9a5d146e278a07b"
PYDICOM_CMD="python3 -m pip download --no-deps --only-binary :all: pydicom==${PYDICOM_VERSION}"

# ---- curated files: "<path under testdata>  <sha256 of the committed file>  <member in archive>" --

HL7_FILES=(
  "fhir/hl7/Patient-example.json                 7cc6b3817264c22e722b6bc10e494d3441341032f8294db7ccec796ca7a0cf81 package/Patient-example.json"
  "fhir/hl7/Observation-example.json             95b2b641707cd473902670a65c20008282c09b7e71731d1010a3db6ce24fce7f package/Observation-example.json"
  "fhir/hl7/Observation-blood-pressure.json      458ed58f88940fd4479bc7e9a2b8340f7353549ae40ac8c9146eef77b500e06c package/Observation-blood-pressure.json"
  "fhir/hl7/DiagnosticReport-f201.json           6c5c3b5f2d976499ba9134a49299707f91653b132a92118125d114a19ec31aac package/DiagnosticReport-f201.json"
  "fhir/hl7/Bundle-bundle-example.json           04e02dacfb194294a79b43d5ddf25a0df2af8ef135df4a7f8aa7dd51f85ecf91 package/Bundle-bundle-example.json"
  "fhir/hl7/Bundle-bundle-transaction.json       7517721e3eb29835c02b35cfc218129b01dcd813214b352a4e5d53e0a7a29efa package/Bundle-bundle-transaction.json"
  "fhir/hl7/Bundle-xds.json                      d7050fceefd736570aecc8f533649716b6f5b84ef0d6cefe05769551c8953a10 package/Bundle-xds.json"
  "fhir/hl7/Bundle-lipids.json                   042176c9daef677ae73c58593e992ee08b65dfc82ca78458e0aacdcf9d402389 package/Bundle-lipids.json"
  "fhir/hl7/Bundle-father.json                   f145307546d8982f6f69033728844e76a4713c1de63f8df88b24705c2aaadcaa package/Bundle-father.json"
)

# The two distinct Synthea bundles in the sdist (tests/resources/bfhir.json is a byte copy of
# afhir.json). As shipped they are pretty-printed (717 KB and 1.07 MB); they are committed with the
# whitespace between JSON tokens removed and nothing else changed (see minify_json below).
SYNTHEA_FILES=(
  "fhir/synthea/afhir.json  73b81aba150356965f2ec50e39e1a6f249bdacb6997deba4586ce7003ad127d4 fhiry-5.2.2/tests/resources/afhir.json"
  "fhir/synthea/cfhir.json  0a201e25f3fc112e617ca366fd2c9afbd3ad1a65cf8b92cc091ccd710a814553 fhiry-5.2.2/tests/resources/cfhir.json"
)

DICOM_FILES=(
  "dicom/CT_small.dcm  3dd31e5cc835b3f2cdd46c9da1982f59251e78518fefa8163d914631c66437d6 pydicom/data/test_files/CT_small.dcm"
  "dicom/MR_small.dcm  3f27d1c22f1a66e80d7bb7c911e8610fd0bb70325a76746a7adb1c0ddefcf2bb pydicom/data/test_files/MR_small.dcm"
  "dicom/test-SR.dcm   eebf00a37e97503b5a65022f9c2f89db6e8dac4cc632682aa3456aee1b6c177e pydicom/data/test_files/test-SR.dcm"
)

# Written by us, not fetched: listed in the README, never touched here.
OUR_FILES=(
  "fhir/invalid/not-a-bundle.json"
)

# ---- helpers ----------------------------------------------------------------------------------

die() { echo "fetch-testdata: $*" >&2; exit 1; }
say() { echo "fetch-testdata: $*"; }

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# verify_archive FILE EXPECTED_SHA256
verify_archive() {
  local got
  got="$(sha256_of "$1")"
  [[ "$got" == "$2" ]] || die "$(basename "$1"): sha256 $got, expected $2 (wrong or tampered download)"
  say "$(basename "$1"): sha256 ok"
}

# all_files: every "<dest> <sha> <member>" line of the three lists
all_files() { printf '%s\n' "${HL7_FILES[@]}" "${SYNTHEA_FILES[@]}" "${DICOM_FILES[@]}"; }

# check_all: 0 when every curated file is present with its recorded sha256
check_all() {
  local dest sha _ ok=0
  while read -r dest sha _; do
    if [[ ! -f "$TESTDATA/$dest" ]]; then
      echo "missing: testdata/$dest"; ok=1
    elif [[ "$(sha256_of "$TESTDATA/$dest")" != "$sha" ]]; then
      echo "altered: testdata/$dest (sha256 $(sha256_of "$TESTDATA/$dest"), expected $sha)"; ok=1
    fi
  done < <(all_files)
  return $ok
}

# install_file SRC DEST_REL EXPECTED_SHA: verify, then move into testdata/ (only if it changed)
install_file() {
  local src="$1" rel="$2" sha="$3" got
  got="$(sha256_of "$src")"
  [[ "$got" == "$sha" ]] || die "testdata/$rel: extracted file has sha256 $got, expected $sha"
  mkdir -p "$(dirname "$TESTDATA/$rel")"
  if [[ -f "$TESTDATA/$rel" ]] && cmp -s "$src" "$TESTDATA/$rel"; then
    return 0
  fi
  cp "$src" "$TESTDATA/$rel.tmp.$$"
  mv -f "$TESTDATA/$rel.tmp.$$" "$TESTDATA/$rel"
  say "wrote testdata/$rel"
}

# write_if_changed DEST (content on stdin)
write_if_changed() {
  local dest="$1" tmp
  tmp="$(mktemp "$dest.tmp.XXXXXX")"
  cat >"$tmp"
  if [[ -f "$dest" ]] && cmp -s "$tmp" "$dest"; then
    rm -f "$tmp"
  else
    mv -f "$tmp" "$dest"
    say "wrote ${dest#"$ROOT"/}"
  fi
}

# minify_json SRC DEST: drop whitespace outside JSON strings, change nothing else (numbers keep
# their exact text, key order and string escapes are untouched); ends the file with one newline.
# Checks that the result parses to the same value as the source (decimals compared exactly).
minify_json() {
  python3 - "$1" "$2" <<'PY'
import decimal, json, sys
src = open(sys.argv[1], "rb").read()
out = bytearray()
in_str = esc = False
for b in src:
    if in_str:
        out.append(b)
        if esc:
            esc = False
        elif b == 0x5C:  # backslash
            esc = True
        elif b == 0x22:  # quote
            in_str = False
    elif b in (0x20, 0x09, 0x0A, 0x0D):
        continue
    else:
        out.append(b)
        if b == 0x22:
            in_str = True
out += b"\n"
load = lambda data: json.loads(data.decode("utf-8"), parse_float=decimal.Decimal)
if load(src) != load(bytes(out)):
    sys.exit("minify_json: result differs from source")
open(sys.argv[2], "wb").write(bytes(out))
PY
}

# extract_zip_member ZIP MEMBER DEST
extract_zip_member() {
  python3 - "$1" "$2" "$3" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[3], "wb") as out:
    out.write(z.read(sys.argv[2]))
PY
}

human_size() {
  local n="$1"
  if (( n >= 1024 * 1024 )); then awk -v n="$n" 'BEGIN { printf "%.2f MiB", n / 1048576 }'
  elif (( n >= 1024 )); then awk -v n="$n" 'BEGIN { printf "%.1f KiB", n / 1024 }'
  else echo "$n B"; fi
}

# size_cell FILE: "3748 B (3.7 KiB)", or just "296 B" under one KiB
size_cell() {
  local n
  n="$(stat -c %s "$1")"
  if (( n >= 1024 )); then echo "$n B ($(human_size "$n"))"; else echo "$n B"; fi
}

# ---- NOTICE and README ------------------------------------------------------------------------

write_notices() {
  local fhiry_license="$1" pydicom_license="$2"

  {
    cat <<EOF
Files in this folder: HL7 FHIR R4 official examples, copied byte for byte.

Source:   npm package ${HL7_PKG}, version ${HL7_VERSION} ("FHIR R4 package : Examples",
          author HL7 Inc, canonical http://hl7.org/fhir, fhirVersion 4.0.1)
Archive:  ${HL7_ARCHIVE}, sha256 ${HL7_SHA256}
Fetched:  ${HL7_CMD}
          (by scripts/fetch-testdata.sh, which verifies the sha256 and extracts only these files)
Licence:  CC0-1.0 (the package's package.json: "license" : "CC0-1.0"). HL7 publishes the FHIR
          specification, including its examples, under Creative Commons "No Rights Reserved"
          (CC0 1.0 Universal): https://creativecommons.org/publicdomain/zero/1.0/legalcode
          No attribution is required; it is given here as a courtesy.
          FHIR(R) and HL7(R) are registered trademarks of Health Level Seven International.

Files (each is package/<name> in the archive):
EOF
    local dest _sha member
    while read -r dest _sha member; do echo "  ${dest##*/}"; done < <(printf '%s\n' "${HL7_FILES[@]}")
  } | write_if_changed "$TESTDATA/fhir/hl7/NOTICE"

  {
    cat <<EOF
Files in this folder: FHIR R4 transaction Bundles generated by Synthea (synthetic patients, no
real person's data), as shipped in the test resources of the fhiry Python package.

Source:   PyPI package fhiry, version ${FHIRY_VERSION}, source distribution ${FHIRY_ARCHIVE}
Archive:  sha256 ${FHIRY_SHA256}
Fetched:  ${FHIRY_CMD}
          (by scripts/fetch-testdata.sh, which verifies the sha256 and extracts only these files)
Licence:  MIT, copyright Bell Eapen (text below, copied verbatim from fhiry-${FHIRY_VERSION}/LICENSE).
Generator: Synthea (https://github.com/synthetichealth/synthea), version identifier
          v2.4.0-404-ge7ce2295 as recorded in each Patient's narrative.

Files:
  afhir.json  <- fhiry-${FHIRY_VERSION}/tests/resources/afhir.json (717,372 bytes as shipped;
                 tests/resources/bfhir.json in the same sdist is a byte-identical copy)
  cfhir.json  <- fhiry-${FHIRY_VERSION}/tests/resources/cfhir.json (1,067,247 bytes as shipped)

Modification: both files are committed with the whitespace between JSON tokens removed (and one
trailing newline); every key, string and number is byte-identical to the original, and the
script checks that the result parses to the same JSON value (decimals compared exactly).

---- fhiry-${FHIRY_VERSION}/LICENSE ----
EOF
    cat "$fhiry_license"
  } | write_if_changed "$TESTDATA/fhir/synthea/NOTICE"

  {
    cat <<EOF
Files in this folder: small DICOM test files shipped with pydicom, copied byte for byte.

Source:   PyPI package pydicom, version ${PYDICOM_VERSION}, wheel ${PYDICOM_ARCHIVE}
Archive:  sha256 ${PYDICOM_SHA256}
Fetched:  ${PYDICOM_CMD}
          (by scripts/fetch-testdata.sh, which verifies the sha256 and extracts only these files)
Licence:  MIT, copyright (c) 2008-2020 Darcy Mason and pydicom contributors (text below, copied
          verbatim from pydicom-${PYDICOM_VERSION}.dist-info/licenses/LICENSE).

Files (provenance as stated in pydicom/data/test_files/README.txt of the same wheel):
  CT_small.dcm  CT image, Explicit VR Little Endian; downsized to 128x128 from 'CT1_UNC' of the
                NEMA WG04 DICOM data sets (ftp://medical.nema.org/MEDICAL/Dicom/DataSets/WG04/)
  MR_small.dcm  MR image, Explicit VR Little Endian; downsized to 64x64 from 'MR1_UNC' of the
                NEMA WG04 DICOM data sets
  test-SR.dcm   Structured Reporting example with many levels of nesting, from DCMTK's
                DICOMscope support files (srdoc103.zip, file "test.dcm")

---- pydicom-${PYDICOM_VERSION}.dist-info/licenses/LICENSE ----
EOF
    cat "$pydicom_license"
  } | write_if_changed "$TESTDATA/dicom/NOTICE"
}

write_readme() {
  {
    cat <<'EOF'
# testdata

Real, licensed example data that nobody on this project wrote, fetched from package registries
by `scripts/fetch-testdata.sh` (pinned versions, archive sha256 verified, only the files below
extracted), plus one invalid file of our own for refusal tests.

| folder | what | source | licence |
| --- | --- | --- | --- |
| `fhir/hl7/` | HL7's official FHIR R4 examples: Patient, Observations, DiagnosticReport, Bundles (searchset, transaction, collection, document) | npm `hl7.fhir.r4.examples` 4.0.1 | CC0-1.0 |
| `fhir/synthea/` | Synthea-generated FHIR R4 transaction Bundles, one synthetic patient each (Patient, Encounter, Condition, Observation, MedicationRequest, Procedure, Immunization, DiagnosticReport, Claim, ...) | PyPI `fhiry` 5.2.2 (sdist) | MIT |
| `dicom/` | small DICOM files: a CT and an MR image, a Structured Report | PyPI `pydicom` 3.0.2 (wheel) | MIT |
| `fhir/invalid/` | **ours**, written for this project: deliberately invalid FHIR | - | same as the repository |

Each fetched folder has a `NOTICE` with the package, version, archive sha256, licence (MIT text
and copyright holder copied from the package) and the exact command that fetched it.

    scripts/fetch-testdata.sh           # fetch what is missing or altered (offline if all is in place)
    scripts/fetch-testdata.sh --force   # download and extract everything again
    scripts/fetch-testdata.sh --check   # offline: verify every file against the recorded sha256

The Synthea bundles are committed with the whitespace between JSON tokens removed (see
`fhir/synthea/NOTICE`); every other fetched file is byte-identical to the one in the package.

`fhir/invalid/not-a-bundle.json` is ours: `resourceType` is `Bundle` but `entry` is an object,
not an array, so it is valid JSON and invalid FHIR; a FHIR-validating reader must refuse it.

## Files

| file | size | sha256 | origin |
| --- | ---: | --- | --- |
EOF
    local dest _sha member origin
    while read -r dest _sha member; do
      case "$dest" in
        fhir/hl7/*) origin="hl7.fhir.r4.examples 4.0.1: \`$member\`" ;;
        fhir/synthea/*) origin="fhiry 5.2.2: \`$member\` (whitespace removed)" ;;
        dicom/*) origin="pydicom 3.0.2: \`$member\`" ;;
      esac
      echo "| \`$dest\` | $(size_cell "$TESTDATA/$dest") | \`$(sha256_of "$TESTDATA/$dest")\` | $origin |"
    done < <(all_files)
    for dest in "${OUR_FILES[@]}"; do
      [[ -f "$TESTDATA/$dest" ]] || continue
      echo "| \`$dest\` | $(size_cell "$TESTDATA/$dest") | \`$(sha256_of "$TESTDATA/$dest")\` | ours |"
    done
    for dest in fhir/hl7/NOTICE fhir/synthea/NOTICE dicom/NOTICE; do
      echo "| \`$dest\` | $(size_cell "$TESTDATA/$dest") | \`$(sha256_of "$TESTDATA/$dest")\` | written by the script |"
    done
    local total
    total="$(find "$TESTDATA" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')"
    echo
    echo "Total size of testdata/ (this README excluded): $(human_size "$((total - $(stat -c %s "$TESTDATA/README.md" 2>/dev/null || echo 0)))")."
  } | write_if_changed "$TESTDATA/README.md"
}

# ---- main -------------------------------------------------------------------------------------

mode="fetch"
case "${1:-}" in
  "") ;;
  --force) mode="force" ;;
  --check) mode="check" ;;
  -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
  *) die "unknown argument: $1 (try --help)" ;;
esac

if [[ "$mode" == "check" ]]; then
  check_all || die "testdata/ does not match the recorded sha256 (run scripts/fetch-testdata.sh)"
  say "all $(all_files | wc -l) fetched files match their recorded sha256"
  exit 0
fi

if [[ "$mode" == "fetch" ]] && check_all >/dev/null && [[ -f "$TESTDATA/fhir/hl7/NOTICE" ]] \
   && [[ -f "$TESTDATA/fhir/synthea/NOTICE" ]] && [[ -f "$TESTDATA/dicom/NOTICE" ]]; then
  write_readme
  say "up to date: all $(all_files | wc -l) fetched files match their recorded sha256 (--force to fetch again)"
  exit 0
fi

command -v npm >/dev/null || die "npm is needed"
python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip is needed"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/medfabric-testdata.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/dl" "$WORK/x" "$WORK/out"

say "downloading (pinned versions)"
(cd "$WORK/dl" && npm pack --silent "${HL7_PKG}@${HL7_VERSION}" >/dev/null)
(cd "$WORK/dl" && python3 -m pip download --quiet --no-deps --no-binary fhiry "fhiry==${FHIRY_VERSION}" -d .)
(cd "$WORK/dl" && python3 -m pip download --quiet --no-deps --only-binary :all: "pydicom==${PYDICOM_VERSION}" -d .)

verify_archive "$WORK/dl/$HL7_ARCHIVE" "$HL7_SHA256"
verify_archive "$WORK/dl/$FHIRY_ARCHIVE" "$FHIRY_SHA256"
verify_archive "$WORK/dl/$PYDICOM_ARCHIVE" "$PYDICOM_SHA256"

# HL7 examples: byte-for-byte copies.
while read -r dest sha member; do
  tar -xzf "$WORK/dl/$HL7_ARCHIVE" -C "$WORK/x" "$member"
  install_file "$WORK/x/$member" "$dest" "$sha"
done < <(printf '%s\n' "${HL7_FILES[@]}")

# Synthea bundles: whitespace removed.
tar -xzf "$WORK/dl/$FHIRY_ARCHIVE" -C "$WORK/x" "fhiry-${FHIRY_VERSION}/LICENSE"
while read -r dest sha member; do
  tar -xzf "$WORK/dl/$FHIRY_ARCHIVE" -C "$WORK/x" "$member"
  minify_json "$WORK/x/$member" "$WORK/out/${dest##*/}"
  install_file "$WORK/out/${dest##*/}" "$dest" "$sha"
done < <(printf '%s\n' "${SYNTHEA_FILES[@]}")

# DICOM: byte-for-byte copies.
extract_zip_member "$WORK/dl/$PYDICOM_ARCHIVE" "pydicom-${PYDICOM_VERSION}.dist-info/licenses/LICENSE" "$WORK/x/pydicom-LICENSE"
while read -r dest sha member; do
  extract_zip_member "$WORK/dl/$PYDICOM_ARCHIVE" "$member" "$WORK/out/${dest##*/}"
  install_file "$WORK/out/${dest##*/}" "$dest" "$sha"
done < <(printf '%s\n' "${DICOM_FILES[@]}")

write_notices "$WORK/x/fhiry-${FHIRY_VERSION}/LICENSE" "$WORK/x/pydicom-LICENSE"
write_readme
check_all >/dev/null || die "post-condition failed"
say "done: $(all_files | wc -l) fetched files in place, sha256 verified"
