#!/usr/bin/env bash
# Issue #3's figures, side by side in one run against one fresh `strata serve`:
#   1. a 2 GiB object as one single-stream PUT vs as a multipart upload of 8 parts of 256 MiB sent in
#      parallel (alternating, ROUNDS times each), with MiB/s and the server's CPU seconds per GiB;
#   2. the server's peak RSS (VmHWM) after uploads of 64 MiB parts, 8 in parallel, on a fresh server.
# Both use UNSIGNED-PAYLOAD (only MD5 on the server); SIGNED=1 signs the payload (adds SHA-256).
#
# Usage: bash bench/compare/multipart-vs-single.sh [ROUNDS (default 3)]
# Needs target/release/strata. Data goes to a temp dir on the same disk as /tmp (override with TMPDIR).
set -euo pipefail

ROUNDS="${1:-3}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STRATA="${STRATA_BIN:-$ROOT/target/release/strata}"
[ -x "$STRATA" ] || { echo "no $STRATA: cargo build --release" >&2; exit 1; }
PAYLOAD=(--unsigned-payload)
[ "${SIGNED:-0}" = 1 ] && PAYLOAD=()

WORK_NAME=mp-bench
# shellcheck source=bench/compare/lib.sh
source "$ROOT/bench/compare/lib.sh"
bench() { "$STRATA" bench --endpoint "$ENDPOINT" --server-pid "$SERVER" --quiet --json "${PAYLOAD[@]}" "$@"; }
# field JSON EXPR: a value from bench's --json output
field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

start
printf '%-28s %5s %10s %14s\n' workload round "MiB/s" "server CPU-s/GiB"
for round in $(seq "$ROUNDS"); do
    bench --mode put --size 2GiB --count 1 --concurrency 1 --bucket single >"$WORK/single.json"
    bench --mode multipart --size 2GiB --part-size 256MiB --parts-parallel 8 --count 1 --bucket multi \
        >"$WORK/multi.json"
    for w in single multi; do
        printf '%-28s %5s %10.1f %14.2f\n' \
            "$([ $w = single ] && echo 'single PUT 2 GiB' || echo 'multipart 8x256 MiB parallel')" "$round" \
            "$(field "$WORK/$w.json" 'd["ops"][0]["mib_per_s"]')" "$(field "$WORK/$w.json" 'd["server_cpu"]["per_gib_s"]')"
    done
done
stop

start
bench --mode multipart --size 512MiB --part-size 64MiB --parts-parallel 8 --count 4 --bucket rss >"$WORK/rss.json"
echo "peak RSS at 8 parallel 64 MiB parts (4 uploads of 512 MiB): $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$SERVER/status")"
stop
