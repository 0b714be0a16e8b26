#!/usr/bin/env bash
# Client-compatibility suite: drives Strata with s5cmd (--endpoint-url, AWS_* env
# credentials, wildcards, parallel multipart transfers) and checks every answer.
# Starts its own server unless STRATA_ENDPOINT / STRATA_ACCESS_KEY /
# STRATA_SECRET_KEY are given.
# Ends with the line `N passed, M failed`; exit status non-zero on any failure.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v s5cmd >/dev/null 2>&1 || { echo "s5cmd not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }

require_server

BUCKET="strata-s5cmd-$(rand_str 10 abcdefghijklmnopqrstuvwxyz0123456789)"
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_REGION="$REGION"
export AWS_DEFAULT_REGION="$REGION"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
BIG_SIZE=$((20 * 1024 * 1024))
UP="$WORK/up"
DOWN="$WORK/down"
TREE="$WORK/tree"

prepare_files() {
    : >"$AWS_CONFIG_FILE" || return 1
    : >"$AWS_SHARED_CREDENTIALS_FILE" || return 1
    mkdir -p "$UP" "$DOWN" || return 1
    {
        printf 'hello from the strata s5cmd suite\n'
        rand_str 3000 abcdefghijklmnopqrstuvwxyz0123456789
    } >"$UP/small.txt" || return 1
    make_random_file "$UP/big.bin" "$BIG_SIZE" || return 1
    make_tree "$TREE"
}

setup_or_die files prepare_files
if [ "$EXTERNAL_SERVER" = 1 ]; then
    CLEANUP_CMDS="s5 rm 's3://$BUCKET/*'; s5 rb 's3://$BUCKET'"
fi

# One try per request: a retried failure would hide a server bug.
s5() {
    s5cmd --endpoint-url "$ENDPOINT" --retry-count 0 "$@"
}

# remote_keys PATTERN PREFIX: sorted keys matching PATTERN, relative to PREFIX
# (s5cmd --json ls); an empty result is an empty list, not an error.
remote_keys() {
    local rc=0
    s5 --json ls "$1" >"$WORK/ls.json" 2>"$WORK/ls.err" || rc=$?
    if [ "$rc" -ne 0 ] && ! grep -F 'no object found' "$WORK/ls.err" >/dev/null; then
        cat "$WORK/ls.err" >&2
        fail "s5cmd ls $1 failed (rc=$rc)"
    fi
    python3 -c '
import json, sys
prefix = sys.argv[2]
keys = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.strip()
    if not line:
        continue
    e = json.loads(line)
    if e.get("type") == "directory":
        continue
    k = e["key"]
    if not k.startswith(prefix):
        sys.exit("key %r outside prefix %r" % (k, prefix))
    keys.append(k[len(prefix):])
for k in sorted(keys, key=lambda k: k.encode()):
    print(k)
' "$WORK/ls.json" "$2"
}

t_mb() {
    s5 mb "s3://$BUCKET"
    s5 ls >"$WORK/buckets.out"
    cat "$WORK/buckets.out"
    awk '{print $NF}' "$WORK/buckets.out" | grep -Fx "s3://$BUCKET" >/dev/null || fail "bucket not listed after mb"
}

t_cp_file() {
    s5 cp "$UP/small.txt" "s3://$BUCKET/small.txt"
    # 20 MiB in 5 MiB parts: a 4-part multipart upload with 5 parts in flight
    s5 cp --part-size 5 --concurrency 5 "$UP/big.bin" "s3://$BUCKET/big.bin"
    s5 --json ls "s3://$BUCKET/big.bin" >"$WORK/big.json"
    cat "$WORK/big.json"
    expect_eq "size of big.bin" "$(json_get "$WORK/big.json" 'd["size"]')" "$BIG_SIZE"
}

t_cp_dir_wildcard() {
    s5 cp "$TREE/*" "s3://$BUCKET/tree/"
    remote_keys "s3://$BUCKET/tree/*" "s3://$BUCKET/tree/" >"$WORK/remote.list"
    diff -u "$TREE.list" "$WORK/remote.list" || fail "uploaded keys differ from the local tree"
}

t_ls() {
    s5 ls "s3://$BUCKET/" >"$WORK/ls.out"
    cat "$WORK/ls.out"
    # top level: two objects and the tree/ prefix
    grep -E '[[:space:]]small\.txt$' "$WORK/ls.out" >/dev/null || fail "small.txt not listed"
    grep -E '[[:space:]]big\.bin$' "$WORK/ls.out" >/dev/null || fail "big.bin not listed"
    grep -E 'DIR[[:space:]]+tree/$' "$WORK/ls.out" >/dev/null || fail "tree/ prefix not listed"
    expect_eq "top-level entries" "$(grep -c . "$WORK/ls.out")" 3
    remote_keys "s3://$BUCKET/*" "s3://$BUCKET/" >"$WORK/all.list"
    { printf 'big.bin\nsmall.txt\n'; sed 's|^|tree/|' "$TREE.list"; } | LC_ALL=C sort >"$WORK/all.expected"
    LC_ALL=C sort "$WORK/all.list" | diff -u "$WORK/all.expected" - || fail "recursive listing differs"
}

t_cat() {
    s5 cat "s3://$BUCKET/small.txt" >"$WORK/cat.out"
    same_file "$WORK/cat.out" "$UP/small.txt"
    s5 cat "s3://$BUCKET/tree/$UNICODE_NAME" >"$WORK/cat.out"
    same_file "$WORK/cat.out" "$TREE/$UNICODE_NAME"
}

t_cp_down() {
    rm -rf "$DOWN"
    mkdir -p "$DOWN"
    s5 cp --part-size 5 --concurrency 5 "s3://$BUCKET/big.bin" "$DOWN/big.bin"
    expect_eq "sha256 big" "$(sha256_of "$DOWN/big.bin")" "$(sha256_of "$UP/big.bin")"
    s5 cp "s3://$BUCKET/tree/*" "$DOWN/tree/"
    diff -r "$TREE" "$DOWN/tree" || fail "downloaded tree differs"
}

t_rm_wildcard() {
    s5 rm "s3://$BUCKET/tree/*"
    remote_keys "s3://$BUCKET/tree/*" "s3://$BUCKET/tree/" >"$WORK/left.list"
    expect_eq "keys left under tree/" "$(wc -l <"$WORK/left.list")" 0
    remote_keys "s3://$BUCKET/*" "s3://$BUCKET/" >"$WORK/left.list"
    expect_eq "keys left in bucket" "$(tr '\n' ' ' <"$WORK/left.list")" "big.bin small.txt "
}

# A BIG_MIB file (1 GiB by default) up and back down with s5cmd's parallel multipart
# transfers (16 MiB parts, 8 at once): size and multipart ETag listed, the download
# byte-identical (md5). The local files are removed as soon as they are not needed
# (also on failure), the object at the end.
t_cp_huge() {
    local src="$WORK/huge.bin" dst="$WORK/huge.down" key="huge/big-${BIG_MIB}MiB.bin" sums md5 etag t0
    # expanded now, on purpose: the locals are gone when the step's shell exits
    # shellcheck disable=SC2064
    trap "rm -f -- $(printf '%q ' "$src" "$dst")" EXIT
    make_random_file "$src" "$BIG_BYTES" || fail "cannot write $BIG_MIB MiB to $src"
    sums="$(hash_big "$src" $((16 * 1024 * 1024)))"
    md5="${sums%% *}"
    etag="${sums#* }"
    echo "md5 $md5, expected ETag $etag"
    t0="$(now_s)"
    s5 cp --concurrency 8 --part-size 16 "$src" "s3://$BUCKET/$key"
    log_rate "s5cmd cp up" "$BIG_BYTES" "$t0"
    rm -f -- "$src"
    s5 --json ls "s3://$BUCKET/$key" >"$WORK/huge.json"
    cat "$WORK/huge.json"
    expect_eq "listed size" "$(json_get "$WORK/huge.json" 'd["size"]')" "$BIG_BYTES"
    expect_eq "listed ETag (multipart, 16 MiB parts)" "$(json_get "$WORK/huge.json" 'd["etag"].strip(chr(34))')" "${etag//\"/}"
    t0="$(now_s)"
    s5 cp --concurrency 8 --part-size 16 "s3://$BUCKET/$key" "$dst"
    log_rate "s5cmd cp down" "$BIG_BYTES" "$t0"
    expect_eq "size of the download" "$(size_of "$dst")" "$BIG_BYTES"
    expect_eq "md5 of the download" "$(md5_of "$dst")" "$md5"
    rm -f -- "$dst"
    s5 rm "s3://$BUCKET/$key"
}

t_rb_nonempty_refused() {
    local out
    if out="$(s5 rb "s3://$BUCKET" 2>&1)"; then
        fail "rb of a non-empty bucket succeeded: $out"
    fi
    echo "$out"
    printf '%s\n' "$out" | grep -F BucketNotEmpty >/dev/null || fail "error does not say BucketNotEmpty"
}

t_rm_rest() {
    s5 rm "s3://$BUCKET/*"
    remote_keys "s3://$BUCKET/*" "s3://$BUCKET/" >"$WORK/left.list"
    expect_eq "keys left in bucket" "$(wc -l <"$WORK/left.list")" 0
}

t_rb() {
    s5 rb "s3://$BUCKET"
    local rc=0
    s5 ls >"$WORK/buckets.out" 2>&1 || rc=$?
    cat "$WORK/buckets.out"
    # s5cmd ls fails when there is no bucket at all; any other failure is a failure
    if [ "$rc" -ne 0 ] && ! grep -F 'no bucket found' "$WORK/buckets.out" >/dev/null; then
        fail "s5cmd ls failed (rc=$rc)"
    fi
    if awk '{print $NF}' "$WORK/buckets.out" | grep -Fx "s3://$BUCKET" >/dev/null; then
        fail "bucket still listed after rb"
    fi
}

step s5cmd-mb t_mb
step s5cmd-cp-file-up t_cp_file
step s5cmd-cp-dir-wildcard-up t_cp_dir_wildcard
step s5cmd-ls t_ls
step s5cmd-cat t_cat
step s5cmd-cp-down-compare t_cp_down
step s5cmd-rm-wildcard t_rm_wildcard
step "s5cmd-cp-${BIG_MIB}MiB-multipart-up-down-md5" t_cp_huge
step s5cmd-rb-nonempty-refused t_rb_nonempty_refused
step s5cmd-rm-rest t_rm_rest
step s5cmd-rb t_rb

summary
