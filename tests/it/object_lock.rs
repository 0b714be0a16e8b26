//! Object lock (WORM), checked against the AWS S3 API reference: lock-enabled buckets, default retention
//! rules, retention and legal hold given on PutObject / CopyObject / CreateMultipartUpload, Put/GetObjectRetention,
//! Put/GetObjectLegalHold, GOVERNANCE (bypass by the root user) and COMPLIANCE (no bypass, not even root),
//! deletes with and without versionId, DeleteObjects, overwrites, and the errors AWS gives for bad input.
//!
//! Retention dates are a few days in the future; no test waits for one to pass.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, DefaultRetention, Delete,
    ObjectIdentifier, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockLegalHold,
    ObjectLockLegalHoldStatus, ObjectLockMode, ObjectLockRetention, ObjectLockRetentionMode,
    ObjectLockRule, VersioningConfiguration,
};
use aws_smithy_types::base64;
use aws_smithy_types::date_time::Format;
use chrono::{Duration, Utc};
use md5::{Digest, Md5};

use crate::harness::{Server, body_of, pattern, status_and_code};
use crate::sigv4::RawRequest;

/// Slack allowed between the server's clock reading and ours when checking a default retention date.
const SLACK_SECS: i64 = 300;
const DAY_SECS: i64 = 86_400;

/// `n` days from now, in whole seconds (so round trips through the wire compare exactly).
fn days_from_now(n: i64) -> DateTime {
    DateTime::from_secs((Utc::now() + Duration::days(n)).timestamp())
}

fn now_secs() -> i64 {
    Utc::now().timestamp()
}

/// Creates `bucket` with `x-amz-bucket-object-lock-enabled: true`.
async fn lock_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .object_lock_enabled_for_bucket(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create lock-enabled bucket {bucket}: {e:?}"));
}

async fn set_versioning(s3: &Client, bucket: &str, status: BucketVersioningStatus) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put-bucket-versioning {bucket}: {e:?}"));
}

/// Puts `data` with no lock headers and returns the version ID (which must be there).
async fn put_v(s3: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
    out.version_id()
        .filter(|v| !v.is_empty() && *v != "null")
        .unwrap_or_else(|| panic!("PUT {bucket}/{key} in a lock-enabled bucket has no version id"))
        .to_owned()
}

/// Puts `data` with a retention (mode + retain-until date) and returns the version ID.
async fn put_locked(
    s3: &Client,
    bucket: &str,
    key: &str,
    data: &[u8],
    mode: ObjectLockMode,
    until: DateTime,
) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .object_lock_mode(mode)
        .object_lock_retain_until_date(until)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put locked {bucket}/{key}: {e:?}"));
    out.version_id()
        .filter(|v| !v.is_empty() && *v != "null")
        .unwrap_or_else(|| panic!("PUT {bucket}/{key} in a lock-enabled bucket has no version id"))
        .to_owned()
}

/// PutObjectRetention on one version; returns (status, code) on failure.
async fn set_retention(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: &str,
    retention: ObjectLockRetention,
    bypass: bool,
) -> Result<(), (u16, String)> {
    s3.put_object_retention()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .retention(retention)
        .set_bypass_governance_retention(bypass.then_some(true))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| status_and_code(&e))
}

fn retention(mode: ObjectLockRetentionMode, until: DateTime) -> ObjectLockRetention {
    ObjectLockRetention::builder()
        .mode(mode)
        .retain_until_date(until)
        .build()
}

/// GetObjectRetention of one version: Ok((mode, retain-until seconds)) or Err((status, code)).
async fn get_retention(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: &str,
) -> Result<(ObjectLockRetentionMode, i64), (u16, String)> {
    let out = s3
        .get_object_retention()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .map_err(|e| status_and_code(&e))?;
    let r = out
        .retention()
        .unwrap_or_else(|| panic!("GetObjectRetention {key}?versionId={version}: no Retention"));
    Ok((
        r.mode()
            .cloned()
            .unwrap_or_else(|| panic!("GetObjectRetention {key}: no Mode")),
        r.retain_until_date()
            .unwrap_or_else(|| panic!("GetObjectRetention {key}: no RetainUntilDate"))
            .secs(),
    ))
}

/// DeleteObject of one version; returns (status, code) on failure.
async fn delete_version(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: &str,
    bypass: bool,
) -> Result<(), (u16, String)> {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .set_bypass_governance_retention(bypass.then_some(true))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| status_and_code(&e))
}

/// The lock fields of a HeadObject of one version: (mode, retain-until seconds, legal hold).
async fn head_lock(
    s3: &Client,
    bucket: &str,
    key: &str,
    version: &str,
) -> (
    Option<ObjectLockMode>,
    Option<i64>,
    Option<ObjectLockLegalHoldStatus>,
) {
    let out = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("head {bucket}/{key}?versionId={version}: {e:?}"));
    (
        out.object_lock_mode().cloned(),
        out.object_lock_retain_until_date().map(DateTime::secs),
        out.object_lock_legal_hold_status().cloned(),
    )
}

/// GETs one version whole.
async fn get_v(s3: &Client, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}?versionId={version}: {e:?}"));
    body_of(out).await
}

/// The status and code of a GET of one version that must fail.
async fn get_v_err(s3: &Client, bucket: &str, key: &str, version: &str) -> (u16, String) {
    let err = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .expect_err("GET must fail");
    status_and_code(&err)
}

fn default_rule(
    mode: ObjectLockRetentionMode,
    days: Option<i32>,
    years: Option<i32>,
) -> ObjectLockConfiguration {
    ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(
            ObjectLockRule::builder()
                .default_retention(
                    DefaultRetention::builder()
                        .mode(mode)
                        .set_days(days)
                        .set_years(years)
                        .build(),
                )
                .build(),
        )
        .build()
}

async fn put_lock_config(
    s3: &Client,
    bucket: &str,
    conf: ObjectLockConfiguration,
) -> Result<(), (u16, String)> {
    s3.put_object_lock_configuration()
        .bucket(bucket)
        .object_lock_configuration(conf)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| status_and_code(&e))
}

/// The number of versions and delete markers in `bucket`.
async fn version_count(s3: &Client, bucket: &str) -> usize {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|e| panic!("list-object-versions {bucket}: {e:?}"));
    out.versions().len() + out.delete_markers().len()
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Lock-enabled buckets
// ---------------------------------------------------------------------------------------------------------------

/// CreateBucket with x-amz-bucket-object-lock-enabled turns versioning on for good (Suspended is refused with
/// 409 InvalidBucketState), and GetObjectLockConfiguration reports ObjectLockEnabled=Enabled with no rule. A bucket
/// created without lock answers 404 ObjectLockConfigurationNotFoundError.
#[tokio::test]
async fn lock_bucket_is_versioned_for_good_and_reports_its_config() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "lockb").await;

    let v = s3
        .get_bucket_versioning()
        .bucket("lockb")
        .send()
        .await
        .unwrap();
    assert_eq!(
        v.status(),
        Some(&BucketVersioningStatus::Enabled),
        "a lock-enabled bucket is created with versioning Enabled"
    );

    let err = s3
        .put_bucket_versioning()
        .bucket("lockb")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .expect_err("suspending versioning on a lock-enabled bucket must fail");
    assert_eq!(status_and_code(&err), (409, "InvalidBucketState".into()));
    let v = s3
        .get_bucket_versioning()
        .bucket("lockb")
        .send()
        .await
        .unwrap();
    assert_eq!(
        v.status(),
        Some(&BucketVersioningStatus::Enabled),
        "still Enabled after the refused suspension"
    );
    // Enabling again is harmless.
    set_versioning(&s3, "lockb", BucketVersioningStatus::Enabled).await;

    let conf = s3
        .get_object_lock_configuration()
        .bucket("lockb")
        .send()
        .await
        .unwrap_or_else(|e| panic!("get-object-lock-configuration: {e:?}"));
    let conf = conf
        .object_lock_configuration()
        .expect("ObjectLockConfiguration element");
    assert_eq!(
        conf.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    assert!(
        conf.rule().is_none(),
        "no default rule was set: {:?}",
        conf.rule()
    );

    // Writes in a lock bucket get real version IDs, and a PUT without lock headers (no default rule) has no
    // retention.
    let v1 = put_v(&s3, "lockb", "k", b"data").await;
    let (mode, until, _) = head_lock(&s3, "lockb", "k", &v1).await;
    assert_eq!((mode, until), (None, None), "no retention without a rule");

    s3.create_bucket().bucket("plainb").send().await.unwrap();
    let err = s3
        .get_object_lock_configuration()
        .bucket("plainb")
        .send()
        .await
        .expect_err("a bucket without lock has no lock configuration");
    assert_eq!(
        status_and_code(&err),
        (404, "ObjectLockConfigurationNotFoundError".into())
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Default retention rules
// ---------------------------------------------------------------------------------------------------------------

/// PutObjectLockConfiguration with a default rule round-trips through GetObjectLockConfiguration, and a PUT without
/// lock headers then gets the rule's mode with retain-until = now + period. Changing the rule does not touch
/// existing versions; explicit headers override the rule.
#[tokio::test]
async fn default_retention_rule_round_trips_and_applies_to_new_versions() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "defret").await;

    // GOVERNANCE, 1 day.
    put_lock_config(
        &s3,
        "defret",
        default_rule(ObjectLockRetentionMode::Governance, Some(1), None),
    )
    .await
    .unwrap_or_else(|e| panic!("put GOVERNANCE 1 day rule: {e:?}"));
    let got = s3
        .get_object_lock_configuration()
        .bucket("defret")
        .send()
        .await
        .unwrap();
    let conf = got.object_lock_configuration().expect("configuration");
    assert_eq!(
        conf.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    let dr = conf
        .rule()
        .and_then(|r| r.default_retention())
        .expect("Rule/DefaultRetention");
    assert_eq!(dr.mode(), Some(&ObjectLockRetentionMode::Governance));
    assert_eq!(dr.days(), Some(1));
    assert_eq!(dr.years(), None);

    let before = now_secs();
    let g1 = put_v(&s3, "defret", "gov", b"governed by default").await;
    let after = now_secs();
    let (mode, until, _) = head_lock(&s3, "defret", "gov", &g1).await;
    assert_eq!(
        mode,
        Some(ObjectLockMode::Governance),
        "default mode applied"
    );
    let until = until.expect("default retain-until date applied");
    assert!(
        until >= before + DAY_SECS - SLACK_SECS && until <= after + DAY_SECS + SLACK_SECS,
        "retain-until {until} is not about now + 1 day (put between {before} and {after})"
    );
    assert_eq!(
        get_retention(&s3, "defret", "gov", &g1).await,
        Ok((ObjectLockRetentionMode::Governance, until)),
        "GetObjectRetention agrees with HeadObject"
    );
    assert_eq!(
        delete_version(&s3, "defret", "gov", &g1, false).await,
        Err((403, "AccessDenied".into())),
        "the default retention protects the version"
    );

    // COMPLIANCE, 1 year.
    put_lock_config(
        &s3,
        "defret",
        default_rule(ObjectLockRetentionMode::Compliance, None, Some(1)),
    )
    .await
    .unwrap_or_else(|e| panic!("put COMPLIANCE 1 year rule: {e:?}"));
    let got = s3
        .get_object_lock_configuration()
        .bucket("defret")
        .send()
        .await
        .unwrap();
    let dr = got
        .object_lock_configuration()
        .and_then(|c| c.rule())
        .and_then(|r| r.default_retention())
        .expect("Rule/DefaultRetention");
    assert_eq!(dr.mode(), Some(&ObjectLockRetentionMode::Compliance));
    assert_eq!(dr.days(), None);
    assert_eq!(dr.years(), Some(1));

    let before = now_secs();
    let c1 = put_v(&s3, "defret", "comp", b"compliance by default").await;
    let after = now_secs();
    let (mode, until, _) = head_lock(&s3, "defret", "comp", &c1).await;
    assert_eq!(mode, Some(ObjectLockMode::Compliance));
    let until = until.expect("default retain-until date applied");
    assert!(
        until >= before + 365 * DAY_SECS - SLACK_SECS
            && until <= after + 366 * DAY_SECS + SLACK_SECS,
        "retain-until {until} is not about now + 1 year (put between {before} and {after})"
    );

    // The earlier version keeps the retention it was written with.
    let (mode, _, _) = head_lock(&s3, "defret", "gov", &g1).await;
    assert_eq!(
        mode,
        Some(ObjectLockMode::Governance),
        "changing the bucket default does not change existing versions"
    );

    // Explicit headers override the default.
    let until = days_from_now(3);
    let e1 = put_locked(
        &s3,
        "defret",
        "explicit",
        b"explicit",
        ObjectLockMode::Governance,
        until,
    )
    .await;
    assert_eq!(
        head_lock(&s3, "defret", "explicit", &e1).await,
        (Some(ObjectLockMode::Governance), Some(until.secs()), None),
        "explicit retention headers win over the bucket default"
    );

    // Clean up what can be: governance versions go with bypass (compliance ones stay until the server's data
    // directory is dropped).
    delete_version(&s3, "defret", "gov", &g1, true)
        .await
        .unwrap();
    delete_version(&s3, "defret", "explicit", &e1, true)
        .await
        .unwrap();
}

/// Bad default rules: Days and Years together is 400 MalformedXML; a zero or negative period is 400
/// InvalidArgument ("Default retention period must be a positive integer value."); an unknown mode is 400
/// MalformedXML. None of them changes the configuration.
#[tokio::test]
async fn default_retention_rule_rejects_bad_periods_and_modes() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "badrule").await;

    assert_eq!(
        put_lock_config(
            &s3,
            "badrule",
            default_rule(ObjectLockRetentionMode::Governance, Some(1), Some(1)),
        )
        .await,
        Err((400, "MalformedXML".into())),
        "Days and Years together"
    );
    for (days, years) in [
        (Some(0), None),
        (Some(-1), None),
        (None, Some(0)),
        (None, Some(-1)),
    ] {
        assert_eq!(
            put_lock_config(
                &s3,
                "badrule",
                default_rule(ObjectLockRetentionMode::Governance, days, years),
            )
            .await,
            Err((400, "InvalidArgument".into())),
            "Days {days:?} Years {years:?}"
        );
    }
    assert_eq!(
        put_lock_config(
            &s3,
            "badrule",
            default_rule(ObjectLockRetentionMode::from("BOGUS"), Some(1), None),
        )
        .await,
        Err((400, "MalformedXML".into())),
        "unknown default retention mode"
    );

    let got = s3
        .get_object_lock_configuration()
        .bucket("badrule")
        .send()
        .await
        .unwrap();
    let conf = got.object_lock_configuration().expect("configuration");
    assert_eq!(
        conf.object_lock_enabled(),
        Some(&ObjectLockEnabled::Enabled)
    );
    assert!(
        conf.rule().is_none(),
        "refused rules left no trace: {:?}",
        conf.rule()
    );
    let v = put_v(&s3, "badrule", "k", b"x").await;
    assert_eq!(head_lock(&s3, "badrule", "k", &v).await.0, None);
}

// ---------------------------------------------------------------------------------------------------------------
// 3. Enabling lock later
// ---------------------------------------------------------------------------------------------------------------

/// PutObjectLockConfiguration with ObjectLockEnabled=Enabled turns lock on for an existing bucket whose versioning
/// is Enabled (as AWS allows); on an unversioned or Suspended bucket it is 409 InvalidBucketState.
#[tokio::test]
async fn lock_can_be_enabled_later_on_a_versioned_bucket_only() {
    let server = Server::start();
    let s3 = server.client();
    let enable_only = || {
        ObjectLockConfiguration::builder()
            .object_lock_enabled(ObjectLockEnabled::Enabled)
            .build()
    };

    // Unversioned.
    s3.create_bucket().bucket("later").send().await.unwrap();
    assert_eq!(
        put_lock_config(&s3, "later", enable_only()).await,
        Err((409, "InvalidBucketState".into())),
        "unversioned bucket"
    );
    assert_eq!(
        put_lock_config(
            &s3,
            "later",
            default_rule(ObjectLockRetentionMode::Governance, Some(1), None),
        )
        .await,
        Err((409, "InvalidBucketState".into())),
        "unversioned bucket, with a rule"
    );
    let err = s3
        .get_object_lock_configuration()
        .bucket("later")
        .send()
        .await
        .expect_err("still no lock configuration");
    assert_eq!(
        status_and_code(&err),
        (404, "ObjectLockConfigurationNotFoundError".into())
    );

    // Suspended.
    s3.create_bucket().bucket("susp").send().await.unwrap();
    set_versioning(&s3, "susp", BucketVersioningStatus::Suspended).await;
    assert_eq!(
        put_lock_config(&s3, "susp", enable_only()).await,
        Err((409, "InvalidBucketState".into())),
        "Suspended bucket"
    );

    // Enabled: works, and then behaves as a lock bucket.
    set_versioning(&s3, "later", BucketVersioningStatus::Enabled).await;
    let old = put_v(&s3, "later", "k", b"written before lock").await;
    put_lock_config(&s3, "later", enable_only())
        .await
        .unwrap_or_else(|e| panic!("enable lock on a versioned bucket: {e:?}"));
    let got = s3
        .get_object_lock_configuration()
        .bucket("later")
        .send()
        .await
        .unwrap_or_else(|e| panic!("get-object-lock-configuration after enabling: {e:?}"));
    assert_eq!(
        got.object_lock_configuration()
            .and_then(|c| c.object_lock_enabled()),
        Some(&ObjectLockEnabled::Enabled)
    );

    let err = s3
        .put_bucket_versioning()
        .bucket("later")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .expect_err("versioning can no longer be suspended");
    assert_eq!(status_and_code(&err), (409, "InvalidBucketState".into()));

    let until = days_from_now(2);
    let v = put_locked(
        &s3,
        "later",
        "k",
        b"locked",
        ObjectLockMode::Governance,
        until,
    )
    .await;
    assert_eq!(
        head_lock(&s3, "later", "k", &v).await,
        (Some(ObjectLockMode::Governance), Some(until.secs()), None)
    );
    assert_eq!(
        delete_version(&s3, "later", "k", &v, false).await,
        Err((403, "AccessDenied".into()))
    );
    // A version written before lock was enabled can be given a retention afterwards.
    set_retention(
        &s3,
        "later",
        "k",
        &old,
        retention(ObjectLockRetentionMode::Governance, until),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("retention on a pre-lock version: {e:?}"));
    assert_eq!(
        delete_version(&s3, "later", "k", &old, false).await,
        Err((403, "AccessDenied".into()))
    );
    // A rule can be added now too.
    put_lock_config(
        &s3,
        "later",
        default_rule(ObjectLockRetentionMode::Governance, Some(1), None),
    )
    .await
    .unwrap_or_else(|e| panic!("rule on a bucket locked later: {e:?}"));
}

// ---------------------------------------------------------------------------------------------------------------
// 4. Lock headers on PutObject
// ---------------------------------------------------------------------------------------------------------------

/// PutObject with x-amz-object-lock-mode, -retain-until-date and -legal-hold: HeadObject and GetObject return the
/// three headers; GetObjectRetention and GetObjectLegalHold agree.
#[tokio::test]
async fn put_with_lock_headers_is_reported_by_head_and_get() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "hdrs").await;
    let until = days_from_now(4);
    let data = pattern(10_000, 7);
    let out = s3
        .put_object()
        .bucket("hdrs")
        .key("doc")
        .body(ByteStream::from(data.clone()))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put with lock headers: {e:?}"));
    let v = out.version_id().expect("version id").to_owned();

    // HEAD, current and by version.
    let head = s3
        .head_object()
        .bucket("hdrs")
        .key("doc")
        .send()
        .await
        .unwrap();
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(
        head.object_lock_retain_until_date().map(DateTime::secs),
        Some(until.secs())
    );
    assert_eq!(
        head.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(
        head_lock(&s3, "hdrs", "doc", &v).await,
        (
            Some(ObjectLockMode::Governance),
            Some(until.secs()),
            Some(ObjectLockLegalHoldStatus::On)
        )
    );

    // GET carries the same headers.
    let got = s3
        .get_object()
        .bucket("hdrs")
        .key("doc")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(got.object_lock_mode(), Some(&ObjectLockMode::Governance));
    assert_eq!(
        got.object_lock_retain_until_date().map(DateTime::secs),
        Some(until.secs())
    );
    assert_eq!(
        got.object_lock_legal_hold_status(),
        Some(&ObjectLockLegalHoldStatus::On)
    );
    assert_eq!(body_of(got).await, data);

    assert_eq!(
        get_retention(&s3, "hdrs", "doc", &v).await,
        Ok((ObjectLockRetentionMode::Governance, until.secs()))
    );
    let hold = s3
        .get_object_legal_hold()
        .bucket("hdrs")
        .key("doc")
        .version_id(&v)
        .send()
        .await
        .unwrap();
    assert_eq!(
        hold.legal_hold().and_then(|h| h.status()),
        Some(&ObjectLockLegalHoldStatus::On)
    );

    // COMPLIANCE through headers, without a legal hold.
    let until_c = days_from_now(2);
    let vc = put_locked(
        &s3,
        "hdrs",
        "comp",
        b"c",
        ObjectLockMode::Compliance,
        until_c,
    )
    .await;
    let (mode, date, _) = head_lock(&s3, "hdrs", "comp", &vc).await;
    assert_eq!(
        (mode, date),
        (Some(ObjectLockMode::Compliance), Some(until_c.secs()))
    );
}

/// Bad lock headers on PutObject: mode without date or date without mode, a date in the past, an unknown mode and
/// an unknown legal-hold status are 400 InvalidArgument; any lock header on a bucket without object lock is 400
/// InvalidRequest. Nothing is written.
#[tokio::test]
async fn put_rejects_bad_lock_headers() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "badhdr").await;
    s3.create_bucket().bucket("nolock").send().await.unwrap();
    let future = days_from_now(2);
    let past = days_from_now(-2);

    let put = |bucket: &'static str,
               mode: Option<ObjectLockMode>,
               until: Option<DateTime>,
               hold: Option<ObjectLockLegalHoldStatus>| {
        let s3 = s3.clone();
        async move {
            s3.put_object()
                .bucket(bucket)
                .key("k")
                .body(ByteStream::from_static(b"data"))
                .set_object_lock_mode(mode)
                .set_object_lock_retain_until_date(until)
                .set_object_lock_legal_hold_status(hold)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| status_and_code(&e))
        }
    };

    assert_eq!(
        put("badhdr", Some(ObjectLockMode::Governance), None, None).await,
        Err((400, "InvalidArgument".into())),
        "mode without retain-until date"
    );
    assert_eq!(
        put("badhdr", None, Some(future), None).await,
        Err((400, "InvalidArgument".into())),
        "retain-until date without mode"
    );
    assert_eq!(
        put("badhdr", Some(ObjectLockMode::Governance), Some(past), None).await,
        Err((400, "InvalidArgument".into())),
        "retain-until date in the past"
    );
    assert_eq!(
        put("badhdr", Some(ObjectLockMode::Compliance), Some(past), None).await,
        Err((400, "InvalidArgument".into())),
        "retain-until date in the past (COMPLIANCE)"
    );
    assert_eq!(
        put(
            "badhdr",
            Some(ObjectLockMode::from("BOGUS")),
            Some(future),
            None
        )
        .await,
        Err((400, "InvalidArgument".into())),
        "unknown mode (AWS: InvalidArgument, Unknown wormMode directive.)"
    );
    assert_eq!(
        put(
            "badhdr",
            None,
            None,
            Some(ObjectLockLegalHoldStatus::from("BOGUS"))
        )
        .await,
        Err((400, "InvalidArgument".into())),
        "unknown legal hold status (AWS: InvalidArgument, Legal Hold must be either of 'ON' or 'OFF')"
    );
    assert_eq!(
        version_count(&s3, "badhdr").await,
        0,
        "refused PUTs wrote nothing"
    );

    assert_eq!(
        put(
            "nolock",
            Some(ObjectLockMode::Governance),
            Some(future),
            None
        )
        .await,
        Err((400, "InvalidRequest".into())),
        "retention headers on a bucket without object lock"
    );
    assert_eq!(
        put("nolock", None, None, Some(ObjectLockLegalHoldStatus::On)).await,
        Err((400, "InvalidRequest".into())),
        "legal hold header on a bucket without object lock"
    );
    let err = s3
        .head_object()
        .bucket("nolock")
        .key("k")
        .send()
        .await
        .expect_err("nothing was written to the unlocked bucket");
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(404));
}

/// AWS requires Content-MD5 or an x-amz-checksum-* header on a PutObject that carries Object Lock parameters:
/// without one it is 400 InvalidRequest ("Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object
/// requests with Object Lock parameters"); with Content-MD5 it succeeds.
#[tokio::test]
async fn put_with_lock_headers_requires_content_md5_or_checksum() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "md5req").await;
    let until = days_from_now(2).fmt(Format::DateTime).expect("format date");
    let body = b"raw locked body".to_vec();

    let resp = RawRequest::new("PUT", "/md5req/raw", "")
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header("x-amz-object-lock-retain-until-date", &until)
        .body(body.clone())
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(
        resp.code().as_deref(),
        Some("InvalidRequest"),
        "{}",
        resp.text()
    );
    assert_eq!(version_count(&s3, "md5req").await, 0, "nothing was written");

    let md5 = base64::encode(Md5::digest(&body));
    let resp = RawRequest::new("PUT", "/md5req/raw", "")
        .header("content-md5", &md5)
        .header("x-amz-object-lock-mode", "GOVERNANCE")
        .header("x-amz-object-lock-retain-until-date", &until)
        .body(body.clone())
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let v = resp
        .header("x-amz-version-id")
        .expect("x-amz-version-id")
        .to_owned();
    let (mode, date, _) = head_lock(&s3, "md5req", "raw", &v).await;
    assert_eq!(mode, Some(ObjectLockMode::Governance));
    assert!(date.is_some());
}

// ---------------------------------------------------------------------------------------------------------------
// 5. GOVERNANCE
// ---------------------------------------------------------------------------------------------------------------

/// A GOVERNANCE version cannot be deleted by version ID (403 AccessDenied) unless the request carries
/// x-amz-bypass-governance-retention: true from a user allowed to bypass (root is).
#[tokio::test]
async fn governance_version_deletes_only_with_bypass() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "gov").await;
    let v1 = put_locked(
        &s3,
        "gov",
        "k",
        b"governed",
        ObjectLockMode::Governance,
        days_from_now(3),
    )
    .await;

    assert_eq!(
        delete_version(&s3, "gov", "k", &v1, false).await,
        Err((403, "AccessDenied".into())),
        "delete by version id without bypass"
    );
    assert_eq!(get_v(&s3, "gov", "k", &v1).await, b"governed");

    delete_version(&s3, "gov", "k", &v1, true)
        .await
        .unwrap_or_else(|e| panic!("root with bypass deletes a GOVERNANCE version: {e:?}"));
    assert_eq!(
        get_v_err(&s3, "gov", "k", &v1).await,
        (404, "NoSuchVersion".into()),
        "the version is gone"
    );
}

/// PutObjectRetention on a GOVERNANCE version: extending is always allowed; shortening or removing needs bypass
/// (403 AccessDenied without); after removal GetObjectRetention is 404 NoSuchObjectLockConfiguration and the
/// version can be deleted.
#[tokio::test]
async fn governance_retention_extend_shorten_remove() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "govret").await;
    let d3 = days_from_now(3);
    let v = put_locked(&s3, "govret", "k", b"x", ObjectLockMode::Governance, d3).await;
    assert_eq!(
        get_retention(&s3, "govret", "k", &v).await,
        Ok((ObjectLockRetentionMode::Governance, d3.secs()))
    );

    // Extend, without bypass.
    let d5 = days_from_now(5);
    set_retention(
        &s3,
        "govret",
        "k",
        &v,
        retention(ObjectLockRetentionMode::Governance, d5),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("extending GOVERNANCE retention: {e:?}"));
    assert_eq!(
        get_retention(&s3, "govret", "k", &v).await,
        Ok((ObjectLockRetentionMode::Governance, d5.secs()))
    );

    // Shorten: refused without bypass, allowed with it.
    let d2 = days_from_now(2);
    assert_eq!(
        set_retention(
            &s3,
            "govret",
            "k",
            &v,
            retention(ObjectLockRetentionMode::Governance, d2),
            false,
        )
        .await,
        Err((403, "AccessDenied".into())),
        "shortening GOVERNANCE without bypass"
    );
    assert_eq!(
        get_retention(&s3, "govret", "k", &v).await,
        Ok((ObjectLockRetentionMode::Governance, d5.secs())),
        "the refused change left the date alone"
    );
    set_retention(
        &s3,
        "govret",
        "k",
        &v,
        retention(ObjectLockRetentionMode::Governance, d2),
        true,
    )
    .await
    .unwrap_or_else(|e| panic!("shortening GOVERNANCE with bypass: {e:?}"));
    assert_eq!(
        get_retention(&s3, "govret", "k", &v).await,
        Ok((ObjectLockRetentionMode::Governance, d2.secs()))
    );

    // Remove (empty Retention): refused without bypass, allowed with it.
    assert_eq!(
        set_retention(
            &s3,
            "govret",
            "k",
            &v,
            ObjectLockRetention::builder().build(),
            false,
        )
        .await,
        Err((403, "AccessDenied".into())),
        "removing GOVERNANCE retention without bypass"
    );
    set_retention(
        &s3,
        "govret",
        "k",
        &v,
        ObjectLockRetention::builder().build(),
        true,
    )
    .await
    .unwrap_or_else(|e| panic!("removing GOVERNANCE retention with bypass: {e:?}"));
    assert_eq!(
        get_retention(&s3, "govret", "k", &v).await,
        Err((404, "NoSuchObjectLockConfiguration".into())),
        "no retention left"
    );
    assert_eq!(head_lock(&s3, "govret", "k", &v).await.0, None);
    delete_version(&s3, "govret", "k", &v, false)
        .await
        .unwrap_or_else(|e| panic!("an unprotected version deletes without bypass: {e:?}"));
}

// ---------------------------------------------------------------------------------------------------------------
// 6. COMPLIANCE
// ---------------------------------------------------------------------------------------------------------------

/// A COMPLIANCE version refuses everyone, root included: delete by version ID is 403 AccessDenied with or without
/// bypass; shortening, removing or switching to GOVERNANCE is 403 AccessDenied even with bypass; extending works.
#[tokio::test]
async fn compliance_refuses_root_even_with_bypass() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "comp").await;
    let d3 = days_from_now(3);
    let v = put_locked(&s3, "comp", "k", b"sealed", ObjectLockMode::Compliance, d3).await;
    assert_eq!(
        get_retention(&s3, "comp", "k", &v).await,
        Ok((ObjectLockRetentionMode::Compliance, d3.secs())),
        "GetObjectRetention returns mode and date"
    );

    for bypass in [false, true] {
        assert_eq!(
            delete_version(&s3, "comp", "k", &v, bypass).await,
            Err((403, "AccessDenied".into())),
            "delete COMPLIANCE version (bypass {bypass})"
        );
    }

    let d2 = days_from_now(2);
    for bypass in [false, true] {
        assert_eq!(
            set_retention(
                &s3,
                "comp",
                "k",
                &v,
                retention(ObjectLockRetentionMode::Compliance, d2),
                bypass,
            )
            .await,
            Err((403, "AccessDenied".into())),
            "shorten COMPLIANCE (bypass {bypass})"
        );
        assert_eq!(
            set_retention(
                &s3,
                "comp",
                "k",
                &v,
                retention(ObjectLockRetentionMode::Governance, d3),
                bypass,
            )
            .await,
            Err((403, "AccessDenied".into())),
            "COMPLIANCE -> GOVERNANCE (bypass {bypass})"
        );
        assert_eq!(
            set_retention(
                &s3,
                "comp",
                "k",
                &v,
                ObjectLockRetention::builder().build(),
                bypass,
            )
            .await,
            Err((403, "AccessDenied".into())),
            "remove COMPLIANCE (bypass {bypass})"
        );
    }
    assert_eq!(
        get_retention(&s3, "comp", "k", &v).await,
        Ok((ObjectLockRetentionMode::Compliance, d3.secs())),
        "refused changes left the retention alone"
    );

    let d6 = days_from_now(6);
    set_retention(
        &s3,
        "comp",
        "k",
        &v,
        retention(ObjectLockRetentionMode::Compliance, d6),
        false,
    )
    .await
    .unwrap_or_else(|e| panic!("extending COMPLIANCE: {e:?}"));
    assert_eq!(
        get_retention(&s3, "comp", "k", &v).await,
        Ok((ObjectLockRetentionMode::Compliance, d6.secs()))
    );
    assert_eq!(
        head_lock(&s3, "comp", "k", &v).await,
        (Some(ObjectLockMode::Compliance), Some(d6.secs()), None)
    );
    assert_eq!(get_v(&s3, "comp", "k", &v).await, b"sealed");
}

// ---------------------------------------------------------------------------------------------------------------
// 7. Legal hold
// ---------------------------------------------------------------------------------------------------------------

/// PutObjectLegalHold ON protects a version without retention (403 AccessDenied on delete by version ID, bypass or
/// not); OFF releases it. GetObjectLegalHold returns ON / OFF, and 404 NoSuchObjectLockConfiguration for a version
/// that never had a hold.
#[tokio::test]
async fn legal_hold_blocks_deletes_until_released() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "hold").await;
    let v = put_v(&s3, "hold", "k", b"evidence").await;

    let get_hold = |version: String| {
        let s3 = s3.clone();
        async move {
            s3.get_object_legal_hold()
                .bucket("hold")
                .key("k")
                .version_id(version)
                .send()
                .await
                .map(|o| o.legal_hold().and_then(|h| h.status()).cloned())
                .map_err(|e| status_and_code(&e))
        }
    };
    let set_hold = |version: String, status: ObjectLockLegalHoldStatus| {
        let s3 = s3.clone();
        async move {
            s3.put_object_legal_hold()
                .bucket("hold")
                .key("k")
                .version_id(version)
                .legal_hold(ObjectLockLegalHold::builder().status(status).build())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| status_and_code(&e))
        }
    };

    assert_eq!(
        get_hold(v.clone()).await,
        Err((404, "NoSuchObjectLockConfiguration".into())),
        "a version never given a hold"
    );

    set_hold(v.clone(), ObjectLockLegalHoldStatus::On)
        .await
        .unwrap_or_else(|e| panic!("legal hold ON: {e:?}"));
    assert_eq!(
        get_hold(v.clone()).await,
        Ok(Some(ObjectLockLegalHoldStatus::On))
    );
    assert_eq!(
        head_lock(&s3, "hold", "k", &v).await,
        (None, None, Some(ObjectLockLegalHoldStatus::On)),
        "HeadObject shows the hold and no retention"
    );
    for bypass in [false, true] {
        assert_eq!(
            delete_version(&s3, "hold", "k", &v, bypass).await,
            Err((403, "AccessDenied".into())),
            "delete a held version (bypass {bypass})"
        );
    }
    assert_eq!(get_v(&s3, "hold", "k", &v).await, b"evidence");

    set_hold(v.clone(), ObjectLockLegalHoldStatus::Off)
        .await
        .unwrap_or_else(|e| panic!("legal hold OFF: {e:?}"));
    assert_eq!(
        get_hold(v.clone()).await,
        Ok(Some(ObjectLockLegalHoldStatus::Off))
    );
    delete_version(&s3, "hold", "k", &v, false)
        .await
        .unwrap_or_else(|e| panic!("delete after the hold is OFF: {e:?}"));
    assert_eq!(
        get_v_err(&s3, "hold", "k", &v).await,
        (404, "NoSuchVersion".into())
    );
}

/// A legal hold and a GOVERNANCE retention are independent: bypass lifts the retention but not the hold.
#[tokio::test]
async fn legal_hold_is_not_lifted_by_governance_bypass() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "both").await;
    let out = s3
        .put_object()
        .bucket("both")
        .key("k")
        .body(ByteStream::from_static(b"both"))
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(days_from_now(2))
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap();
    let v = out.version_id().expect("version id").to_owned();
    assert_eq!(
        delete_version(&s3, "both", "k", &v, true).await,
        Err((403, "AccessDenied".into())),
        "bypass does not override a legal hold"
    );
    s3.put_object_legal_hold()
        .bucket("both")
        .key("k")
        .version_id(&v)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::Off)
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        delete_version(&s3, "both", "k", &v, false).await,
        Err((403, "AccessDenied".into())),
        "the retention still protects it"
    );
    delete_version(&s3, "both", "k", &v, true)
        .await
        .unwrap_or_else(|e| panic!("hold OFF + bypass deletes: {e:?}"));
}

// ---------------------------------------------------------------------------------------------------------------
// 8. Deletes without versionId, DeleteObjects
// ---------------------------------------------------------------------------------------------------------------

/// DELETE without versionId on a locked object succeeds and adds a delete marker; the protected version stays,
/// readable by version ID.
#[tokio::test]
async fn delete_without_version_adds_a_marker_over_a_locked_version() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "marker").await;
    let until = days_from_now(3);
    let v = put_locked(
        &s3,
        "marker",
        "k",
        b"kept",
        ObjectLockMode::Compliance,
        until,
    )
    .await;

    let out = s3
        .delete_object()
        .bucket("marker")
        .key("k")
        .send()
        .await
        .unwrap_or_else(|e| panic!("DELETE without versionId on a locked object: {e:?}"));
    assert_eq!(out.delete_marker(), Some(true), "a delete marker was added");
    let m = out
        .version_id()
        .expect("the marker's version id")
        .to_owned();
    assert_ne!(m, v);

    let err = s3
        .get_object()
        .bucket("marker")
        .key("k")
        .send()
        .await
        .expect_err("the key is hidden by the marker");
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    assert_eq!(get_v(&s3, "marker", "k", &v).await, b"kept");
    assert_eq!(
        head_lock(&s3, "marker", "k", &v).await,
        (Some(ObjectLockMode::Compliance), Some(until.secs()), None),
        "the protected version keeps its retention"
    );
    let listed = s3
        .list_object_versions()
        .bucket("marker")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.versions().len(), 1);
    assert_eq!(listed.delete_markers().len(), 1);

    // The marker itself is not protected: deleting it brings the version back.
    delete_version(&s3, "marker", "k", &m, false)
        .await
        .unwrap_or_else(|e| panic!("deleting the marker: {e:?}"));
    let got = s3
        .get_object()
        .bucket("marker")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.version_id(), Some(v.as_str()));
    assert_eq!(body_of(got).await, b"kept");
}

/// DeleteObjects naming a locked version reports a per-key Error with Code AccessDenied while the other keys of the
/// same request are deleted; with bypass the GOVERNANCE version goes but the COMPLIANCE one still fails.
#[tokio::test]
async fn delete_objects_reports_access_denied_per_locked_key() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "multi").await;
    let gov = put_locked(
        &s3,
        "multi",
        "gov",
        b"g",
        ObjectLockMode::Governance,
        days_from_now(3),
    )
    .await;
    let comp = put_locked(
        &s3,
        "multi",
        "comp",
        b"c",
        ObjectLockMode::Compliance,
        days_from_now(3),
    )
    .await;
    let free = put_v(&s3, "multi", "free", b"f").await;
    let plain = put_v(&s3, "multi", "plain", b"p").await;

    let ident = |k: &str, v: Option<&str>| {
        ObjectIdentifier::builder()
            .key(k)
            .set_version_id(v.map(str::to_owned))
            .build()
            .unwrap()
    };
    let del = Delete::builder()
        .objects(ident("gov", Some(&gov)))
        .objects(ident("comp", Some(&comp)))
        .objects(ident("free", Some(&free)))
        .objects(ident("plain", None))
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket("multi")
        .delete(del)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObjects: {e:?}"));

    let mut errors: Vec<(String, String, String)> = out
        .errors()
        .iter()
        .map(|e| {
            (
                e.key().unwrap_or_default().to_owned(),
                e.version_id().unwrap_or_default().to_owned(),
                e.code().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    errors.sort();
    assert_eq!(
        errors,
        vec![
            ("comp".to_owned(), comp.clone(), "AccessDenied".to_owned()),
            ("gov".to_owned(), gov.clone(), "AccessDenied".to_owned()),
        ],
        "locked versions are reported per key"
    );
    let mut deleted: Vec<String> = out
        .deleted()
        .iter()
        .map(|d| d.key().unwrap_or_default().to_owned())
        .collect();
    deleted.sort();
    assert_eq!(deleted, ["free", "plain"]);
    for d in out.deleted() {
        match d.key() {
            Some("free") => assert_eq!(d.version_id(), Some(free.as_str())),
            Some("plain") => assert_eq!(d.delete_marker(), Some(true), "plain got a marker"),
            other => panic!("unexpected deleted entry {other:?}"),
        }
    }
    assert_eq!(
        get_v_err(&s3, "multi", "free", &free).await,
        (404, "NoSuchVersion".into())
    );
    assert_eq!(get_v(&s3, "multi", "plain", &plain).await, b"p");
    assert_eq!(get_v(&s3, "multi", "gov", &gov).await, b"g");
    assert_eq!(get_v(&s3, "multi", "comp", &comp).await, b"c");

    // With bypass: the GOVERNANCE version goes, the COMPLIANCE one does not.
    let del = Delete::builder()
        .objects(ident("gov", Some(&gov)))
        .objects(ident("comp", Some(&comp)))
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket("multi")
        .delete(del)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("DeleteObjects with bypass: {e:?}"));
    let errors: Vec<(Option<&str>, Option<&str>)> =
        out.errors().iter().map(|e| (e.key(), e.code())).collect();
    assert_eq!(errors, [(Some("comp"), Some("AccessDenied"))]);
    let deleted: Vec<Option<&str>> = out.deleted().iter().map(|d| d.key()).collect();
    assert_eq!(deleted, [Some("gov")]);
    assert_eq!(
        get_v_err(&s3, "multi", "gov", &gov).await,
        (404, "NoSuchVersion".into())
    );
    assert_eq!(get_v(&s3, "multi", "comp", &comp).await, b"c");
}

// ---------------------------------------------------------------------------------------------------------------
// 9. Overwrites
// ---------------------------------------------------------------------------------------------------------------

/// PUT over a locked key makes a new version; the locked version stays intact with its retention.
#[tokio::test]
async fn overwriting_a_locked_key_keeps_the_locked_version() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "over").await;
    let until = days_from_now(3);
    let old = pattern(70_000, 11);
    let v1 = put_locked(&s3, "over", "k", &old, ObjectLockMode::Compliance, until).await;
    let new = pattern(50_000, 12);
    let v2 = put_v(&s3, "over", "k", &new).await;
    assert_ne!(v1, v2, "the overwrite is a new version");

    let cur = s3
        .get_object()
        .bucket("over")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(cur.version_id(), Some(v2.as_str()));
    assert_eq!(body_of(cur).await, new);
    assert_eq!(get_v(&s3, "over", "k", &v1).await, old, "old bytes intact");
    assert_eq!(
        head_lock(&s3, "over", "k", &v1).await,
        (Some(ObjectLockMode::Compliance), Some(until.secs()), None)
    );
    assert_eq!(
        head_lock(&s3, "over", "k", &v2).await.0,
        None,
        "the new version has no retention (no bucket default)"
    );

    // The unprotected new version can go; the locked one is current again.
    delete_version(&s3, "over", "k", &v2, false).await.unwrap();
    let cur = s3
        .get_object()
        .bucket("over")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(cur.version_id(), Some(v1.as_str()));
    assert_eq!(body_of(cur).await, old);
}

// ---------------------------------------------------------------------------------------------------------------
// 10. CopyObject and multipart uploads
// ---------------------------------------------------------------------------------------------------------------

/// CopyObject with lock headers puts the retention and hold on the new version (the source is untouched).
#[tokio::test]
async fn copy_object_with_lock_headers_locks_the_copy() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "cpl").await;
    let src = put_v(&s3, "cpl", "src", b"copy me").await;
    let until = days_from_now(3);
    let out = s3
        .copy_object()
        .bucket("cpl")
        .key("dst")
        .copy_source("cpl/src")
        .object_lock_mode(ObjectLockMode::Governance)
        .object_lock_retain_until_date(until)
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap_or_else(|e| panic!("copy with lock headers: {e:?}"));
    let dst = out.version_id().expect("copy version id").to_owned();
    assert_eq!(
        head_lock(&s3, "cpl", "dst", &dst).await,
        (
            Some(ObjectLockMode::Governance),
            Some(until.secs()),
            Some(ObjectLockLegalHoldStatus::On)
        )
    );
    assert_eq!(
        get_retention(&s3, "cpl", "dst", &dst).await,
        Ok((ObjectLockRetentionMode::Governance, until.secs()))
    );
    assert_eq!(get_v(&s3, "cpl", "dst", &dst).await, b"copy me");
    assert_eq!(
        delete_version(&s3, "cpl", "dst", &dst, true).await,
        Err((403, "AccessDenied".into())),
        "the copy's legal hold protects it"
    );
    assert_eq!(
        head_lock(&s3, "cpl", "src", &src).await,
        (None, None, None),
        "the source is not locked by the copy"
    );
}

/// CreateMultipartUpload with lock headers puts the retention and hold on the completed version.
#[tokio::test]
async fn multipart_upload_with_lock_headers_locks_the_result() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "mpl").await;
    let until = days_from_now(3);
    let up = s3
        .create_multipart_upload()
        .bucket("mpl")
        .key("big")
        .object_lock_mode(ObjectLockMode::Compliance)
        .object_lock_retain_until_date(until)
        .object_lock_legal_hold_status(ObjectLockLegalHoldStatus::On)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create multipart upload with lock headers: {e:?}"));
    let id = up.upload_id().expect("upload id").to_owned();
    let parts = [pattern(5 * 1024 * 1024, 21), pattern(3000, 22)];
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("mpl")
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("upload part {n}: {e:?}"));
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let out = s3
        .complete_multipart_upload()
        .bucket("mpl")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("complete multipart upload: {e:?}"));
    let v = out.version_id().expect("version id").to_owned();
    assert_eq!(
        head_lock(&s3, "mpl", "big", &v).await,
        (
            Some(ObjectLockMode::Compliance),
            Some(until.secs()),
            Some(ObjectLockLegalHoldStatus::On)
        )
    );
    assert_eq!(get_v(&s3, "mpl", "big", &v).await, parts.concat());
    assert_eq!(
        delete_version(&s3, "mpl", "big", &v, true).await,
        Err((403, "AccessDenied".into()))
    );
}

// ---------------------------------------------------------------------------------------------------------------
// 11. Retention / legal hold API errors
// ---------------------------------------------------------------------------------------------------------------

/// GetObjectRetention on a version without retention is 404 NoSuchObjectLockConfiguration. On a bucket without
/// object lock, Put/GetObjectRetention and Put/GetObjectLegalHold are 400 InvalidRequest. An unknown mode or
/// legal-hold status in the XML is 400 MalformedXML; a retain-until date in the past is 400 InvalidArgument.
#[tokio::test]
async fn retention_and_legal_hold_api_errors() {
    let server = Server::start();
    let s3 = server.client();
    lock_bucket(&s3, "apierr").await;
    let v = put_v(&s3, "apierr", "k", b"x").await;
    assert_eq!(
        get_retention(&s3, "apierr", "k", &v).await,
        Err((404, "NoSuchObjectLockConfiguration".into())),
        "a version without retention"
    );

    assert_eq!(
        set_retention(
            &s3,
            "apierr",
            "k",
            &v,
            retention(ObjectLockRetentionMode::from("BOGUS"), days_from_now(2)),
            false,
        )
        .await,
        Err((400, "MalformedXML".into())),
        "unknown retention mode"
    );
    assert_eq!(
        set_retention(
            &s3,
            "apierr",
            "k",
            &v,
            retention(ObjectLockRetentionMode::Governance, days_from_now(-2)),
            false,
        )
        .await,
        Err((400, "InvalidArgument".into())),
        "retain-until date in the past"
    );
    assert_eq!(
        get_retention(&s3, "apierr", "k", &v).await,
        Err((404, "NoSuchObjectLockConfiguration".into())),
        "refused retentions left nothing"
    );
    let err = s3
        .put_object_legal_hold()
        .bucket("apierr")
        .key("k")
        .version_id(&v)
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::from("BOGUS"))
                .build(),
        )
        .send()
        .await
        .expect_err("unknown legal hold status");
    assert_eq!(status_and_code(&err), (400, "MalformedXML".into()));

    // A bucket without object lock.
    s3.create_bucket().bucket("plain").send().await.unwrap();
    let etag = s3
        .put_object()
        .bucket("plain")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap();
    assert!(etag.e_tag().is_some());
    let err = s3
        .put_object_retention()
        .bucket("plain")
        .key("k")
        .retention(retention(
            ObjectLockRetentionMode::Governance,
            days_from_now(2),
        ))
        .send()
        .await
        .expect_err("PutObjectRetention on a bucket without lock");
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    let err = s3
        .get_object_retention()
        .bucket("plain")
        .key("k")
        .send()
        .await
        .expect_err("GetObjectRetention on a bucket without lock");
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    let err = s3
        .put_object_legal_hold()
        .bucket("plain")
        .key("k")
        .legal_hold(
            ObjectLockLegalHold::builder()
                .status(ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .send()
        .await
        .expect_err("PutObjectLegalHold on a bucket without lock");
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    let err = s3
        .get_object_legal_hold()
        .bucket("plain")
        .key("k")
        .send()
        .await
        .expect_err("GetObjectLegalHold on a bucket without lock");
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    // And the object there is still freely deletable.
    s3.delete_object()
        .bucket("plain")
        .key("k")
        .send()
        .await
        .unwrap();
}
