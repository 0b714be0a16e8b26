#!/usr/bin/env bash
# The performance rows of issue #7, measured with `strata bench` against a fresh `strata serve` (4+2 coding,
# fsync on, data on the local disk under $TMPDIR or /tmp), plus a loopback TCP copy (iperf3, 8 streams) as the
# ceiling for GET and, for the 64 MiB PUT rows, the disk's write rate (six dd streams) as the ceiling for PUT.
# Each row reports throughput and the server's CPU time (utime + stime from /proc, measured by
# `strata bench --server-pid`) per GiB or per 1,000 operations, and the cores busy with anything but the
# generator and the server ("other") and stolen by the hypervisor ("steal"): against a quiet row (0.00-0.04
# here), whether a row shared its cores with something else.
#
# Usage: bash bench/compare/targets.sh [BIN (default target/release/strata)] [DURATION (default 15s)]
# Env: IO=uring|portable (storage.io of the server; default: the server's default), ROWS (default
#      "put64 get64 put4k get4k"; also put64s (signed payload), put4k8 and put4k64 (4 KiB PUTs at c8 and
#      c64: whether a cost is per metadata group or per object), put100 (100-byte PUTs at c32: the per-object
#      metadata cost without an inline page)), PERF=1 to record a perf profile of the server per row into $OUT
#      (PERF_CALLGRAPH="--call-graph dwarf" to unwind Rust frames, which lack frame pointers).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${1:-$ROOT/target/release/strata}"
DUR="${2:-15s}"
ROWS="${ROWS:-put64 get64 put4k get4k}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/strata-targets.XXXXXX")}"
K=benchbenchbenchbench
S=benchbenchbenchbenchbenchbenchbenchbench
mkdir -p "$OUT"

loopback() { # iperf3 over 127.0.0.1 with 8 streams: the most the loopback moves on this machine
    command -v iperf3 >/dev/null || { apt-get install -y -q iperf3 >/dev/null 2>&1 || true; }
    command -v iperf3 >/dev/null || { echo "loopback: iperf3 missing"; return; }
    local port pid
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    pid=$!
    sleep 0.5
    iperf3 -c 127.0.0.1 -p "$port" -P 8 -t 5 -J >"$OUT/loopback.json"
    wait "$pid" 2>/dev/null || true
    python3 - "$OUT/loopback.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print(f"loopback TCP copy (iperf3 -P 8): {d['end']['sum_received']['bits_per_second'] / 8 / 2**20:,.0f} MiB/s")
PY
}

disk() { # six streams of 1 MiB O_DIRECT writes (one per disk writer of a 4+2 PUT), 512 MiB each with an
    # fdatasync, where the server keeps its data: their aggregate rate over 1.5 (every object byte is written with
    # its parity at 4+2) is about the most a PUT can move on this disk
    local dir start end i
    dir=$(mktemp -d "${TMPDIR:-/tmp}/strata-disk.XXXXXX")
    start=$(date +%s.%N)
    for i in 1 2 3 4 5 6; do
        dd if=/dev/zero of="$dir/$i" bs=1M count=512 oflag=direct conv=fdatasync status=none &
    done
    wait
    end=$(date +%s.%N)
    python3 -c "import sys; r = 3072 / (float(sys.argv[2]) - float(sys.argv[1])); \
print(f'disk write, 6 streams (dd, O_DIRECT, 3 GiB): {r:,.0f} MiB/s, so PUT at 4+2 tops out near {r / 1.5:,.0f} MiB/s')" \
        "$start" "$end"
    rm -rf "$dir"
}

row() { # row NAME MODE SIZE CONCURRENCY [extra bench args...]
    local name=$1 mode=$2 size=$3 conc=$4
    shift 4
    local dir port pid cfg
    dir=$(mktemp -d "${TMPDIR:-/tmp}/strata-target.XXXXXX")
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    cfg=()
    if [ -n "${IO:-}" ]; then
        printf '[storage]\nio = "%s"\n' "$IO" >"$dir/strata.toml"
        cfg=(--config "$dir/strata.toml")
    fi
    STRATA_ACCESS_KEY=$K STRATA_SECRET_KEY=$S RUST_LOG=warn "$BIN" serve "${cfg[@]}" --data "$dir/data" \
        --s3-addr "127.0.0.1:$port" --edge-addr 127.0.0.1:0 --edge-tls-addr 127.0.0.1:0 \
        --edge-admin-addr 127.0.0.1:0 --website-addr 127.0.0.1:0 >"$dir/server.log" 2>&1 &
    pid=$!
    for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
    local perf_pid=""
    if [ "${PERF:-}" = 1 ]; then
        # Started after a short delay so the profile covers the measured phase rather than the preparation.
        (sleep "${PERF_DELAY:-8}"; exec perf record ${PERF_CALLGRAPH:--g} -F 499 -p "$pid" -o "$OUT/$name.perf" -- sleep 6) \
            >/dev/null 2>&1 &
        perf_pid=$!
    fi
    "$BIN" bench --endpoint "http://127.0.0.1:$port" --access-key $K --secret-key $S --server-pid "$pid" \
        --quiet --json --mode "$mode" --size "$size" --concurrency "$conc" --duration "$DUR" "$@" \
        >"$OUT/$name.json"
    [ -n "$perf_pid" ] && wait "$perf_pid" 2>/dev/null || true
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$OUT/$name.json" "$name" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); o = d["ops"][0]; l = o["latency_ms"]; c = d["server_cpu"]
m = d.get("machine_cpu")
print(f"{sys.argv[2]:<6} {o['ops_per_s']:>9.0f} ops/s {d.get('mib_per_s', o.get('mib_per_s', 0)):>8.0f} MiB/s  "
      f"p50 {l['p50']:7.2f} ms  p99 {l['p99']:7.2f} ms  server {c['per_gib_s']:.3f} CPU-s/GiB "
      f"{c['per_1000_ops_s']:.3f} CPU-s/1k ops"
      + (f"  other {m['other_cores']:.2f} steal {m['steal_cores']:.2f} cores" if m else ""))
PY
    [ -n "${KEEP_LOG:-}" ] && cp "$dir/server.log" "$OUT/$name.server.log"; rm -rf "$dir"
}

echo "binary $BIN, io=${IO:-default}, $DUR per row, reports in $OUT"
loopback
case " $ROWS " in *" put64"*) disk ;; esac
for r in $ROWS; do
    case $r in
        put64) row put64 put 64MiB 8 --unsigned-payload ;;
        put64s) row put64s put 64MiB 8 ;;
        get64) row get64 get 64MiB 8 --objects 16 ;;
        put4k) row put4k put 4KiB 32 ;;
        put4k64) row put4k64 put 4KiB 64 ;;
        put4k8) row put4k8 put 4KiB 8 ;;
        put100) row put100 put 100B 32 ;;
        get4k) row get4k get 4KiB 32 --objects 1000 ;;
        *) echo "unknown row $r" >&2; exit 2 ;;
    esac
done
