#!/usr/bin/env bash
# Client-compatibility suite: drives Strata with aws-cli (s3 and s3api commands,
# path-style, SigV4) and checks every answer. Starts its own server unless
# STRATA_ENDPOINT / STRATA_ACCESS_KEY / STRATA_SECRET_KEY are given.
# Ends with the line `N passed, M failed`; exit status non-zero on any failure.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v aws >/dev/null 2>&1 || { echo "aws not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }

require_server

BUCKET="strata-aws-$(rand_str 10 abcdefghijklmnopqrstuvwxyz0123456789)"
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION="$REGION"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
# aws-cli v1 (its own botocore, up to the newest aws-cli on PyPI) sends
# `Expect: 100-continue` on zero-length PUTs too; answered at once without an interim
# 100, as S3 and Strata both answer them, that poisons the pooled connection: the next
# response on it is parsed with a stale status line, loses its headers and stalls until
# the server's idle timeout (botocore issue 3755, fixed in standalone botocore 1.43.77).
# The suite uploads an empty file, so it uses botocore's switch that sends no Expect
# header for empty bodies.
export BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true
# One attempt: a retried 5xx would hide a server bug.
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=1
PART=$((8 * 1024 * 1024))
BIG_SIZE=$((20 * 1024 * 1024))
UP="$WORK/up"
DOWN="$WORK/down"
TREE="$WORK/tree"

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
    mkdir -p "$UP" "$DOWN" || return 1
    {
        printf 'hello from the strata aws-cli suite\n'
        rand_str 2000 abcdefghijklmnopqrstuvwxyz0123456789
    } >"$UP/small.txt" || return 1
    make_random_file "$UP/big.bin" "$BIG_SIZE" || return 1
    make_tree "$TREE"
}

setup_or_die aws-config write_aws_config
setup_or_die files prepare_files
# Best effort removal of the bucket when the server is not ours (ours is thrown away).
if [ "$EXTERNAL_SERVER" = 1 ]; then
    CLEANUP_CMDS="awsc s3 rb --force s3://$BUCKET"
fi

awsc() {
    aws --endpoint-url "$ENDPOINT" --cli-connect-timeout 10 --cli-read-timeout 120 "$@"
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

t_mb() {
    local out
    out="$(awsc s3 mb "s3://$BUCKET" 2>&1)" || fail "s3 mb: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -F "make_bucket: $BUCKET" >/dev/null || fail "no make_bucket line"
    awsc s3api head-bucket --bucket "$BUCKET" || fail "head-bucket after mb"
}

t_bad_secret_refused() {
    expect_http_error SignatureDoesNotMatch "wrong secret" \
        env AWS_SECRET_ACCESS_KEY="x${SECRET_KEY}" aws --endpoint-url "$ENDPOINT" s3api list-objects-v2 --bucket "$BUCKET"
}

t_cp_up_small() {
    awsc s3 cp --no-progress "$UP/small.txt" "s3://$BUCKET/small.txt"
}

t_cp_up_big() {
    # 20 MiB > multipart_threshold: a 3-part multipart upload (8 + 8 + 4 MiB)
    awsc s3 cp --no-progress "$UP/big.bin" "s3://$BUCKET/big.bin"
}

t_cp_down_small() {
    rm -f "$DOWN/small.txt"
    awsc s3 cp --no-progress "s3://$BUCKET/small.txt" "$DOWN/small.txt"
    expect_eq "sha256 small" "$(sha256_of "$DOWN/small.txt")" "$(sha256_of "$UP/small.txt")"
}

t_cp_down_big() {
    rm -f "$DOWN/big.bin"
    awsc s3 cp --no-progress "s3://$BUCKET/big.bin" "$DOWN/big.bin"
    expect_eq "sha256 big" "$(sha256_of "$DOWN/big.bin")" "$(sha256_of "$UP/big.bin")"
}

t_ls() {
    local out
    out="$(awsc s3 ls "s3://$BUCKET/")"
    echo "$out"
    expect_eq "listed size of small.txt" "$(printf '%s\n' "$out" | awk '$4 == "small.txt" {print $3}')" "$(size_of "$UP/small.txt")"
    expect_eq "listed size of big.bin" "$(printf '%s\n' "$out" | awk '$4 == "big.bin" {print $3}')" "$BIG_SIZE"
    expect_eq "number of listed objects" "$(printf '%s\n' "$out" | grep -c .)" 2
    out="$(awsc s3 ls)"
    echo "$out"
    printf '%s\n' "$out" | awk '{print $3}' | grep -Fx "$BUCKET" >/dev/null || fail "bucket not in s3 ls"
}

# remote_keys PREFIX: sorted keys under PREFIX, relative to it (list-objects-v2, all pages)
remote_keys() {
    awsc s3api list-objects-v2 --bucket "$BUCKET" --prefix "$1" --output json >"$WORK/list.json"
    python3 -c '
import json, sys
d = json.load(open(sys.argv[1], encoding="utf-8")) if open(sys.argv[1]).read().strip() else {}
p = sys.argv[2]
keys = sorted((o["Key"][len(p):] for o in d.get("Contents", [])), key=lambda k: k.encode())
for k in keys:
    print(k)
' "$WORK/list.json" "$1"
}

t_sync_up() {
    local out
    out="$(awsc s3 sync --no-progress "$TREE" "s3://$BUCKET/tree/")"
    echo "$out"
    expect_eq "upload lines" "$(printf '%s\n' "$out" | grep -c '^upload:' || true)" 7
    remote_keys tree/ >"$WORK/remote.list"
    diff -u "$TREE.list" "$WORK/remote.list" || fail "remote keys differ from the local tree"
}

# ListObjectsV2 and ListObjects (v1) two keys a page: continuation tokens / markers
# must walk the same keys as one full page, each exactly once, in order.
t_list_paged() {
    awsc s3api list-objects-v2 --bucket "$BUCKET" --prefix tree/ --output json >"$WORK/full.json"
    awsc s3api list-objects-v2 --bucket "$BUCKET" --prefix tree/ --page-size 2 --output json >"$WORK/paged2.json"
    awsc s3api list-objects --bucket "$BUCKET" --prefix tree/ --page-size 2 --output json >"$WORK/paged1.json"
    local full
    full="$(json_get "$WORK/full.json" '[o["Key"] for o in d["Contents"]]')"
    echo "full: $full"
    expect_eq "number of keys" "$(json_get "$WORK/full.json" 'len(d["Contents"])')" 7
    expect_eq "keys in order" "$(json_get "$WORK/full.json" '[o["Key"] for o in d["Contents"]] == sorted((o["Key"] for o in d["Contents"]), key=lambda k: k.encode())')" True
    expect_eq "v2 paged keys" "$(json_get "$WORK/paged2.json" '[o["Key"] for o in d["Contents"]]')" "$full"
    expect_eq "v1 paged keys" "$(json_get "$WORK/paged1.json" '[o["Key"] for o in d["Contents"]]')" "$full"
    # delimiter: the first level under tree/ is 2 files and 2 common prefixes
    awsc s3api list-objects-v2 --bucket "$BUCKET" --prefix tree/ --delimiter / --output json >"$WORK/delim.json"
    cat "$WORK/delim.json"
    expect_eq "delimited keys" "$(json_get "$WORK/delim.json" '[o["Key"] for o in d["Contents"]]')" '["tree/a.txt", "tree/b.txt"]'
    expect_eq "common prefixes" "$(json_get "$WORK/delim.json" '[p["Prefix"] for p in d["CommonPrefixes"]]')" '["tree/sub/", "tree/with space/"]'
}

t_resync_up_noop() {
    local out
    out="$(awsc s3 sync --no-progress "$TREE" "s3://$BUCKET/tree/")"
    echo "[$out]"
    [ -z "$out" ] || fail "re-sync copied something"
}

t_sync_down() {
    rm -rf "$WORK/tree-down"
    awsc s3 sync --no-progress "s3://$BUCKET/tree/" "$WORK/tree-down"
    diff -r "$TREE" "$WORK/tree-down" || fail "downloaded tree differs"
    local out
    out="$(awsc s3 sync --no-progress "s3://$BUCKET/tree/" "$WORK/tree-down")"
    echo "[$out]"
    [ -z "$out" ] || fail "re-sync down copied something"
}

t_rm_recursive() {
    local out
    out="$(awsc s3 rm --recursive "s3://$BUCKET/tree/")"
    echo "$out"
    expect_eq "delete lines" "$(printf '%s\n' "$out" | grep -c '^delete:' || true)" 7
    remote_keys tree/ >"$WORK/left.list"
    expect_eq "keys left under tree/" "$(wc -l <"$WORK/left.list")" 0
    awsc s3api head-object --bucket "$BUCKET" --key small.txt >/dev/null || fail "small.txt gone too"
}

t_head_object() {
    awsc s3api head-object --bucket "$BUCKET" --key small.txt --output json >"$WORK/head.json"
    cat "$WORK/head.json"
    expect_eq "ContentLength small" "$(json_get "$WORK/head.json" 'd["ContentLength"]')" "$(size_of "$UP/small.txt")"
    expect_eq "ETag small" "$(json_get "$WORK/head.json" 'd["ETag"]')" "\"$(md5_of "$UP/small.txt")\""
    awsc s3api head-object --bucket "$BUCKET" --key big.bin --output json >"$WORK/head.json"
    cat "$WORK/head.json"
    expect_eq "ContentLength big" "$(json_get "$WORK/head.json" 'd["ContentLength"]')" "$BIG_SIZE"
    expect_eq "ETag big (multipart)" "$(json_get "$WORK/head.json" 'd["ETag"]')" "$(multipart_etag "$UP/big.bin" "$PART")"
    expect_http_error '(404)' "head-object of a missing key" \
        awsc s3api head-object --bucket "$BUCKET" --key no-such-key
}

# aws-cli v1 (botocore) presigns with Signature Version 2 in us-east-1 unless the config asks for s3v4, and aws-cli
# v2 with SigV4. curl must fetch the object with a URL of either kind, and be refused once it names another key
# or has lapsed.
presign_checks() {
    local what="$1" kind="$2" url code
    shift 2
    url="$("$@" s3 presign "s3://$BUCKET/small.txt" --expires-in 300)" || return 1
    echo "$what: $url"
    case "$url" in *"$kind="*) ;; *) fail "$what: expected a URL with $kind" ;; esac
    curl -sS -f -o "$WORK/presigned.out" "$url" || { fail "$what: presigned GET failed"; return 1; }
    expect_eq "$what: presigned GET body" "$(md5_of "$WORK/presigned.out")" "$(md5_of "$UP/small.txt")"
    code="$(curl -s -o /dev/null -w '%{http_code}' "${url/small.txt/other.txt}")"
    expect_eq "$what: the URL with another key" "$code" 403
    url="$("$@" s3 presign "s3://$BUCKET/small.txt" --expires-in 1)" || return 1
    sleep 2
    code="$(curl -s -o /dev/null -w '%{http_code}' "$url")"
    expect_eq "$what: the URL after it lapsed" "$code" 403
}

t_presign() {
    local default_kind=X-Amz-Signature
    # aws-cli v1 (botocore) presigns with Version 2 by default in us-east-1; v2 with SigV4.
    case "$(aws --version 2>&1)" in aws-cli/1.*) default_kind=AWSAccessKeyId ;; esac
    presign_checks "default signature" "$default_kind" awsc || return 1
    sed 's/^s3 =$/s3 =\n    signature_version = s3v4/' "$AWS_CONFIG_FILE" >"$WORK/aws-config-v4" || return 1
    presign_checks "s3v4" X-Amz-Signature env AWS_CONFIG_FILE="$WORK/aws-config-v4" \
        aws --endpoint-url "$ENDPOINT" --cli-connect-timeout 10 --cli-read-timeout 120
}

t_get_range() {
    rm -f "$WORK/range.out"
    awsc s3api get-object --bucket "$BUCKET" --key big.bin --range bytes=100-199 "$WORK/range.out" --output json >"$WORK/range.json"
    cat "$WORK/range.json"
    expect_eq "bytes received" "$(size_of "$WORK/range.out")" 100
    expect_eq "ContentLength" "$(json_get "$WORK/range.json" 'd["ContentLength"]')" 100
    expect_eq "ContentRange" "$(json_get "$WORK/range.json" 'd["ContentRange"]')" "bytes 100-199/$BIG_SIZE"
    slice_of "$UP/big.bin" 100 100 "$WORK/range.expected"
    same_file "$WORK/range.out" "$WORK/range.expected"
}

t_copy_object() {
    awsc s3api copy-object --bucket "$BUCKET" --key copy/of-small.txt --copy-source "$BUCKET/small.txt" --output json >"$WORK/copy.json"
    cat "$WORK/copy.json"
    expect_eq "copy ETag" "$(json_get "$WORK/copy.json" 'd["CopyObjectResult"]["ETag"]')" "\"$(md5_of "$UP/small.txt")\""
    rm -f "$WORK/copy.out"
    awsc s3api get-object --bucket "$BUCKET" --key copy/of-small.txt "$WORK/copy.out" >/dev/null
    same_file "$WORK/copy.out" "$UP/small.txt"
}

t_delete_objects() {
    awsc s3api put-object --bucket "$BUCKET" --key del/one.txt --body "$UP/small.txt" >/dev/null
    awsc s3api put-object --bucket "$BUCKET" --key del/two.txt --body "$UP/small.txt" >/dev/null
    awsc s3api delete-objects --bucket "$BUCKET" --output json \
        --delete '{"Objects":[{"Key":"del/one.txt"},{"Key":"del/two.txt"}],"Quiet":false}' >"$WORK/del.json"
    cat "$WORK/del.json"
    expect_eq "Deleted keys" "$(json_get "$WORK/del.json" 'sorted(o["Key"] for o in d.get("Deleted", []))')" '["del/one.txt", "del/two.txt"]'
    expect_eq "Errors" "$(json_get "$WORK/del.json" 'len(d.get("Errors", []))')" 0
    expect_http_error '(404)' "head of deleted del/one.txt" awsc s3api head-object --bucket "$BUCKET" --key del/one.txt
    expect_http_error '(404)' "head of deleted del/two.txt" awsc s3api head-object --bucket "$BUCKET" --key del/two.txt
}

t_tagging() {
    awsc s3api put-object-tagging --bucket "$BUCKET" --key small.txt \
        --tagging '{"TagSet":[{"Key":"env","Value":"test"},{"Key":"team","Value":"strata s3"}]}'
    awsc s3api get-object-tagging --bucket "$BUCKET" --key small.txt --output json >"$WORK/tags.json"
    cat "$WORK/tags.json"
    expect_eq "TagSet" "$(json_get "$WORK/tags.json" 'sorted((t["Key"], t["Value"]) for t in d["TagSet"])')" \
        '[["env", "test"], ["team", "strata s3"]]'
}

# Keys with characters that SigV4 canonicalisation and list encoding-type=url must
# get right: each goes up, is listed back exactly (v1 and v2), and reads back.
TRICKY_KEYS_JSON='["odd/plus+sign.txt", "odd/percent%41 and space.txt", "odd/amp&eq=q?hash#.txt", "odd/tilde~star*paren(1)!quote'"'"'.txt", "odd/ünï/€ 中文.txt", "odd/dot/./dotdot/../x.txt", "odd/semi;colon:comma,at@dollar$.txt"]'
t_tricky_keys() {
    python3 -c 'import json, sys; [print(k) for k in json.loads(sys.argv[1])]' "$TRICKY_KEYS_JSON" >"$WORK/tricky.list"
    local key n=0
    while IFS= read -r key; do
        n=$((n + 1))
        printf 'body of %s\n' "$key" >"$WORK/tricky.body"
        awsc s3api put-object --bucket "$BUCKET" --key "$key" --body "$WORK/tricky.body" >/dev/null || fail "put-object [$key]"
        rm -f "$WORK/tricky.out"
        awsc s3api get-object --bucket "$BUCKET" --key "$key" "$WORK/tricky.out" >/dev/null || fail "get-object [$key]"
        same_file "$WORK/tricky.out" "$WORK/tricky.body"
        echo "ok: [$key]"
    done <"$WORK/tricky.list"
    expect_eq "keys written" "$n" 7
    awsc s3api list-objects-v2 --bucket "$BUCKET" --prefix odd/ --output json >"$WORK/odd2.json"
    awsc s3api list-objects --bucket "$BUCKET" --prefix odd/ --output json >"$WORK/odd1.json"
    local want
    want="$(python3 -c 'import json, sys; print(json.dumps(sorted(json.loads(sys.argv[1]), key=lambda k: k.encode())))' "$TRICKY_KEYS_JSON")"
    expect_eq "ListObjectsV2 keys" "$(json_get "$WORK/odd2.json" '[o["Key"] for o in d.get("Contents", [])]')" "$want"
    expect_eq "ListObjects keys" "$(json_get "$WORK/odd1.json" '[o["Key"] for o in d.get("Contents", [])]')" "$want"
    awsc s3 rm --recursive "s3://$BUCKET/odd/" >/dev/null
    awsc s3api list-objects-v2 --bucket "$BUCKET" --prefix odd/ --output json >"$WORK/odd2.json"
    expect_eq "keys left under odd/" "$(json_get "$WORK/odd2.json" 'len(d.get("Contents", []))')" 0
}

# A BIG_MIB file (1 GiB by default) up and back down through aws-cli's parallel
# multipart paths (8 MB parts, multipart_threshold and multipart_chunksize of the config
# file's s3 section): the ETag must be the multipart one, the download byte-identical
# (md5). The local files are removed as soon as they are not needed (also on failure),
# the object at the end.
t_cp_huge() {
    local src="$WORK/huge.bin" dst="$WORK/huge.down" key="huge/big-${BIG_MIB}MiB.bin" sums md5 etag t0
    # expanded now, on purpose: the locals are gone when the step's shell exits
    # shellcheck disable=SC2064
    trap "rm -f -- $(printf '%q ' "$src" "$dst")" EXIT
    make_random_file "$src" "$BIG_BYTES" || fail "cannot write $BIG_MIB MiB to $src"
    sums="$(hash_big "$src" "$PART")"
    md5="${sums%% *}"
    etag="${sums#* }"
    echo "md5 $md5, expected ETag $etag"
    t0="$(now_s)"
    awsc s3 cp --no-progress "$src" "s3://$BUCKET/$key"
    log_rate "aws s3 cp up" "$BIG_BYTES" "$t0"
    rm -f -- "$src"
    awsc s3api head-object --bucket "$BUCKET" --key "$key" --output json >"$WORK/huge.json"
    cat "$WORK/huge.json"
    expect_eq "ContentLength" "$(json_get "$WORK/huge.json" 'd["ContentLength"]')" "$BIG_BYTES"
    expect_eq "ETag (multipart, 8 MiB parts)" "$(json_get "$WORK/huge.json" 'd["ETag"]')" "$etag"
    t0="$(now_s)"
    awsc s3 cp --no-progress "s3://$BUCKET/$key" "$dst"
    log_rate "aws s3 cp down" "$BIG_BYTES" "$t0"
    expect_eq "size of the download" "$(size_of "$dst")" "$BIG_BYTES"
    expect_eq "md5 of the download" "$(md5_of "$dst")" "$md5"
    rm -f -- "$dst"
    awsc s3 rm "s3://$BUCKET/$key"
}

# list_uploads FILE: list-multipart-uploads of the bucket as JSON into FILE ({} when the
# CLI prints nothing for an empty listing)
list_uploads() {
    awsc s3api list-multipart-uploads --bucket "$BUCKET" --output json >"$1"
    [ -s "$1" ] || echo '{}' >"$1"
    cat "$1"
}

# An upload created with s3api (one 5 MiB part uploaded) is listed with its key and ID
# and its part; after abort-multipart-upload it is neither listed nor usable, and no
# object appeared under its key.
t_mpu_list_abort() {
    local key="mpu/abandoned.bin" id
    awsc s3api create-multipart-upload --bucket "$BUCKET" --key "$key" --output json >"$WORK/mpu.json"
    cat "$WORK/mpu.json"
    id="$(json_get "$WORK/mpu.json" 'd["UploadId"]')"
    [ -n "$id" ] || fail "create-multipart-upload gave no UploadId"
    make_random_file "$WORK/part1.bin" $((5 * 1024 * 1024))
    awsc s3api upload-part --bucket "$BUCKET" --key "$key" --upload-id "$id" --part-number 1 \
        --body "$WORK/part1.bin" --output json >"$WORK/part.json"
    cat "$WORK/part.json"
    expect_eq "part ETag" "$(json_get "$WORK/part.json" 'd["ETag"]')" "\"$(md5_of "$WORK/part1.bin")\""
    rm -f -- "$WORK/part1.bin"
    list_uploads "$WORK/uploads.json"
    expect_eq "uploads listed" "$(json_get "$WORK/uploads.json" 'len(d.get("Uploads", []))')" 1
    expect_eq "listed key" "$(json_get "$WORK/uploads.json" 'd["Uploads"][0]["Key"]')" "$key"
    expect_eq "listed UploadId" "$(json_get "$WORK/uploads.json" 'd["Uploads"][0]["UploadId"]')" "$id"
    awsc s3api list-parts --bucket "$BUCKET" --key "$key" --upload-id "$id" --output json >"$WORK/parts.json"
    cat "$WORK/parts.json"
    expect_eq "listed parts (number, size)" "$(json_get "$WORK/parts.json" '[(p["PartNumber"], p["Size"]) for p in d["Parts"]]')" \
        "[[1, $((5 * 1024 * 1024))]]"
    awsc s3api abort-multipart-upload --bucket "$BUCKET" --key "$key" --upload-id "$id"
    list_uploads "$WORK/uploads.json"
    expect_eq "uploads listed after the abort" "$(json_get "$WORK/uploads.json" 'len(d.get("Uploads", []))')" 0
    expect_http_error NoSuchUpload "list-parts of the aborted upload" \
        awsc s3api list-parts --bucket "$BUCKET" --key "$key" --upload-id "$id"
    expect_http_error '(404)' "head-object of the aborted upload's key" \
        awsc s3api head-object --bucket "$BUCKET" --key "$key"
}

t_rb_nonempty_refused() {
    expect_http_error BucketNotEmpty "rb of a non-empty bucket" awsc s3 rb "s3://$BUCKET"
    awsc s3api head-bucket --bucket "$BUCKET" || fail "bucket gone after refused rb"
}

t_rm_all() {
    awsc s3 rm --recursive "s3://$BUCKET/"
    remote_keys "" >"$WORK/left.list"
    expect_eq "keys left" "$(wc -l <"$WORK/left.list")" 0
}

t_rb() {
    local out
    out="$(awsc s3 rb "s3://$BUCKET" 2>&1)" || fail "s3 rb: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -F "remove_bucket: $BUCKET" >/dev/null || fail "no remove_bucket line"
    expect_http_error '(404)' "head-bucket after rb" awsc s3api head-bucket --bucket "$BUCKET"
}

step s3-mb t_mb
step bad-secret-refused t_bad_secret_refused
step s3-cp-up-small t_cp_up_small
step s3-cp-up-20MiB-multipart t_cp_up_big
step s3-cp-down-small-sha256 t_cp_down_small
step s3-cp-down-20MiB-sha256 t_cp_down_big
step s3-ls t_ls
step s3-sync-up-tree t_sync_up
step s3api-list-paged-and-delimited t_list_paged
step s3-sync-up-again-copies-nothing t_resync_up_noop
step s3-sync-down-tree t_sync_down
step s3-rm-recursive-prefix t_rm_recursive
step s3api-head-object t_head_object
step s3-presign-curl t_presign
step s3api-get-object-range t_get_range
step s3api-copy-object t_copy_object
step s3api-delete-objects t_delete_objects
step s3api-object-tagging t_tagging
step s3api-tricky-key-names t_tricky_keys
step "s3-cp-${BIG_MIB}MiB-multipart-up-down-md5" t_cp_huge
step s3api-list-and-abort-multipart-upload t_mpu_list_abort
step s3-rb-nonempty-refused t_rb_nonempty_refused
step s3-rm-recursive-all t_rm_all
step s3-rb t_rb

summary
