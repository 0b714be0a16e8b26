#!/usr/bin/env bash
# Client-compatibility suite: access control through aws-cli s3api (path-style, SigV4),
# with anonymous requests made by curl: Block Public Access on by default
# (get-public-access-block all true; a public put-bucket-policy refused), then
# delete-public-access-block, put/get/delete-bucket-policy, get-bucket-policy-status,
# MalformedPolicy answers, a Deny beating an Allow, an aws:SourceIp condition, and
# ownership controls with canned ACLs (get-bucket-acl, put-object-acl). Every answer is
# checked. Starts its own server unless STRATA_ENDPOINT / STRATA_ACCESS_KEY /
# STRATA_SECRET_KEY are given. Ends with the line `N passed, M failed`.
set -u
# shellcheck source=tests/clients/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

command -v aws >/dev/null 2>&1 || { echo "aws not found: run tests/clients/install.sh"; echo "0 passed, 1 failed"; exit 1; }
command -v curl >/dev/null 2>&1 || { echo "curl not found"; echo "0 passed, 1 failed"; exit 1; }

require_server

SUFFIX="$(rand_str 10 abcdefghijklmnopqrstuvwxyz0123456789)"
BUCKET="strata-acc-$SUFFIX"
export AWS_ACCESS_KEY_ID="$ACCESS_KEY"
export AWS_SECRET_ACCESS_KEY="$SECRET_KEY"
export AWS_DEFAULT_REGION="$REGION"
export AWS_CONFIG_FILE="$WORK/aws-config"
export AWS_SHARED_CREDENTIALS_FILE="$WORK/aws-credentials"
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""
export BOTO_EXPERIMENTAL__NO_EMPTY_CONTINUE=true
export AWS_RETRY_MODE=standard
export AWS_MAX_ATTEMPTS=1

write_aws_config() {
    cat >"$AWS_CONFIG_FILE" <<EOC
[default]
region = $REGION
s3 =
    addressing_style = path
EOC
    : >"$AWS_SHARED_CREDENTIALS_FILE"
}

awsc() {
    aws --endpoint-url "$ENDPOINT" --cli-connect-timeout 10 --cli-read-timeout 120 "$@"
}

# anon_status METHOD KEY: the HTTP status of an unsigned request for BUCKET/KEY.
anon_status() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X "$1" "$ENDPOINT/$BUCKET/$2"
}

# expect_error CODE WHAT CMD...: CMD must fail and its output must mention CODE.
expect_error() {
    local code="$1" what="$2" out
    shift 2
    if out="$("$@" 2>&1)"; then
        fail "$what: succeeded but should have failed with $code: $out"
    fi
    printf '%s\n' "$out"
    printf '%s\n' "$out" | grep -F -- "$code" >/dev/null || fail "$what: error does not mention $code"
}

policy_json() { # policy_json STATEMENTS
    printf '{"Version":"2012-10-17","Statement":[%s]}' "$1"
}
public_read() {
    policy_json "{\"Sid\":\"PublicRead\",\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::$BUCKET/*\"}"
}

cleanup_external() {
    awsc s3 rb "s3://$BUCKET" --force >/dev/null 2>&1
}

setup_or_die aws-config write_aws_config
if [ "$EXTERNAL_SERVER" = 1 ]; then
    CLEANUP_CMDS="cleanup_external"
fi

t_bucket() {
    awsc s3 mb "s3://$BUCKET"
    printf 'hello\n' >"$WORK/index.html"
    awsc s3 cp "$WORK/index.html" "s3://$BUCKET/index.html"
    awsc s3 cp "$WORK/index.html" "s3://$BUCKET/secret/x.html"
    expect_eq "anonymous GET of a private object" "$(anon_status GET index.html)" 403
}

t_block_public_access_default() {
    awsc s3api get-public-access-block --bucket "$BUCKET" --output json >"$WORK/pab.json"
    cat "$WORK/pab.json"
    expect_eq "all four flags" "$(json_get "$WORK/pab.json" 'sorted(d["PublicAccessBlockConfiguration"].values())')" \
        "[true, true, true, true]"
    expect_error AccessDenied "public policy under BlockPublicPolicy" \
        awsc s3api put-bucket-policy --bucket "$BUCKET" --policy "$(public_read)"
}

t_public_read_policy() {
    awsc s3api delete-public-access-block --bucket "$BUCKET"
    expect_error NoSuchPublicAccessBlockConfiguration "get after delete" \
        awsc s3api get-public-access-block --bucket "$BUCKET"
    awsc s3api put-bucket-policy --bucket "$BUCKET" --policy "$(public_read)"
    awsc s3api get-bucket-policy --bucket "$BUCKET" --output json >"$WORK/pol.json"
    expect_eq "stored policy" "$(json_get "$WORK/pol.json" 'd["Policy"]')" "$(public_read)"
    awsc s3api get-bucket-policy-status --bucket "$BUCKET" --output json >"$WORK/st.json"
    expect_eq "IsPublic" "$(json_get "$WORK/st.json" 'd["PolicyStatus"]["IsPublic"]')" True
    expect_eq "anonymous GET" "$(anon_status GET index.html)" 200
    expect_eq "anonymous PUT" "$(anon_status PUT new.html)" 403
    expect_eq "anonymous DELETE" "$(anon_status DELETE index.html)" 403
}

t_malformed_policies() {
    expect_error MalformedPolicy "unknown action" awsc s3api put-bucket-policy --bucket "$BUCKET" \
        --policy "$(policy_json '{"Effect":"Allow","Principal":"*","Action":"s3:GetObjekt","Resource":"arn:aws:s3:::'"$BUCKET"'/*"}')"
    expect_error MalformedPolicy "resource of another bucket" awsc s3api put-bucket-policy --bucket "$BUCKET" \
        --policy "$(policy_json '{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::elsewhere/*"}')"
    expect_error MalformedPolicy "not JSON" awsc s3api put-bucket-policy --bucket "$BUCKET" --policy 'nope'
    expect_eq "the old policy stays" "$(anon_status GET index.html)" 200
}

t_deny_wins() {
    awsc s3api put-bucket-policy --bucket "$BUCKET" --policy "$(policy_json "$(cat <<EOS
{"Effect":"Allow","Principal":"*","Action":"s3:Get*","Resource":"arn:aws:s3:::$BUCKET/*"},
{"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::$BUCKET/secret/*"}
EOS
)")"
    expect_eq "allowed key" "$(anon_status GET index.html)" 200
    expect_eq "denied key" "$(anon_status GET secret/x.html)" 403
    expect_error AccessDenied "root is bound by the Deny too" \
        awsc s3api get-object --bucket "$BUCKET" --key secret/x.html "$WORK/out.html"
}

t_source_ip() {
    awsc s3api put-bucket-policy --bucket "$BUCKET" --policy "$(policy_json "{\"Effect\":\"Allow\",\"Principal\":\"*\",\"Action\":\"s3:GetObject\",\"Resource\":\"arn:aws:s3:::$BUCKET/*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}}")"
    awsc s3api get-bucket-policy-status --bucket "$BUCKET" --output json >"$WORK/st.json"
    expect_eq "IsPublic with a pinned range" "$(json_get "$WORK/st.json" 'd["PolicyStatus"]["IsPublic"]')" False
    expect_eq "anonymous GET from 127.0.0.1" "$(anon_status GET index.html)" 403
    awsc s3api delete-bucket-policy --bucket "$BUCKET"
    expect_error NoSuchBucketPolicy "get after delete" awsc s3api get-bucket-policy --bucket "$BUCKET"
}

t_acls() {
    awsc s3api get-bucket-ownership-controls --bucket "$BUCKET" --output json >"$WORK/oc.json"
    expect_eq "default ownership" "$(json_get "$WORK/oc.json" 'd["OwnershipControls"]["Rules"][0]["ObjectOwnership"]')" \
        BucketOwnerEnforced
    expect_error AccessControlListNotSupported "public ACL while ACLs are disabled" \
        awsc s3api put-object-acl --bucket "$BUCKET" --key index.html --acl public-read
    awsc s3api put-bucket-ownership-controls --bucket "$BUCKET" \
        --ownership-controls 'Rules=[{ObjectOwnership=ObjectWriter}]'
    awsc s3api put-object-acl --bucket "$BUCKET" --key index.html --acl public-read
    awsc s3api get-object-acl --bucket "$BUCKET" --key index.html --output json >"$WORK/acl.json"
    cat "$WORK/acl.json"
    expect_eq "AllUsers READ grant" \
        "$(json_get "$WORK/acl.json" '[g["Permission"] for g in d["Grants"] if g["Grantee"].get("URI", "").endswith("/AllUsers")]')" \
        '["READ"]'
    expect_eq "anonymous GET by ACL" "$(anon_status GET index.html)" 200
    expect_eq "the other object stays private" "$(anon_status GET secret/x.html)" 403
    awsc s3api get-bucket-acl --bucket "$BUCKET" --output json >"$WORK/bacl.json"
    expect_eq "bucket ACL" "$(json_get "$WORK/bacl.json" '[g["Permission"] for g in d["Grants"]]')" '["FULL_CONTROL"]'
}

step s3-mb-and-private-objects t_bucket
step s3api-block-public-access-default-refuses-public-policy t_block_public_access_default
step s3api-public-read-policy-anonymous-read-only t_public_read_policy
step s3api-malformed-policies t_malformed_policies
step s3api-deny-beats-allow t_deny_wins
step s3api-source-ip-condition-and-policy-status t_source_ip
step s3api-ownership-controls-and-canned-acls t_acls

summary
