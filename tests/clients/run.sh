#!/usr/bin/env bash
# Runs the whole client-compatibility suite: installs the clients when missing
# (install.sh), builds target/release/strata only if it is not there, then runs
# aws.sh, rclone.sh, s5cmd.sh, aws-versioning.sh, edge.sh, website.sh, aws-access.sh (each starts its own
# server on 127.0.0.1) and bench.sh (strata bench against moto_server and s3rver), and prints the combined
# final line `N passed, M failed`.
# Exits non-zero on any failure.
# Per-suite server logs and step outputs stay in target/client-tests/.
# STRATA_CLIENT_BIG_MIB (default 1024) is the size in MiB of the large file each suite
# sends up and down through its client's parallel multipart path (see lib.sh).
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SUITES="aws rclone s5cmd"
SUITES="$SUITES aws-versioning" # versioning and object lock through aws-cli s3api
SUITES="$SUITES edge" # aws-cli, rclone and curl through the edge (serve's and a strata edge with OAC, TLS, SNI)
SUITES="$SUITES website" # a static site published with aws-cli, read with curl and headless Chromium
SUITES="$SUITES aws-access" # bucket policies, Block Public Access and canned ACLs through aws-cli s3api; curl as anonymous
SUITES="$SUITES bench" # strata bench against other S3 servers (moto_server over HTTP and HTTPS, s3rver)
SUITE_TIMEOUT="${SUITE_TIMEOUT:-1200}" # seconds per suite
PASSED=0
FAILED=0
OUT="$(mktemp -d "${TMPDIR:-/tmp}/strata-clients-run.XXXXXX")" || { echo "mktemp failed"; exit 1; }
trap 'rm -rf -- "$OUT"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$ROOT" || exit 1

if bash "$HERE/install.sh"; then
    echo "PASS install-clients"
    PASSED=$((PASSED + 1))
else
    echo "FAIL install-clients"
    echo "0 passed, 1 failed"
    exit 1
fi
if PY_SCRIPTS="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')"; then
    export PATH="$PY_SCRIPTS:$PATH"
fi

# STRATA_BIN (another server binary) or STRATA_ENDPOINT (a running server) skip the build.
if [ -z "${STRATA_ENDPOINT:-}" ] && [ -z "${STRATA_BIN:-}" ] && [ ! -x "$ROOT/target/release/strata" ]; then
    echo "target/release/strata missing: cargo build --release"
    if ! cargo build --release; then
        echo "FAIL build-release"
        echo "$PASSED passed, $((FAILED + 1)) failed"
        exit 1
    fi
fi

for suite in $SUITES; do
    echo "==== $suite"
    suite_start=$SECONDS
    timeout -k 30 "$SUITE_TIMEOUT" bash "$HERE/$suite.sh" </dev/null 2>&1 | tee "$OUT/$suite.out"
    rc=${PIPESTATUS[0]}
    echo "==== $suite took $((SECONDS - suite_start)) s"
    last="$(tail -n 1 "$OUT/$suite.out")"
    if [[ "$last" =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
        p="${BASH_REMATCH[1]}"
        f="${BASH_REMATCH[2]}"
        PASSED=$((PASSED + p))
        FAILED=$((FAILED + f))
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            echo "FAIL $suite-exit-status (exit $rc with no failed step)"
            FAILED=$((FAILED + 1))
        fi
    else
        if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
            echo "FAIL $suite (timed out after $SUITE_TIMEOUT s)"
        else
            echo "FAIL $suite (exit $rc, no summary line)"
        fi
        FAILED=$((FAILED + 1))
    fi
done

echo "==== all suites took $SECONDS s"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
