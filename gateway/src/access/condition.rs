//! Policy `Condition` blocks: operators, keys and their evaluation against a request, as IAM does it.
//!
//! Within a block every operator, and within an operator every key, must hold (AND); a key's several values are
//! alternatives (OR). A key the request does not carry makes a positive operator false and a negated one
//! (`StringNotEquals`, `NotIpAddress`, ...) true; the `...IfExists` form of any operator is true then.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde_json::Value;

use super::RequestEnv;
use super::actions::glob_match;
use crate::auth::Identity;

/// The comparison an operator makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    NumericEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    Null,
}

/// One operator of a Condition block with one key and its values.
#[derive(Debug, Clone)]
pub struct Condition {
    kind: Kind,
    /// `StringNotEquals`, `NotIpAddress`, ...: true when no value matches.
    negated: bool,
    if_exists: bool,
    /// The key, lowercased (keys are case-insensitive).
    key: String,
    values: Vec<String>,
    nets: Vec<IpNet>,
}

/// Why a condition could not be parsed (becomes a MalformedPolicy message).
pub type ParseError = &'static str;

const INVALID_KEY: ParseError = "Policy has an invalid condition key";
const INVALID_OPERATOR: ParseError = "Invalid Condition type";
const INVALID_SYNTAX: ParseError = "Invalid policy syntax.";

/// Condition keys S3 understands besides the global `aws:` ones.
const S3_KEYS: &[&str] = &[
    "s3:prefix",
    "s3:delimiter",
    "s3:max-keys",
    "s3:x-amz-acl",
    "s3:x-amz-content-sha256",
    "s3:x-amz-copy-source",
    "s3:x-amz-metadata-directive",
    "s3:x-amz-server-side-encryption",
    "s3:x-amz-storage-class",
    "s3:versionid",
    "s3:existingobjecttag/*",
    "s3:requestobjecttag/*",
    "s3:requestobjecttagkeys",
    "s3:object-lock-mode",
    "s3:object-lock-retain-until-date",
    "s3:object-lock-legal-hold",
    "s3:object-lock-remaining-retention-days",
    "s3:signatureversion",
    "s3:signatureage",
    "s3:authtype",
    "s3:tlsversion",
    "s3:locationconstraint",
    "s3:resourceaccount",
];

/// Parses an operator name into (comparison, negated, true-when-the-key-is-absent). The set qualifiers
/// `ForAnyValue:` and `ForAllValues:` are accepted; every key Strata knows is single-valued, so `ForAnyValue:`
/// is the plain operator and `ForAllValues:` the plain operator that also holds when the key is absent.
fn operator(name: &str) -> Option<(Kind, bool, bool)> {
    let (name, all_values) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
        (rest, true)
    } else {
        (name.strip_prefix("ForAnyValue:").unwrap_or(name), false)
    };
    let (kind, negated, if_exists) = base_operator(name)?;
    Some((kind, negated, if_exists || all_values))
}

fn base_operator(name: &str) -> Option<(Kind, bool, bool)> {
    let (base, if_exists) = match name.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let (kind, negated) = match base {
        "StringEquals" => (Kind::StringEquals, false),
        "StringNotEquals" => (Kind::StringEquals, true),
        "StringEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Kind::StringEqualsIgnoreCase, true),
        "StringLike" | "ArnLike" | "ArnEquals" => (Kind::StringLike, false),
        "StringNotLike" | "ArnNotLike" | "ArnNotEquals" => (Kind::StringLike, true),
        "NumericEquals" => (Kind::NumericEquals, false),
        "NumericNotEquals" => (Kind::NumericEquals, true),
        "NumericLessThan" => (Kind::NumericLessThan, false),
        "NumericLessThanEquals" => (Kind::NumericLessThanEquals, false),
        "NumericGreaterThan" => (Kind::NumericGreaterThan, false),
        "NumericGreaterThanEquals" => (Kind::NumericGreaterThanEquals, false),
        "DateEquals" => (Kind::DateEquals, false),
        "DateNotEquals" => (Kind::DateEquals, true),
        "DateLessThan" => (Kind::DateLessThan, false),
        "DateLessThanEquals" => (Kind::DateLessThanEquals, false),
        "DateGreaterThan" => (Kind::DateGreaterThan, false),
        "DateGreaterThanEquals" => (Kind::DateGreaterThanEquals, false),
        "Bool" => (Kind::Bool, false),
        "IpAddress" => (Kind::IpAddress, false),
        "NotIpAddress" => (Kind::IpAddress, true),
        "Null" if !if_exists => (Kind::Null, false),
        _ => return None,
    };
    Some((kind, negated, if_exists))
}

fn valid_key(key: &str) -> bool {
    if let Some(rest) = key.strip_prefix("aws:") {
        return !rest.is_empty();
    }
    S3_KEYS.iter().any(|k| match k.strip_suffix('*') {
        Some(prefix) => key.len() > prefix.len() && key.starts_with(prefix),
        None => *k == key,
    })
}

/// Parses a whole `Condition` block (`{"Operator": {"key": value-or-values, ...}, ...}`).
pub fn parse_block(block: &Value) -> Result<Vec<Condition>, ParseError> {
    let ops = block.as_object().ok_or(INVALID_SYNTAX)?;
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let (kind, negated, if_exists) = operator(op_name).ok_or(INVALID_OPERATOR)?;
        let keys = keys.as_object().ok_or(INVALID_SYNTAX)?;
        for (key, values) in keys {
            let key = key.to_ascii_lowercase();
            if !valid_key(&key) {
                return Err(INVALID_KEY);
            }
            let values = scalar_strings(values).ok_or(INVALID_SYNTAX)?;
            let cond = Condition::new(kind, negated, if_exists, key, values)?;
            out.push(cond);
        }
    }
    Ok(out)
}

/// A JSON string, number or boolean, or an array of them, as strings.
fn scalar_strings(v: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Array(_) => None,
        other => one(other).map(|s| vec![s]),
    }
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc3339(s) {
        return Some(d.with_timezone(&Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(d.and_hms_opt(0, 0, 0)?.and_utc());
    }
    if let Ok(d) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ") {
        return Some(d.and_utc());
    }
    s.parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
}

fn parse_net(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
}

impl Condition {
    fn new(
        kind: Kind,
        negated: bool,
        if_exists: bool,
        key: String,
        values: Vec<String>,
    ) -> Result<Self, ParseError> {
        let valid = match kind {
            Kind::Bool | Kind::Null => values
                .iter()
                .all(|v| v.eq_ignore_ascii_case("true") || v.eq_ignore_ascii_case("false")),
            Kind::DateEquals
            | Kind::DateLessThan
            | Kind::DateLessThanEquals
            | Kind::DateGreaterThan
            | Kind::DateGreaterThanEquals => values.iter().all(|v| parse_date(v).is_some()),
            Kind::NumericEquals
            | Kind::NumericLessThan
            | Kind::NumericLessThanEquals
            | Kind::NumericGreaterThan
            | Kind::NumericGreaterThanEquals => values.iter().all(|v| v.parse::<f64>().is_ok()),
            Kind::IpAddress => values.iter().all(|v| parse_net(v).is_some()),
            Kind::StringEquals | Kind::StringEqualsIgnoreCase | Kind::StringLike => true,
        };
        if !valid {
            return Err(INVALID_SYNTAX);
        }
        let nets = if kind == Kind::IpAddress {
            values.iter().filter_map(|v| parse_net(v)).collect()
        } else {
            Vec::new()
        };
        Ok(Self {
            kind,
            negated,
            if_exists,
            key,
            values,
            nets,
        })
    }

    /// The key this condition tests, lowercased.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether this is a positive test (not negated, not `Null`) that pins the key to the listed values.
    pub fn pins(&self) -> bool {
        !self.negated && !self.if_exists && self.kind != Kind::Null
    }

    /// The listed values.
    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// The CIDR blocks of an IpAddress condition.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// Whether the condition holds for this request.
    pub fn holds(&self, caller: Option<&Identity>, env: &RequestEnv) -> bool {
        let actual = context_value(&self.key, caller, env);
        if self.kind == Kind::Null {
            let want_absent = self.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
            return actual.is_none() == want_absent;
        }
        let Some(actual) = actual else {
            return self.if_exists || self.negated;
        };
        let any = self
            .values
            .iter()
            .enumerate()
            .any(|(i, v)| self.matches(i, v, &actual));
        any != self.negated
    }

    fn matches(&self, index: usize, want: &str, actual: &str) -> bool {
        let num = |s: &str| s.parse::<f64>().ok();
        let cmp_num = |f: fn(f64, f64) -> bool| match (num(actual), num(want)) {
            (Some(a), Some(w)) => f(a, w),
            _ => false,
        };
        let cmp_date = |f: fn(DateTime<Utc>, DateTime<Utc>) -> bool| match (
            parse_date(actual),
            parse_date(want),
        ) {
            (Some(a), Some(w)) => f(a, w),
            _ => false,
        };
        match self.kind {
            Kind::StringEquals => actual == want,
            Kind::StringEqualsIgnoreCase => actual.eq_ignore_ascii_case(want),
            Kind::StringLike => glob_match(want, actual),
            Kind::Bool => actual.eq_ignore_ascii_case(want),
            Kind::NumericEquals => cmp_num(|a, w| a == w),
            Kind::NumericLessThan => cmp_num(|a, w| a < w),
            Kind::NumericLessThanEquals => cmp_num(|a, w| a <= w),
            Kind::NumericGreaterThan => cmp_num(|a, w| a > w),
            Kind::NumericGreaterThanEquals => cmp_num(|a, w| a >= w),
            Kind::DateEquals => cmp_date(|a, w| a == w),
            Kind::DateLessThan => cmp_date(|a, w| a < w),
            Kind::DateLessThanEquals => cmp_date(|a, w| a <= w),
            Kind::DateGreaterThan => cmp_date(|a, w| a > w),
            Kind::DateGreaterThanEquals => cmp_date(|a, w| a >= w),
            Kind::IpAddress => match (actual.parse::<IpAddr>(), self.nets.get(index)) {
                (Ok(ip), Some(net)) => net.contains(&ip.to_canonical()),
                _ => false,
            },
            Kind::Null => false,
        }
    }
}

/// The value of a condition key for this request, or None when the request does not carry it.
fn context_value(key: &str, caller: Option<&Identity>, env: &RequestEnv) -> Option<String> {
    match key {
        "aws:sourceip" => env.source_ip.map(|ip| ip.to_canonical().to_string()),
        "aws:securetransport" => Some(env.secure_transport.to_string()),
        "aws:referer" => env.referer.clone(),
        "aws:useragent" => env.user_agent.clone(),
        "aws:currenttime" => Some(env.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "aws:epochtime" => Some(env.now.timestamp().to_string()),
        "aws:username" => caller
            .filter(|c| !c.is_root)
            .map(|c| c.display_name.clone()),
        "aws:userid" => caller.map(|c| c.access_key.clone()),
        "aws:principaltype" => Some(
            match caller {
                None => "Anonymous",
                Some(c) if c.is_root => "Account",
                Some(_) => "User",
            }
            .to_owned(),
        ),
        "s3:prefix" => env.prefix.clone(),
        "s3:delimiter" => env.delimiter.clone(),
        "s3:max-keys" => env.max_keys.clone(),
        "s3:x-amz-acl" => env.acl.clone(),
        "s3:versionid" => env.version_id.clone(),
        "s3:signatureversion" => env.signing.map(|s| s.version.to_owned()),
        "s3:authtype" => env.signing.map(|s| s.auth_type.to_owned()),
        _ => key.strip_prefix("s3:").and_then(|name| {
            env.condition_headers
                .iter()
                .find(|(header, _)| *header == name)
                .map(|(_, value)| value.clone())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> RequestEnv {
        RequestEnv {
            source_ip: Some("127.0.0.1".parse().unwrap()),
            secure_transport: false,
            referer: Some("https://www.example.com/page".into()),
            user_agent: Some("curl/8".into()),
            prefix: Some("photos/2024/".into()),
            delimiter: Some("/".into()),
            max_keys: Some("100".into()),
            acl: Some("public-read".into()),
            condition_headers: vec![("x-amz-content-sha256", "UNSIGNED-PAYLOAD".into())],
            version_id: None,
            now: DateTime::parse_from_rfc3339("2026-06-01T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            signing: None,
        }
    }

    fn holds(block: Value, env: &RequestEnv) -> bool {
        parse_block(&block)
            .unwrap()
            .iter()
            .all(|c| c.holds(None, env))
    }

    #[test]
    fn headers_signing_and_their_absence_are_condition_keys() {
        let mut e = env();
        let cases = [
            (
                json!({"StringEquals": {"s3:x-amz-content-sha256": "UNSIGNED-PAYLOAD"}}),
                true,
            ),
            (
                json!({"StringNotEquals": {"s3:x-amz-content-sha256": "UNSIGNED-PAYLOAD"}}),
                false,
            ),
            // Absent: a negated operator holds, as on AWS.
            (
                json!({"StringNotEquals": {"s3:x-amz-storage-class": "STANDARD"}}),
                true,
            ),
            (json!({"Null": {"s3:x-amz-copy-source": "true"}}), true),
            (json!({"Null": {"s3:signatureversion": "true"}}), true),
        ];
        for (block, want) in &cases {
            assert_eq!(holds(block.clone(), &e), *want, "{block}");
        }
        e.signing = Some(crate::auth::Signing::V2_QUERY);
        for (block, want) in [
            (
                json!({"StringEquals": {"s3:signatureversion": "AWS"}}),
                true,
            ),
            (
                json!({"StringNotEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}}),
                true,
            ),
            (
                json!({"StringEquals": {"s3:authType": "REST-QUERY-STRING"}}),
                true,
            ),
            (
                json!({"StringEquals": {"s3:authType": "REST-HEADER"}}),
                false,
            ),
        ] {
            assert_eq!(holds(block.clone(), &e), want, "{block}");
        }
    }

    #[test]
    fn each_operator() {
        let e = env();
        let cases = [
            (json!({"StringEquals": {"s3:prefix": "photos/2024/"}}), true),
            (
                json!({"StringEquals": {"s3:prefix": ["x", "photos/2024/"]}}),
                true,
            ),
            (
                json!({"StringEquals": {"s3:prefix": "Photos/2024/"}}),
                false,
            ),
            (json!({"StringNotEquals": {"s3:prefix": "x"}}), true),
            (
                json!({"StringNotEquals": {"s3:prefix": ["x", "photos/2024/"]}}),
                false,
            ),
            (
                json!({"StringEqualsIgnoreCase": {"s3:prefix": "PHOTOS/2024/"}}),
                true,
            ),
            (
                json!({"StringLike": {"aws:Referer": "https://www.example.com/*"}}),
                true,
            ),
            (
                json!({"StringLike": {"aws:Referer": "https://evil.com/*"}}),
                false,
            ),
            (
                json!({"StringNotLike": {"aws:Referer": "https://evil.com/*"}}),
                true,
            ),
            (json!({"IpAddress": {"aws:SourceIp": "127.0.0.1/32"}}), true),
            (json!({"IpAddress": {"aws:SourceIp": "127.0.0.1"}}), true),
            (json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}), false),
            (
                json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.0/8"]}}),
                true,
            ),
            (
                json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                true,
            ),
            (json!({"IpAddress": {"aws:SourceIp": "::1/128"}}), false),
            (json!({"Bool": {"aws:SecureTransport": "false"}}), true),
            (json!({"Bool": {"aws:SecureTransport": true}}), false),
            (
                json!({"DateLessThan": {"aws:CurrentTime": "2027-01-01T00:00:00Z"}}),
                true,
            ),
            (
                json!({"DateLessThan": {"aws:CurrentTime": "2026-01-01"}}),
                false,
            ),
            (
                json!({"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}}),
                true,
            ),
            (
                json!({"DateGreaterThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}),
                false,
            ),
            (
                json!({"NumericLessThan": {"aws:EpochTime": 2000000000}}),
                true,
            ),
            (json!({"Null": {"s3:delimiter": "true"}}), false),
            (json!({"StringEquals": {"s3:delimiter": "/"}}), true),
            (
                json!({"NumericLessThanEquals": {"s3:max-keys": "100"}}),
                true,
            ),
            (json!({"NumericLessThan": {"s3:max-keys": 100}}), false),
            (
                json!({"StringNotEquals": {"s3:x-amz-acl": "public-read"}}),
                false,
            ),
            (json!({"Null": {"s3:prefix": "true"}}), false),
            (json!({"StringLike": {"aws:UserAgent": "curl/*"}}), true),
            (
                json!({"ForAnyValue:StringLike": {"aws:UserAgent": "curl/*"}}),
                true,
            ),
            (
                json!({"ForAllValues:StringEquals": {"aws:UserAgent": "wget"}}),
                false,
            ),
            (
                json!({"ForAllValues:StringEquals": {"aws:Referer": "x"}}),
                false,
            ),
            // AND across keys and operators.
            (
                json!({"StringLike": {"aws:UserAgent": "curl/*"}, "IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                false,
            ),
        ];
        for (block, want) in cases {
            assert_eq!(holds(block.clone(), &e), want, "{block}");
        }
    }

    #[test]
    fn absent_keys() {
        let mut e = env();
        e.referer = None;
        e.source_ip = None;
        assert!(!holds(json!({"StringLike": {"aws:Referer": "*"}}), &e));
        assert!(holds(json!({"StringNotLike": {"aws:Referer": "x*"}}), &e));
        assert!(holds(
            json!({"StringLikeIfExists": {"aws:Referer": "x*"}}),
            &e
        ));
        assert!(!holds(
            json!({"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}),
            &e
        ));
        assert!(holds(
            json!({"NotIpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
            &e
        ));
        assert!(holds(json!({"Null": {"aws:Referer": true}}), &e));
        assert!(holds(
            json!({"ForAllValues:StringEquals": {"aws:Referer": "x"}}),
            &e
        ));
        assert!(!holds(
            json!({"ForAnyValue:StringEquals": {"aws:Referer": "x"}}),
            &e
        ));
    }

    #[test]
    fn malformed() {
        for (block, why) in [
            (json!({"StringFoo": {"s3:prefix": "x"}}), INVALID_OPERATOR),
            (
                json!({"ForSomeValues:StringEquals": {"s3:prefix": "x"}}),
                INVALID_OPERATOR,
            ),
            (json!({"StringEquals": {"s3:nope": "x"}}), INVALID_KEY),
            (json!({"StringEquals": {"prefix": "x"}}), INVALID_KEY),
            (
                json!({"IpAddress": {"aws:SourceIp": "not-an-ip"}}),
                INVALID_SYNTAX,
            ),
            (
                json!({"DateLessThan": {"aws:CurrentTime": "soon"}}),
                INVALID_SYNTAX,
            ),
            (
                json!({"Bool": {"aws:SecureTransport": "maybe"}}),
                INVALID_SYNTAX,
            ),
            (json!({"StringEquals": {"s3:prefix": []}}), INVALID_SYNTAX),
            (
                json!({"StringEquals": {"s3:prefix": {"a": 1}}}),
                INVALID_SYNTAX,
            ),
            (json!({"StringEquals": "x"}), INVALID_SYNTAX),
            (json!(["x"]), INVALID_SYNTAX),
        ] {
            assert_eq!(parse_block(&block).unwrap_err(), why, "{block}");
        }
    }
}
