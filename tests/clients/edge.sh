#!/usr/bin/env bash
# Client-compatibility suite for the edge (our CloudFront), in two parts.
#  1. The edge that `strata serve` runs (one catch-all distribution: browser reads go to
#     the website endpoint with the viewer's Host header, signed requests and writes pass
#     through to the local S3 API): aws-cli (mb, cp of a small file and of a 64 MiB file
#     as an 8 MiB-part multipart upload, up and down, ls, rm, rb) and rclone (copy of a
#     tree, rclone check) pointed at the edge's http URL must work exactly as against the
#     S3 API; and a static site (public-read policy, s3 website, s3 sync) read with curl at
#     the website endpoint and through the edge over HTTPS.
#  2. A `strata edge` started by this suite with its own config file in front of a
#     private bucket (origin access control: the edge signs its origin requests), with
#     curl: redirect-to-https, HTTPS with HTTP/2 and HTTP/1.1, TLS 1.2 and 1.3, x-cache
#     Miss then Hit, the bucket still private at the S3 API, Range (206, 416) and
#     If-None-Match (304), invalidation of a path and of a wildcard (and 401 for a wrong
#     token), a second distribution with its own certificate added by SIGHUP and picked
#     by SNI (same process), /health and /metrics, and after SIGTERM a CloudFront
#     standard access log (#Version: 1.0, 33 tab-separated fields, Hit and Miss).
# Every listener is on 127.0.0.1 with a port the kernel picks (port 0): the actual
# addresses are read from the `Edge:` lines that serve and edge print.
# Starts its own server unless STRATA_ENDPOINT / STRATA_ACCESS_KEY / STRATA_SECRET_KEY
# are given; then STRATA_EDGE_ENDPOINT (the http URL of that server's edge) is needed
# too. Part 2 always runs target/release/strata (STRATA_BIN) as the edge.
# The edge's log is kept in target/client-tests/edge-edge.log.
# Ends with the line `N passed, M failed`; exit status non-zero on any failure.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in aws rclone curl openssl; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }
done

require_server

SUFFIX="$(rand_str 10 abcdefghijklmnopqrstuvwxyz0123456789)"
BUCKET="strata-edge-$SUFFIX"
SITE_BUCKET="strata-site-$SUFFIX"
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION="$REGION"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
# See aws.sh: no Expect: 100-continue on empty bodies (botocore issue 3755).
export BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true
# One attempt: a retried 5xx would hide an edge bug.
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=1
export RCLONE_CONFIG="$WORK/rclone.conf"
export RCLONE_CONFIG_EDGE_TYPE=s3
export RCLONE_CONFIG_EDGE_PROVIDER=Other
export RCLONE_CONFIG_EDGE_ENV_AUTH=false
export RCLONE_CONFIG_EDGE_ACCESS_KEY_ID="$ACCESS_KEY"
export RCLONE_CONFIG_EDGE_SECRET_ACCESS_KEY="$SECRET_KEY"
export RCLONE_CONFIG_EDGE_REGION="$REGION"
export RCLONE_CONFIG_EDGE_FORCE_PATH_STYLE=true
# the 12 MiB tree/sub/large.bin goes up as a 3-part multipart upload
export RCLONE_CONFIG_EDGE_UPLOAD_CUTOFF=5Mi
export RCLONE_CONFIG_EDGE_CHUNK_SIZE=5Mi
PART=$((8 * 1024 * 1024))
# The multipart file sent through serve's edge: fixed at 64 MiB (8 parts of 8 MiB),
# whatever STRATA_CLIENT_BIG_MIB says; the other suites send that size to the S3 API.
EDGE_BIG_BYTES=$((64 * 1024 * 1024))
UP="$WORK/up"
DOWN="$WORK/down"
TREE="$WORK/tree"
SITE="$WORK/site"
# The edge this suite starts (part 2).
EDGE_CONF="$WORK/edge.toml"
EDGE_STATE="$WORK/edge-state"
EDGE_LOGS="$WORK/edge-logs"
EDGE_LOG="$CLIENT_LOG_DIR/$SUITE-edge.log"
EDGE_PID=""
WWW_HOST="www.example.test"
CDN_HOST="cdn.example.test"
CDN_CERT="$WORK/cdn.pem"
CDN_KEY="$WORK/cdn.key"

# addrs_of_banner FILE: `HTTP HTTPS ADMIN` (host:port each) from the line
# `Edge:        http://A  https://B  (admin http://C)` that serve and edge print.
addrs_of_banner() {
    sed -n 's|^Edge: *http://\([^ ]*\) *https://\([^ ]*\) *(admin http://\([^ )]*\)).*|\1 \2 \3|p' "$1" | head -n 1
}

# serve's edge: EDGE_URL (viewer http), SERVE_EDGE_ADMIN (admin http)
EDGE_URL=""
SERVE_EDGE_ADMIN=""
find_serve_edge() {
    if [ "$EXTERNAL_SERVER" = 1 ]; then
        [ -n "${STRATA_EDGE_ENDPOINT:-}" ] || { echo "external server: set STRATA_EDGE_ENDPOINT to its edge's http URL"; return 1; }
        EDGE_URL="${STRATA_EDGE_ENDPOINT%/}"
        return 0
    fi
    local a http admin
    a="$(addrs_of_banner "$SERVER_LOG")"
    [ -n "$a" ] || { echo "no Edge: line in $SERVER_LOG"; return 1; }
    read -r http https admin <<<"$a"
    EDGE_URL="http://$http"
    SERVE_EDGE_TLS="$https"
    SERVE_EDGE_ADMIN="http://$admin"
    WEBSITE_URL="$(sed -n 's|^Website: *\(http://[^ ]*\).*|\1|p' "$SERVER_LOG" | head -n 1)"
    echo "serve's edge: $EDGE_URL, https $SERVE_EDGE_TLS, admin $SERVE_EDGE_ADMIN; website endpoint $WEBSITE_URL"
}
SERVE_EDGE_TLS=""
WEBSITE_URL=""
find_serve_edge >"$WORK/find.out" 2>&1 || { record FAIL setup:find-serve-edge; sed 's/^/    /' "$WORK/find.out"; summary; exit 1; }
cat "$WORK/find.out"
export RCLONE_CONFIG_EDGE_ENDPOINT="$EDGE_URL"

write_aws_config() {
    cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = $REGION
s3 =
    addressing_style = path
    multipart_threshold = 8MB
    multipart_chunksize = 8MB
EOF
    : >"$AWS_SHARED_CREDENTIALS_FILE"
}

prepare_files() {
    mkdir -p "$UP" "$DOWN" "$SITE/css" "$SITE/media" "$EDGE_STATE" "$EDGE_LOGS" || return 1
    {
        printf 'hello from the strata edge suite\n'
        rand_str 2000 abcdefghijklmnopqrstuvwxyz0123456789
    } >"$UP/small.txt" || return 1
    make_tree "$TREE" || return 1
    printf '<!doctype html>\n<title>strata edge suite</title>\n<p>version 1 %s</p>\n' "$(rand_str 32 abcdef0123456789)" >"$SITE/index.html" || return 1
    printf 'body { color: #%s; }\n' "$(rand_str 6 abcdef0123456789)" >"$SITE/css/site.css" || return 1
    make_random_file "$SITE/media/blob.bin" $((5 * 1024 * 1024)) || return 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -keyout "$CDN_KEY" -out "$CDN_CERT" -subj "/CN=$CDN_HOST" \
        -addext "subjectAltName=DNS:$CDN_HOST" -days 2 2>&1
}

setup_or_die aws-config write_aws_config
setup_or_die rclone-config touch "$RCLONE_CONFIG"
setup_or_die files prepare_files

# ---- the edge this suite starts (main shell: it is this script's child) ----

# write_edge_config [with-cdn]: the config file of part 2; with-cdn adds the second
# distribution with its own certificate.
write_edge_config() {
    cat >"$EDGE_CONF" <<EOF
listen = "127.0.0.1:0"
tls_listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
edge_id = "TEST1"

[log]
dir = "$EDGE_LOGS"

[[distribution]]
id = "site"
hostnames = ["$WWW_HOST"]
viewer_protocol_policy = "redirect-to-https"

[distribution.origin]
type = "s3"
endpoint = "$ENDPOINT"
bucket = "$SITE_BUCKET"
region = "$REGION"
access_key = "$ACCESS_KEY"
secret_key = "$SECRET_KEY"

[[distribution.behavior]]
path_pattern = "*"
default_ttl = 60
EOF
    if [ "${1:-}" = with-cdn ]; then
        cat >>"$EDGE_CONF" <<EOF

[[distribution]]
id = "cdn"
hostnames = ["$CDN_HOST"]
certificate = "$CDN_CERT"
private_key = "$CDN_KEY"

[distribution.origin]
type = "s3"
endpoint = "$ENDPOINT"
bucket = "$SITE_BUCKET"
region = "$REGION"
access_key = "$ACCESS_KEY"
secret_key = "$SECRET_KEY"
EOF
    fi
}

# start_edge: starts `strata edge`, waits for its banner and /health; sets EDGE_PID,
# E_HTTP_PORT, E_TLS_PORT, E_ADMIN (http URL) and E_TOKEN.
start_edge() {
    write_edge_config || return 1
    [ -x "$STRATA_BIN" ] || { echo "no binary at $STRATA_BIN"; return 1; }
    RUST_LOG="${RUST_LOG:-info}" "$STRATA_BIN" edge --config "$EDGE_CONF" --state-dir "$EDGE_STATE" \
        >"$EDGE_LOG" 2>&1 </dev/null &
    EDGE_PID=$!
    echo "started strata edge (pid $EDGE_PID), log $EDGE_LOG"
    local deadline=$((SECONDS + READY_TIMEOUT)) a="" http tls admin
    while [ "$SECONDS" -lt "$deadline" ]; do
        kill -0 "$EDGE_PID" 2>/dev/null || { echo "edge exited:"; tail -n 30 "$EDGE_LOG"; return 1; }
        if grep -q '^Admin token: ' "$EDGE_LOG"; then
            a="$(addrs_of_banner "$EDGE_LOG")"
            break
        fi
        sleep 0.2
    done
    [ -n "$a" ] || { echo "no Edge: banner after $READY_TIMEOUT s:"; tail -n 30 "$EDGE_LOG"; return 1; }
    read -r http tls admin <<<"$a"
    E_HTTP_PORT="${http##*:}"
    E_TLS_PORT="${tls##*:}"
    E_ADMIN="http://$admin"
    E_TOKEN="$(sed -n 's/^Admin token: //p' "$EDGE_LOG" | head -n 1)"
    [ -n "$E_TOKEN" ] || { echo "empty admin token"; return 1; }
    echo "edge: http port $E_HTTP_PORT, https port $E_TLS_PORT, admin $E_ADMIN"
    curl -sS -f -o /dev/null --max-time 10 "$E_ADMIN/health" || { echo "admin /health does not answer"; return 1; }
    [ -s "$EDGE_STATE/self-signed.pem" ] || { echo "no $EDGE_STATE/self-signed.pem"; return 1; }
}

# stop_edge: SIGTERM, at most 15 s for a graceful stop, then SIGKILL; returns the exit status.
stop_edge() {
    [ -n "$EDGE_PID" ] || return 0
    local tries=0 rc
    kill -TERM "$EDGE_PID" 2>/dev/null
    while [ "$tries" -lt 75 ] && kill -0 "$EDGE_PID" 2>/dev/null; do
        sleep 0.2
        tries=$((tries + 1))
    done
    if kill -0 "$EDGE_PID" 2>/dev/null; then
        echo "edge $EDGE_PID ignored SIGTERM for 15 s; sending SIGKILL"
        kill -KILL "$EDGE_PID" 2>/dev/null
    fi
    wait "$EDGE_PID" 2>/dev/null
    rc=$?
    EDGE_PID=""
    echo "edge exit status $rc"
    return "$rc"
}

# main_step NAME FUNC: like step, but FUNC runs in this shell (it may start or stop the
# edge, which must be this shell's child) with its output captured.
main_step() {
    local name="$1" out="$WORK/main-step.out" rc
    shift
    "$@" >"$out" 2>&1
    rc=$?
    {
        echo "===== $name (rc=$rc)"
        cat "$out"
    } >>"$STEPS_LOG"
    if [ "$rc" -eq 0 ]; then
        record PASS "$name"
    else
        record FAIL "$name"
        tail -n 15 "$out" | sed 's/^/    /'
    fi
    return "$rc"
}

CLEANUP_CMDS="stop_edge"
if [ "$EXTERNAL_SERVER" = 1 ]; then
    CLEANUP_CMDS="$CLEANUP_CMDS; awsc s3 rb --force s3://$BUCKET; s3c s3 rb --force s3://$SITE_BUCKET"
fi

# ---- helpers of the steps ----

# awsc: aws-cli through serve's edge; s3c: aws-cli straight to the S3 API
awsc() {
    aws --endpoint-url "$EDGE_URL" --cli-connect-timeout 10 --cli-read-timeout 120 "$@"
}
s3c() {
    aws --endpoint-url "$ENDPOINT" --cli-connect-timeout 10 --cli-read-timeout 120 "$@"
}
rcl() {
    rclone --retries 1 --low-level-retries 1 --contimeout 10s --timeout 120s "$@"
}

# expect_http_error CODE WHAT CMD...: CMD must fail and its output must mention CODE.
expect_http_error() {
    local code="$1" what="$2" out
    shift 2
    if out="$("$@" 2>&1)"; then
        fail "$what: succeeded but should have failed with $code: $out"
    fi
    printf '%s\n' "$out"
    printf '%s\n' "$out" | grep -F -- "$code" >/dev/null || fail "$what: error does not mention $code"
}

# get NAME CURL_ARGS...: curl -v into $WORK/NAME.{hdr,body,err}; prints `STATUS HTTP_VERSION`
get() {
    local name="$1"
    shift
    rm -f "$WORK/$name.hdr" "$WORK/$name.body" "$WORK/$name.err"
    curl -sS -v --max-time 60 -D "$WORK/$name.hdr" -o "$WORK/$name.body" \
        -w '%{http_code} %{http_version}' "$@" 2>"$WORK/$name.err"
}

# hdr NAME HEADER: the value of HEADER in $WORK/NAME.hdr (last one; empty when absent)
hdr() {
    tr -d '\r' <"$WORK/$1.hdr" | awk -v h="$2" 'BEGIN { h = tolower(h) ":" }
        tolower(substr($0, 1, length(h))) == h { v = substr($0, length(h) + 1); sub(/^[ \t]+/, "", v) }
        END { print v }'
}

# show NAME: the status line and headers of a get, for the step log
show() {
    echo "--- $1:"
    tr -d '\r' <"$WORK/$1.hdr"
}

# www ARGS...: curl arguments for https://www.example.test:PORT through the suite's edge
# with the self-signed certificate; www_url PATH
www_url() { printf 'https://%s:%s%s' "$WWW_HOST" "$E_TLS_PORT" "$1"; }
www() {
    get "$1" --cacert "$EDGE_STATE/self-signed.pem" --resolve "$WWW_HOST:$E_TLS_PORT:127.0.0.1" "${@:3}" "$(www_url "$2")"
}

# expect_get NAME PATH STATUS XCACHE FILE [CURL ARGS...]: GET PATH from www over HTTPS
# (HTTP/2) and check status, x-cache (Hit or Miss) and body (= FILE)
expect_get() {
    local name="$1" path="$2" status="$3" xcache="$4" file="$5" r
    shift 5
    r="$(www "$name" "$path" "$@")"
    show "$name"
    expect_eq "$path status and HTTP version" "$r" "$status 2"
    expect_eq "$path x-cache" "$(hdr "$name" x-cache)" "$xcache from strata"
    same_file "$WORK/$name.body" "$file"
}

# metric FILE NAME: the value of the sample NAME (with its labels) in a Prometheus text file
metric() {
    awk -v n="$2" '$1 == n { print $2; found = 1 } END { if (!found) print "absent" }' "$1"
}

# ---- part 1: serve's edge ----

# A static site as AWS's guides publish one: public-read policy, `aws s3 website`, `aws s3 sync`; then curl at
# the website endpoint (Host names the bucket) and through serve's edge over HTTPS (a hosts-file name, --resolve).
t_website() {
    [ -n "$WEBSITE_URL" ] && [ -n "$SERVE_EDGE_TLS" ] || { echo "external server: skipped"; return 0; }
    local site="$WORK/site" name="site.example.test" r port
    mkdir -p "$site/docs"
    printf '<h1>home</h1>\n' >"$site/index.html"
    printf '<h1>docs</h1>\n' >"$site/docs/index.html"
    printf '<h1>not here</h1>\n' >"$site/error.html"
    printf 'body { color: red }\n' >"$site/style.css"
    s3c s3 mb "s3://$name"
    s3c s3api delete-public-access-block --bucket "$name"
    s3c s3api put-bucket-policy --bucket "$name" --policy "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::$name/*\"}]}"
    s3c s3 website "s3://$name" --index-document index.html --error-document error.html
    s3c s3api get-bucket-website --bucket "$name" | grep -F '"Suffix": "index.html"' >/dev/null || fail "get-bucket-website"
    s3c s3 sync --no-progress "$site" "s3://$name"
    r="$(get web-home -H "Host: $name" "$WEBSITE_URL/")"
    show web-home
    expect_eq "website endpoint /" "$r" "200 1.1"
    same_file "$WORK/web-home.body" "$site/index.html"
    r="$(get web-dir -H "Host: $name" "$WEBSITE_URL/docs")"
    expect_eq "website endpoint /docs" "$r" "302 1.1"
    expect_eq "redirect to the directory" "$(hdr web-dir location)" "/docs/"
    r="$(get web-css -H "Host: $name" "$WEBSITE_URL/style.css")"
    expect_eq "website endpoint /style.css" "$r" "200 1.1"
    expect_eq "css content type" "$(hdr web-css content-type)" "text/css"
    # Only s3:GetObject is public: as on AWS a missing page is then 403, answered with the error document.
    r="$(get web-404 -H "Host: $name" "$WEBSITE_URL/missing.html")"
    expect_eq "website endpoint, missing page" "$r" "403 1.1"
    same_file "$WORK/web-404.body" "$site/error.html"
    port="${SERVE_EDGE_TLS##*:}"
    r="$(get edge-web-1 -k --resolve "$name:$port:127.0.0.1" "https://$name:$port/docs/")"
    show edge-web-1
    expect_eq "through the edge over HTTPS" "$r" "200 2"
    same_file "$WORK/edge-web-1.body" "$site/docs/index.html"
    r="$(get edge-web-2 -k --resolve "$name:$port:127.0.0.1" "https://$name:$port/docs/")"
    expect_eq "again through the edge" "$r" "200 2"
    expect_eq "second read is a hit" "$(hdr edge-web-2 x-cache)" "Hit from strata"
    s3c s3 rb --force "s3://$name"
}

t_serve_edge_answers() {
    local r
    r="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "$SERVE_EDGE_ADMIN/health")"
    expect_eq "serve's edge admin /health" "$r" 200
    # anonymous GET through the edge goes to the website endpoint: Host 127.0.0.1 names no bucket, so its HTML
    # 404 page, with the edge's headers on it
    r="$(get anon-serve -H "Host: 127.0.0.1" "$EDGE_URL/no-such-bucket/key")"
    show anon-serve
    cat "$WORK/anon-serve.body"
    echo
    expect_eq "anonymous GET through serve's edge" "$r" "404 1.1"
    grep -F '<li>Code: NoSuchBucket</li>' "$WORK/anon-serve.body" >/dev/null || fail "no NoSuchBucket in the page"
    [ -n "$(hdr anon-serve via)" ] || fail "no via header: the response did not come through the edge"
}

t_mb() {
    local out
    out="$(awsc s3 mb "s3://$BUCKET" 2>&1)" || fail "s3 mb: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -F "make_bucket: $BUCKET" >/dev/null || fail "no make_bucket line"
    awsc s3api head-bucket --bucket "$BUCKET" || fail "head-bucket after mb"
    s3c s3api head-bucket --bucket "$BUCKET" || fail "head-bucket at the S3 API after mb"
}

t_cp_small() {
    awsc s3 cp --no-progress "$UP/small.txt" "s3://$BUCKET/small.txt"
    rm -f "$DOWN/small.txt"
    awsc s3 cp --no-progress "s3://$BUCKET/small.txt" "$DOWN/small.txt"
    expect_eq "sha256 small" "$(sha256_of "$DOWN/small.txt")" "$(sha256_of "$UP/small.txt")"
    # it landed in the bucket: read back at the S3 API
    rm -f "$DOWN/small.s3"
    s3c s3 cp --no-progress "s3://$BUCKET/small.txt" "$DOWN/small.s3"
    same_file "$DOWN/small.s3" "$UP/small.txt"
}

# 64 MiB up and down through the edge by aws-cli's parallel multipart paths (8 MiB
# parts): multipart ETag, md5 of the download; the local files go when the step ends.
t_cp_big() {
    local src="$WORK/big.bin" dst="$WORK/big.down" key="big/64MiB.bin" sums md5 etag t0
    # expanded now, on purpose: the locals are gone when the step's shell exits
    # shellcheck disable=SC2064
    trap "rm -f -- $(printf '%q ' "$src" "$dst")" EXIT
    make_random_file "$src" "$EDGE_BIG_BYTES" || fail "cannot write 64 MiB to $src"
    sums="$(hash_big "$src" "$PART")"
    md5="${sums%% *}"
    etag="${sums#* }"
    echo "md5 $md5, expected ETag $etag"
    t0="$(now_s)"
    awsc s3 cp --no-progress "$src" "s3://$BUCKET/$key"
    log_rate "aws s3 cp up through the edge" "$EDGE_BIG_BYTES" "$t0"
    awsc s3api head-object --bucket "$BUCKET" --key "$key" --output json >"$WORK/big.json"
    cat "$WORK/big.json"
    expect_eq "ContentLength" "$(json_get "$WORK/big.json" 'd["ContentLength"]')" "$EDGE_BIG_BYTES"
    expect_eq "ETag (multipart, 8 MiB parts)" "$(json_get "$WORK/big.json" 'd["ETag"]')" "$etag"
    t0="$(now_s)"
    awsc s3 cp --no-progress "s3://$BUCKET/$key" "$dst"
    log_rate "aws s3 cp down through the edge" "$EDGE_BIG_BYTES" "$t0"
    expect_eq "size of the download" "$(size_of "$dst")" "$EDGE_BIG_BYTES"
    expect_eq "md5 of the download" "$(md5_of "$dst")" "$md5"
}

t_ls() {
    local out
    out="$(awsc s3 ls "s3://$BUCKET/" --recursive)"
    echo "$out"
    expect_eq "listed size of small.txt" "$(printf '%s\n' "$out" | awk '$4 == "small.txt" {print $3}')" "$(size_of "$UP/small.txt")"
    expect_eq "listed size of big/64MiB.bin" "$(printf '%s\n' "$out" | awk '$4 == "big/64MiB.bin" {print $3}')" "$EDGE_BIG_BYTES"
    expect_eq "number of listed objects" "$(printf '%s\n' "$out" | grep -c .)" 2
    out="$(awsc s3 ls)"
    echo "$out"
    printf '%s\n' "$out" | awk '{print $3}' | grep -Fx "$BUCKET" >/dev/null || fail "bucket not in s3 ls"
}

t_rclone_copy_check() {
    local remote="edge:$BUCKET/tree" out
    rcl copy "$TREE" "$remote"
    rcl lsf -R --files-only "$remote" | LC_ALL=C sort >"$WORK/rclone.list"
    diff -u "$TREE.list" "$WORK/rclone.list" || fail "remote files differ from the local tree"
    out="$(rcl check "$TREE" "$remote" 2>&1)" || fail "rclone check: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -E '(^|[^0-9])0 differences found' >/dev/null || fail "check did not report 0 differences"
    if printf '%s\n' "$out" | grep -E 'hashes could not be checked|[1-9][0-9]* hashes' >/dev/null; then
        fail "some hashes were not checked"
    fi
    out="$(rcl check --download "$TREE" "$remote" 2>&1)" || fail "rclone check --download: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -E '(^|[^0-9])0 differences found' >/dev/null || fail "check --download did not report 0 differences"
}

t_rm() {
    local out
    out="$(awsc s3 rm --recursive "s3://$BUCKET/")"
    echo "$out"
    expect_eq "delete lines" "$(printf '%s\n' "$out" | grep -c '^delete:' || true)" 9
    out="$(awsc s3 ls "s3://$BUCKET/" --recursive || true)"
    expect_eq "objects left" "$out" ""
}

t_rb() {
    local out
    out="$(awsc s3 rb "s3://$BUCKET" 2>&1)" || fail "s3 rb: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -F "remove_bucket: $BUCKET" >/dev/null || fail "no remove_bucket line"
    expect_http_error '(404)' "head-bucket at the S3 API after rb" s3c s3api head-bucket --bucket "$BUCKET"
}

# the client traffic above went through the edge: its counters saw the 64 MiB download
t_serve_edge_counted() {
    [ -n "$SERVE_EDGE_ADMIN" ] || { echo "external server: no admin URL, skipped"; return 0; }
    curl -sS -f --max-time 10 "$SERVE_EDGE_ADMIN/metrics" >"$WORK/serve-metrics.txt"
    grep -E '^strata_edge_(requests_total|bytes_sent_total|origin_requests_total)' "$WORK/serve-metrics.txt"
    local sent
    sent="$(metric "$WORK/serve-metrics.txt" strata_edge_bytes_sent_total)"
    python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if v >= int(sys.argv[2]) else "bytes sent %s < %s" % (v, sys.argv[2]))' \
        "$sent" "$EDGE_BIG_BYTES" || fail "strata_edge_bytes_sent_total [$sent] below the 64 MiB downloaded through the edge"
}

# ---- part 2: a strata edge in front of a private bucket ----

t_site_upload() {
    s3c s3 mb "s3://$SITE_BUCKET"
    s3c s3 cp --no-progress --content-type text/html "$SITE/index.html" "s3://$SITE_BUCKET/index.html"
    s3c s3 cp --no-progress --content-type text/css "$SITE/css/site.css" "s3://$SITE_BUCKET/css/site.css"
    s3c s3 cp --no-progress --content-type application/octet-stream "$SITE/media/blob.bin" "s3://$SITE_BUCKET/media/blob.bin"
    s3c s3 ls --recursive "s3://$SITE_BUCKET/"
}

t_oac_redirect() {
    local r
    r="$(get redirect --resolve "$WWW_HOST:$E_HTTP_PORT:127.0.0.1" "http://$WWW_HOST:$E_HTTP_PORT/css/site.css?v=3")"
    show redirect
    expect_eq "plain HTTP status" "$r" "301 1.1"
    expect_eq "Location" "$(hdr redirect location)" "https://$WWW_HOST:$E_TLS_PORT/css/site.css?v=3"
    expect_eq "x-cache" "$(hdr redirect x-cache)" "Redirect from strata"
}

t_oac_h2_miss_hit() {
    expect_get idx1 /index.html 200 Miss "$SITE/index.html"
    expect_eq "content-type" "$(hdr idx1 content-type)" text/html
    [ -n "$(hdr idx1 via)" ] || fail "no via header"
    expect_get idx2 /index.html 200 Hit "$SITE/index.html"
    [ -n "$(hdr idx2 age)" ] || fail "no age header on a hit"
    expect_get css1 /css/site.css 200 Miss "$SITE/css/site.css"
    expect_get css2 /css/site.css 200 Hit "$SITE/css/site.css"
    expect_get blob1 /media/blob.bin 200 Miss "$SITE/media/blob.bin"
    expect_get blob2 /media/blob.bin 200 Hit "$SITE/media/blob.bin"
    # the certificate was the generated self-signed one, chosen for www.example.test
    grep -F 'SSL certificate verify ok' "$WORK/blob2.err" >/dev/null || fail "curl did not verify the certificate"
}

t_oac_http11() {
    local r
    r="$(www h11 /index.html --http1.1)"
    show h11
    expect_eq "status and HTTP version" "$r" "200 1.1"
    expect_eq "x-cache" "$(hdr h11 x-cache)" "Hit from strata"
    same_file "$WORK/h11.body" "$SITE/index.html"
}

t_oac_tls_versions() {
    local r v
    for v in 1.2 1.3; do
        if [ "$v" = 1.2 ]; then
            r="$(www "tls$v" /css/site.css --tlsv1.2 --tls-max 1.2)"
        else
            r="$(www "tls$v" /css/site.css --tlsv1.3)"
        fi
        grep -E '^\* SSL connection using' "$WORK/tls$v.err"
        expect_eq "TLS $v: status and HTTP version" "$r" "200 2"
        grep -E "^\* SSL connection using TLSv$v " "$WORK/tls$v.err" >/dev/null || fail "TLS $v was not negotiated"
        same_file "$WORK/tls$v.body" "$SITE/css/site.css"
    done
}

t_oac_bucket_private() {
    local r k
    for k in index.html media/blob.bin; do
        r="$(get "anon-s3" "$ENDPOINT/$SITE_BUCKET/$k")"
        cat "$WORK/anon-s3.body"
        echo
        expect_eq "anonymous GET of $k at the S3 API" "$r" "403 1.1"
    done
}

t_oac_range_conditional() {
    local r etag
    r="$(www range /media/blob.bin -r 0-99)"
    show range
    expect_eq "Range 0-99 status" "$r" "206 2"
    expect_eq "Content-Range" "$(hdr range content-range)" "bytes 0-99/$((5 * 1024 * 1024))"
    expect_eq "bytes received" "$(size_of "$WORK/range.body")" 100
    slice_of "$SITE/media/blob.bin" 0 100 "$WORK/range.expected"
    same_file "$WORK/range.body" "$WORK/range.expected"
    expect_eq "x-cache of the range" "$(hdr range x-cache)" "Hit from strata"
    r="$(www range2 /media/blob.bin -r 5000000-5000099)"
    expect_eq "Range 5000000-5000099 status" "$r" "206 2"
    slice_of "$SITE/media/blob.bin" 5000000 100 "$WORK/range2.expected"
    same_file "$WORK/range2.body" "$WORK/range2.expected"
    r="$(www range416 /media/blob.bin -r 9000000-9000099)"
    show range416
    expect_eq "unsatisfiable range status" "$r" "416 2"
    etag="$(hdr blob2 etag)"
    [ -n "$etag" ] || fail "no ETag on the earlier hit"
    r="$(www inm /media/blob.bin -H "If-None-Match: $etag")"
    show inm
    expect_eq "If-None-Match with the ETag" "$r" "304 2"
    expect_eq "304 body bytes" "$(size_of "$WORK/inm.body" 2>/dev/null || echo 0)" 0
    r="$(www inm2 /media/blob.bin -H 'If-None-Match: "0123456789abcdef0123456789abcdef"')"
    expect_eq "If-None-Match with another ETag" "$r" "200 2"
    same_file "$WORK/inm2.body" "$SITE/media/blob.bin"
}

# invalidate NAME JSON_PATHS [TOKEN]: POST /invalidations for distribution site; prints the status
invalidate() {
    curl -sS --max-time 10 -o "$WORK/$1.json" -w '%{http_code}' -X POST \
        -H "Authorization: Bearer ${3:-$E_TOKEN}" -H 'Content-Type: application/json' \
        --data "{\"distribution\":\"site\",\"paths\":$2}" "$E_ADMIN/invalidations"
}

t_oac_invalidate_path() {
    printf '<!doctype html>\n<title>strata edge suite</title>\n<p>version 2 %s</p>\n' "$(rand_str 32 abcdef0123456789)" >"$WORK/index.v2"
    s3c s3 cp --no-progress --content-type text/html "$WORK/index.v2" "s3://$SITE_BUCKET/index.html"
    # still the cached copy (TTL 60 s) until invalidated
    expect_get stale /index.html 200 Hit "$SITE/index.html"
    local r
    r="$(invalidate inv1 '["/index.html"]')"
    cat "$WORK/inv1.json"
    echo
    expect_eq "invalidation status" "$r" 201
    expect_eq "invalidation Status" "$(json_get "$WORK/inv1.json" 'd.get("status", d.get("Status"))')" Completed
    expect_eq "invalidated paths" "$(json_get "$WORK/inv1.json" 'd.get("paths")')" '["/index.html"]'
    expect_get fresh1 /index.html 200 Miss "$WORK/index.v2"
    expect_get fresh2 /index.html 200 Hit "$WORK/index.v2"
    # the other cached objects were left alone
    expect_get css3 /css/site.css 200 Hit "$SITE/css/site.css"
    cp "$WORK/index.v2" "$SITE/index.html"
}

t_oac_invalidate_wildcard() {
    printf 'body { color: #%s; } /* v2 */\n' "$(rand_str 6 abcdef0123456789)" >"$WORK/site.css.v2"
    s3c s3 cp --no-progress --content-type text/css "$WORK/site.css.v2" "s3://$SITE_BUCKET/css/site.css"
    expect_get css4 /css/site.css 200 Hit "$SITE/css/site.css"
    local r
    r="$(invalidate inv2 '["/*"]')"
    cat "$WORK/inv2.json"
    echo
    expect_eq "invalidation status" "$r" 201
    expect_eq "invalidation Status" "$(json_get "$WORK/inv2.json" 'd.get("status", d.get("Status"))')" Completed
    expect_get css5 /css/site.css 200 Miss "$WORK/site.css.v2"
    expect_get idx3 /index.html 200 Miss "$SITE/index.html"
    expect_get css6 /css/site.css 200 Hit "$WORK/site.css.v2"
    cp "$WORK/site.css.v2" "$SITE/css/site.css"
}

t_oac_invalidation_auth() {
    local r
    r="$(invalidate inv-bad '["/index.html"]' "x$E_TOKEN")"
    cat "$WORK/inv-bad.json"
    echo
    expect_eq "wrong token" "$r" 401
    r="$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        --data '{"distribution":"site","paths":["/index.html"]}' "$E_ADMIN/invalidations")"
    expect_eq "no token" "$r" 401
    # nothing was invalidated
    expect_get idx4 /index.html 200 Hit "$SITE/index.html"
}

# cdn ARGS: GET https://cdn.example.test:PORT/index.html with the cdn certificate as the only CA
cdn() {
    get "$1" --cacert "$CDN_CERT" --resolve "$CDN_HOST:$E_TLS_PORT:127.0.0.1" "${@:2}" "https://$CDN_HOST:$E_TLS_PORT/index.html"
}

t_oac_sighup_sni() {
    local r reloads deadline
    # before: cdn.example.test is not configured; the edge's certificate is not the cdn one
    if r="$(cdn cdn0)"; then
        fail "cdn.example.test verified against its own certificate before the reload: $r"
    fi
    echo "before the reload: curl failed as expected: $(tail -n 1 "$WORK/cdn0.err")"
    reloads="$(grep -c 'edge configuration reloaded' "$EDGE_LOG" || true)"
    write_edge_config with-cdn
    kill -HUP "$EDGE_PID"
    deadline=$((SECONDS + 15))
    until [ "$(grep -c 'edge configuration reloaded' "$EDGE_LOG" || true)" -gt "$reloads" ]; do
        grep -E 'reload failed' "$EDGE_LOG" && fail "the edge refused the new configuration"
        [ "$SECONDS" -lt "$deadline" ] || fail "no 'edge configuration reloaded' in the edge log 15 s after SIGHUP"
        sleep 0.2
    done
    r="$(cdn cdn1)"
    show cdn1
    grep -E '^\*  subject:' "$WORK/cdn1.err"
    expect_eq "cdn.example.test with its own certificate" "$r" "200 2"
    grep -E "^\*  subject: CN ?= ?$CDN_HOST\$" "$WORK/cdn1.err" >/dev/null || fail "the served certificate is not the cdn one"
    same_file "$WORK/cdn1.body" "$SITE/index.html"
    # the first host still works with the self-signed certificate
    expect_get www-after /index.html 200 Hit "$SITE/index.html"
    grep -E '^\*  subject:' "$WORK/www-after.err"
    if grep -E "^\*  subject: CN ?= ?$CDN_HOST\$" "$WORK/www-after.err" >/dev/null; then
        fail "www.example.test got the cdn certificate"
    fi
    # same process, started once
    kill -0 "$EDGE_PID" || fail "edge process $EDGE_PID is gone"
    expect_eq "Edge: banners in the edge log (starts)" "$(grep -c '^Edge: ' "$EDGE_LOG")" 1
}

t_oac_health_metrics() {
    local r hits misses
    r="$(curl -sS -o "$WORK/health.out" -w '%{http_code}' --max-time 10 "$E_ADMIN/health")"
    expect_eq "/health" "$r" 200
    curl -sS -f --max-time 10 "$E_ADMIN/metrics" >"$WORK/metrics.txt"
    grep -E '^strata_edge_(requests_total|origin_requests_total|invalidated_entries_total|cache_entries)' "$WORK/metrics.txt"
    hits="$(metric "$WORK/metrics.txt" 'strata_edge_requests_total{result="Hit"}')"
    misses="$(metric "$WORK/metrics.txt" 'strata_edge_requests_total{result="Miss"}')"
    python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 and float(sys.argv[2]) > 0 else 1)' "$hits" "$misses" ||
        fail "Hit [$hits] and Miss [$misses] counters must both be above 0"
}

t_access_log() {
    local files f
    ls -la "$EDGE_LOGS"
    files="$(find "$EDGE_LOGS" -type f -name '*.log' | LC_ALL=C sort)"
    [ -n "$files" ] || fail "no log file in $EDGE_LOGS"
    if printf '%s\n' "$files" | grep -F '.current.log' >/dev/null; then
        fail "a .current.log file is left after SIGTERM (it should be rotated on shutdown)"
    fi
    while IFS= read -r f; do
        echo "--- $f"
        head -n 4 "$f"
        expect_eq "first line of $f" "$(head -n 1 "$f")" "#Version: 1.0"
        expect_eq "fields named in $f" "$(sed -n 2p "$f" | sed 's/^#Fields: //' | wc -w)" 33
    done <<<"$files"
    # shellcheck disable=SC2086 # file names without spaces, one a line
    python3 - $files <<'EOF'
import sys
rows = []
for path in sys.argv[1:]:
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        line = line.rstrip("\n")
        if line.startswith("#"):
            continue
        f = line.split("\t")
        if len(f) != 33:
            sys.exit("%s:%d: %d fields, expected 33: %r" % (path, n, len(f), line))
        rows.append(f)
results = sorted(set(r[13] for r in rows))
print("records: %d, result types: %s" % (len(rows), results))
print("ssl-protocols: %s, protocol versions: %s" % (sorted(set(r[20] for r in rows)), sorted(set(r[23] for r in rows))))
for want in ("Hit", "Miss", "Redirect"):
    if want not in results:
        sys.exit("no %s record" % want)
# x-host-header is the viewer's Host header: with the port, as curl sends it for a non-default one
hosts = set(r[15].rsplit(":", 1)[0] for r in rows)
if not {"www.example.test", "cdn.example.test"} <= hosts:
    sys.exit("x-host-header: www.example.test and cdn.example.test should both appear: %r" % hosts)
if not any(r[20] == "TLSv1.2" for r in rows) or not any(r[20] == "TLSv1.3" for r in rows):
    sys.exit("ssl-protocol: TLSv1.2 and TLSv1.3 should both appear")
if not any(r[23] == "HTTP/2.0" for r in rows):
    sys.exit("cs-protocol-version: no HTTP/2.0 record")
EOF
}

step serve-edge-answers-anonymous t_serve_edge_answers
step website-aws-cli-sync-then-curl-endpoint-and-edge-https t_website
step edge-aws-s3-mb t_mb
step edge-aws-s3-cp-small-up-down t_cp_small
step edge-aws-s3-cp-64MiB-multipart-up-down-md5 t_cp_big
step edge-aws-s3-ls t_ls
step edge-rclone-copy-and-check t_rclone_copy_check
step edge-aws-s3-rm-recursive t_rm
step edge-aws-s3-rb t_rb
step serve-edge-metrics-count-the-traffic t_serve_edge_counted

step oac-private-site-upload-at-s3-api t_site_upload
if main_step oac-strata-edge-start start_edge; then
    step oac-http-redirects-to-https t_oac_redirect
    step oac-https-h2-miss-then-hit t_oac_h2_miss_hit
    step oac-https-http1.1 t_oac_http11
    step oac-tls1.2-and-tls1.3 t_oac_tls_versions
    step oac-bucket-private-at-s3-api t_oac_bucket_private
    step oac-range-206-416-if-none-match-304 t_oac_range_conditional
    step oac-invalidate-path t_oac_invalidate_path
    step oac-invalidate-wildcard t_oac_invalidate_wildcard
    step oac-invalidation-wrong-token-401 t_oac_invalidation_auth
    step oac-sighup-adds-distribution-sni-cert t_oac_sighup_sni
    step oac-admin-health-metrics t_oac_health_metrics
    main_step oac-sigterm-graceful-exit stop_edge
    step oac-access-log-cloudfront-format t_access_log
fi

if [ "$FAILED" -gt 0 ] && [ -f "$EDGE_LOG" ]; then
    echo "---- last lines of the edge log ($EDGE_LOG):"
    tail -n 20 "$EDGE_LOG" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    /'
fi
summary
