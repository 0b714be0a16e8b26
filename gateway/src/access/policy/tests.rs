//! Unit tests of policy parsing and evaluation.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::*;

fn env() -> RequestEnv {
    RequestEnv {
        source_ip: Some("127.0.0.1".parse().unwrap()),
        secure_transport: false,
        referer: None,
        user_agent: None,
        prefix: None,
        delimiter: None,
        max_keys: None,
        acl: None,
        condition_headers: Vec::new(),
        version_id: None,
        now: DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        signing: None,
    }
}

fn user(name: &str, key: &str) -> Identity {
    Identity {
        access_key: key.into(),
        display_name: name.into(),
        is_root: false,
    }
}

fn root() -> Identity {
    Identity {
        access_key: "ROOTKEY".into(),
        display_name: "root".into(),
        is_root: true,
    }
}

fn bucket_policy(doc: serde_json::Value) -> Policy {
    Policy::parse(doc.to_string().as_bytes(), Scope::Bucket("site")).unwrap()
}

fn malformed_msg(doc: &str, scope: Scope<'_>) -> String {
    match Policy::parse(doc.as_bytes(), scope) {
        Err(ApiError::MalformedPolicy(m)) => m,
        other => panic!("{doc}: want MalformedPolicy, got {other:?}"),
    }
}

const OBJ: &str = "arn:aws:s3:::site/index.html";
const BUCKET: &str = "arn:aws:s3:::site";

#[test]
fn public_read() {
    let p = bucket_policy(json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicReadGetObject",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::site/*"
        }]
    }));
    let e = env();
    assert_eq!(p.evaluate(None, "s3:GetObject", OBJ, &e), Decision::Allow);
    assert_eq!(
        p.evaluate(None, "s3:PutObject", OBJ, &e),
        Decision::Implicit
    );
    assert_eq!(
        p.evaluate(None, "s3:ListBucket", BUCKET, &e),
        Decision::Implicit
    );
    assert_eq!(
        p.evaluate(None, "s3:GetObject", "arn:aws:s3:::other/x", &e),
        Decision::Implicit
    );
    assert!(p.is_public());
}

#[test]
fn deny_wins_over_allow() {
    let p = bucket_policy(json!({
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:*", "Resource": ["arn:aws:s3:::site", "arn:aws:s3:::site/*"]},
            {"Effect": "Deny", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::site/*"}
        ]
    }));
    let e = env();
    let alice = user("alice", "AKALICE");
    assert_eq!(
        p.evaluate(Some(&alice), "s3:GetObject", OBJ, &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(Some(&alice), "s3:DeleteObject", OBJ, &e),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(Some(&root()), "s3:DeleteObject", OBJ, &e),
        Decision::Deny
    );
    assert_eq!(
        p.evaluate(None, "s3:ListBucket", BUCKET, &e),
        Decision::Allow
    );
}

#[test]
fn wildcards_in_actions_and_resources() {
    let p = bucket_policy(json!({
        "Statement": {"Effect": "Allow", "Principal": "*", "Action": ["s3:Get*", "s3:List*"], "Resource": ["arn:aws:s3:::site", "arn:aws:s3:::site/public/*.html"]}
    }));
    let e = env();
    let ok = "arn:aws:s3:::site/public/a/b.html";
    assert_eq!(p.evaluate(None, "s3:GetObject", ok, &e), Decision::Allow);
    assert_eq!(
        p.evaluate(None, "s3:GetObjectTagging", ok, &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(None, "s3:ListBucket", BUCKET, &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(None, "s3:GetObject", "arn:aws:s3:::site/public/a.css", &e),
        Decision::Implicit
    );
    assert_eq!(p.evaluate(None, "s3:PutObject", ok, &e), Decision::Implicit);
}

#[test]
fn not_action_not_resource_not_principal() {
    let e = env();
    let alice = user("alice", "AKALICE");
    let bob = user("bob", "AKBOB");
    let p = bucket_policy(json!({
        "Statement": [{"Effect": "Allow", "Principal": "*", "NotAction": "s3:Delete*", "NotResource": "arn:aws:s3:::site/secret/*"}]
    }));
    assert_eq!(p.evaluate(None, "s3:GetObject", OBJ, &e), Decision::Allow);
    assert_eq!(
        p.evaluate(None, "s3:DeleteObject", OBJ, &e),
        Decision::Implicit
    );
    assert_eq!(
        p.evaluate(None, "s3:GetObject", "arn:aws:s3:::site/secret/x", &e),
        Decision::Implicit
    );
    let p = bucket_policy(json!({
        "Statement": [{"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:user/alice"}, "Action": "s3:*", "Resource": "arn:aws:s3:::site/*"}]
    }));
    assert_eq!(
        p.evaluate(Some(&alice), "s3:GetObject", OBJ, &e),
        Decision::Implicit
    );
    assert_eq!(
        p.evaluate(Some(&bob), "s3:GetObject", OBJ, &e),
        Decision::Deny
    );
    assert_eq!(p.evaluate(None, "s3:GetObject", OBJ, &e), Decision::Deny);
    assert!(!p.is_public(), "a Deny is never public");
}

#[test]
fn principals() {
    let e = env();
    let alice = user("alice", "AKALICE");
    let p = bucket_policy(json!({
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::000000000000:user/alice", "arn:aws:iam::000000000000:root"], "CanonicalUser": "AKCAROL"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]
    }));
    assert_eq!(
        p.evaluate(Some(&alice), "s3:GetObject", OBJ, &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(Some(&root()), "s3:GetObject", OBJ, &e),
        Decision::Allow
    );
    let carol = user("carol", "AKCAROL");
    assert_eq!(
        p.evaluate(Some(&carol), "s3:GetObject", OBJ, &e),
        Decision::Allow
    );
    let bob = user("bob", "AKBOB");
    assert_eq!(
        p.evaluate(Some(&bob), "s3:GetObject", OBJ, &e),
        Decision::Implicit
    );
    assert_eq!(
        p.evaluate(None, "s3:GetObject", OBJ, &e),
        Decision::Implicit
    );
    assert!(!p.is_public());
    // By access key, and a bare account id as root.
    let p = bucket_policy(json!({
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ["arn:aws:iam::1:user/AKBOB", "111122223333"]}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}]
    }));
    assert_eq!(
        p.evaluate(Some(&bob), "s3:GetObject", OBJ, &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(Some(&root()), "s3:GetObject", OBJ, &e),
        Decision::Allow
    );
}

#[test]
fn conditions_in_statements() {
    let p = bucket_policy(json!({
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*",
             "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}},
            {"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::site",
             "Condition": {"StringLike": {"s3:prefix": ["public/*", ""]}}}
        ]
    }));
    let mut e = env();
    assert_eq!(p.evaluate(None, "s3:GetObject", OBJ, &e), Decision::Allow);
    e.source_ip = Some("10.1.2.3".parse().unwrap());
    assert_eq!(
        p.evaluate(None, "s3:GetObject", OBJ, &e),
        Decision::Implicit
    );
    e.prefix = Some("public/x".into());
    assert_eq!(
        p.evaluate(None, "s3:ListBucket", BUCKET, &e),
        Decision::Allow
    );
    e.prefix = Some("private/".into());
    assert_eq!(
        p.evaluate(None, "s3:ListBucket", BUCKET, &e),
        Decision::Implicit
    );
    assert!(p.is_public(), "the s3:prefix statement does not pin");
}

#[test]
fn public_status() {
    let stmt = |cond: serde_json::Value| {
        bucket_policy(
            json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*", "Condition": cond}]}),
        )
    };
    assert!(!stmt(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})).is_public());
    assert!(
        !stmt(json!({"IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]}}))
            .is_public()
    );
    assert!(stmt(json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}})).is_public());
    assert!(stmt(json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}})).is_public());
    assert!(stmt(json!({"StringLike": {"aws:Referer": "https://example.com/*"}})).is_public());
    assert!(!stmt(json!({"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})).is_public());
    assert!(stmt(json!({"StringLike": {"aws:SourceVpce": "vpce-*"}})).is_public());
    assert!(stmt(json!({"Bool": {"aws:SecureTransport": "true"}})).is_public());
}

#[test]
fn identity_policies() {
    let p = Policy::parse(
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::team-*"},
            {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::team-*/*"},
            {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}
        ]})
        .to_string()
        .as_bytes(),
        Scope::Identity,
    )
    .unwrap();
    let e = env();
    let alice = user("alice", "AKALICE");
    let a = Some(&alice);
    assert_eq!(
        p.evaluate(a, "s3:ListBucket", "arn:aws:s3:::team-a", &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(a, "s3:PutObject", "arn:aws:s3:::team-a/k", &e),
        Decision::Allow
    );
    assert_eq!(
        p.evaluate(a, "s3:PutObject", "arn:aws:s3:::other/k", &e),
        Decision::Implicit
    );
    assert_eq!(
        p.evaluate(a, "s3:DeleteBucket", "arn:aws:s3:::team-a", &e),
        Decision::Deny
    );
    assert_eq!(
        malformed_msg(
            r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}}"#,
            Scope::Identity
        ),
        "Policy document should not specify a principal."
    );
}

#[test]
fn malformed_policies() {
    let b = Scope::Bucket("site");
    let stmt = |s: &str| format!(r#"{{"Version": "2012-10-17", "Statement": [{s}]}}"#);
    let cases = [
        (
            "not json".to_owned(),
            "Policies must be valid JSON and the first byte must be '{'",
        ),
        (
            "[]".to_owned(),
            "Policies must be valid JSON and the first byte must be '{'",
        ),
        (
            "{\"Statement\": [".to_owned(),
            "Policies must be valid JSON and the first byte must be '{'",
        ),
        (
            r#"{"Version": "2012-10-17"}"#.to_owned(),
            "Missing required field Statement",
        ),
        (
            r#"{"Version": "2020-01-01", "Statement": []}"#.to_owned(),
            "The policy must contain a valid version string",
        ),
        (
            r#"{"Statement": []}"#.to_owned(),
            "Could not parse the policy: Statement is empty!",
        ),
        (
            r#"{"Statement": {}, "Extra": 1}"#.to_owned(),
            "Unknown field Extra",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObjectx", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "iam:PassRole", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": [], "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Policy has invalid action",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}"#,
            ),
            "Policy has invalid resource",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "site/*"}"#,
            ),
            "Policy has invalid resource",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}"#),
            "Missing required field Resource",
        ),
        (
            stmt(r#"{"Effect": "Allow", "Principal": "*", "Resource": "arn:aws:s3:::site/*"}"#),
            "Missing required field Action",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Missing required field Principal",
        ),
        (
            stmt(
                r#"{"Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Missing required field Effect",
        ),
        (
            stmt(
                r#"{"Effect": "allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Invalid effect: allow",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "me", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:group/x"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Invalid principal in policy",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resources": "arn:aws:s3:::site/*"}"#,
            ),
            "Unknown field Resources",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "NotAction": "s3:PutObject", "Resource": "arn:aws:s3:::site/*"}"#,
            ),
            "Invalid policy syntax.",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*", "Condition": {"StringEqualz": {"s3:prefix": "a"}}}"#,
            ),
            "Invalid Condition type",
        ),
        (
            stmt(
                r#"{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*", "Condition": {"StringEquals": {"s3:nope": "a"}}}"#,
            ),
            "Policy has an invalid condition key",
        ),
        (
            format!(
                r#"{{"Statement": [{0}, {0}]}}"#,
                r#"{"Sid": "A", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::site/*"}"#
            ),
            "Statement IDs (SID) in a single policy must be unique",
        ),
    ];
    for (doc, want) in cases {
        assert_eq!(malformed_msg(&doc, b), want, "{doc}");
    }
}
