//! Access control end to end: bucket policies (Allow/Deny precedence, wildcards, NotAction, conditions),
//! anonymous callers against the owner, Block Public Access, GetBucketPolicyStatus, MalformedPolicy, and
//! persistence across a restart. The SDK drives the owner (root); anonymous callers are raw HTTP requests.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{Delete, ObjectIdentifier, PublicAccessBlockConfiguration};
use serde_json::json;

use crate::harness::{Server, get, put, status_and_code};
use crate::sigv4::{RawRequest, RawResponse};

/// A bucket with `index.html` and `secret/key.txt`, Block Public Access removed so public policies may be put.
async fn open_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    put(s3, bucket, "index.html", b"<h1>hello</h1>").await;
    put(s3, bucket, "secret/key.txt", b"secret").await;
    s3.delete_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
}

async fn set_policy(s3: &Client, bucket: &str, policy: serde_json::Value) {
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put policy {policy}: {e:?}"));
}

fn anon(server: &Server, method: &str, path: &str) -> RawResponse {
    RawRequest::new(method, path, "").send(&server.endpoint)
}

fn public_read(bucket: &str) -> serde_json::Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicReadGetObject",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*")
        }]
    })
}

fn assert_status(resp: &RawResponse, status: u16, code: Option<&str>) {
    assert_eq!(resp.status, status, "{:?} {}", resp.headers, resp.text());
    if let Some(c) = code {
        assert_eq!(resp.code().as_deref(), Some(c), "{}", resp.text());
    }
}

#[tokio::test]
async fn public_read_policy_lets_anonymous_read_only() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("site").send().await.unwrap();
    put(&s3, "site", "index.html", b"<h1>hello</h1>").await;
    assert_status(
        &anon(&server, "GET", "/site/index.html"),
        403,
        Some("AccessDenied"),
    );

    // New buckets block public policies.
    let err = s3
        .put_bucket_policy()
        .bucket("site")
        .policy(public_read("site").to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    s3.delete_public_access_block()
        .bucket("site")
        .send()
        .await
        .unwrap();
    set_policy(&s3, "site", public_read("site")).await;

    let resp = anon(&server, "GET", "/site/index.html");
    assert_status(&resp, 200, None);
    assert_eq!(resp.body, b"<h1>hello</h1>");
    assert_status(&anon(&server, "HEAD", "/site/index.html"), 200, None);
    // Without s3:ListBucket a missing key is indistinguishable from a forbidden one, as on S3.
    assert_status(
        &anon(&server, "GET", "/site/missing"),
        403,
        Some("AccessDenied"),
    );
    assert_status(&anon(&server, "HEAD", "/site/missing"), 403, None);
    assert_status(&anon(&server, "GET", "/site"), 403, Some("AccessDenied"));
    assert_status(&anon(&server, "GET", "/"), 403, Some("AccessDenied"));
    assert_status(
        &anon(&server, "DELETE", "/site/index.html"),
        403,
        Some("AccessDenied"),
    );
    let resp = RawRequest::new("PUT", "/site/evil.html", "")
        .body("defaced")
        .send(&server.endpoint);
    assert_status(&resp, 403, Some("AccessDenied"));
    assert!(
        s3.head_object()
            .bucket("site")
            .key("evil.html")
            .send()
            .await
            .is_err()
    );

    // The policy comes back as stored; the status says public.
    let stored = s3.get_bucket_policy().bucket("site").send().await.unwrap();
    assert_eq!(
        stored.policy(),
        Some(public_read("site").to_string().as_str())
    );
    let status = s3
        .get_bucket_policy_status()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(true)
    );

    // Deleting it closes the bucket again.
    s3.delete_bucket_policy()
        .bucket("site")
        .send()
        .await
        .unwrap();
    assert_status(
        &anon(&server, "GET", "/site/index.html"),
        403,
        Some("AccessDenied"),
    );
    let err = s3
        .get_bucket_policy()
        .bucket("site")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucketPolicy".into()));
    let err = s3
        .get_bucket_policy_status()
        .bucket("site")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucketPolicy".into()));
    let err = s3
        .get_bucket_policy()
        .bucket("nobucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
}

#[tokio::test]
async fn deny_wins_and_wildcards_match() {
    let server = Server::start();
    let s3 = server.client();
    open_bucket(&s3, "denywild").await;
    set_policy(
        &s3,
        "denywild",
        json!({
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["s3:Get*", "s3:List*"],
                 "Resource": ["arn:aws:s3:::denywild", "arn:aws:s3:::denywild/*"]},
                {"Sid": "NoSecrets", "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
                 "Resource": "arn:aws:s3:::denywild/secret/*"}
            ]
        }),
    )
    .await;
    assert_status(&anon(&server, "GET", "/denywild/index.html"), 200, None);
    let list = anon(&server, "GET", "/denywild?list-type=2");
    assert_status(&list, 200, None);
    assert!(
        list.text().contains("<Key>index.html</Key>"),
        "{}",
        list.text()
    );
    assert_status(
        &anon(&server, "GET", "/denywild/secret/key.txt"),
        403,
        Some("AccessDenied"),
    );
    // With s3:ListBucket it is NoSuchKey.
    assert_status(
        &anon(&server, "GET", "/denywild/missing"),
        404,
        Some("NoSuchKey"),
    );
    assert_status(
        &anon(&server, "GET", "/denywild/index.html?tagging"),
        200,
        None,
    );

    // The explicit Deny binds root too, but root can always manage the policy.
    let err = s3
        .get_object()
        .bucket("denywild")
        .key("secret/key.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    assert_eq!(get(&s3, "denywild", "index.html").await, b"<h1>hello</h1>");
    // A copy needs s3:GetObject on its source.
    let err = s3
        .copy_object()
        .bucket("denywild")
        .key("copied")
        .copy_source("denywild/secret/key.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    s3.get_bucket_policy()
        .bucket("denywild")
        .send()
        .await
        .unwrap();
    s3.delete_bucket_policy()
        .bucket("denywild")
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "denywild", "secret/key.txt").await, b"secret");
}

#[tokio::test]
async fn not_action_and_per_key_deletes() {
    let server = Server::start();
    let s3 = server.client();
    open_bucket(&s3, "notaction").await;
    put(&s3, "notaction", "tmp/a", b"a").await;
    set_policy(
        &s3,
        "notaction",
        json!({
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": "*", "NotAction": ["s3:Delete*", "s3:Put*"],
                 "Resource": ["arn:aws:s3:::notaction", "arn:aws:s3:::notaction/*"]},
                {"Effect": "Allow", "Principal": "*", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::notaction/tmp/*"}
            ]
        }),
    )
    .await;
    assert_status(&anon(&server, "GET", "/notaction/index.html"), 200, None);
    assert_status(&anon(&server, "GET", "/notaction?list-type=2"), 200, None);
    let resp = RawRequest::new("PUT", "/notaction/new", "")
        .body("x")
        .send(&server.endpoint);
    assert_status(&resp, 403, Some("AccessDenied"));
    assert_status(
        &anon(&server, "DELETE", "/notaction/index.html"),
        403,
        Some("AccessDenied"),
    );

    // DeleteObjects is decided key by key.
    let body =
        "<Delete><Object><Key>tmp/a</Key></Object><Object><Key>index.html</Key></Object></Delete>";
    let md5 = aws_smithy_types::base64::encode(md5_of(body.as_bytes()));
    let resp = RawRequest::new("POST", "/notaction", "delete")
        .header("content-md5", &md5)
        .body(body)
        .send(&server.endpoint);
    assert_status(&resp, 200, None);
    let text = resp.text();
    assert!(text.contains("<Deleted><Key>tmp/a</Key>"), "{text}");
    assert!(
        text.contains("<Error><Key>index.html</Key><Code>AccessDenied</Code>"),
        "{text}"
    );
    assert!(
        s3.head_object()
            .bucket("notaction")
            .key("tmp/a")
            .send()
            .await
            .is_err()
    );
    assert_eq!(get(&s3, "notaction", "index.html").await, b"<h1>hello</h1>");

    // The owner's own DeleteObjects is untouched by the policy.
    let out = s3
        .delete_objects()
        .bucket("notaction")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("index.html")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(out.deleted().len(), 1);
    assert!(out.errors().is_empty());
}

fn md5_of(data: &[u8]) -> [u8; 16] {
    <md5::Md5 as md5::Digest>::digest(data).into()
}

#[tokio::test]
async fn conditions_decide() {
    let server = Server::start();
    let s3 = server.client();
    let allow_get = |bucket: &str, condition: serde_json::Value| {
        json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"), "Condition": condition}]})
    };
    for (bucket, cond, ok) in [
        (
            "ip-local",
            json!({"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}),
            true,
        ),
        (
            "ip-ten",
            json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            false,
        ),
        (
            "ip-not-ten",
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            true,
        ),
        (
            "tls",
            json!({"Bool": {"aws:SecureTransport": "true"}}),
            false,
        ),
        (
            "before",
            json!({"DateLessThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}),
            false,
        ),
        (
            "after",
            json!({"DateGreaterThan": {"aws:CurrentTime": "2000-01-01T00:00:00Z"}}),
            true,
        ),
    ] {
        open_bucket(&s3, bucket).await;
        set_policy(&s3, bucket, allow_get(bucket, cond)).await;
        let resp = anon(&server, "GET", &format!("/{bucket}/index.html"));
        assert_eq!(
            resp.status,
            if ok { 200 } else { 403 },
            "{bucket}: {}",
            resp.text()
        );
    }
    // A forwarded address from a loopback proxy (the edge) is believed for aws:SourceIp...
    let via_proxy = |bucket: &str, xff: &str| {
        RawRequest::new("GET", &format!("/{bucket}/index.html"), "")
            .header("x-forwarded-for", xff)
            .send(&server.endpoint)
    };
    assert_eq!(via_proxy("ip-ten", "10.1.2.3").status, 200);
    assert_eq!(via_proxy("ip-local", "10.1.2.3").status, 403);
    // ...and X-Forwarded-Proto for aws:SecureTransport.
    let resp = RawRequest::new("GET", "/tls/index.html", "")
        .header("x-forwarded-proto", "https")
        .send(&server.endpoint);
    assert_status(&resp, 200, None);

    // Referer, with StringLike.
    open_bucket(&s3, "ref").await;
    set_policy(
        &s3,
        "ref",
        allow_get("ref", json!({"StringLike": {"aws:Referer": ["https://www.example.com/*", "https://example.com/*"]}})),
    )
    .await;
    let with_referer = |r: &str| {
        RawRequest::new("GET", "/ref/index.html", "")
            .header("referer", r)
            .send(&server.endpoint)
            .status
    };
    assert_eq!(with_referer("https://www.example.com/page.html"), 200);
    assert_eq!(with_referer("https://evil.example.net/"), 403);
    assert_eq!(
        anon(&server, "GET", "/ref/index.html").status,
        403,
        "no Referer"
    );

    // s3:prefix on listings.
    open_bucket(&s3, "pfx").await;
    set_policy(
        &s3,
        "pfx",
        json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::pfx", "Condition": {"StringEquals": {"s3:prefix": "secret/"}}}]}),
    )
    .await;
    let list = |q: &str| {
        RawRequest::new("GET", "/pfx", q)
            .send(&server.endpoint)
            .status
    };
    assert_eq!(list("list-type=2&prefix=secret%2F"), 200);
    assert_eq!(list("list-type=2&prefix=other%2F"), 403);
    assert_eq!(list("list-type=2"), 403);

    // s3:max-keys and s3:delimiter.
    open_bucket(&s3, "maxk").await;
    set_policy(
        &s3,
        "maxk",
        json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:ListBucket",
            "Resource": "arn:aws:s3:::maxk", "Condition": {
                "NumericLessThanEquals": {"s3:max-keys": "10"},
                "StringEquals": {"s3:delimiter": "/"}}}]}),
    )
    .await;
    let list = |q: &str| {
        RawRequest::new("GET", "/maxk", q)
            .send(&server.endpoint)
            .status
    };
    assert_eq!(list("list-type=2&max-keys=5&delimiter=%2F"), 200);
    assert_eq!(list("list-type=2&max-keys=50&delimiter=%2F"), 403);
    assert_eq!(list("list-type=2&max-keys=5"), 403);
}

#[tokio::test]
async fn malformed_policies_are_refused() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("malformed").send().await.unwrap();
    let stmt =
        |s: serde_json::Value| json!({"Version": "2012-10-17", "Statement": [s]}).to_string();
    let cases = [
        (
            "{not json".to_owned(),
            "Policies must be valid JSON and the first byte must be '{'",
        ),
        (
            stmt(
                json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::malformed/*"}),
            ),
            "Policy has invalid action",
        ),
        (
            stmt(
                json!({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::other/*"}),
            ),
            "Policy has invalid resource",
        ),
        (
            stmt(
                json!({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::malformed/*"}),
            ),
            "Missing required field Principal",
        ),
        (
            stmt(
                json!({"Effect": "Maybe", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::malformed/*"}),
            ),
            "Invalid effect: Maybe",
        ),
    ];
    for (doc, message) in cases {
        let err = s3
            .put_bucket_policy()
            .bucket("malformed")
            .policy(doc.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_and_code(&err),
            (400, "MalformedPolicy".into()),
            "{doc}"
        );
        let got = err.as_service_error().and_then(|e| {
            use aws_sdk_s3::error::ProvideErrorMetadata as _;
            e.message().map(str::to_owned)
        });
        assert_eq!(got.as_deref(), Some(message), "{doc}");
    }
    let err = s3
        .get_bucket_policy()
        .bucket("malformed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucketPolicy".into()));
}

#[tokio::test]
async fn block_public_access_interplay() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("bpa").send().await.unwrap();
    put(&s3, "bpa", "index.html", b"x").await;

    // A new bucket reports all four flags on.
    let got = s3
        .get_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap();
    let c = got.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );

    // A policy pinned to an address range is not public, so it is accepted while public policies are blocked.
    let pinned = json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
        "Resource": "arn:aws:s3:::bpa/*", "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]});
    set_policy(&s3, "bpa", pinned).await;
    let status = s3
        .get_bucket_policy_status()
        .bucket("bpa")
        .send()
        .await
        .unwrap();
    assert_eq!(
        status.policy_status().and_then(|s| s.is_public()),
        Some(false)
    );
    assert_status(&anon(&server, "GET", "/bpa/index.html"), 200, None);

    // Only RestrictPublicBuckets: a public policy may be put but grants anonymous callers nothing.
    s3.put_public_access_block()
        .bucket("bpa")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .restrict_public_buckets(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap();
    let c = got.public_access_block_configuration().unwrap();
    assert_eq!(c.block_public_policy(), Some(false));
    assert_eq!(c.restrict_public_buckets(), Some(true));
    set_policy(&s3, "bpa", public_read("bpa")).await;
    assert_status(
        &anon(&server, "GET", "/bpa/index.html"),
        403,
        Some("AccessDenied"),
    );
    assert_eq!(
        get(&s3, "bpa", "index.html").await,
        b"x",
        "the owner is unaffected"
    );

    // Deleting the block: nothing is blocked, and Get says there is none.
    s3.delete_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap();
    assert_status(&anon(&server, "GET", "/bpa/index.html"), 200, None);
    let err = s3
        .get_public_access_block()
        .bucket("bpa")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (404, "NoSuchPublicAccessBlockConfiguration".into())
    );

    // Turning BlockPublicPolicy back on refuses the next public policy.
    s3.put_public_access_block()
        .bucket("bpa")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_policy(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let err = s3
        .put_bucket_policy()
        .bucket("bpa")
        .policy(public_read("bpa").to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
}

#[tokio::test]
async fn policies_survive_a_restart() {
    let mut server = Server::start();
    let s3 = server.client();
    open_bucket(&s3, "keep").await;
    set_policy(&s3, "keep", public_read("keep")).await;
    assert_status(&anon(&server, "GET", "/keep/index.html"), 200, None);
    let tmp = server.take_tempdir();
    let data = server.data.clone();
    server.terminate(std::time::Duration::from_secs(30));
    drop(server);
    let server = Server::start_on(&data, &[]);
    assert_status(&anon(&server, "GET", "/keep/index.html"), 200, None);
    let s3 = server.client();
    let err = s3
        .get_public_access_block()
        .bucket("keep")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (404, "NoSuchPublicAccessBlockConfiguration".into())
    );
    // A bucket deleted and created again starts over: no policy, everything blocked.
    s3.delete_object()
        .bucket("keep")
        .key("index.html")
        .send()
        .await
        .unwrap();
    s3.delete_object()
        .bucket("keep")
        .key("secret/key.txt")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("keep").send().await.unwrap();
    s3.create_bucket().bucket("keep").send().await.unwrap();
    put(&s3, "keep", "index.html", b"again").await;
    assert_status(
        &anon(&server, "GET", "/keep/index.html"),
        403,
        Some("AccessDenied"),
    );
    s3.get_public_access_block()
        .bucket("keep")
        .send()
        .await
        .unwrap();
    drop(tmp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secure_transport_through_the_edge() {
    let server = Server::start();
    let s3 = server.client();
    open_bucket(&s3, "tls-only").await;
    put(&s3, "tls-only", "plain.html", b"plain").await;
    set_policy(
        &s3,
        "tls-only",
        json!({"Statement": [{"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::tls-only/*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),
    )
    .await;
    // serve's edge sends anonymous reads to the website endpoint, which picks the bucket by Host.
    s3.put_bucket_website()
        .bucket("tls-only")
        .website_configuration(
            aws_sdk_s3::types::WebsiteConfiguration::builder()
                .index_document(
                    aws_sdk_s3::types::IndexDocument::builder()
                        .suffix("index.html")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let site = "tls-only.s3-website.localhost";
    let addr =
        |url: &str| -> std::net::SocketAddr { url.rsplit_once("//").unwrap().1.parse().unwrap() };
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(30))
        .resolve(site, addr(&server.edge_https))
        .build()
        .unwrap();
    let status = |url: String, proto: Option<&'static str>| {
        let client = client.clone();
        async move {
            let mut rb = client.get(url);
            if let Some(p) = proto {
                rb = rb.header("x-forwarded-proto", p);
            }
            rb.send()
                .await
                .expect("request through the edge")
                .status()
                .as_u16()
        }
    };
    // Over the edge's TLS listener the gateway sees aws:SecureTransport = true...
    let port = |url: &str| addr(url).port();
    let https = status(
        format!("https://{site}:{}/index.html", port(&server.edge_https)),
        None,
    )
    .await;
    assert_eq!(https, 200);
    // ...over its plain listener false, whatever the viewer claims.
    let client_http = reqwest::Client::builder()
        .resolve(site, addr(&server.edge_http))
        .build()
        .unwrap();
    let http = client_http
        .get(format!(
            "http://{site}:{}/plain.html",
            port(&server.edge_http)
        ))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("request through the edge")
        .status()
        .as_u16();
    assert_eq!(http, 403);
}

/// Attaches an identity policy to a user with `strata admin user set-policy`.
fn set_user_policy(server: &Server, access_key: &str, policy: serde_json::Value) {
    let out = crate::users::admin_as(
        server,
        (crate::harness::ACCESS_KEY, crate::harness::SECRET_KEY),
        &["user", "set-policy", access_key, "-"],
        Some(policy.to_string().as_bytes()),
    );
    assert!(
        out.status.success(),
        "set-policy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn get_status(s3: &Client, bucket: &str, key: &str) -> u16 {
    match s3.get_object().bucket(bucket).key(key).send().await {
        Ok(_) => 200,
        Err(e) => status_and_code(&e).0,
    }
}

async fn put_status(s3: &Client, bucket: &str, key: &str) -> u16 {
    let body = aws_sdk_s3::primitives::ByteStream::from_static(b"data");
    match s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body)
        .send()
        .await
    {
        Ok(_) => 200,
        Err(e) => status_and_code(&e).0,
    }
}

#[tokio::test]
async fn owner_other_user_and_anonymous() {
    let server = Server::start();
    let root = server.client();
    let alice = crate::users::add_user(
        &server,
        "alice",
        "ALICEKEY0000000000001",
        "alice-secret-0123456789",
    );
    let bob = crate::users::add_user(
        &server,
        "bob",
        "BOBKEY00000000000001",
        "bob-secret-0123456789",
    );
    alice
        .create_bucket()
        .bucket("alice-b")
        .send()
        .await
        .unwrap();
    put(&alice, "alice-b", "doc.txt", b"alice's").await;
    bob.create_bucket().bucket("bob-b").send().await.unwrap();

    // Owners act on their buckets; others (users and anonymous) get nothing; root gets everything.
    assert_eq!(get_status(&alice, "alice-b", "doc.txt").await, 200);
    assert_eq!(get_status(&bob, "alice-b", "doc.txt").await, 403);
    assert_eq!(put_status(&bob, "alice-b", "bob.txt").await, 403);
    assert!(
        bob.list_objects_v2()
            .bucket("alice-b")
            .send()
            .await
            .is_err()
    );
    assert_eq!(anon(&server, "GET", "/alice-b/doc.txt").status, 403);
    assert_eq!(get_status(&root, "alice-b", "doc.txt").await, 200);
    assert_eq!(put_status(&bob, "bob-b", "mine").await, 200);
    let err = alice
        .put_bucket_policy()
        .bucket("bob-b")
        .policy(public_read("bob-b").to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));

    // A bucket policy naming bob by ARN lets him read (not write); it is not public, so BPA allows it.
    set_policy(
        &alice,
        "alice-b",
        json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"},
             "Action": "s3:GetObject", "Resource": "arn:aws:s3:::alice-b/*"},
            {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::123456789012:user/alice"},
             "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::alice-b/*"}
        ]}),
    )
    .await;
    assert_eq!(get_status(&bob, "alice-b", "doc.txt").await, 200);
    assert_eq!(put_status(&bob, "alice-b", "bob.txt").await, 403);
    assert_eq!(anon(&server, "GET", "/alice-b/doc.txt").status, 403);
    // The explicit Deny binds the owner.
    let err = alice
        .delete_object()
        .bucket("alice-b")
        .key("doc.txt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 403);
    // bob may copy what he may read into his own bucket.
    bob.copy_object()
        .bucket("bob-b")
        .key("copy.txt")
        .copy_source("alice-b/doc.txt")
        .send()
        .await
        .unwrap();

    // An identity policy grants bob writes under uploads/ of alice's bucket...
    set_user_policy(
        &server,
        "BOBKEY00000000000001",
        json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::alice-b/uploads/*"},
            {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bob-b/private/*"}
        ]}),
    );
    assert_eq!(put_status(&bob, "alice-b", "uploads/1.txt").await, 200);
    assert_eq!(put_status(&bob, "alice-b", "elsewhere.txt").await, 403);
    // ...and its Deny binds him even in his own bucket.
    assert_eq!(put_status(&bob, "bob-b", "private/x").await, 200);
    assert_eq!(get_status(&bob, "bob-b", "private/x").await, 403);
    assert_eq!(get_status(&bob, "bob-b", "mine").await, 200);

    // A user sees only their own buckets.
    let names: Vec<String> = bob
        .list_buckets()
        .send()
        .await
        .unwrap()
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect();
    assert_eq!(names, ["bob-b"]);
}

fn ownership_controls(
    o: aws_sdk_s3::types::ObjectOwnership,
) -> aws_sdk_s3::types::OwnershipControls {
    aws_sdk_s3::types::OwnershipControls::builder()
        .rules(
            aws_sdk_s3::types::OwnershipControlsRule::builder()
                .object_ownership(o)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

async fn object_grants(s3: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let acl = s3
        .get_object_acl()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    acl.grants()
        .iter()
        .map(|g| {
            let who = g.grantee().map_or(String::new(), |w| {
                w.uri().or(w.id()).unwrap_or_default().to_owned()
            });
            (
                who,
                g.permission()
                    .map_or(String::new(), |p| p.as_str().to_owned()),
            )
        })
        .collect()
}

#[tokio::test]
async fn acls_and_ownership_controls() {
    use aws_sdk_s3::types::{BucketCannedAcl, ObjectCannedAcl, ObjectOwnership};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("acl-b").send().await.unwrap();
    put(&s3, "acl-b", "private.txt", b"private").await;

    // ACLs are disabled by default: the owner's FULL_CONTROL is the whole ACL, public ACLs are refused.
    let oc = s3
        .get_bucket_ownership_controls()
        .bucket("acl-b")
        .send()
        .await
        .unwrap();
    let rule = &oc.ownership_controls().unwrap().rules()[0];
    assert_eq!(
        rule.object_ownership(),
        &ObjectOwnership::BucketOwnerEnforced
    );
    let acl = s3.get_bucket_acl().bucket("acl-b").send().await.unwrap();
    assert_eq!(
        acl.owner().and_then(|o| o.id()),
        Some(crate::harness::ACCESS_KEY)
    );
    assert_eq!(acl.grants().len(), 1);
    assert_eq!(
        object_grants(&s3, "acl-b", "private.txt").await,
        [(
            crate::harness::ACCESS_KEY.to_owned(),
            "FULL_CONTROL".to_owned()
        )]
    );
    let body = || aws_sdk_s3::primitives::ByteStream::from_static(b"public");
    let err = s3
        .put_object()
        .bucket("acl-b")
        .key("pub.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .body(body())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "AccessControlListNotSupported".into())
    );
    let err = s3
        .put_bucket_acl()
        .bucket("acl-b")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "AccessControlListNotSupported".into())
    );
    s3.put_object()
        .bucket("acl-b")
        .key("bofc.txt")
        .acl(ObjectCannedAcl::BucketOwnerFullControl)
        .body(body())
        .send()
        .await
        .unwrap();
    let err = s3
        .create_bucket()
        .bucket("acl-new")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "InvalidBucketAclWithObjectOwnership".into())
    );

    // ObjectWriter turns ACLs on; Block Public Access still refuses public ones until it is removed.
    s3.put_bucket_ownership_controls()
        .bucket("acl-b")
        .ownership_controls(ownership_controls(ObjectOwnership::ObjectWriter))
        .send()
        .await
        .unwrap();
    let err = s3
        .put_object_acl()
        .bucket("acl-b")
        .key("private.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    s3.delete_public_access_block()
        .bucket("acl-b")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("acl-b")
        .key("pub.txt")
        .acl(ObjectCannedAcl::PublicRead)
        .body(body())
        .send()
        .await
        .unwrap();
    let resp = anon(&server, "GET", "/acl-b/pub.txt");
    assert_status(&resp, 200, None);
    assert!(
        resp.headers.iter().all(|(n, _)| !n.starts_with("x-strata")),
        "the stored ACL is not a header: {:?}",
        resp.headers
    );
    let head = s3
        .head_object()
        .bucket("acl-b")
        .key("pub.txt")
        .send()
        .await
        .unwrap();
    assert!(
        head.metadata().is_none_or(|m| m.is_empty()),
        "{:?}",
        head.metadata()
    );
    assert_status(
        &anon(&server, "GET", "/acl-b/private.txt"),
        403,
        Some("AccessDenied"),
    );
    assert_status(
        &anon(&server, "GET", "/acl-b?list-type=2"),
        403,
        Some("AccessDenied"),
    );
    let grants = object_grants(&s3, "acl-b", "pub.txt").await;
    assert!(
        grants.contains(&(
            "http://acs.amazonaws.com/groups/global/AllUsers".to_owned(),
            "READ".to_owned()
        )),
        "{grants:?}"
    );
    // A copy gets its own (private) ACL.
    s3.copy_object()
        .bucket("acl-b")
        .key("copy.txt")
        .copy_source("acl-b/pub.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(object_grants(&s3, "acl-b", "copy.txt").await.len(), 1);
    assert_status(
        &anon(&server, "GET", "/acl-b/copy.txt"),
        403,
        Some("AccessDenied"),
    );

    // A public-read bucket ACL lets anonymous callers list, not write.
    s3.put_bucket_acl()
        .bucket("acl-b")
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .unwrap();
    assert_status(&anon(&server, "GET", "/acl-b?list-type=2"), 200, None);
    let resp = RawRequest::new("PUT", "/acl-b/anon.txt", "")
        .body("x")
        .send(&server.endpoint);
    assert_status(&resp, 403, Some("AccessDenied"));

    // IgnorePublicAcls: the public ACLs grant nothing.
    s3.put_public_access_block()
        .bucket("acl-b")
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .ignore_public_acls(true)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_status(
        &anon(&server, "GET", "/acl-b/pub.txt"),
        403,
        Some("AccessDenied"),
    );
    assert_status(
        &anon(&server, "GET", "/acl-b?list-type=2"),
        403,
        Some("AccessDenied"),
    );
    s3.delete_public_access_block()
        .bucket("acl-b")
        .send()
        .await
        .unwrap();

    // Back to BucketOwnerEnforced: refused while the bucket ACL is public; afterwards ACLs count no more.
    let err = s3
        .put_bucket_ownership_controls()
        .bucket("acl-b")
        .ownership_controls(ownership_controls(ObjectOwnership::BucketOwnerEnforced))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "InvalidBucketAclWithObjectOwnership".into())
    );
    s3.put_bucket_acl()
        .bucket("acl-b")
        .acl(BucketCannedAcl::Private)
        .send()
        .await
        .unwrap();
    s3.put_bucket_ownership_controls()
        .bucket("acl-b")
        .ownership_controls(ownership_controls(ObjectOwnership::BucketOwnerEnforced))
        .send()
        .await
        .unwrap();
    assert_status(
        &anon(&server, "GET", "/acl-b/pub.txt"),
        403,
        Some("AccessDenied"),
    );

    // Deleting the controls: Get says there are none, and ACLs count again.
    s3.delete_bucket_ownership_controls()
        .bucket("acl-b")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_bucket_ownership_controls()
        .bucket("acl-b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (404, "OwnershipControlsNotFoundError".into())
    );
    assert_status(&anon(&server, "GET", "/acl-b/pub.txt"), 200, None);
}

/// Puts `data` at `bucket/key` and returns the new version id.
async fn put_version(
    s3: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
    acl: Option<aws_sdk_s3::types::ObjectCannedAcl>,
) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .set_acl(acl)
        .body(aws_sdk_s3::primitives::ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
    out.version_id().unwrap().to_owned()
}

#[tokio::test]
async fn object_acls_are_read_from_the_named_version() {
    use aws_sdk_s3::types::{
        BucketVersioningStatus, ObjectCannedAcl, ObjectOwnership, VersioningConfiguration,
    };
    let server = Server::start();
    let root = server.client();
    let bob = crate::users::add_user(
        &server,
        "bob",
        "BOBKEY00000000000001",
        "bob-secret-0123456789",
    );
    root.create_bucket().bucket("vbk").send().await.unwrap();
    root.put_bucket_versioning()
        .bucket("vbk")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap();
    root.put_bucket_ownership_controls()
        .bucket("vbk")
        .ownership_controls(ownership_controls(ObjectOwnership::ObjectWriter))
        .send()
        .await
        .unwrap();
    root.delete_public_access_block()
        .bucket("vbk")
        .send()
        .await
        .unwrap();
    set_policy(
        &root,
        "vbk",
        json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"},
             "Action": "s3:PutObject", "Resource": "arn:aws:s3:::vbk/*"}
        ]}),
    )
    .await;

    // Owning the current version grants nothing on root's older one.
    let v1 = put_version(&root, "vbk", "doc", b"root's", None).await;
    let v2 = put_version(&bob, "vbk", "doc", b"bob's", None).await;
    assert_eq!(get_status(&bob, "vbk", "doc").await, 200);
    let get_v = |who: &Client, v: &str| {
        who.get_object()
            .bucket("vbk")
            .key("doc")
            .version_id(v)
            .send()
    };
    assert!(get_v(&bob, &v2).await.is_ok());
    let err = get_v(&bob, &v1).await.unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    let err = bob
        .get_object_acl()
        .bucket("vbk")
        .key("doc")
        .version_id(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    // Ownership is FULL_CONTROL on the object: reading it and its ACL, not deleting or tagging it.
    bob.get_object_acl()
        .bucket("vbk")
        .key("doc")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    for v in [&v1, &v2] {
        let err = bob
            .delete_object()
            .bucket("vbk")
            .key("doc")
            .version_id(v)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err), (403, "AccessDenied".into()), "{v}");
    }
    let err = bob
        .delete_object()
        .bucket("vbk")
        .key("doc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    let del = bob
        .delete_objects()
        .bucket("vbk")
        .delete(
            Delete::builder()
                .objects(
                    ObjectIdentifier::builder()
                        .key("doc")
                        .version_id(&v1)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(del.errors().len(), 1, "{del:?}");
    let err = bob
        .put_object_tagging()
        .bucket("vbk")
        .key("doc")
        .tagging(
            aws_sdk_s3::types::Tagging::builder()
                .tag_set(
                    aws_sdk_s3::types::Tag::builder()
                        .key("k")
                        .value("v")
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 403);
    // Copying an older version bob does not own is refused too.
    let err = bob
        .copy_object()
        .bucket("vbk")
        .key("stolen")
        .copy_source(format!("vbk/doc?versionId={v1}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    assert_eq!(
        get_v(&root, &v1).await.unwrap().version_id(),
        Some(v1.as_str())
    );

    // A public-read current version does not publish the private versions before it.
    let p1 = put_version(&root, "vbk", "pub", b"private", None).await;
    let p2 = put_version(
        &root,
        "vbk",
        "pub",
        b"public",
        Some(ObjectCannedAcl::PublicRead),
    )
    .await;
    assert_status(&anon(&server, "GET", "/vbk/pub"), 200, None);
    assert_status(
        &anon(&server, "GET", &format!("/vbk/pub?versionId={p2}")),
        200,
        None,
    );
    assert_status(
        &anon(&server, "GET", &format!("/vbk/pub?versionId={p1}")),
        403,
        Some("AccessDenied"),
    );
    // ...and a public older version stays readable by its id after a private one replaces it.
    put_version(&root, "vbk", "pub", b"private again", None).await;
    assert_status(&anon(&server, "GET", "/vbk/pub"), 403, Some("AccessDenied"));
    assert_status(
        &anon(&server, "GET", &format!("/vbk/pub?versionId={p2}")),
        200,
        None,
    );
}

#[tokio::test]
async fn acl_headers_need_put_object_acl() {
    use aws_sdk_s3::types::{ObjectCannedAcl, ObjectOwnership};
    let server = Server::start();
    let root = server.client();
    let bob = crate::users::add_user(
        &server,
        "bob",
        "BOBKEY00000000000001",
        "bob-secret-0123456789",
    );
    root.create_bucket().bucket("aclw").send().await.unwrap();
    root.put_bucket_ownership_controls()
        .bucket("aclw")
        .ownership_controls(ownership_controls(ObjectOwnership::ObjectWriter))
        .send()
        .await
        .unwrap();
    put(&root, "aclw", "src", b"source").await;
    let grant = |actions: &[&str]| {
        json!({"Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/bob"},
             "Action": actions, "Resource": "arn:aws:s3:::aclw/*"}
        ]})
    };
    set_policy(&root, "aclw", grant(&["s3:PutObject", "s3:GetObject"])).await;
    let body = || aws_sdk_s3::primitives::ByteStream::from_static(b"data");
    let acl = ObjectCannedAcl::Private;

    // Each write with x-amz-acl is refused without s3:PutObjectAcl; the same write without it goes through.
    let put_acl = bob
        .put_object()
        .bucket("aclw")
        .key("p")
        .acl(acl.clone())
        .body(body())
        .send()
        .await;
    assert_eq!(
        status_and_code(&put_acl.unwrap_err()),
        (403, "AccessDenied".into())
    );
    let copy_acl = bob
        .copy_object()
        .bucket("aclw")
        .key("c")
        .copy_source("aclw/src")
        .acl(acl.clone())
        .send()
        .await;
    assert_eq!(
        status_and_code(&copy_acl.unwrap_err()),
        (403, "AccessDenied".into())
    );
    let mpu_acl = bob
        .create_multipart_upload()
        .bucket("aclw")
        .key("m")
        .acl(acl.clone())
        .send()
        .await;
    assert_eq!(
        status_and_code(&mpu_acl.unwrap_err()),
        (403, "AccessDenied".into())
    );
    assert_eq!(put_status(&bob, "aclw", "p").await, 200);
    bob.copy_object()
        .bucket("aclw")
        .key("c")
        .copy_source("aclw/src")
        .send()
        .await
        .unwrap();

    // With s3:PutObjectAcl as well, all three may set the ACL.
    set_policy(
        &root,
        "aclw",
        grant(&["s3:PutObject", "s3:GetObject", "s3:PutObjectAcl"]),
    )
    .await;
    bob.put_object()
        .bucket("aclw")
        .key("p")
        .acl(acl.clone())
        .body(body())
        .send()
        .await
        .unwrap();
    bob.copy_object()
        .bucket("aclw")
        .key("c")
        .copy_source("aclw/src")
        .acl(acl.clone())
        .send()
        .await
        .unwrap();
    bob.create_multipart_upload()
        .bucket("aclw")
        .key("m")
        .acl(acl)
        .send()
        .await
        .unwrap();
}
