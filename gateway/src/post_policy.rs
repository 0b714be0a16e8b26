//! The policy document of a browser-based upload (POST Object): a base64 JSON document with an `expiration`
//! and a list of `conditions` that the form must satisfy, as AWS's "Creating a POST Policy" describes.
//!
//! Conditions: exact match (`{"field": "value"}` or `["eq", "$field", "value"]`), `["starts-with", "$field",
//! "prefix"]` and `["content-length-range", min, max]`; `bucket` matches the bucket of the request URL. Every
//! form field except `x-amz-signature`, `file`, `policy` and `x-ignore-*` must be named by a condition. Field
//! names are case-insensitive. Pure functions of (policy, form, now): the handler supplies the clock.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// One condition of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    /// The field (lowercase, without `$`) equals the value.
    Eq { field: String, value: String },
    /// The field starts with the prefix (an empty prefix allows any value).
    StartsWith { field: String, prefix: String },
    /// The uploaded file's size is within `min..=max` bytes.
    LengthRange { min: u64, max: u64 },
}

impl Condition {
    /// As AWS quotes a failed condition: `["eq", "$key", "a"]`.
    fn describe(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap_or_default();
        match self {
            Condition::Eq { field, value } => {
                format!("[\"eq\", {}, {}]", q(&format!("${field}")), q(value))
            }
            Condition::StartsWith { field, prefix } => {
                format!(
                    "[\"starts-with\", {}, {}]",
                    q(&format!("${field}")),
                    q(prefix)
                )
            }
            Condition::LengthRange { min, max } => {
                format!("[\"content-length-range\", {min}, {max}]")
            }
        }
    }
}

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct PostPolicy {
    expiration: DateTime<Utc>,
    conditions: Vec<Condition>,
}

/// Form fields that need no condition.
fn exempt(field: &str) -> bool {
    matches!(
        field,
        "x-amz-signature" | "file" | "policy" | "awsaccesskeyid" | "signature"
    ) || field.starts_with("x-ignore-")
}

fn invalid(msg: &str) -> ApiError {
    ApiError::InvalidPolicyDocument(format!("Invalid Policy: {msg}"))
}

impl PostPolicy {
    /// Decodes and parses the base64 `policy` form field.
    pub fn parse(b64: &str) -> ApiResult<Self> {
        let json = B64
            .decode(b64.trim())
            .map_err(|_| invalid("Invalid 'Base64' encoding."))?;
        let doc: Value = serde_json::from_slice(&json).map_err(|_| invalid("Invalid JSON."))?;
        let expiration = doc
            .get("expiration")
            .ok_or_else(|| invalid("Policy missing expiration."))?
            .as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .ok_or_else(|| invalid("Invalid 'expiration' value: it must be an ISO 8601 date."))?
            .with_timezone(&Utc);
        let conditions = doc
            .get("conditions")
            .ok_or_else(|| invalid("Policy missing conditions."))?
            .as_array()
            .ok_or_else(|| invalid("Invalid 'conditions' value: it must be a list."))?
            .iter()
            .map(parse_condition)
            .collect::<ApiResult<Vec<_>>>()?
            .into_iter()
            .flatten()
            .collect();
        Ok(Self {
            expiration,
            conditions,
        })
    }

    /// Checks the form against the policy before the file is read: not expired, every condition but the
    /// length range holds, and no field is left uncovered. `fields` are (lowercase name, value), with `key`
    /// already holding the final key (`${filename}` replaced); `bucket` is the bucket of the request URL.
    pub fn check(
        &self,
        now: DateTime<Utc>,
        bucket: &str,
        fields: &[(String, String)],
    ) -> ApiResult<()> {
        if now > self.expiration {
            return Err(ApiError::PostPolicyDenied("Policy expired.".into()));
        }
        let value = |name: &str| -> &str {
            if name == "bucket" {
                return bucket;
            }
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map_or("", |(_, v)| v.as_str())
        };
        for c in &self.conditions {
            let ok = match c {
                Condition::Eq { field, value: v } => value(field) == v,
                Condition::StartsWith { field, prefix } => {
                    value(field).starts_with(prefix.as_str())
                }
                Condition::LengthRange { .. } => true,
            };
            if !ok {
                return Err(ApiError::PostPolicyDenied(format!(
                    "Policy Condition failed: {}",
                    c.describe()
                )));
            }
        }
        let extra: Vec<&str> = fields
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|n| !exempt(n) && !self.covers(n))
            .collect();
        if !extra.is_empty() {
            return Err(ApiError::PostPolicyDenied(format!(
                "Extra input fields: {}",
                extra.join(", ")
            )));
        }
        Ok(())
    }

    /// The allowed file sizes, when the policy has a content-length-range (the tightest, if several).
    pub fn length_range(&self) -> Option<(u64, u64)> {
        self.conditions.iter().fold(None, |acc, c| match (c, acc) {
            (Condition::LengthRange { min, max }, None) => Some((*min, *max)),
            (Condition::LengthRange { min, max }, Some((a, b))) => Some((a.max(*min), b.min(*max))),
            _ => acc,
        })
    }

    fn covers(&self, field: &str) -> bool {
        self.conditions.iter().any(|c| match c {
            Condition::Eq { field: f, .. } | Condition::StartsWith { field: f, .. } => f == field,
            Condition::LengthRange { .. } => false,
        })
    }
}

/// One entry of `conditions`: an object of exact matches, or a list form.
fn parse_condition(v: &Value) -> ApiResult<Vec<Condition>> {
    match v {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| {
                Ok(Condition::Eq {
                    field: k.to_ascii_lowercase(),
                    value: scalar(v).ok_or_else(|| {
                        invalid(&format!("Condition value for '{k}' must be a string."))
                    })?,
                })
            })
            .collect(),
        Value::Array(items) => {
            let op = items.first().and_then(Value::as_str).unwrap_or_default();
            match (op.to_ascii_lowercase().as_str(), items.len()) {
                ("eq" | "starts-with", 3) => {
                    let field = items[1]
                        .as_str()
                        .and_then(|f| f.strip_prefix('$'))
                        .ok_or_else(|| {
                            invalid(&format!("Condition field must start with '$': {v}"))
                        })?
                        .to_ascii_lowercase();
                    let value = scalar(&items[2]).ok_or_else(|| {
                        invalid(&format!("Condition value must be a string: {v}"))
                    })?;
                    Ok(vec![if op.eq_ignore_ascii_case("eq") {
                        Condition::Eq { field, value }
                    } else {
                        Condition::StartsWith {
                            field,
                            prefix: value,
                        }
                    }])
                }
                ("content-length-range", 3) => {
                    let (min, max) = (number(&items[1]), number(&items[2]));
                    match (min, max) {
                        (Some(min), Some(max)) if min <= max => {
                            Ok(vec![Condition::LengthRange { min, max }])
                        }
                        _ => Err(invalid(&format!("Invalid content-length-range: {v}"))),
                    }
                }
                _ => Err(invalid(&format!("Invalid Policy condition: {v}"))),
            }
        }
        _ => Err(invalid(&format!("Invalid Policy condition: {v}"))),
    }
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> ApiResult<PostPolicy> {
        PostPolicy::parse(&B64.encode(json))
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const DOC: &str = r#"{"expiration":"2030-01-02T00:00:00.000Z","conditions":[
        {"bucket":"photos"},["starts-with","$key","uploads/"],{"acl":"private"},
        ["content-length-range",1,100],["starts-with","$Content-Type","image/"],
        ["eq","$x-amz-meta-tag","blue"],{"x-amz-credential":"AK/20300101/us-east-1/s3/aws4_request"},
        {"x-amz-algorithm":"AWS4-HMAC-SHA256"},{"x-amz-date":"20300101T000000Z"}]}"#;

    fn good() -> Vec<(String, String)> {
        fields(&[
            ("key", "uploads/cat.png"),
            ("acl", "private"),
            ("content-type", "image/png"),
            ("x-amz-meta-tag", "blue"),
            ("x-amz-credential", "AK/20300101/us-east-1/s3/aws4_request"),
            ("x-amz-algorithm", "AWS4-HMAC-SHA256"),
            ("x-amz-date", "20300101T000000Z"),
            ("policy", "..."),
            ("x-amz-signature", "..."),
            ("x-ignore-me", "anything"),
        ])
    }

    #[test]
    fn a_matching_form_passes() {
        let p = policy(DOC).unwrap();
        p.check(now(), "photos", &good()).unwrap();
        assert_eq!(p.length_range(), Some((1, 100)));
    }

    #[test]
    fn each_failure_is_named() {
        let p = policy(DOC).unwrap();
        let deny = |r: ApiResult<()>| match r {
            Err(ApiError::PostPolicyDenied(m)) => m,
            other => panic!("expected a denial, got {other:?}"),
        };
        let m = deny(p.check(now(), "videos", &good()));
        assert_eq!(m, r#"Policy Condition failed: ["eq", "$bucket", "photos"]"#);
        let mut f = good();
        f[0].1 = "other/cat.png".into();
        let m = deny(p.check(now(), "photos", &f));
        assert_eq!(
            m,
            r#"Policy Condition failed: ["starts-with", "$key", "uploads/"]"#
        );
        let mut f = good();
        f.push(("x-amz-meta-extra".into(), "1".into()));
        let m = deny(p.check(now(), "photos", &f));
        assert_eq!(m, "Extra input fields: x-amz-meta-extra");
        let mut f = good();
        f.retain(|(n, _)| n != "x-amz-meta-tag");
        let m = deny(p.check(now(), "photos", &f));
        assert_eq!(
            m,
            r#"Policy Condition failed: ["eq", "$x-amz-meta-tag", "blue"]"#
        );
        let late = DateTime::parse_from_rfc3339("2030-01-03T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(deny(p.check(late, "photos", &good())), "Policy expired.");
    }

    #[test]
    fn malformed_documents_are_refused() {
        for doc in [
            "not json",
            r#"{"conditions":[]}"#,
            r#"{"expiration":"tomorrow","conditions":[]}"#,
            r#"{"expiration":"2030-01-02T00:00:00Z"}"#,
            r#"{"expiration":"2030-01-02T00:00:00Z","conditions":[["gt","$key","a"]]}"#,
            r#"{"expiration":"2030-01-02T00:00:00Z","conditions":[["eq","key","a"]]}"#,
            r#"{"expiration":"2030-01-02T00:00:00Z","conditions":[["content-length-range",9,1]]}"#,
            r#"{"expiration":"2030-01-02T00:00:00Z","conditions":[{"key":["a"]}]}"#,
        ] {
            assert!(
                matches!(policy(doc), Err(ApiError::InvalidPolicyDocument(_))),
                "{doc}"
            );
        }
        assert!(matches!(
            PostPolicy::parse("!!!"),
            Err(ApiError::InvalidPolicyDocument(_))
        ));
    }

    #[test]
    fn an_empty_prefix_allows_anything_and_ranges_tighten() {
        let p = policy(
            r#"{"expiration":"2030-01-02T00:00:00Z","conditions":[["starts-with","$key",""],
            ["content-length-range","0","50"],["content-length-range",10,80]]}"#,
        )
        .unwrap();
        p.check(now(), "b", &fields(&[("key", "x")])).unwrap();
        assert_eq!(p.length_range(), Some((10, 50)));
    }
}
