#!/usr/bin/env bash
# Client-compatibility suite for static website hosting (issue #6), the way AWS's
# guides publish a site:
#   aws s3 mb, aws s3api delete-public-access-block, aws s3api put-bucket-policy
#   (public read), aws s3 website (index and error documents), aws s3api
#   put-bucket-cors, aws s3 sync of a small site (HTML, CSS, JS, PNG, a sub-directory);
# then curl against the website endpoint (bucket chosen by the Host header: index
# document, dir -> dir/ redirect, error document with 404, HEAD, 405 for PUT) and
# against serve's edge over HTTPS (--resolve the site's name to 127.0.0.1; Miss then Hit),
# a CORS preflight on the REST endpoint, and finally a headless Chromium (browser.py)
# that opens the site through the edge over HTTPS and checks that it rendered (title,
# computed style, image, a CORS fetch() to the REST endpoint), saving a screenshot to
# target/client-tests/website-screenshot.png.
# Ends with the line `N passed, M failed`; exit status non-zero on any failure.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

for tool in aws curl python3; do
    command -v "$tool" >/dev/null 2>&1 || { echo "$tool not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }
done

require_server

SITE="www.example.test"          # the bucket is named like the site's hostname
SCREENSHOT="$CLIENT_LOG_DIR/website-screenshot.png"
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION="$REGION"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
export BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true # see aws.sh (botocore issue 3755)
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=1
s3() { aws --endpoint-url "$ENDPOINT" s3 "$@"; }
s3api() { aws --endpoint-url "$ENDPOINT" s3api "$@"; }

# The website endpoint and the edge print their addresses at start:
#   `Website:     http://A` and `Edge:        http://A  https://B  (admin http://C)`.
addresses() {
    local deadline=$((SECONDS + READY_TIMEOUT))
    while [ "$SECONDS" -lt "$deadline" ]; do
        WEBSITE_ADDR="$(sed -n 's|^Website: *http://\([^ ]*\).*|\1|p' "$SERVER_LOG" | head -n 1)"
        EDGE_TLS_ADDR="$(sed -n 's|^Edge: *http://[^ ]* *https://\([^ ]*\).*|\1|p' "$SERVER_LOG" | head -n 1)"
        if [ -n "$WEBSITE_ADDR" ] && [ -n "$EDGE_TLS_ADDR" ]; then
            echo "$WEBSITE_ADDR $EDGE_TLS_ADDR" >"$WORK/addresses"
            return 0
        fi
        sleep 0.2
    done
    echo "no Website: / Edge: lines in $SERVER_LOG"
    return 1
}
setup_or_die addresses addresses
read -r WEBSITE_ADDR EDGE_TLS_ADDR <"$WORK/addresses"
EDGE_PORT="${EDGE_TLS_ADDR##*:}"
SITE_URL="https://$SITE:$EDGE_PORT"

# The site: a page with a stylesheet, a script, an image and a sub-directory.
make_site() {
    mkdir -p "$WORK/site/docs"
    cat >"$WORK/site/index.html" <<EOF
<!doctype html>
<html><head><meta charset="utf-8"><title>Strata static site</title>
<link rel="stylesheet" href="/style.css"></head>
<body data-rest="$ENDPOINT/$SITE/hello.txt">
<h1>Hello from Strata</h1>
<img id="logo" src="/logo.png" alt="logo">
<p id="fetched">pending</p>
<script src="/app.js"></script>
</body></html>
EOF
    printf 'h1 { color: rgb(12, 34, 56); font-family: sans-serif; }\n' >"$WORK/site/style.css"
    cat >"$WORK/site/app.js" <<'EOF'
fetch(document.body.dataset.rest)
  .then(r => r.ok ? r.text() : Promise.reject(r.status))
  .then(t => { document.getElementById('fetched').textContent = t.trim(); })
  .catch(e => { document.getElementById('fetched').textContent = 'fetch failed: ' + e; });
EOF
    printf 'hello from the bucket\n' >"$WORK/site/hello.txt"
    printf '<!doctype html><title>Not here</title><p>custom error page</p>\n' >"$WORK/site/error.html"
    printf '<!doctype html><title>Docs</title><p>docs index</p>\n' >"$WORK/site/docs/index.html"
    python3 - "$WORK/site/logo.png" <<'EOF'
import struct, sys, zlib
w, h = 64, 32
rows = b"".join(b"\x00" + b"".join(bytes((x * 4 % 256, y * 8 % 256, 128)) for x in range(w)) for y in range(h))
def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) \
    + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(sys.argv[1], "wb").write(png)
EOF
}
setup_or_die make-site make_site

publish() {
    s3 mb "s3://$SITE"
    # New buckets block public policies (as AWS since 2023): lift that deliberately.
    s3api delete-public-access-block --bucket "$SITE"
    # s3:ListBucket too: as on AWS, without it a missing page is 403 (with the error document), not 404.
    cat >"$WORK/policy.json" <<EOF
{"Version": "2012-10-17", "Statement": [{"Sid": "PublicRead", "Effect": "Allow", "Principal": "*",
  "Action": "s3:GetObject", "Resource": "arn:aws:s3:::$SITE/*"},
  {"Sid": "PublicList", "Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
  "Resource": "arn:aws:s3:::$SITE"}]}
EOF
    s3api put-bucket-policy --bucket "$SITE" --policy "file://$WORK/policy.json"
    s3api get-bucket-policy --bucket "$SITE" --query Policy --output text | grep PublicRead >/dev/null  # not -q: an early exit breaks aws-cli's pipe
    s3 website "s3://$SITE" --index-document index.html --error-document error.html
    s3api get-bucket-website --bucket "$SITE" >"$WORK/website.json"
    expect_eq "index suffix" "$(json_get "$WORK/website.json" 'd["IndexDocument"]["Suffix"]')" index.html
    cat >"$WORK/cors.json" <<EOF
{"CORSRules": [{"AllowedOrigins": ["$SITE_URL"], "AllowedMethods": ["GET", "HEAD"],
  "AllowedHeaders": ["*"], "ExposeHeaders": ["ETag"], "MaxAgeSeconds": 600}]}
EOF
    s3api put-bucket-cors --bucket "$SITE" --cors-configuration "file://$WORK/cors.json"
    s3 sync "$WORK/site" "s3://$SITE"
    s3 ls "s3://$SITE/docs/" | grep index.html >/dev/null
}
step publish-site publish

# curl_site URL [CURL ARGS...]: GET through the website endpoint with the site's Host header.
website_get() {
    local path="$1"
    shift
    curl -sS -H "Host: $SITE" "$@" "http://$WEBSITE_ADDR$path"
}

website_pages() {
    website_get / -o "$WORK/index.out" -D "$WORK/index.h"
    grep -q '^HTTP/1.1 200' "$WORK/index.h" || fail "/ not 200: $(head -n 1 "$WORK/index.h")"
    grep -qi '^content-type: text/html' "$WORK/index.h" || fail "index content-type"
    same_file "$WORK/index.out" "$WORK/site/index.html"
    website_get /style.css -o "$WORK/css.out" -D "$WORK/css.h"
    grep -qi '^content-type: text/css' "$WORK/css.h" || fail "css content-type: $(grep -i content-type "$WORK/css.h")"
    website_get /docs/ -o "$WORK/docs.out"
    same_file "$WORK/docs.out" "$WORK/site/docs/index.html"
    website_get /docs -o /dev/null -D "$WORK/docs.h"
    grep -q '^HTTP/1.1 302' "$WORK/docs.h" || fail "/docs not 302: $(head -n 1 "$WORK/docs.h")"
    grep -qi '^location: .*/docs/' "$WORK/docs.h" || fail "/docs location"
    website_get /missing.html -o "$WORK/missing.out" -D "$WORK/missing.h"
    grep -q '^HTTP/1.1 404' "$WORK/missing.h" || fail "missing not 404"
    same_file "$WORK/missing.out" "$WORK/site/error.html"
    website_get /logo.png -I -o /dev/null -D "$WORK/head.h"
    grep -q '^HTTP/1.1 200' "$WORK/head.h" || fail "HEAD logo"
    grep -qi '^content-length: *'"$(size_of "$WORK/site/logo.png")" "$WORK/head.h" || fail "HEAD length"
    code="$(website_get /index.html -X PUT -d x -o /dev/null -w '%{http_code}')"
    expect_eq "PUT on the website endpoint" "$code" 405
}
step website-endpoint website_pages

edge_pages() {
    local url="$SITE_URL/"
    curl -sS -k --resolve "$SITE:$EDGE_PORT:127.0.0.1" -o "$WORK/e1.out" -D "$WORK/e1.h" "$url"
    grep -q '^HTTP/[0-9.]* 200' "$WORK/e1.h" || fail "edge / not 200: $(head -n 1 "$WORK/e1.h")"
    same_file "$WORK/e1.out" "$WORK/site/index.html"
    curl -sS -k --resolve "$SITE:$EDGE_PORT:127.0.0.1" -o "$WORK/e2.out" -D "$WORK/e2.h" "$url"
    grep -qi '^x-cache: Hit from strata' "$WORK/e2.h" || fail "second GET not a hit: $(grep -i x-cache "$WORK/e2.h")"
    curl -sS -k --resolve "$SITE:$EDGE_PORT:127.0.0.1" -o "$WORK/e3.out" -D "$WORK/e3.h" "$SITE_URL/nope"
    grep -q '^HTTP/[0-9.]* 404' "$WORK/e3.h" || fail "edge 404"
    same_file "$WORK/e3.out" "$WORK/site/error.html"
}
step edge-https edge_pages

cors_preflight() {
    curl -sS -o /dev/null -D "$WORK/pf.h" -X OPTIONS \
        -H "Origin: $SITE_URL" -H "Access-Control-Request-Method: GET" \
        "$ENDPOINT/$SITE/hello.txt"
    grep -q '^HTTP/1.1 200' "$WORK/pf.h" || fail "preflight not 200: $(head -n 1 "$WORK/pf.h")"
    grep -qi "^access-control-allow-origin: $SITE_URL" "$WORK/pf.h" || fail "allow-origin"
    code="$(curl -sS -o /dev/null -w '%{http_code}' -X OPTIONS -H 'Origin: https://evil.test' \
        -H 'Access-Control-Request-Method: GET' "$ENDPOINT/$SITE/hello.txt")"
    expect_eq "preflight from another origin" "$code" 403
}
step cors-preflight cors_preflight

browser() {
    python3 "$CLIENTS_DIR/browser.py" "$SITE_URL/" "MAP $SITE 127.0.0.1" "$SCREENSHOT"
    [ -s "$SCREENSHOT" ] || fail "no screenshot"
}
step browser-renders-site browser

cleanup_site() {
    s3 rb "s3://$SITE" --force
}
step remove-site cleanup_site

summary
