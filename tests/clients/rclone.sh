#!/usr/bin/env bash
# Client-compatibility suite: drives Strata with rclone (S3 backend, provider Other,
# path-style, remote configured through RCLONE_CONFIG_STRATA_* env variables) and
# checks every answer. Starts its own server unless STRATA_ENDPOINT /
# STRATA_ACCESS_KEY / STRATA_SECRET_KEY are given.
# Ends with the line `N passed, M failed`; exit status non-zero on any failure.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v rclone >/dev/null 2>&1 || { echo "rclone not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }

require_server

BUCKET="strata-rclone-$(rand_str 10 abcdefghijklmnopqrstuvwxyz0123456789)"
BUCKET2="${BUCKET}-empty"
export RCLONE_CONFIG="$WORK/rclone.conf"
export RCLONE_CONFIG_STRATA_TYPE=s3
export RCLONE_CONFIG_STRATA_PROVIDER=Other
export RCLONE_CONFIG_STRATA_ENV_AUTH=false
export RCLONE_CONFIG_STRATA_ACCESS_KEY_ID="$ACCESS_KEY"
export RCLONE_CONFIG_STRATA_SECRET_ACCESS_KEY="$SECRET_KEY"
export RCLONE_CONFIG_STRATA_ENDPOINT="$ENDPOINT"
export RCLONE_CONFIG_STRATA_REGION="$REGION"
export RCLONE_CONFIG_STRATA_FORCE_PATH_STYLE=true
# 12 MiB tree/sub/large.bin goes up as a 3-part multipart upload
export RCLONE_CONFIG_STRATA_UPLOAD_CUTOFF=5Mi
export RCLONE_CONFIG_STRATA_CHUNK_SIZE=5Mi
TREE="$WORK/tree"
REMOTE="strata:$BUCKET/tree"

setup_or_die rclone-config touch "$RCLONE_CONFIG"
setup_or_die files make_tree "$TREE"
if [ "$EXTERNAL_SERVER" = 1 ]; then
    CLEANUP_CMDS="rcl purge strata:$BUCKET; rcl rmdir strata:$BUCKET2"
fi

# One try per command: a retried failure would hide a server bug.
rcl() {
    rclone --retries 1 --low-level-retries 1 --contimeout 10s --timeout 120s "$@"
}

# remote_files: sorted relative paths of the files under $REMOTE (lsjson -R)
remote_files() {
    rcl lsjson -R --files-only "$REMOTE" >"$WORK/ls.json"
    python3 -c '
import json, sys
for p in sorted((e["Path"] for e in json.load(open(sys.argv[1], encoding="utf-8"))), key=lambda k: k.encode()):
    print(p)
' "$WORK/ls.json"
}

# bucket_listed NAME: 0 when `rclone lsd strata:` lists bucket NAME
bucket_listed() {
    rcl lsd strata: >"$WORK/lsd.out"
    cat "$WORK/lsd.out"
    awk '{print $NF}' "$WORK/lsd.out" | grep -Fx "$1" >/dev/null
}

t_mkdir() {
    rcl mkdir "strata:$BUCKET"
    bucket_listed "$BUCKET" || fail "bucket not listed by lsd after mkdir"
}

t_copy_up() {
    rcl copy "$TREE" "$REMOTE"
    remote_files >"$WORK/remote.list"
    diff -u "$TREE.list" "$WORK/remote.list" || fail "remote files differ from the local tree"
}

# check_zero_differences [SRC DST]: rclone check (size + MD5) and check --download
# (bytes) of SRC (default the local tree) against DST (default $REMOTE)
check_zero_differences() {
    local src="${1:-$TREE}" dst="${2:-$REMOTE}" out
    out="$(rcl check "$src" "$dst" 2>&1)" || fail "rclone check: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -E '(^|[^0-9])0 differences found' >/dev/null || fail "check did not report 0 differences"
    # the MD5 of the multipart file must be compared too, not skipped
    if printf '%s\n' "$out" | grep -E 'hashes could not be checked|[1-9][0-9]* hashes' >/dev/null; then
        fail "some hashes were not checked"
    fi
    out="$(rcl check --download "$src" "$dst" 2>&1)" || fail "rclone check --download: $out"
    echo "$out"
    printf '%s\n' "$out" | grep -E '(^|[^0-9])0 differences found' >/dev/null || fail "check --download did not report 0 differences"
}

t_check_after_copy() {
    check_zero_differences
}

t_sync_changed() {
    # change one file (new size and content), delete another, then sync
    printf 'alpha file, changed by the rclone suite\n' >"$TREE/a.txt"
    rm -f "$TREE/sub/deeper/d.txt"
    local_list "$TREE" >"$TREE.list"
    rcl sync "$TREE" "$REMOTE"
    remote_files >"$WORK/remote.list"
    diff -u "$TREE.list" "$WORK/remote.list" || fail "remote files differ after sync"
    rcl cat "$REMOTE/a.txt" >"$WORK/a.txt"
    same_file "$WORK/a.txt" "$TREE/a.txt"
}

t_check_after_sync() {
    check_zero_differences
}

t_lsjson() {
    rcl lsjson -R --files-only "$REMOTE" >"$WORK/lsjson.json"
    cat "$WORK/lsjson.json"
    python3 - "$WORK/lsjson.json" "$TREE" <<'EOF'
import json, os, sys
entries = json.load(open(sys.argv[1], encoding="utf-8"))
root = sys.argv[2]
local = {}
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        local[os.path.relpath(p, root)] = os.path.getsize(p)
remote = {e["Path"]: e["Size"] for e in entries}
if len(entries) != len(local):
    sys.exit("lsjson counted %d files, expected %d" % (len(entries), len(local)))
if remote != local:
    sys.exit("lsjson paths/sizes differ:\n remote %r\n local  %r" % (sorted(remote.items()), sorted(local.items())))
print("lsjson: %d files, paths and sizes match" % len(entries))
EOF
}

t_cat() {
    rcl cat "$REMOTE/$UNICODE_NAME" >"$WORK/cat.out"
    same_file "$WORK/cat.out" "$TREE/$UNICODE_NAME"
    rcl cat "$REMOTE/sub/large.bin" >"$WORK/cat.out"
    same_file "$WORK/cat.out" "$TREE/sub/large.bin"
    # a ranged read of 1000 bytes across the boundary of the first two 5 MiB parts
    rcl cat --offset $((5 * 1024 * 1024 - 500)) --count 1000 "$REMOTE/sub/large.bin" >"$WORK/cat.out"
    slice_of "$TREE/sub/large.bin" $((5 * 1024 * 1024 - 500)) 1000 "$WORK/cat.expected"
    same_file "$WORK/cat.out" "$WORK/cat.expected"
}

t_delete() {
    rcl delete "$REMOTE/sub"
    remote_files >"$WORK/remote.list"
    grep -v '^sub/' "$TREE.list" >"$WORK/expected.list"
    diff -u "$WORK/expected.list" "$WORK/remote.list" || fail "unexpected files after delete of sub/"
}

# A BIG_MIB file (1 GiB by default) through rclone's parallel multipart upload (16 MiB
# chunks, 8 at once, cutoff 16 MiB), then rclone check (sizes and MD5) and check
# --download (bytes), then a downloaded copy compared by md5sum. The local files are
# removed when the step ends (also on failure), the remote copy at its end.
t_copy_huge() {
    local dir="$WORK/huge" down="$WORK/huge-down" remote="strata:$BUCKET/huge" md5 t0 chunks full
    # expanded now, on purpose: the locals are gone when the step's shell exits
    # shellcheck disable=SC2064
    trap "rm -rf -- $(printf '%q ' "$dir" "$down")" EXIT
    # only the flags below set the chunk size and cutoff (not the suite's 5 MiB remote settings)
    unset RCLONE_CONFIG_STRATA_UPLOAD_CUTOFF RCLONE_CONFIG_STRATA_CHUNK_SIZE
    mkdir -p "$dir"
    make_random_file "$dir/big.bin" "$BIG_BYTES" || fail "cannot write $BIG_MIB MiB to $dir/big.bin"
    md5="$(md5_of "$dir/big.bin")"
    t0="$(now_s)"
    rcl copy -vv --log-file "$WORK/huge-copy.log" \
        --s3-chunk-size 16M --s3-upload-concurrency 8 --s3-upload-cutoff 16M "$dir" "$remote"
    log_rate "rclone copy up" "$BIG_BYTES" "$t0"
    # it went up in 16 MiB chunks: rclone's debug log has a line for every chunk it starts
    # ("multipart upload starting chunk N size 16Mi offset ...")
    grep -E 'multipart upload starting chunk' "$WORK/huge-copy.log" >"$WORK/huge-chunks.log" || true
    head -n 2 "$WORK/huge-chunks.log"
    chunks="$(grep -c . "$WORK/huge-chunks.log" || true)"
    full="$(grep -cE 'starting chunk [0-9]+ size 16Mi ' "$WORK/huge-chunks.log" || true)"
    echo "chunks logged: $chunks, of them 16 MiB: $full"
    expect_eq "chunks in the upload log" "$chunks" $(((BIG_MIB + 15) / 16))
    expect_eq "16 MiB chunks in the upload log" "$full" $((BIG_MIB / 16))
    t0="$(now_s)"
    check_zero_differences "$dir" "$remote"
    log_rate "rclone check + check --download" "$BIG_BYTES" "$t0"
    t0="$(now_s)"
    rcl copy "$remote" "$down"
    log_rate "rclone copy down" "$BIG_BYTES" "$t0"
    expect_eq "size of the download" "$(size_of "$down/big.bin")" "$BIG_BYTES"
    expect_eq "md5 of the download" "$(md5_of "$down/big.bin")" "$md5"
    rm -rf -- "$dir" "$down"
    rcl purge "$remote"
}

t_rmdir_empty_bucket() {
    rcl mkdir "strata:$BUCKET2"
    bucket_listed "$BUCKET2" || fail "second bucket not created"
    rcl rmdir "strata:$BUCKET2"
    if bucket_listed "$BUCKET2"; then
        fail "bucket still listed after rmdir"
    fi
}

t_purge() {
    rcl purge "strata:$BUCKET"
    if bucket_listed "$BUCKET"; then
        fail "bucket still listed after purge"
    fi
}

step rclone-mkdir-bucket t_mkdir
step rclone-copy-tree-up t_copy_up
step rclone-check-after-copy t_check_after_copy
step rclone-sync-changed-and-deleted t_sync_changed
step rclone-check-after-sync t_check_after_sync
step rclone-lsjson t_lsjson
step rclone-cat t_cat
step rclone-delete t_delete
step "rclone-copy-${BIG_MIB}MiB-multipart-check-md5" t_copy_huge
step rclone-rmdir-empty-bucket t_rmdir_empty_bucket
step rclone-purge t_purge

summary
