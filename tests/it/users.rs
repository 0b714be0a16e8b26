//! Users: `strata admin user add|list|remove|set-policy` (the real CLI against a real server), requests signed
//! with a user's keys, removal, persistence across restart, and the admin API refusing non-root callers.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use crate::harness::{ACCESS_KEY, SECRET_KEY, Server, client_for, status_and_code};

/// Runs `strata admin ARGS --endpoint ...` with the given root (or other) keys in the environment.
pub(crate) fn admin_as(
    server: &Server,
    keys: (&str, &str),
    args: &[&str],
    stdin: Option<&[u8]>,
) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("admin")
        .args(args)
        .args(["--endpoint", &server.endpoint])
        .env("STRATA_ACCESS_KEY", keys.0)
        .env("STRATA_SECRET_KEY", keys.1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strata admin");
    let mut input = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        input.write_all(bytes).expect("write stdin");
    }
    drop(input);
    child.wait_with_output().expect("strata admin")
}

pub(crate) fn admin(server: &Server, args: &[&str]) -> String {
    let out = admin_as(server, (ACCESS_KEY, SECRET_KEY), args, None);
    assert!(
        out.status.success(),
        "strata admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn admin_err(server: &Server, keys: (&str, &str), args: &[&str], stdin: Option<&[u8]>) -> String {
    let out = admin_as(server, keys, args, stdin);
    assert!(!out.status.success(), "strata admin {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The value after `label` in the CLI's output.
fn line_value(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {out}"))
        .trim()
        .to_owned()
}

#[tokio::test]
async fn cli_users_sign_requests_until_removed_and_survive_restart() {
    let mut server = Server::start();
    let out = admin(&server, &["user", "add", "alice"]);
    let (ak, sk) = (
        line_value(&out, "AccessKey:"),
        line_value(&out, "SecretKey:"),
    );
    assert_eq!(ak.len(), 20, "{out}");
    assert_eq!(sk.len(), 40, "{out}");
    let fixed = admin(
        &server,
        &[
            "user",
            "add",
            "bob",
            "--access-key",
            "BOBACCESSKEY",
            "--secret-key",
            "bob-secret-key-123",
        ],
    );
    assert_eq!(line_value(&fixed, "AccessKey:"), "BOBACCESSKEY");

    let alice = client_for(&server.endpoint, &ak, &sk);
    alice.create_bucket().bucket("alices").send().await.unwrap();
    alice
        .put_object()
        .bucket("alices")
        .key("k")
        .body(b"hello".to_vec().into())
        .send()
        .await
        .unwrap();

    let list = admin(&server, &["user", "list"]);
    assert!(list.contains(&ak) && list.contains("alice"), "{list}");
    assert!(
        list.contains("BOBACCESSKEY") && list.contains("bob"),
        "{list}"
    );
    assert!(!list.contains(&sk), "secrets are never listed: {list}");

    // Users persist: restart on the same data directory.
    let tmp = server.take_tempdir();
    let data = server.data.clone();
    drop(server);
    let server = Server::start_on(&data, &[]);
    let _tmp = tmp;
    let alice = client_for(&server.endpoint, &ak, &sk);
    let got = alice
        .get_object()
        .bucket("alices")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.body.collect().await.unwrap().into_bytes().as_ref(),
        b"hello"
    );

    let removed = admin(&server, &["user", "remove", &ak]);
    assert!(removed.contains(&ak), "{removed}");
    let err = alice.list_buckets().send().await.unwrap_err();
    assert_eq!(status_and_code(&err), (403, "InvalidAccessKeyId".into()));
    let list = admin(&server, &["user", "list"]);
    assert!(
        !list.contains(&ak) && list.contains("BOBACCESSKEY"),
        "{list}"
    );
}

#[tokio::test]
async fn admin_api_refuses_non_root_and_bad_input() {
    let server = Server::start();
    admin(
        &server,
        &[
            "user",
            "add",
            "carol",
            "--access-key",
            "CAROLKEY",
            "--secret-key",
            "carol-secret-1",
        ],
    );
    let carol = ("CAROLKEY", "carol-secret-1");
    let err = admin_err(&server, carol, &["user", "list"], None);
    assert!(err.contains("AccessDenied"), "{err}");
    let err = admin_err(&server, carol, &["user", "add", "mallory"], None);
    assert!(err.contains("AccessDenied"), "{err}");
    let err = admin_err(
        &server,
        ("NOSUCHKEY", "whatever-secret"),
        &["user", "list"],
        None,
    );
    assert!(err.contains("InvalidAccessKeyId"), "{err}");
    let root = (ACCESS_KEY, SECRET_KEY);
    let err = admin_err(
        &server,
        root,
        &["user", "add", "dup", "--access-key", "CAROLKEY"],
        None,
    );
    assert!(err.contains("EntityAlreadyExists"), "{err}");
    // Policies name users by display name or access key, so neither may stand for two users.
    for args in [
        ["carol", "--access-key", "CAROL2KEY"],
        ["CAROLKEY", "--access-key", "CAROL3KEY"],
        ["root", "--access-key", "ROOTNAMEKEY"],
        [ACCESS_KEY, "--access-key", "ROOTKEYNAME"],
        ["mallory", "--access-key", "carol"],
        ["mallory", "--access-key", "root"],
    ] {
        let err = admin_err(&server, root, &[&["user", "add"][..], &args].concat(), None);
        assert!(err.contains("EntityAlreadyExists"), "{args:?}: {err}");
    }
    let list = admin(&server, &["user", "list"]);
    assert!(
        !list.contains("mallory") && !list.contains("CAROL2KEY"),
        "{list}"
    );
    let err = admin_err(&server, root, &["user", "add", "bad name"], None);
    assert!(err.contains("InvalidArgument"), "{err}");
    let err = admin_err(&server, root, &["user", "remove", "NOBODY"], None);
    assert!(err.contains("NoSuchEntity"), "{err}");
    let err = admin_err(
        &server,
        root,
        &["user", "set-policy", "CAROLKEY", "-"],
        Some(b"{not json"),
    );
    assert!(err.contains("MalformedPolicy"), "{err}");
    let err = admin_err(
        &server,
        root,
        &["user", "set-policy", "CAROLKEY", "-"],
        Some(br#"{"Version":"2012-10-17"}"#),
    );
    assert!(err.contains("MalformedPolicy"), "{err}");

    // A valid policy is stored and shown; --clear removes it.
    let policy = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
    let out = admin_as(
        &server,
        root,
        &["user", "set-policy", "CAROLKEY", "-"],
        Some(policy),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = admin(&server, &["user", "list"]);
    let row = list.lines().find(|l| l.starts_with("CAROLKEY")).unwrap();
    assert!(row.trim_end().ends_with("yes"), "{list}");
    admin(&server, &["user", "set-policy", "CAROLKEY", "--clear"]);
    let list = admin(&server, &["user", "list"]);
    let row = list.lines().find(|l| l.starts_with("CAROLKEY")).unwrap();
    assert!(row.trim_end().ends_with('-'), "{list}");

    // Anonymous and non-root raw requests to the admin path get AccessDenied, never a bucket.
    let resp = reqwest::Client::new()
        .get(format!("{}/_strata/admin/v1/users", server.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<Code>AccessDenied</Code>")
    );
    let s3 = client_for(&server.endpoint, carol.0, carol.1);
    let err = s3
        .list_objects_v2()
        .bucket("_strata")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 403);
}

#[tokio::test]
async fn admin_cli_reads_root_keys_from_the_data_dir() {
    let server = Server::start();
    let data = tempfile::tempdir().unwrap();
    std::fs::write(
        data.path().join("credentials.toml"),
        format!("access_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "admin",
            "user",
            "list",
            "--endpoint",
            &server.endpoint,
            "--data",
        ])
        .arg(data.path())
        .env_remove("STRATA_ACCESS_KEY")
        .env_remove("STRATA_SECRET_KEY")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ACCESS KEY"));
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "admin",
            "user",
            "list",
            "--endpoint",
            &server.endpoint,
            "--data",
            "/nonexistent",
        ])
        .env_remove("STRATA_ACCESS_KEY")
        .env_remove("STRATA_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no root credentials"));
}

/// Adds a user with fixed keys through the CLI and returns an SDK client signed with them.
pub(crate) fn add_user(server: &Server, name: &str, ak: &str, sk: &str) -> aws_sdk_s3::Client {
    admin(
        server,
        &["user", "add", name, "--access-key", ak, "--secret-key", sk],
    );
    client_for(&server.endpoint, ak, sk)
}

#[tokio::test]
async fn buckets_have_owners_shown_by_display_name() {
    let server = Server::start();
    let root = server.client();
    let alice = add_user(&server, "alice", "ALICEKEY", "alice-secret-1");
    let bob = add_user(&server, "bob", "BOBKEY", "bob-secret-12");
    alice
        .create_bucket()
        .bucket("alice-b")
        .send()
        .await
        .unwrap();
    bob.create_bucket().bucket("bob-b").send().await.unwrap();
    root.create_bucket().bucket("root-b").send().await.unwrap();

    // Each user lists only the buckets they own; root lists all (as MinIO's root does).
    let names = |out: &aws_sdk_s3::operation::list_buckets::ListBucketsOutput| -> Vec<String> {
        out.buckets()
            .iter()
            .filter_map(|b| b.name().map(str::to_owned))
            .collect()
    };
    let out = alice.list_buckets().send().await.unwrap();
    assert_eq!(names(&out), ["alice-b"]);
    let owner = out.owner().unwrap();
    assert_eq!(
        (owner.id(), owner.display_name()),
        (Some("ALICEKEY"), Some("alice"))
    );
    assert_eq!(names(&bob.list_buckets().send().await.unwrap()), ["bob-b"]);
    let out = root.list_buckets().send().await.unwrap();
    assert_eq!(names(&out), ["alice-b", "bob-b", "root-b"]);
    assert_eq!(out.owner().unwrap().display_name(), Some("root"));

    // The name is taken: by someone else, or by the caller already.
    let err = bob
        .create_bucket()
        .bucket("alice-b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (409, "BucketAlreadyExists".into()));
    let err = alice
        .create_bucket()
        .bucket("alice-b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (409, "BucketAlreadyOwnedByYou".into())
    );

    // Listings name the owner by display name.
    alice
        .put_object()
        .bucket("alice-b")
        .key("k")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    let out = alice
        .list_objects_v2()
        .bucket("alice-b")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let o = out.contents()[0].owner().unwrap();
    assert_eq!(
        (o.id(), o.display_name()),
        (Some("ALICEKEY"), Some("alice"))
    );
    let out = alice.list_objects().bucket("alice-b").send().await.unwrap();
    assert_eq!(
        out.contents()[0].owner().unwrap().display_name(),
        Some("alice")
    );
    let out = alice
        .list_object_versions()
        .bucket("alice-b")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.versions()[0].owner().unwrap().display_name(),
        Some("alice")
    );

    let up = alice
        .create_multipart_upload()
        .bucket("alice-b")
        .key("mp")
        .send()
        .await
        .unwrap();
    let upload_id = up.upload_id().unwrap();
    let out = alice
        .list_multipart_uploads()
        .bucket("alice-b")
        .send()
        .await
        .unwrap();
    let u = &out.uploads()[0];
    assert_eq!(u.owner().unwrap().display_name(), Some("alice"));
    assert_eq!(u.initiator().unwrap().display_name(), Some("alice"));
    assert_eq!(u.initiator().unwrap().id(), Some("ALICEKEY"));
    let out = alice
        .list_parts()
        .bucket("alice-b")
        .key("mp")
        .upload_id(upload_id)
        .send()
        .await
        .unwrap();
    assert_eq!(out.owner().unwrap().display_name(), Some("alice"));
    assert_eq!(out.initiator().unwrap().display_name(), Some("alice"));
}

#[tokio::test]
async fn identity_policies_set_with_the_cli_are_enforced() {
    let server = Server::start();
    let root = server.client();
    root.create_bucket().bucket("shared").send().await.unwrap();
    let dave = add_user(&server, "dave", "DAVEKEY", "dave-secret-1");
    // Not the owner and no policy: refused.
    let err = dave
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    let policy = br#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:ListBucket","s3:GetObject"],"Resource":["arn:aws:s3:::shared","arn:aws:s3:::shared/*"]}]}"#;
    let out = admin_as(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        &["user", "set-policy", "DAVEKEY", "-"],
        Some(policy),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    dave.list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap();
    let err = dave
        .put_object()
        .bucket("shared")
        .key("k")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
    // An unknown action is a MalformedPolicy, as AWS.
    let err = admin_err(
        &server,
        (ACCESS_KEY, SECRET_KEY),
        &["user", "set-policy", "DAVEKEY", "-"],
        Some(br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Fly","Resource":"*"}]}"#),
    );
    assert!(err.contains("MalformedPolicy"), "{err}");
    admin(&server, &["user", "set-policy", "DAVEKEY", "--clear"]);
    let err = dave
        .list_objects_v2()
        .bucket("shared")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (403, "AccessDenied".into()));
}
