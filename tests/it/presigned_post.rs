//! Browser-based uploads (POST Object): raw multipart/form-data requests signed with SigV4 over a policy
//! document, as an HTML form in a browser sends them.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{Duration, Utc};
use strata_bench::sigv4::Signer;

use crate::harness::{ACCESS_KEY, SECRET_KEY, Server, client_for};

const BOUNDARY: &str = "----strataFormBoundary7MA4YWxkTrZu0gW";

/// A form under construction: the fields, then the file.
struct PostForm {
    fields: Vec<(String, String)>,
    filename: String,
    file: Vec<u8>,
}

impl PostForm {
    /// A form signed by `keys`, whose policy (expiring at `expires_in` from now) has `conditions` plus the
    /// credential, algorithm and date conditions every signed form needs; `fields` are sent as given.
    fn signed(
        keys: (&str, &str),
        bucket: &str,
        expires_in: Duration,
        conditions: &[serde_json::Value],
        fields: &[(&str, &str)],
    ) -> Self {
        let now = Utc::now();
        let date = now.format("%Y%m%d").to_string();
        let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
        let signer = Signer::new(keys.0, keys.1, "us-east-1");
        let credential = signer.credential(&date);
        let mut all = vec![
            serde_json::json!({ "bucket": bucket }),
            serde_json::json!({ "x-amz-credential": credential }),
            serde_json::json!({ "x-amz-algorithm": "AWS4-HMAC-SHA256" }),
            serde_json::json!({ "x-amz-date": amz_date }),
        ];
        all.extend_from_slice(conditions);
        let expiration = (now + expires_in)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        let doc = serde_json::json!({ "expiration": expiration, "conditions": all });
        let policy = B64.encode(doc.to_string());
        let signature = signer.signature(&date, &policy);
        let mut form = PostForm {
            fields: fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            filename: "photo.png".into(),
            file: b"PNG bytes of a small picture".to_vec(),
        };
        form.fields.extend([
            ("X-Amz-Credential".to_owned(), credential),
            ("X-Amz-Algorithm".to_owned(), "AWS4-HMAC-SHA256".to_owned()),
            ("X-Amz-Date".to_owned(), amz_date),
            ("Policy".to_owned(), policy),
            ("X-Amz-Signature".to_owned(), signature),
        ]);
        form
    }

    fn set(&mut self, name: &str, value: &str) {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(f) => f.1 = value.to_owned(),
            None => self.fields.push((name.to_owned(), value.to_owned())),
        }
    }

    /// The encoded fields, without the file part or the closing boundary.
    fn fields_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, value) in &self.fields {
            out.extend_from_slice(
                format!(
                    "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        out
    }

    fn body(&self) -> Vec<u8> {
        let mut out = self.fields_body();
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n",
                self.filename
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.file);
        out.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        out
    }

    async fn post(
        &self,
        server: &Server,
        bucket: &str,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let resp = http()
            .post(format!("{}/{bucket}", server.endpoint))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={BOUNDARY}"),
            )
            .body(self.body())
            .send()
            .await
            .expect("POST");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.text().await.unwrap_or_default())
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

const ROOT: (&str, &str) = (ACCESS_KEY, SECRET_KEY);

fn hour() -> Duration {
    Duration::hours(1)
}

/// The form most tests start from: a key under uploads/, a Content-Type and one metadata field, all allowed.
fn standard(bucket: &str) -> PostForm {
    PostForm::signed(
        ROOT,
        bucket,
        hour(),
        &[
            serde_json::json!(["starts-with", "$key", "uploads/"]),
            serde_json::json!(["starts-with", "$Content-Type", "image/"]),
            serde_json::json!({ "x-amz-meta-color": "blue" }),
            serde_json::json!(["content-length-range", 1, 1024]),
        ],
        &[
            ("key", "uploads/${filename}"),
            ("Content-Type", "image/png"),
            ("x-amz-meta-color", "blue"),
        ],
    )
}

async fn setup(bucket: &str) -> Server {
    let server = Server::start();
    server
        .client()
        .create_bucket()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    server
}

fn code_and_message(body: &str) -> (String, String) {
    let tag = |t: &str| {
        body.split_once(&format!("<{t}>"))
            .and_then(|(_, rest)| rest.split_once(&format!("</{t}>")))
            .map(|(v, _)| v.replace("&quot;", "\""))
            .unwrap_or_default()
    };
    (tag("Code"), tag("Message"))
}

#[tokio::test]
async fn a_valid_form_uploads_the_file_with_its_type_and_metadata() {
    let server = setup("forms").await;
    let form = standard("forms");
    let (status, headers, body) = form.post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        headers["location"].to_str().unwrap(),
        format!("{}/forms/uploads/photo.png", server.endpoint)
    );
    let got = server
        .client()
        .get_object()
        .bucket("forms")
        .key("uploads/photo.png")
        .send()
        .await
        .unwrap();
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_type(), Some("image/png"));
    assert_eq!(
        got.metadata()
            .and_then(|m| m.get("color"))
            .map(String::as_str),
        Some("blue")
    );
    let bytes = got.body.collect().await.unwrap().into_bytes();
    assert_eq!(bytes.as_ref(), form.file.as_slice());
}

#[tokio::test]
async fn success_action_redirect_and_status() {
    let server = setup("forms").await;
    let conditions = [
        serde_json::json!(["starts-with", "$key", ""]),
        serde_json::json!([
            "starts-with",
            "$success_action_redirect",
            "https://app.example/"
        ]),
        serde_json::json!(["starts-with", "$success_action_status", ""]),
    ];
    let form = PostForm::signed(
        ROOT,
        "forms",
        hour(),
        &conditions,
        &[
            ("key", "a b.txt"),
            ("success_action_redirect", "https://app.example/done?x=1"),
        ],
    );
    let (status, headers, _) = form.post(&server, "forms").await;
    assert_eq!(status, 303);
    let location = headers["location"].to_str().unwrap();
    let etag = headers["etag"].to_str().unwrap().trim_matches('"');
    assert_eq!(
        location,
        format!("https://app.example/done?x=1&bucket=forms&key=a%20b.txt&etag=%22{etag}%22")
    );

    // A condition on a field the form leaves out fails (the field counts as empty).
    let (status, _, body) = PostForm::signed(ROOT, "forms", hour(), &conditions, &[("key", "k")])
        .post(&server, "forms")
        .await;
    assert_eq!(status, 403, "{body}");

    let conditions = [
        serde_json::json!(["starts-with", "$key", ""]),
        serde_json::json!(["starts-with", "$success_action_status", ""]),
    ];
    let form = PostForm::signed(
        ROOT,
        "forms",
        hour(),
        &conditions,
        &[("key", "created.txt"), ("success_action_status", "201")],
    );
    let (status, headers, body) = form.post(&server, "forms").await;
    assert_eq!(status, 201, "{body}");
    let etag = headers["etag"].to_str().unwrap();
    assert!(body.contains("<PostResponse"), "{body}");
    assert!(
        body.contains(&format!(
            "<Location>{}/forms/created.txt</Location>",
            server.endpoint
        )),
        "{body}"
    );
    assert!(
        body.contains("<Bucket>forms</Bucket><Key>created.txt</Key>"),
        "{body}"
    );
    assert!(
        body.contains(&format!("<ETag>{}</ETag>", etag.replace('"', "&quot;"))),
        "{body}"
    );

    let mut form = PostForm::signed(
        ROOT,
        "forms",
        hour(),
        &conditions,
        &[("key", "ok.txt"), ("success_action_status", "200")],
    );
    form.file = b"two hundred".to_vec();
    let (status, _, body) = form.post(&server, "forms").await;
    assert_eq!((status, body.as_str()), (200, ""));
}

#[tokio::test]
async fn a_tampered_policy_or_signature_is_refused() {
    let server = setup("forms").await;
    let mut form = standard("forms");
    let policy = form
        .fields
        .iter()
        .find(|(n, _)| n == "Policy")
        .unwrap()
        .1
        .clone();
    let doc = String::from_utf8(B64.decode(&policy).unwrap()).unwrap();
    let widened = B64.encode(doc.replace("uploads/", ""));
    form.set("Policy", &widened);
    form.set("key", "elsewhere/${filename}");
    let (status, _, body) = form.post(&server, "forms").await;
    assert_eq!(status, 403);
    assert_eq!(code_and_message(&body).0, "SignatureDoesNotMatch", "{body}");

    let mut form = standard("forms");
    form.set("X-Amz-Signature", &"0".repeat(64));
    let (status, _, body) = form.post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "SignatureDoesNotMatch")
    );

    let form = PostForm::signed(
        ("NOSUCHUSER", "whatever-secret"),
        "forms",
        hour(),
        &[serde_json::json!(["starts-with", "$key", ""])],
        &[("key", "k")],
    );
    let (status, _, body) = form.post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "InvalidAccessKeyId")
    );
    assert_no_object(&server, "forms").await;
}

#[tokio::test]
async fn policy_conditions_are_enforced() {
    let server = setup("forms").await;
    let expired = PostForm::signed(
        ROOT,
        "forms",
        Duration::seconds(-5),
        &[serde_json::json!(["starts-with", "$key", ""])],
        &[("key", "k")],
    );
    let (status, _, body) = expired.post(&server, "forms").await;
    assert_eq!(status, 403);
    assert_eq!(
        code_and_message(&body),
        (
            "AccessDenied".into(),
            "Invalid according to Policy: Policy expired.".into()
        )
    );

    let mut extra = standard("forms");
    extra.set("x-amz-meta-size", "large");
    let (status, _, body) = extra.post(&server, "forms").await;
    assert_eq!(status, 403);
    assert_eq!(
        code_and_message(&body),
        (
            "AccessDenied".into(),
            "Invalid according to Policy: Extra input fields: x-amz-meta-size".into()
        )
    );

    let mut outside = standard("forms");
    outside.set("key", "private/${filename}");
    let (status, _, body) = outside.post(&server, "forms").await;
    assert_eq!(status, 403);
    assert_eq!(
        code_and_message(&body),
        (
            "AccessDenied".into(),
            r#"Invalid according to Policy: Policy Condition failed: ["starts-with", "$key", "uploads/"]"#
                .into()
        )
    );

    let mut wrong_meta = standard("forms");
    wrong_meta.set("x-amz-meta-color", "red");
    let (status, _, body) = wrong_meta.post(&server, "forms").await;
    assert_eq!(status, 403);
    assert_eq!(
        code_and_message(&body).1,
        r#"Invalid according to Policy: Policy Condition failed: ["eq", "$x-amz-meta-color", "blue"]"#
    );

    // Another bucket than the policy's.
    server
        .client()
        .create_bucket()
        .bucket("other")
        .send()
        .await
        .unwrap();
    let (status, _, body) = standard("forms").post(&server, "other").await;
    assert_eq!(status, 403);
    assert_eq!(
        code_and_message(&body).1,
        r#"Invalid according to Policy: Policy Condition failed: ["eq", "$bucket", "forms"]"#
    );
    assert_no_object(&server, "forms").await;
    assert_no_object(&server, "other").await;
}

#[tokio::test]
async fn content_length_range_both_ways() {
    let server = setup("forms").await;
    let mut big = standard("forms");
    big.file = vec![7u8; 1025];
    let (status, _, body) = big.post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "EntityTooLarge"),
        "{body}"
    );

    let mut empty = standard("forms");
    empty.file = Vec::new();
    let (status, _, body) = empty.post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "EntityTooSmall"),
        "{body}"
    );
    assert_no_object(&server, "forms").await;

    let mut edge = standard("forms");
    edge.file = vec![7u8; 1024];
    let (status, _, body) = edge.post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn bad_forms_get_clear_errors() {
    let server = setup("forms").await;
    // Not multipart/form-data.
    let resp = http()
        .post(format!("{}/forms", server.endpoint))
        .header("content-type", "text/plain")
        .body("key=x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 412);

    // No key field.
    let form = PostForm::signed(
        ROOT,
        "forms",
        hour(),
        &[serde_json::json!(["starts-with", "$key", ""])],
        &[],
    );
    let (status, _, body) = form.post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "InvalidArgument"),
        "{body}"
    );

    // No file part.
    let mut no_file = standard("forms").fields_body();
    no_file.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    let resp = http()
        .post(format!("{}/forms", server.endpoint))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(no_file)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let text = resp.text().await.unwrap();
    assert_eq!(
        code_and_message(&text),
        (
            "InvalidArgument".into(),
            "POST requires exactly one file upload per request.".into()
        )
    );

    // A policy that is not base64 JSON.
    let mut garbled = standard("forms");
    garbled.set("Policy", "not base64!");
    let (status, _, body) = garbled.post(&server, "forms").await;
    assert_eq!(status, 403, "the signature no longer matches: {body}");

    // Unsigned forms are anonymous requests: refused unless a policy grants them.
    let anonymous = PostForm {
        fields: vec![("key".into(), "anon.txt".into())],
        filename: "a.txt".into(),
        file: b"x".to_vec(),
    };
    let (status, _, body) = anonymous.post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "AccessDenied")
    );
    assert_no_object(&server, "forms").await;
}

#[tokio::test]
async fn a_user_signed_form_makes_the_user_the_owner() {
    let server = setup("forms").await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "admin",
            "user",
            "add",
            "uploader",
            "--access-key",
            "UPLOADERKEY",
        ])
        .args([
            "--secret-key",
            "uploader-secret-1",
            "--endpoint",
            &server.endpoint,
        ])
        .env("STRATA_ACCESS_KEY", ACCESS_KEY)
        .env("STRATA_SECRET_KEY", SECRET_KEY)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uploader = client_for(&server.endpoint, "UPLOADERKEY", "uploader-secret-1");
    uploader
        .create_bucket()
        .bucket("theirs")
        .send()
        .await
        .unwrap();
    let form = PostForm::signed(
        ("UPLOADERKEY", "uploader-secret-1"),
        "theirs",
        hour(),
        &[serde_json::json!(["eq", "$key", "mine.txt"])],
        &[("key", "mine.txt")],
    );
    let (status, _, body) = form.post(&server, "theirs").await;
    assert_eq!(status, 204, "{body}");
    let list = uploader
        .list_objects_v2()
        .bucket("theirs")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owner = list.contents()[0].owner().unwrap();
    assert_eq!(
        (owner.id(), owner.display_name()),
        (Some("UPLOADERKEY"), Some("uploader"))
    );
}

async fn assert_no_object(server: &Server, bucket: &str) {
    let list = server
        .client()
        .list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    assert_eq!(list.key_count(), Some(0), "{:?}", list.contents());
}

#[tokio::test]
async fn a_large_file_streams_through() {
    let server = setup("forms").await;
    let mut form = PostForm::signed(
        ROOT,
        "forms",
        hour(),
        &[
            serde_json::json!(["eq", "$key", "big.bin"]),
            serde_json::json!(["content-length-range", 0, 16 << 20]),
        ],
        &[("key", "big.bin")],
    );
    form.file = crate::harness::pattern((9 << 20) + 13, 6);
    let (status, _, body) = form.post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");
    let got = crate::harness::get(&server.client(), "forms", "big.bin").await;
    assert!(
        got == form.file,
        "the stored object differs from the uploaded file"
    );
}

#[tokio::test]
async fn an_unsigned_form_is_allowed_where_a_bucket_policy_grants_it() {
    let server = setup("drop").await;
    let root = server.client();
    root.delete_public_access_block()
        .bucket("drop")
        .send()
        .await
        .unwrap();
    root.put_bucket_policy()
        .bucket("drop")
        .policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"s3:PutObject","Resource":"arn:aws:s3:::drop/inbox/*"}]}"#,
        )
        .send()
        .await
        .unwrap();
    let form = |key: &str| PostForm {
        fields: vec![("key".into(), key.into())],
        filename: "note.txt".into(),
        file: b"anonymous note".to_vec(),
    };
    let (status, _, body) = form("inbox/${filename}").post(&server, "drop").await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        crate::harness::get(&root, "drop", "inbox/note.txt").await,
        b"anonymous note"
    );
    let (status, _, body) = form("elsewhere/note.txt").post(&server, "drop").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "AccessDenied")
    );
}

#[tokio::test]
async fn content_md5_is_checked() {
    use md5::Digest as _;
    let server = setup("forms").await;
    let signed = |md5: &str| {
        PostForm::signed(
            ROOT,
            "forms",
            hour(),
            &[
                serde_json::json!(["eq", "$key", "sum.txt"]),
                serde_json::json!(["starts-with", "$Content-MD5", ""]),
            ],
            &[("key", "sum.txt"), ("Content-MD5", md5)],
        )
    };
    let form = signed("");
    let right = B64.encode(md5::Md5::digest(&form.file));
    let wrong = B64.encode(md5::Md5::digest(b"something else"));
    let (status, _, body) = signed(&wrong).post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "BadDigest"),
        "{body}"
    );
    let (status, _, body) = signed("not-base64!").post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "InvalidDigest"),
        "{body}"
    );
    assert_no_object(&server, "forms").await;
    let (status, _, body) = signed(&right).post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");
}

#[tokio::test]
async fn the_acl_field_follows_the_bucket_ownership_settings() {
    use aws_sdk_s3::types::{ObjectOwnership, OwnershipControls, OwnershipControlsRule};
    let server = setup("forms").await;
    let form = |acl: &str| {
        PostForm::signed(
            ROOT,
            "forms",
            hour(),
            &[
                serde_json::json!(["eq", "$key", "shared.txt"]),
                serde_json::json!({ "acl": acl }),
            ],
            &[("key", "shared.txt"), ("acl", acl)],
        )
    };
    // ACLs are disabled by default (BucketOwnerEnforced).
    let (status, _, body) = form("public-read").post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "AccessControlListNotSupported"),
        "{body}"
    );
    let (status, _, body) = form("private").post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");

    let root = server.client();
    root.put_bucket_ownership_controls()
        .bucket("forms")
        .ownership_controls(
            OwnershipControls::builder()
                .rules(
                    OwnershipControlsRule::builder()
                        .object_ownership(ObjectOwnership::ObjectWriter)
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    root.delete_public_access_block()
        .bucket("forms")
        .send()
        .await
        .unwrap();
    let (status, _, body) = form("public-read").post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");
    let resp = http()
        .get(format!("{}/forms/shared.txt", server.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "anonymous read of a public-read object"
    );
    let (status, _, body) = form("public-read-write-bogus").post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "InvalidArgument"),
        "{body}"
    );

    // A signer allowed s3:PutObject but not s3:PutObjectAcl may upload, but not with an acl field.
    let carol = ("CAROLKEY000000000001", "carol-secret-0123456789");
    crate::users::add_user(&server, "carol", carol.0, carol.1);
    root.put_bucket_policy()
        .bucket("forms")
        .policy(
            serde_json::json!({"Statement": [{
                "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/carol"},
                "Action": "s3:PutObject", "Resource": "arn:aws:s3:::forms/*"}]})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let carol_form = |acl: Option<&str>| {
        let mut conditions = vec![serde_json::json!(["eq", "$key", "carol.txt"])];
        let mut fields = vec![("key", "carol.txt")];
        if let Some(a) = acl {
            conditions.push(serde_json::json!({ "acl": a }));
            fields.push(("acl", a));
        }
        PostForm::signed(carol, "forms", hour(), &conditions, &fields)
    };
    let (status, _, body) = carol_form(Some("private")).post(&server, "forms").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    let (status, _, body) = carol_form(None).post(&server, "forms").await;
    assert_eq!(status, 204, "{body}");
}

/// A Version 2 form, as boto3's `generate_presigned_post` makes in us-east-1: `AWSAccessKeyId`, `policy`
/// (without the SigV4 conditions) and `signature`, the base64 HMAC-SHA1 of the policy.
fn signed_v2(
    bucket: &str,
    secret: &str,
    conditions: &[serde_json::Value],
    fields: &[(&str, &str)],
) -> PostForm {
    use hmac::{Hmac, Mac};
    let mut all = vec![serde_json::json!({ "bucket": bucket })];
    all.extend_from_slice(conditions);
    let expiration = (Utc::now() + hour())
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    let policy =
        B64.encode(serde_json::json!({ "expiration": expiration, "conditions": all }).to_string());
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(policy.as_bytes());
    let signature = B64.encode(mac.finalize().into_bytes());
    let mut form = PostForm {
        fields: fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        filename: "note.txt".into(),
        file: b"a note from a version 2 form".to_vec(),
    };
    form.fields.extend([
        ("AWSAccessKeyId".to_owned(), ACCESS_KEY.to_owned()),
        ("policy".to_owned(), policy),
        ("signature".to_owned(), signature),
    ]);
    form
}

#[tokio::test]
async fn a_version_2_form_uploads_and_its_policy_still_binds() {
    let server = setup("forms-v2").await;
    let conditions = [
        serde_json::json!(["starts-with", "$key", "uploads/"]),
        serde_json::json!({ "Content-Type": "text/plain" }),
    ];
    let fields = [
        ("key", "uploads/${filename}"),
        ("Content-Type", "text/plain"),
    ];
    let form = signed_v2("forms-v2", SECRET_KEY, &conditions, &fields);
    let (status, _, body) = form.post(&server, "forms-v2").await;
    assert_eq!(status, 204, "{body}");
    let got = server
        .client()
        .get_object()
        .bucket("forms-v2")
        .key("uploads/note.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.content_type(), Some("text/plain"));
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"a note from a version 2 form"
    );
    // Signed with another secret; a key the policy does not allow.
    let forged = signed_v2("forms-v2", "not-the-secret", &conditions, &fields);
    let (status, _, body) = forged.post(&server, "forms-v2").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "SignatureDoesNotMatch"),
        "{body}"
    );
    let mut outside = signed_v2("forms-v2", SECRET_KEY, &conditions, &fields);
    outside.set("key", "elsewhere/note.txt");
    let (status, _, body) = outside.post(&server, "forms-v2").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
    // A signature without its policy is refused, not taken as an anonymous form.
    let mut unsigned = signed_v2("forms-v2", SECRET_KEY, &conditions, &fields);
    unsigned.fields.retain(|(n, _)| n != "policy");
    let (status, _, body) = unsigned.post(&server, "forms-v2").await;
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (400, "InvalidArgument"),
        "{body}"
    );
}

#[tokio::test]
async fn header_condition_keys_come_from_the_form_fields() {
    // A form carries x-amz-storage-class as a field its policy binds; the POST's own headers are not signed,
    // so a policy on s3:x-amz-storage-class must see the field (and ignore a header sent beside it).
    let server = setup("forms-keys").await;
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": "*",
        "Action": "s3:PutObject", "Resource": "arn:aws:s3:::forms-keys/*",
        "Condition": {"StringEquals": {"s3:x-amz-storage-class": "GLACIER"}}}]});
    server
        .client()
        .put_bucket_policy()
        .bucket("forms-keys")
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let form = |class: &str| {
        PostForm::signed(
            ROOT,
            "forms-keys",
            hour(),
            &[
                serde_json::json!(["starts-with", "$key", "uploads/"]),
                serde_json::json!({ "x-amz-storage-class": class }),
            ],
            &[
                ("key", "uploads/${filename}"),
                ("x-amz-storage-class", class),
            ],
        )
    };
    let (status, _, body) = form("STANDARD").post(&server, "forms-keys").await;
    assert_eq!(status, 204, "{body}");
    let glacier = form("GLACIER");
    let resp = http()
        .post(format!("{}/forms-keys", server.endpoint))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("x-amz-storage-class", "STANDARD")
        .body(glacier.body())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.text().await.unwrap_or_default();
    assert_eq!(
        (status, code_and_message(&body).0.as_str()),
        (403, "AccessDenied"),
        "{body}"
    );
}
