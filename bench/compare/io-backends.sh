#!/usr/bin/env bash
# Issue #7's figures: the io_uring disk backend against the portable one, side by side in one run. Each round
# starts a fresh server per backend (`storage.io` set by a config file) and measures PUT and GET of 64 MiB at
# concurrency 8 and of 4 KiB at concurrency 32, with MiB/s, ops/s and the server's CPU seconds per GiB and per
# 1,000 operations (from `strata bench --server-pid`). Payloads are UNSIGNED-PAYLOAD (no SHA-256 on the server).
#
# Ends with a summary per row: the ratio of the medians (uring / portable) of ops/s and of CPU per 1,000
# operations, and in how many rounds uring did at least as well. The shared VM drifts by ±10% between runs, so
# only rounds alternated like these (and several of them) say which backend is faster.
#
# Usage: bash bench/compare/io-backends.sh [ROUNDS (default 2)] [SECONDS per row (default 15)]
# Needs target/release/strata. Data goes under $TMPDIR (default /tmp): put it on a real disk, not tmpfs,
# or O_DIRECT is refused and both backends write through the page cache.
set -euo pipefail

ROUNDS="${1:-2}"
SECS="${2:-15}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STRATA="${STRATA_BIN:-$ROOT/target/release/strata}"
[ -x "$STRATA" ] || { echo "no $STRATA: cargo build --release" >&2; exit 1; }

WORK_NAME=io-bench
# shellcheck source=bench/compare/lib.sh
source "$ROOT/bench/compare/lib.sh"
bench() {
    "$STRATA" bench --endpoint "$ENDPOINT" --server-pid "$SERVER" --quiet --json --unsigned-payload \
        --duration "${SECS}s" "$@"
}
row() { # row BACKEND ROUND LABEL JSON: prints the row and keeps it for the summary
    python3 - "$@" "$WORK/rows.jsonl" <<'PY'
import json, sys
backend, rnd, label, path, keep = sys.argv[1:6]
d = json.load(open(path)); o = d["ops"][0]; c = d["server_cpu"]
gib = c.get("per_gib_s"); k = c.get("per_1000_ops_s")
print(f"{backend:<9} {rnd:>5} {label:<14} {o['mib_per_s']:>9.1f} {o['ops_per_s']:>9.1f} {o['errors']:>6} "
      f"{gib if gib is not None else float('nan'):>9.2f} {k if k is not None else float('nan'):>9.3f}")
with open(keep, "a") as f:
    f.write(json.dumps({"backend": backend, "round": rnd, "row": label, "ops": o["ops_per_s"],
                        "cpu": k}) + "\n")
PY
}
summary() { # per row: medians, uring/portable ratios, and in how many rounds uring did at least as well
    python3 - "$WORK/rows.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{'row':<14} {'ops/s uring/portable':>21} {'CPU uring/portable':>19} {'uring ops >=':>13} {'uring CPU <=':>13}")
for label in dict.fromkeys(r["row"] for r in rows):
    by = {(r["backend"], r["round"]): r for r in rows if r["row"] == label}
    rounds = sorted({rnd for _, rnd in by})
    # A run without a server CPU figure (no /proc) leaves out its round.
    pairs = [(by[("uring", n)], by[("portable", n)]) for n in rounds
             if ("uring", n) in by and ("portable", n) in by
             and by[("uring", n)]["cpu"] is not None and by[("portable", n)]["cpu"] is not None]
    if not pairs:
        continue
    med = lambda key, b: statistics.median(p[b][key] for p in pairs)
    faster = sum(u["ops"] >= p["ops"] for u, p in pairs)
    cheaper = sum(u["cpu"] <= p["cpu"] for u, p in pairs)
    print(f"{label:<14} {med('ops', 0) / med('ops', 1):>21.3f} {med('cpu', 0) / med('cpu', 1):>19.3f} "
          f"{faster:>9}/{len(pairs)} {cheaper:>9}/{len(pairs)}")
PY
}

printf '%-9s %5s %-14s %9s %9s %6s %9s %9s\n' backend round row "MiB/s" "ops/s" errors "CPU-s/GiB" "CPU-s/1k"
for round in $(seq "$ROUNDS"); do
    # Alternated: whichever runs second in a round runs after the other's data was written and removed.
    order="portable uring"
    [ $((round % 2)) = 0 ] && order="uring portable"
    for backend in $order; do
        start "$backend"
        bench --mode put --size 64MiB --concurrency 8 --bucket big-put >"$WORK/a.json"
        row "$backend" "$round" "PUT 64MiB c8" "$WORK/a.json"
        bench --mode get --size 64MiB --concurrency 8 --objects 16 --bucket big-get >"$WORK/a.json"
        row "$backend" "$round" "GET 64MiB c8" "$WORK/a.json"
        bench --mode put --size 4KiB --concurrency 32 --bucket small-put >"$WORK/a.json"
        row "$backend" "$round" "PUT 4KiB c32" "$WORK/a.json"
        bench --mode get --size 4KiB --concurrency 32 --objects 1000 --bucket small-get >"$WORK/a.json"
        row "$backend" "$round" "GET 4KiB c32" "$WORK/a.json"
        if [ "$backend" = uring ] && grep -q "io_uring unavailable" "$WORK/server-uring.log"; then
            echo "warning: the uring server fell back to portable" >&2
        fi
        stop
    done
done
summary
