#!/usr/bin/env bash
# Client-compatibility suite: versioning and object lock through aws-cli s3api
# (path-style, SigV4): put/get-bucket-versioning, version IDs, list-object-versions,
# delete markers and their removal, the null version of a Suspended bucket, object lock
# configuration and default retention, put/get-object-retention, put/get-object-legal-hold,
# and delete-object --version-id refused (AccessDenied) or allowed with
# --bypass-governance-retention. Every answer is checked. Starts its own server unless
# STRATA_ENDPOINT / STRATA_ACCESS_KEY / STRATA_SECRET_KEY are given.
# Steps share state (version IDs, bodies) through files in $WORK/state, so they run in
# order and a failed step makes the later ones that need its state fail too.
# The lock bucket keeps COMPLIANCE / GOVERNANCE versions that cannot be deleted: on our
# own server its data dir goes with the suite's temp dir; on an external server it stays.
# Ends with the line `N passed, M failed`; exit status non-zero on any failure.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v aws >/dev/null 2>&1 || { echo "aws not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }

require_server

SUFFIX="$(rand_str 10 abcdefghijklmnopqrstuvwxyz0123456789)"
VBUCKET="strata-awsv-$SUFFIX"
LBUCKET="strata-awsl-$SUFFIX"
VKEY="doc/versioned.txt"
LKEY="locked/record.txt"
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION="$REGION"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
# See aws.sh: no Expect: 100-continue on empty bodies (botocore issue 3755).
export BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true
# One attempt: a retried 5xx would hide a server bug.
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=1
STATE="$WORK/state"

write_aws_config() {
    cat >"$AWS_CONFIG_FILE" <<EOF
[default]
region = $REGION
s3 =
    addressing_style = path
EOF
    : >"$AWS_SHARED_CREDENTIALS_FILE"
}

# Bodies: v1..v3 of VKEY, s1 and s2 (Suspended bucket), l1..l4 of LKEY; all distinct.
prepare_files() {
    mkdir -p "$STATE" || return 1
    local n
    for n in v1 v2 v3 s1 s2 l1 l2 l3 l4; do
        {
            printf 'body %s of the strata aws-cli versioning suite\n' "$n"
            rand_str 500 abcdefghijklmnopqrstuvwxyz0123456789
        } >"$STATE/$n.body" || return 1
    done
}

awsc() {
    aws --endpoint-url "$ENDPOINT" --cli-connect-timeout 10 --cli-read-timeout 120 "$@"
}

# Best effort removal of what can be removed when the server is not ours (ours is
# thrown away): every version and marker of the versioned bucket and the bucket; the
# GOVERNANCE versions of the lock bucket (with bypass). COMPLIANCE versions stay.
cleanup_external() {
    local b
    for b in "$VBUCKET" "$LBUCKET"; do
        awsc s3api list-object-versions --bucket "$b" --output json >"$WORK/cleanup.json" 2>/dev/null || continue
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1])) if open(sys.argv[1]).read().strip() else {}
for e in d.get("Versions", []) + d.get("DeleteMarkers", []):
    print(e["Key"] + "\t" + e["VersionId"])
' "$WORK/cleanup.json" | while IFS=$'\t' read -r k v; do
            awsc s3api delete-object --bucket "$b" --key "$k" --version-id "$v" --bypass-governance-retention >/dev/null 2>&1
        done
        awsc s3api delete-bucket --bucket "$b" >/dev/null 2>&1
    done
}

setup_or_die aws-config write_aws_config
setup_or_die files prepare_files
if [ "$EXTERNAL_SERVER" = 1 ]; then
    CLEANUP_CMDS="cleanup_external"
fi

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

# save NAME VALUE / load NAME: state shared between steps (each step is its own bash)
save() { printf '%s\n' "$2" >"$STATE/$1"; }
load() {
    [ -s "$STATE/$1" ] || fail "no saved $1 (an earlier step failed)"
    cat "$STATE/$1"
}

# versions_json BUCKET KEY FILE: list-object-versions of exactly KEY as JSON into FILE
# ({} when the CLI prints nothing), printed for the step log.
versions_json() {
    awsc s3api list-object-versions --bucket "$1" --prefix "$2" --output json >"$3"
    [ -s "$3" ] || echo '{}' >"$3"
    cat "$3"
}

# expect_real_id WHAT ID: ID is a version ID of a versioning-enabled bucket (not empty, not null)
expect_real_id() {
    case "$2" in
    "" | null | None) fail "$1: no real VersionId [$2]" ;;
    esac
}

# put_version BUCKET KEY BODY_FILE: put-object, prints the VersionId of the answer
put_version() {
    awsc s3api put-object --bucket "$1" --key "$2" --body "$3" --output json >"$WORK/put.json"
    cat "$WORK/put.json" >&2
    json_get "$WORK/put.json" 'd.get("VersionId", "")'
}

# get_to BUCKET KEY OUT [VERSION]: get-object into OUT, the answer's JSON in OUT.json
get_to() {
    rm -f -- "$3"
    if [ -n "${4:-}" ]; then
        awsc s3api get-object --bucket "$1" --key "$2" --version-id "$4" "$3" --output json >"$3.json"
    else
        awsc s3api get-object --bucket "$1" --key "$2" "$3" --output json >"$3.json"
    fi
    cat "$3.json"
}

# epoch_of ISO8601: seconds since the epoch (whole)
epoch_of() {
    python3 -c 'import datetime, sys; print(int(datetime.datetime.fromisoformat(sys.argv[1].replace("Z", "+00:00")).timestamp()))' "$1"
}

# iso_in SECONDS: an ISO 8601 UTC date SECONDS from now, whole seconds
iso_in() {
    python3 -c 'import datetime, sys; t = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) + datetime.timedelta(seconds=int(sys.argv[1])); print(t.strftime("%Y-%m-%dT%H:%M:%SZ"))' "$1"
}

# expect_near WHAT ACTUAL_EPOCH EXPECTED_EPOCH SLACK
expect_near() {
    local diff=$(($2 - $3))
    [ "${diff#-}" -le "$4" ] || fail "$1: got $2, expected $3 (±$4 s), off by $diff s"
}

# expect_version_ids BUCKET KEY WHAT IDS_JSON: the Versions of KEY (newest first) are
# IDS_JSON, only the first IsLatest (when there is no delete marker on top).
expect_version_ids() {
    versions_json "$1" "$2" "$WORK/lv.json"
    expect_eq "$3: version ids" "$(json_get "$WORK/lv.json" '[v["VersionId"] for v in d.get("Versions", [])]')" "$4"
    expect_eq "$3: keys" "$(json_get "$WORK/lv.json" 'sorted(set(v["Key"] for v in d.get("Versions", [])))')" "[\"$2\"]"
    expect_eq "$3: delete markers" "$(json_get "$WORK/lv.json" 'len(d.get("DeleteMarkers", []))')" 0
    expect_eq "$3: IsLatest" "$(json_get "$WORK/lv.json" '[v["IsLatest"] for v in d.get("Versions", [])]')" \
        "$(python3 -c 'import json, sys; n = len(json.loads(sys.argv[1])); print(json.dumps([i == 0 for i in range(n)]))' "$4")"
}

# ---- versioning -------------------------------------------------------------------

t_create_bucket() {
    awsc s3api create-bucket --bucket "$VBUCKET" --output json
    awsc s3api head-bucket --bucket "$VBUCKET" || fail "head-bucket after create-bucket"
    local out
    out="$(awsc s3api get-bucket-versioning --bucket "$VBUCKET" --output json)"
    echo "versioning of a new bucket: [$out]"
    expect_eq "Status of a new bucket" \
        "$(printf '%s' "$out" | python3 -c 'import json, sys; s = sys.stdin.read().strip(); print(json.loads(s).get("Status", "unset") if s else "unset")')" unset
}

t_versioning_enable() {
    awsc s3api put-bucket-versioning --bucket "$VBUCKET" --versioning-configuration Status=Enabled
    expect_eq "get-bucket-versioning Status" \
        "$(awsc s3api get-bucket-versioning --bucket "$VBUCKET" --query Status --output text)" Enabled
}

t_three_versions() {
    local n id ids=()
    for n in v1 v2 v3; do
        id="$(put_version "$VBUCKET" "$VKEY" "$STATE/$n.body")"
        echo "$n: VersionId [$id]"
        expect_real_id "$n" "$id"
        save "$n.id" "$id"
        ids+=("$id")
    done
    expect_eq "distinct VersionIds" "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" 3
    local want
    want="$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "${ids[2]}" "${ids[1]}" "${ids[0]}")"
    expect_version_ids "$VBUCKET" "$VKEY" "list-object-versions" "$want"
    expect_eq "ETags newest first" "$(json_get "$WORK/lv.json" '[v["ETag"] for v in d["Versions"]]')" \
        "[\"\\\"$(md5_of "$STATE/v3.body")\\\"\", \"\\\"$(md5_of "$STATE/v2.body")\\\"\", \"\\\"$(md5_of "$STATE/v1.body")\\\"\"]"
    expect_eq "Sizes newest first" "$(json_get "$WORK/lv.json" '[v["Size"] for v in d["Versions"]]')" \
        "[$(size_of "$STATE/v3.body"), $(size_of "$STATE/v2.body"), $(size_of "$STATE/v1.body")]"
    # the current object is the last upload and says so
    get_to "$VBUCKET" "$VKEY" "$WORK/cur.out"
    expect_eq "sha256 of the current object" "$(sha256_of "$WORK/cur.out")" "$(sha256_of "$STATE/v3.body")"
    expect_eq "VersionId of the current object" "$(json_get "$WORK/cur.out.json" 'd["VersionId"]')" "${ids[2]}"
}

t_delete_marker_and_restore() {
    local v1 v2 v3 marker
    v1="$(load v1.id)"
    v2="$(load v2.id)"
    v3="$(load v3.id)"
    awsc s3api delete-object --bucket "$VBUCKET" --key "$VKEY" --output json >"$WORK/del.json"
    cat "$WORK/del.json"
    expect_eq "DeleteMarker" "$(json_get "$WORK/del.json" 'd.get("DeleteMarker")')" True
    marker="$(json_get "$WORK/del.json" 'd.get("VersionId", "")')"
    expect_real_id "delete marker" "$marker"
    for v in "$v1" "$v2" "$v3"; do
        [ "$marker" != "$v" ] || fail "marker VersionId [$marker] equals an object version's"
    done
    expect_http_error '(404)' "head-object under a delete marker" \
        awsc s3api head-object --bucket "$VBUCKET" --key "$VKEY"
    expect_http_error NoSuchKey "get-object under a delete marker" \
        awsc s3api get-object --bucket "$VBUCKET" --key "$VKEY" "$WORK/none.out"
    expect_http_error MethodNotAllowed "get-object of the delete marker's version" \
        awsc s3api get-object --bucket "$VBUCKET" --key "$VKEY" --version-id "$marker" "$WORK/none.out"
    # the key is gone from list-objects-v2 but all three versions and the marker remain
    awsc s3api list-objects-v2 --bucket "$VBUCKET" --prefix "$VKEY" --output json >"$WORK/l2.json"
    [ -s "$WORK/l2.json" ] || echo '{}' >"$WORK/l2.json"
    expect_eq "list-objects-v2 under a marker" "$(json_get "$WORK/l2.json" 'len(d.get("Contents", []))')" 0
    versions_json "$VBUCKET" "$VKEY" "$WORK/lv.json"
    expect_eq "DeleteMarkers (id, IsLatest, Key)" \
        "$(json_get "$WORK/lv.json" '[(m["VersionId"], m["IsLatest"], m["Key"]) for m in d.get("DeleteMarkers", [])]')" \
        "[[\"$marker\", true, \"$VKEY\"]]"
    expect_eq "Versions under the marker" "$(json_get "$WORK/lv.json" '[(v["VersionId"], v["IsLatest"]) for v in d.get("Versions", [])]')" \
        "[[\"$v3\", false], [\"$v2\", false], [\"$v1\", false]]"
    # removing the marker by its version ID brings v3 back
    awsc s3api delete-object --bucket "$VBUCKET" --key "$VKEY" --version-id "$marker" --output json >"$WORK/undel.json"
    cat "$WORK/undel.json"
    expect_eq "VersionId of the removed marker" "$(json_get "$WORK/undel.json" 'd.get("VersionId")')" "$marker"
    expect_eq "DeleteMarker of the removed marker" "$(json_get "$WORK/undel.json" 'd.get("DeleteMarker")')" True
    awsc s3api head-object --bucket "$VBUCKET" --key "$VKEY" >/dev/null || fail "head-object after the marker's removal"
    get_to "$VBUCKET" "$VKEY" "$WORK/back.out"
    expect_eq "sha256 of the restored object" "$(sha256_of "$WORK/back.out")" "$(sha256_of "$STATE/v3.body")"
    expect_eq "VersionId of the restored object" "$(json_get "$WORK/back.out.json" 'd["VersionId"]')" "$v3"
    expect_version_ids "$VBUCKET" "$VKEY" "after the marker's removal" "[\"$v3\", \"$v2\", \"$v1\"]"
}

t_oldest_version() {
    local v1 v2 v3
    v1="$(load v1.id)"
    v2="$(load v2.id)"
    v3="$(load v3.id)"
    get_to "$VBUCKET" "$VKEY" "$WORK/old.out" "$v1"
    expect_eq "sha256 of the oldest version" "$(sha256_of "$WORK/old.out")" "$(sha256_of "$STATE/v1.body")"
    expect_eq "VersionId of the oldest version" "$(json_get "$WORK/old.out.json" 'd["VersionId"]')" "$v1"
    awsc s3api head-object --bucket "$VBUCKET" --key "$VKEY" --version-id "$v2" --output json >"$WORK/h2.json"
    cat "$WORK/h2.json"
    expect_eq "ETag of the middle version" "$(json_get "$WORK/h2.json" 'd["ETag"]')" "\"$(md5_of "$STATE/v2.body")\""
    awsc s3api delete-object --bucket "$VBUCKET" --key "$VKEY" --version-id "$v1" --output json >"$WORK/d1.json"
    cat "$WORK/d1.json"
    expect_eq "VersionId of the deleted version" "$(json_get "$WORK/d1.json" 'd.get("VersionId")')" "$v1"
    expect_eq "DeleteMarker of a deleted object version" "$(json_get "$WORK/d1.json" 'd.get("DeleteMarker", False)')" False
    expect_version_ids "$VBUCKET" "$VKEY" "after deleting the oldest" "[\"$v3\", \"$v2\"]"
    expect_http_error NoSuchVersion "get-object of the deleted version" \
        awsc s3api get-object --bucket "$VBUCKET" --key "$VKEY" --version-id "$v1" "$WORK/none.out"
    get_to "$VBUCKET" "$VKEY" "$WORK/cur.out"
    expect_eq "sha256 of the current object" "$(sha256_of "$WORK/cur.out")" "$(sha256_of "$STATE/v3.body")"
    get_to "$VBUCKET" "$VKEY" "$WORK/mid.out" "$v2"
    expect_eq "sha256 of the middle version" "$(sha256_of "$WORK/mid.out")" "$(sha256_of "$STATE/v2.body")"
}

t_suspended_null_version() {
    local v2 v3
    v2="$(load v2.id)"
    v3="$(load v3.id)"
    awsc s3api put-bucket-versioning --bucket "$VBUCKET" --versioning-configuration Status=Suspended
    expect_eq "get-bucket-versioning Status" \
        "$(awsc s3api get-bucket-versioning --bucket "$VBUCKET" --query Status --output text)" Suspended
    put_version "$VBUCKET" "$VKEY" "$STATE/s1.body" >/dev/null
    expect_version_ids "$VBUCKET" "$VKEY" "after a put in the Suspended bucket" "[\"null\", \"$v3\", \"$v2\"]"
    # a second put replaces the null version only
    put_version "$VBUCKET" "$VKEY" "$STATE/s2.body" >/dev/null
    expect_version_ids "$VBUCKET" "$VKEY" "after a second put in the Suspended bucket" "[\"null\", \"$v3\", \"$v2\"]"
    expect_eq "ETag of the null version" "$(json_get "$WORK/lv.json" 'd["Versions"][0]["ETag"]')" "\"$(md5_of "$STATE/s2.body")\""
    get_to "$VBUCKET" "$VKEY" "$WORK/null.out" null
    expect_eq "sha256 of version null" "$(sha256_of "$WORK/null.out")" "$(sha256_of "$STATE/s2.body")"
    get_to "$VBUCKET" "$VKEY" "$WORK/cur.out"
    expect_eq "sha256 of the current object" "$(sha256_of "$WORK/cur.out")" "$(sha256_of "$STATE/s2.body")"
    expect_eq "VersionId of the current object" "$(json_get "$WORK/cur.out.json" 'd.get("VersionId", "null")')" null
}

# ---- object lock ------------------------------------------------------------------

t_lock_bucket() {
    awsc s3api create-bucket --bucket "$LBUCKET" --object-lock-enabled-for-bucket --output json
    awsc s3api head-bucket --bucket "$LBUCKET" || fail "head-bucket after create-bucket"
    expect_eq "versioning of a lock bucket" \
        "$(awsc s3api get-bucket-versioning --bucket "$LBUCKET" --query Status --output text)" Enabled
    expect_http_error InvalidBucketState "suspending versioning of a lock bucket" \
        awsc s3api put-bucket-versioning --bucket "$LBUCKET" --versioning-configuration Status=Suspended
}

t_lock_configuration() {
    awsc s3api put-object-lock-configuration --bucket "$LBUCKET" --object-lock-configuration \
        '{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":1}}}'
    awsc s3api get-object-lock-configuration --bucket "$LBUCKET" --output json >"$WORK/olc.json"
    cat "$WORK/olc.json"
    expect_eq "ObjectLockEnabled" "$(json_get "$WORK/olc.json" 'd["ObjectLockConfiguration"]["ObjectLockEnabled"]')" Enabled
    expect_eq "DefaultRetention" "$(json_get "$WORK/olc.json" 'd["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]')" \
        '{"Days": 1, "Mode": "GOVERNANCE"}'
}

# four versions of LKEY, each with the default 1-day GOVERNANCE retention
t_put_default_governance() {
    local n id t0 ids=()
    for n in l1 l2 l3 l4; do
        t0="$(date +%s)"
        id="$(put_version "$LBUCKET" "$LKEY" "$STATE/$n.body")"
        echo "$n: VersionId [$id]"
        expect_real_id "$n" "$id"
        save "$n.id" "$id"
        ids+=("$id")
        awsc s3api head-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$id" --output json >"$WORK/lh.json"
        cat "$WORK/lh.json"
        expect_eq "$n ObjectLockMode" "$(json_get "$WORK/lh.json" 'd.get("ObjectLockMode")')" GOVERNANCE
        expect_eq "$n ETag" "$(json_get "$WORK/lh.json" 'd["ETag"]')" "\"$(md5_of "$STATE/$n.body")\""
        # 1 day from the upload (the server may round; allow a minute)
        expect_near "$n RetainUntilDate" "$(epoch_of "$(json_get "$WORK/lh.json" 'd["ObjectLockRetainUntilDate"]')")" $((t0 + 86400)) 60
    done
    expect_eq "distinct VersionIds" "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)" 4
    expect_version_ids "$LBUCKET" "$LKEY" "list-object-versions of the lock bucket" \
        "$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:][::-1]))' "${ids[@]}")"
}

# l1: COMPLIANCE 2 days ahead; refused to everyone, root with bypass included
t_compliance() {
    local v until got
    v="$(load l1.id)"
    until="$(iso_in $((2 * 86400)))"
    # GOVERNANCE -> COMPLIANCE changes the mode of a GOVERNANCE retention: refused without bypass
    expect_http_error AccessDenied "put-object-retention GOVERNANCE -> COMPLIANCE without bypass" \
        awsc s3api put-object-retention --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --retention "{\"Mode\":\"COMPLIANCE\",\"RetainUntilDate\":\"$until\"}"
    awsc s3api put-object-retention --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --retention "{\"Mode\":\"COMPLIANCE\",\"RetainUntilDate\":\"$until\"}" --bypass-governance-retention
    awsc s3api get-object-retention --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --output json >"$WORK/ret.json"
    cat "$WORK/ret.json"
    expect_eq "retention Mode" "$(json_get "$WORK/ret.json" 'd["Retention"]["Mode"]')" COMPLIANCE
    got="$(epoch_of "$(json_get "$WORK/ret.json" 'd["Retention"]["RetainUntilDate"]')")"
    expect_near "retention RetainUntilDate" "$got" "$(epoch_of "$until")" 1
    expect_http_error AccessDenied "delete-object --version-id of a COMPLIANCE version" \
        awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v"
    expect_http_error AccessDenied "delete-object --version-id --bypass-governance-retention of a COMPLIANCE version" \
        awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --bypass-governance-retention
    expect_http_error AccessDenied "shortening COMPLIANCE with bypass" \
        awsc s3api put-object-retention --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --retention "{\"Mode\":\"COMPLIANCE\",\"RetainUntilDate\":\"$(iso_in 86400)\"}" --bypass-governance-retention
    awsc s3api head-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --output json >"$WORK/lh.json"
    cat "$WORK/lh.json"
    expect_eq "head ObjectLockMode" "$(json_get "$WORK/lh.json" 'd.get("ObjectLockMode")')" COMPLIANCE
    expect_near "head RetainUntilDate" "$(epoch_of "$(json_get "$WORK/lh.json" 'd["ObjectLockRetainUntilDate"]')")" "$got" 1
    get_to "$LBUCKET" "$LKEY" "$WORK/l1.out" "$v"
    expect_eq "sha256 of the COMPLIANCE version" "$(sha256_of "$WORK/l1.out")" "$(sha256_of "$STATE/l1.body")"
}

# l2: legal hold ON refuses even the bypass; OFF, the bypass deletes it
t_legal_hold() {
    local v
    v="$(load l2.id)"
    awsc s3api put-object-legal-hold --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --legal-hold Status=ON
    expect_eq "legal hold" "$(awsc s3api get-object-legal-hold --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --query LegalHold.Status --output text)" ON
    expect_eq "head ObjectLockLegalHoldStatus" "$(awsc s3api head-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --query ObjectLockLegalHoldStatus --output text)" ON
    expect_http_error AccessDenied "delete-object --version-id of a held version" \
        awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v"
    expect_http_error AccessDenied "delete-object --version-id --bypass-governance-retention of a held version" \
        awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --bypass-governance-retention
    awsc s3api put-object-legal-hold --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --legal-hold Status=OFF
    expect_eq "legal hold" "$(awsc s3api get-object-legal-hold --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --query LegalHold.Status --output text)" OFF
    awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --bypass-governance-retention \
        --output json >"$WORK/dl2.json"
    cat "$WORK/dl2.json"
    expect_eq "VersionId of the deleted version" "$(json_get "$WORK/dl2.json" 'd.get("VersionId")')" "$v"
    expect_version_ids "$LBUCKET" "$LKEY" "after deleting the released version" \
        "[\"$(load l4.id)\", \"$(load l3.id)\", \"$(load l1.id)\"]"
}

# l3: the default GOVERNANCE retention: only the bypass deletes it
t_governance_bypass() {
    local v
    v="$(load l3.id)"
    expect_eq "retention Mode" "$(awsc s3api get-object-retention --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" \
        --query Retention.Mode --output text)" GOVERNANCE
    expect_http_error AccessDenied "delete-object --version-id of a GOVERNANCE version without bypass" \
        awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v"
    awsc s3api head-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" >/dev/null || fail "version gone after the refused delete"
    awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" --bypass-governance-retention \
        --output json >"$WORK/dl3.json"
    cat "$WORK/dl3.json"
    expect_eq "VersionId of the deleted version" "$(json_get "$WORK/dl3.json" 'd.get("VersionId")')" "$v"
    expect_http_error NoSuchVersion "get-object of the deleted GOVERNANCE version" \
        awsc s3api get-object --bucket "$LBUCKET" --key "$LKEY" --version-id "$v" "$WORK/none.out"
    expect_version_ids "$LBUCKET" "$LKEY" "after deleting the GOVERNANCE version" \
        "[\"$(load l4.id)\", \"$(load l1.id)\"]"
}

# A delete without a version ID of a locked key adds a marker (as AWS); the locked
# versions stay.
t_marker_over_locked() {
    awsc s3api delete-object --bucket "$LBUCKET" --key "$LKEY" --output json >"$WORK/dm.json"
    cat "$WORK/dm.json"
    expect_eq "DeleteMarker" "$(json_get "$WORK/dm.json" 'd.get("DeleteMarker")')" True
    expect_http_error '(404)' "head-object under the marker" awsc s3api head-object --bucket "$LBUCKET" --key "$LKEY"
    versions_json "$LBUCKET" "$LKEY" "$WORK/lv.json"
    expect_eq "Versions under the marker" "$(json_get "$WORK/lv.json" '[v["VersionId"] for v in d.get("Versions", [])]')" \
        "[\"$(load l4.id)\", \"$(load l1.id)\"]"
    expect_eq "DeleteMarkers" "$(json_get "$WORK/lv.json" '[m["VersionId"] for m in d.get("DeleteMarkers", [])]')" \
        "[\"$(json_get "$WORK/dm.json" 'd["VersionId"]')\"]"
}

step s3api-create-bucket t_create_bucket
step s3api-put-get-bucket-versioning-enabled t_versioning_enable
step s3api-three-puts-three-versions-listed-newest-first t_three_versions
step s3api-delete-marker-then-restore-by-deleting-it t_delete_marker_and_restore
step s3api-get-and-delete-oldest-version t_oldest_version
step s3api-suspended-versioning-null-version t_suspended_null_version
step s3api-create-bucket-object-lock-enabled t_lock_bucket
step s3api-put-get-object-lock-configuration t_lock_configuration
step s3api-put-object-default-governance-retention t_put_default_governance
step s3api-object-retention-compliance-refuses-delete t_compliance
step s3api-object-legal-hold-refuses-delete-until-off t_legal_hold
step s3api-governance-delete-needs-bypass t_governance_bypass
step s3api-delete-without-version-over-locked-adds-marker t_marker_over_locked

summary
