#!/usr/bin/env bash
# A/B of two strata builds on small operations, side by side in one run: for each round, a fresh server of
# build A then of build B, each measured with 4 KiB PUT and then 4 KiB GET at concurrency 32 for 10 s
# (ops/s, p50/p99 and the server's CPU seconds per 1,000 operations, from `strata bench --server-pid`).
#
# Usage: bash bench/compare/ab-small-ops.sh BIN_A BIN_B [ROUNDS (default 2)]
# e.g. a release build of an older commit in a git worktree against target/release/strata.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIN_A BIN_B [ROUNDS]" >&2; exit 2; }
A="$1"; B="$2"; ROUNDS="${3:-2}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BENCH="${STRATA_BENCH_BIN:-$ROOT/target/release/strata}"
K=benchbenchbenchbench
S=benchbenchbenchbenchbenchbenchbenchbench

run() { # run LABEL BIN
    local label=$1 bin=$2 dir port pid mode
    dir=$(mktemp -d "${TMPDIR:-/tmp}/strata-ab.XXXXXX")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    STRATA_ACCESS_KEY=$K STRATA_SECRET_KEY=$S RUST_LOG=warn "$bin" serve --data "$dir/data" \
        --s3-addr "127.0.0.1:$port" --edge-addr 127.0.0.1:0 --edge-tls-addr 127.0.0.1:0 \
        --edge-admin-addr 127.0.0.1:0 --website-addr 127.0.0.1:0 >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    for mode in put get; do
        "$BENCH" bench --endpoint "http://127.0.0.1:$port" --access-key $K --secret-key $S --server-pid "$pid" \
            --quiet --json --mode "$mode" --size 4KiB --concurrency 32 --duration 10s --objects 1000 >"$dir/$mode.json"
        python3 - "$dir/$mode.json" "$label" "$mode" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); o = d["ops"][0]; l = o["latency_ms"]
print(f"{sys.argv[2]:<3} {sys.argv[3]:<4} {o['ops_per_s']:>9.0f} ops/s  p50 {l['p50']:6.2f} ms  p99 {l['p99']:6.2f} ms  "
      f"server {d['server_cpu']['per_1000_ops_s']:.3f} CPU-s/1k")
PY
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true
    rm -rf "$dir"
}
for _ in $(seq "$ROUNDS"); do run A "$A"; run B "$B"; done
