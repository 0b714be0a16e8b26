//! AWS Signature Version 2 end to end (what boto3 and aws-cli v1 presign with in us-east-1): presigned URLs and
//! `Authorization: AWS` headers signed by hand, and the bucket-policy keys `s3:signatureversion` and
//! `s3:authType` that tell the ways of signing apart.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha1::Sha1;

use crate::harness::{ACCESS_KEY, SECRET_KEY, Server, put};
use crate::sigv4::{RawRequest, RawResponse, Signer, host_of};

/// The base64 HMAC-SHA1 of `string_to_sign` under the test secret.
fn sign(string_to_sign: &str) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(SECRET_KEY.as_bytes()).unwrap();
    mac.update(string_to_sign.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

fn url_encode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// The query of a Version 2 presigned URL for `method` on `path` (already percent-encoded), valid for
/// `seconds` from now (negative: expired).
fn presign(method: &str, path: &str, seconds: i64) -> String {
    let expires = Utc::now().timestamp() + seconds;
    let signature = sign(&format!("{method}\n\n\n{expires}\n{path}"));
    format!(
        "AWSAccessKeyId={ACCESS_KEY}&Expires={expires}&Signature={}",
        url_encode(&signature)
    )
}

/// A request with a Date header and `Authorization: AWS` over `resource`, the extra StringToSign lines (the
/// content type, amz headers) as given.
fn signed_v2(
    method: &str,
    path: &str,
    query: &str,
    content_type: &str,
    resource: &str,
) -> RawRequest {
    let date = Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let signature = sign(&format!("{method}\n\n{content_type}\n{date}\n{resource}"));
    let mut req = RawRequest::new(method, path, query)
        .header("date", &date)
        .header("authorization", &format!("AWS {ACCESS_KEY}:{signature}"));
    if !content_type.is_empty() {
        req = req.header("content-type", content_type);
    }
    req
}

fn assert_status(resp: &RawResponse, status: u16, code: Option<&str>) {
    assert_eq!(resp.status, status, "{}", resp.text());
    if let Some(code) = code {
        assert_eq!(resp.code().as_deref(), Some(code), "{}", resp.text());
    }
}

#[tokio::test]
async fn presigned_urls_and_authorization_headers_of_version_2() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("old").send().await.unwrap();
    put(&s3, "old", "a b+c.txt", b"hello").await;
    let path = "/old/a%20b%2Bc.txt";

    let resp = RawRequest::new("GET", path, &presign("GET", path, 300)).send(&server.endpoint);
    assert_status(&resp, 200, None);
    assert_eq!(resp.text(), "hello");
    // Another key, another method, a lapsed URL, an unknown key.
    let other = "/old/a%20b%2Bd.txt";
    let resp = RawRequest::new("GET", other, &presign("GET", path, 300)).send(&server.endpoint);
    assert_status(&resp, 403, Some("SignatureDoesNotMatch"));
    let resp = RawRequest::new("DELETE", path, &presign("GET", path, 300)).send(&server.endpoint);
    assert_status(&resp, 403, Some("SignatureDoesNotMatch"));
    let resp = RawRequest::new("GET", path, &presign("GET", path, -1)).send(&server.endpoint);
    assert_status(&resp, 403, Some("AccessDenied"));
    assert!(
        resp.text().contains("Request has expired"),
        "{}",
        resp.text()
    );
    let stranger = presign("GET", path, 300).replace(ACCESS_KEY, "NOSUCHACCESSKEY");
    let resp = RawRequest::new("GET", path, &stranger).send(&server.endpoint);
    assert_status(&resp, 403, Some("InvalidAccessKeyId"));
    let incomplete = format!("AWSAccessKeyId={ACCESS_KEY}&Signature=abc");
    let resp = RawRequest::new("GET", path, &incomplete).send(&server.endpoint);
    assert_status(&resp, 403, Some("AccessDenied"));
    assert!(
        resp.text()
            .contains("requires the Signature, Expires and AWSAccessKeyId"),
        "{}",
        resp.text()
    );
    // An operation newer than Version 2 is outside what it signs: the signature of a PUT of the bucket would
    // otherwise also sign its PutPublicAccessBlock.
    let block = format!("publicAccessBlock&{}", presign("PUT", "/old", 300));
    let resp = RawRequest::new("PUT", "/old", &block)
        .body("<PublicAccessBlockConfiguration/>")
        .send(&server.endpoint);
    assert_status(&resp, 400, Some("InvalidRequest"));
    assert!(
        resp.text().contains("Please use AWS4-HMAC-SHA256"),
        "{}",
        resp.text()
    );
    // The admin API takes only SigV4 header requests with a signed body: not Version 2, not an unsigned payload.
    let users = "/_strata/admin/v1/users";
    let resp = signed_v2("GET", users, "", "", users).send(&server.endpoint);
    assert_status(&resp, 400, Some("InvalidRequest"));
    let host = host_of(&server.endpoint);
    let admin = |payload_hash: Option<&str>| {
        let mut req = RawRequest::new("GET", users, "");
        req.sign_with(&Signer::default(), &host, payload_hash);
        req.send(&server.endpoint)
    };
    assert_status(
        &admin(Some("UNSIGNED-PAYLOAD")),
        400,
        Some("InvalidRequest"),
    );
    assert_status(&admin(None), 200, None);

    // Header auth: a PUT with its content type, a listing (the bucket signs as `/old/`), the object back.
    let resp = signed_v2("PUT", "/old/new.txt", "", "text/plain", "/old/new.txt")
        .body("put by v2")
        .send(&server.endpoint);
    assert_status(&resp, 200, None);
    let resp =
        signed_v2("GET", "/old", "list-type=2&prefix=new", "", "/old/").send(&server.endpoint);
    assert_status(&resp, 200, None);
    assert!(
        resp.text().contains("<Key>new.txt</Key>"),
        "{}",
        resp.text()
    );
    let resp = signed_v2("GET", "/old/new.txt", "", "", "/old/new.txt").send(&server.endpoint);
    assert_eq!((resp.status, resp.text().as_str()), (200, "put by v2"));
    assert_eq!(resp.header("content-type"), Some("text/plain"));
    // Virtual-hosted style signs the bucket from the Host header.
    let host = format!(
        "old.localhost:{}",
        host_of(&server.endpoint).rsplit(':').next().unwrap()
    );
    let resp = signed_v2("GET", "/new.txt", "", "", "/old/new.txt")
        .with_host(&host)
        .send(&server.endpoint);
    assert_eq!((resp.status, resp.text().as_str()), (200, "put by v2"));
    // A content type sent that the signature does not cover.
    let resp = signed_v2("PUT", "/old/new.txt", "", "", "/old/new.txt")
        .header("content-type", "text/html")
        .body("x")
        .send(&server.endpoint);
    assert_status(&resp, 403, Some("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn bucket_policies_tell_signature_versions_and_auth_types_apart() {
    let server = Server::start();
    let s3 = server.client();
    let host = host_of(&server.endpoint);
    for bucket in ["v4-only", "no-presigned", "no-v2-header"] {
        s3.create_bucket().bucket(bucket).send().await.unwrap();
        put(&s3, bucket, "k", b"data").await;
    }
    // AWS's way to refuse Version 2: deny whatever is not signed with AWS4-HMAC-SHA256.
    let deny = |bucket: &str, condition: serde_json::Value| {
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"), "Condition": condition}]})
        .to_string()
    };
    for (bucket, condition) in [
        (
            "v4-only",
            json!({"StringNotEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}}),
        ),
        (
            "no-presigned",
            json!({"StringEquals": {"s3:authType": "REST-QUERY-STRING"}}),
        ),
        (
            "no-v2-header",
            json!({"StringEquals": {"s3:signatureversion": "AWS", "s3:authType": "REST-HEADER"}}),
        ),
    ] {
        s3.put_bucket_policy()
            .bucket(bucket)
            .policy(deny(bucket, condition))
            .send()
            .await
            .unwrap();
    }
    let sdk_get = |bucket: &'static str| {
        let s3 = s3.clone();
        async move { s3.get_object().bucket(bucket).key("k").send().await.is_ok() }
    };
    let v2_presigned = |bucket: &str| {
        let path = format!("/{bucket}/k");
        RawRequest::new("GET", &path, &presign("GET", &path, 300))
            .send(&server.endpoint)
            .status
    };
    let v4_presigned = |bucket: &str| {
        let path = format!("/{bucket}/k");
        let query = Signer::default().presign_query("GET", &path, &host, 300);
        RawRequest::new("GET", &path, &query)
            .send(&server.endpoint)
            .status
    };
    assert!(sdk_get("v4-only").await, "a SigV4 header request passes");
    assert_eq!(v4_presigned("v4-only"), 200);
    assert_eq!(v2_presigned("v4-only"), 403);
    assert!(sdk_get("no-presigned").await);
    assert_eq!(v4_presigned("no-presigned"), 403);
    assert_eq!(v2_presigned("no-presigned"), 403);
    // Both keys hold their values for a Version 2 header request: only it is denied.
    let v2_header = |bucket: &str| {
        let path = format!("/{bucket}/k");
        signed_v2("GET", &path, "", "", &path).send(&server.endpoint)
    };
    assert!(sdk_get("no-v2-header").await);
    assert_eq!(v4_presigned("no-v2-header"), 200);
    assert_eq!(v2_presigned("no-v2-header"), 200);
    assert_status(&v2_header("no-v2-header"), 403, Some("AccessDenied"));
    // The same request is let through where nothing denies it, so the 403 above is the policy's.
    assert_status(&v2_header("no-presigned"), 200, None);
    assert_status(&v2_header("v4-only"), 403, Some("AccessDenied"));
}

#[tokio::test]
async fn a_bucket_policy_can_refuse_an_unsigned_payload_header() {
    // The key is the header as sent (as on AWS): requests without it (presigned, Version 2, anonymous) need a
    // `Null` condition as well to be refused.
    let server = Server::start();
    let s3 = server.client();
    let host = host_of(&server.endpoint);
    s3.create_bucket()
        .bucket("signed-only")
        .send()
        .await
        .unwrap();
    let policy = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": "arn:aws:s3:::signed-only/*",
        "Condition": {"StringEquals": {"s3:x-amz-content-sha256": "UNSIGNED-PAYLOAD"}}}]});
    s3.put_bucket_policy()
        .bucket("signed-only")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let put = |payload_hash: Option<&str>| {
        let mut req = RawRequest::new("PUT", "/signed-only/k", "").body("payload");
        req.sign_with(&Signer::default(), &host, payload_hash);
        req.send(&server.endpoint)
    };
    assert_status(&put(None), 200, None);
    assert_status(&put(Some("UNSIGNED-PAYLOAD")), 403, Some("AccessDenied"));
}
