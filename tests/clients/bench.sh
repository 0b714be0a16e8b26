#!/usr/bin/env bash
# Client-compatibility suite for `strata bench` against S3 servers that are not Strata, since the bench is
# meant for any S3 endpoint (as warp is): moto_server (moto, the AWS mock, in Python; over HTTP and over HTTPS
# with a self-signed certificate) and s3rver (in Node). Each answers in its own way where S3 leaves room:
# moto names CompleteMultipartUpload's root CompleteMultipartUploadResponse, s3rver has no
# ListObjectVersions and fails DeleteObjects when its store races itself. The tests in cargo drive the bench
# against Strata only.
#
# Every run is bounded by --count and must end with exit status 0, the counted operations and no errors in
# its --json report, and no bucket left behind (checked with aws-cli), unless --keep. A server without an API
# (s3rver's ListObjectVersions) must fail the run with the server's error, and an untrusted certificate must
# fail it with a message naming the certificate.
#
# Needs moto_server and s3rver: install.sh puts them in $STRATA_CACHE_DIR (default ~/.cache/strata), moto in a
# virtualenv of its own (its boto3 must not move aws-cli's botocore). Ends with `N passed, M failed`.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TOOLS="${STRATA_CACHE_DIR:-$HOME/.cache/strata}"
MOTO_SERVER="$TOOLS/moto-venv/bin/moto_server"
S3RVER="$TOOLS/s3rver/node_modules/.bin/s3rver"
for tool in "$MOTO_SERVER" "$S3RVER" "$STRATA_BIN"; do
    [ -x "$tool" ] || { echo "$tool not found: run tests/clients/install.sh and cargo build --release"; echo "0 passed, 1 failed"; exit 1; }
done
command -v aws >/dev/null 2>&1 || { echo "aws not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }

# moto accepts any credentials and s3rver its own pair; neither checks signatures, which the cargo tests
# check against Strata.
# KEY:SECRET, as strings: the steps run in a child bash, which sees exported variables but no arrays.
MOTO_KEYS=testing:testing
S3RVER_KEYS=S3RVER:S3RVER
export AWS_CONFIG_FILE="$WORK/aws-config" AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION="$REGION" AWS_REGION="$REGION"
: >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
OTHER_PIDS=""

# start_other NAME URL CMD...: start a server in the background (log in target/client-tests/) and wait until
# URL answers; sets OTHER_PIDS for the cleanup.
start_other() {
    local url="$2" log="$CLIENT_LOG_DIR/$SUITE-$1.log"
    shift 2
    "$@" >"$log" 2>&1 </dev/null &
    OTHER_PIDS="$OTHER_PIDS $!"
    CLEANUP_CMDS="kill $OTHER_PIDS"
    wait_ready "$url" "$!" "$log"
}

start_servers() {
    MOTO="http://127.0.0.1:$(free_port)"
    MOTO_TLS="https://127.0.0.1:$(free_port)"
    S3RVER_URL="http://127.0.0.1:$(free_port)"
    mkdir -p "$WORK/s3rver"
    start_other moto "$MOTO" "$MOTO_SERVER" -H 127.0.0.1 -p "${MOTO##*:}" || return 1
    start_other moto-tls "$MOTO_TLS" "$MOTO_SERVER" -H 127.0.0.1 -p "${MOTO_TLS##*:}" --ssl || return 1
    # s3rver encrypts its continuation tokens with a cipher that OpenSSL 3 (Node 17 on) keeps in its legacy
    # provider: without it every listing past the first page answers 500.
    start_other s3rver "$S3RVER_URL" env NODE_OPTIONS=--openssl-legacy-provider "$S3RVER" --address 127.0.0.1 --port "${S3RVER_URL##*:}" \
        --directory "$WORK/s3rver" || return 1
    echo "moto $MOTO, moto over TLS $MOTO_TLS, s3rver $S3RVER_URL"
}
setup_or_die servers start_servers
# setup_or_die runs in this shell, so the addresses are set here; the steps see them exported (set -a).

# bench ENDPOINT KEY:SECRET REPORT ARGS...: one bench run as the server's user, its --json report in REPORT.
bench() {
    local endpoint="$1" keys="$2" report="$3"
    shift 3
    AWS_ACCESS_KEY_ID="${keys%%:*}" AWS_SECRET_ACCESS_KEY="${keys#*:}" RUST_BACKTRACE=0 \
        "$STRATA_BIN" bench --endpoint "$endpoint" --quiet --json --timeout 60s "$@" >"$report"
}

# expect_ops REPORT COUNT: the report counts COUNT operations in all (transfers of multipart parts aside) and
# no error.
expect_ops() {
    expect_eq "errors in $1" "$(json_get "$1" 'd["errors"]')" "{}"
    expect_eq "operations in $1" \
        "$(json_get "$1" 'sum(o["ops"] for o in d["ops"] if o["op"] not in ("total", "part"))')" "$2"
}

# expect_no_bucket ENDPOINT KEY:SECRET BUCKET: the bench's cleanup left no bucket BUCKET, nor BUCKET-<i> of
# --buckets.
expect_no_bucket() {
    local keys="$2" buckets name
    buckets="$(AWS_ACCESS_KEY_ID="${keys%%:*}" AWS_SECRET_ACCESS_KEY="${keys#*:}" \
        aws --endpoint-url "$1" --no-verify-ssl s3api list-buckets --query 'Buckets[].Name' --output text 2>/dev/null)"
    for name in $buckets; do
        case $name in "$3" | "$3"-[0-9]*) fail "bucket $name left behind on $1 (buckets: $buckets)" ;; esac
    done
}

# every_mode ENDPOINT KEY:SECRET TAG [bench args...]: put, get, mixed, delete, list and multipart runs, each in a
# bucket of its own, counted and cleaned up; CONCURRENCY (default 4) requests at once.
every_mode() {
    local endpoint="$1" keys="$2" tag="$3" mode bucket conc="${CONCURRENCY:-4}"
    shift 3
    for mode in put get mixed delete list multipart; do
        bucket="bench-$tag-$mode"
        case $mode in
            multipart) bench "$endpoint" "$keys" "$WORK/$tag-$mode.json" --bucket "$bucket" --mode multipart \
                --size 11MiB --part-size 5MiB --parts-parallel 3 --concurrency 2 --count 4 "$@" ;;
            list) bench "$endpoint" "$keys" "$WORK/$tag-$mode.json" --bucket "$bucket" --mode list \
                --objects 120 --max-keys 50 --concurrency "$conc" --count 12 "$@" ;;
            *) bench "$endpoint" "$keys" "$WORK/$tag-$mode.json" --bucket "$bucket" --mode "$mode" \
                --size 4KiB..96KiB --objects 30 --concurrency "$conc" --count 60 "$@" ;;
        esac
        case $mode in
            multipart) expect_ops "$WORK/$tag-$mode.json" 4 ;;
            list) expect_ops "$WORK/$tag-$mode.json" 12 ;;
            *) expect_ops "$WORK/$tag-$mode.json" 60 ;;
        esac
        expect_no_bucket "$endpoint" "$keys" "$bucket"
        echo "$tag $mode: $(json_get "$WORK/$tag-$mode.json" '[(o["op"], o["ops"]) for o in d["ops"]]')"
    done
}

moto_every_mode() { every_mode "$MOTO" "$MOTO_KEYS" moto; }
moto_unsigned_lognormal_many_prefixes() {
    bench "$MOTO" "$MOTO_KEYS" "$WORK/moto-lognormal.json" --bucket bench-moto-lognormal --mode put \
        --unsigned-payload --size 16KiB --size-dist lognormal --size-sigma 0.8 --size-max 512KiB --prefixes 8 \
        --count 50 --concurrency 4
    expect_ops "$WORK/moto-lognormal.json" 50
    expect_no_bucket "$MOTO" "$MOTO_KEYS" bench-moto-lognormal
}
moto_list_versions() {
    bench "$MOTO" "$MOTO_KEYS" "$WORK/moto-versions.json" --bucket bench-moto-versions --mode list-versions \
        --objects 60 --max-keys 25 --count 6 --concurrency 2
    expect_ops "$WORK/moto-versions.json" 6
    expect_no_bucket "$MOTO" "$MOTO_KEYS" bench-moto-versions
}
moto_two_buckets_zipf_keys() {
    bench "$MOTO" "$MOTO_KEYS" "$WORK/moto-zipf.json" --bucket bench-moto-zipf --buckets 2 --mode get --keys zipf \
        --objects 20 --size 8KiB --count 60 --concurrency 4
    expect_ops "$WORK/moto-zipf.json" 60
    expect_no_bucket "$MOTO" "$MOTO_KEYS" bench-moto-zipf
    expect_eq buckets "$(json_get "$WORK/moto-zipf.json" 'd["buckets"]')" 2
}
# Virtual-hosted style: moto takes the bucket from the Host header's first label.
moto_virtual_hosted_style() {
    bench "http://localhost:${MOTO##*:}" "$MOTO_KEYS" "$WORK/moto-virtual.json" --bucket bench-moto-virtual \
        --addressing-style virtual --mode mixed --size 32KiB --objects 20 --count 60 --concurrency 4
    expect_ops "$WORK/moto-virtual.json" 60
    expect_eq addressing "$(json_get "$WORK/moto-virtual.json" 'd["addressing_style"]')" virtual
    expect_no_bucket "$MOTO" "$MOTO_KEYS" bench-moto-virtual
}
moto_keep_leaves_the_objects() {
    bench "$MOTO" "$MOTO_KEYS" "$WORK/moto-keep.json" --bucket bench-moto-keep --mode put --size 4KiB --count 25 \
        --concurrency 4 --keep
    expect_ops "$WORK/moto-keep.json" 25
    local n
    n="$(AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url "$MOTO" s3api list-objects-v2 \
        --bucket bench-moto-keep --query 'length(Contents)' --output text)"
    expect_eq "objects kept" "$n" 25
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing aws --endpoint-url "$MOTO" s3 rb --force \
        s3://bench-moto-keep >/dev/null
}
moto_compare_two_reports() {
    local out
    out="$("$STRATA_BIN" bench --compare "$WORK/moto-put.json" "$WORK/moto-get.json")"
    echo "$out"
    grep -q 'put' <<<"$out" || fail "compare shows no put row"
    grep -q 'get' <<<"$out" || fail "compare shows no get row"
}
moto_tls_every_mode() { every_mode "$MOTO_TLS" "$MOTO_KEYS" moto-tls --insecure; }
moto_tls_untrusted_certificate_is_refused() {
    local err="$WORK/tls-refused.err"
    if AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing RUST_BACKTRACE=0 "$STRATA_BIN" bench \
        --endpoint "$MOTO_TLS" --quiet --mode put --count 5 --bucket bench-moto-untrusted 2>"$err" >/dev/null; then
        fail "a run against a self-signed certificate succeeded without --insecure"
    fi
    cat "$err"
    grep -qi 'certificate' "$err" || fail "the error does not name the certificate"
}

# One request at a time: s3rver's store removes emptied directories without a lock, so two DELETEs under one
# prefix at once can fail with 500 (ENOENT from its scandir).
s3rver_every_mode() { CONCURRENCY=1 every_mode "$S3RVER_URL" "$S3RVER_KEYS" s3rver; }
# s3rver has no ListObjectVersions: the run fails with the server's answer, counted, rather than hanging or
# passing.
s3rver_list_versions_fails_with_the_servers_error() {
    local report="$WORK/s3rver-versions.json"
    if bench "$S3RVER_URL" "$S3RVER_KEYS" "$report" --bucket bench-s3rver-versions --mode list-versions \
        --objects 10 --count 5 --concurrency 2 2>"$WORK/s3rver-versions.err"; then
        fail "list-versions against s3rver succeeded"
    fi
    cat "$WORK/s3rver-versions.err"
    grep -q 'every operation failed' "$WORK/s3rver-versions.err" || fail "no 'every operation failed' message"
    expect_no_bucket "$S3RVER_URL" "$S3RVER_KEYS" bench-s3rver-versions
}

step moto-every-mode moto_every_mode
step moto-unsigned-lognormal-sizes-8-prefixes moto_unsigned_lognormal_many_prefixes
step moto-list-versions moto_list_versions
step moto-two-buckets-zipf-keys moto_two_buckets_zipf_keys
step moto-virtual-hosted-style moto_virtual_hosted_style
step moto-keep-leaves-the-objects moto_keep_leaves_the_objects
step moto-compare-two-reports moto_compare_two_reports
step moto-https-every-mode moto_tls_every_mode
step moto-https-untrusted-certificate-refused moto_tls_untrusted_certificate_is_refused
step s3rver-every-mode s3rver_every_mode
step s3rver-list-versions-fails-with-the-servers-error s3rver_list_versions_fails_with_the_servers_error
summary
