//! Conditional requests (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since), evaluated as S3 does:
//! If-Match overrides If-Unmodified-Since, If-None-Match overrides If-Modified-Since; reads answer 412 or 304.

use chrono::{DateTime, Utc};
use http::HeaderMap;

use crate::error::{ApiError, ApiResult};

/// The four condition headers (or their x-amz-copy-source-if-* twins).
#[derive(Debug, Default)]
pub struct Conditions<'a> {
    /// If-Match.
    pub if_match: Option<&'a str>,
    /// If-None-Match.
    pub if_none_match: Option<&'a str>,
    /// If-Modified-Since.
    pub if_modified_since: Option<&'a str>,
    /// If-Unmodified-Since.
    pub if_unmodified_since: Option<&'a str>,
}

impl<'a> Conditions<'a> {
    /// Reads the headers whose names start with `prefix` ("if-" or "x-amz-copy-source-if-").
    pub fn from_headers(headers: &'a HeaderMap, prefix: &str) -> Self {
        let get = |suffix: &str| {
            headers
                .get(format!("{prefix}{suffix}"))
                .and_then(|v| v.to_str().ok())
        };
        Self {
            if_match: get("match"),
            if_none_match: get("none-match"),
            if_modified_since: get("modified-since"),
            if_unmodified_since: get("unmodified-since"),
        }
    }

    /// Evaluates against an object's ETag (unquoted) and last-modified time. `not_modified` is the error for a
    /// fresh client copy: NotModified for GET/HEAD, PreconditionFailed for copy sources.
    pub fn check(
        &self,
        etag: &str,
        last_modified: DateTime<Utc>,
        not_modified: fn() -> ApiError,
    ) -> ApiResult<()> {
        // HTTP dates have second precision; compare at that precision.
        let lm = last_modified.timestamp();
        if let Some(m) = self.if_match {
            if !etag_list_matches(m, etag) {
                return Err(ApiError::PreconditionFailed);
            }
        } else if let Some(since) = self.if_unmodified_since.and_then(parse_http_date)
            && lm > since.timestamp()
        {
            return Err(ApiError::PreconditionFailed);
        }
        if let Some(m) = self.if_none_match {
            if etag_list_matches(m, etag) {
                return Err(not_modified());
            }
        } else if let Some(since) = self.if_modified_since.and_then(parse_http_date)
            && lm <= since.timestamp()
        {
            return Err(not_modified());
        }
        Ok(())
    }
}

/// True if a comma-separated ETag list (quoted or not, or `*`) names `etag`.
pub fn etag_list_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| {
        let t = t.strip_prefix("W/").unwrap_or(t);
        t == "*" || t.trim_matches('"') == etag
    })
}

/// Parses an HTTP date (RFC 7231 IMF-fixdate, RFC 850 or asctime); unparseable dates are ignored by callers.
pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(s.trim())
        .ok()
        .map(DateTime::<Utc>::from)
}

/// Formats an HTTP date (IMF-fixdate).
pub fn http_date(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Formats the ISO 8601 timestamp S3 puts in XML (millisecond precision, `Z`).
pub fn iso8601(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn precedence_as_s3() {
        let lm = at(1_700_000_000);
        let before = http_date(at(1_600_000_000));
        let after = http_date(at(1_800_000_000));
        let c = Conditions {
            if_match: Some("\"abc\""),
            if_unmodified_since: Some(&before),
            ..Default::default()
        };
        assert!(
            c.check("abc", lm, || ApiError::NotModified).is_ok(),
            "If-Match wins over If-Unmodified-Since"
        );
        let c = Conditions {
            if_match: Some("\"zzz\""),
            ..Default::default()
        };
        assert!(matches!(
            c.check("abc", lm, || ApiError::NotModified),
            Err(ApiError::PreconditionFailed)
        ));
        let c = Conditions {
            if_none_match: Some("\"abc\""),
            ..Default::default()
        };
        assert!(matches!(
            c.check("abc", lm, || ApiError::NotModified),
            Err(ApiError::NotModified)
        ));
        let c = Conditions {
            if_modified_since: Some(&after),
            ..Default::default()
        };
        assert!(matches!(
            c.check("abc", lm, || ApiError::NotModified),
            Err(ApiError::NotModified)
        ));
        let c = Conditions {
            if_modified_since: Some(&before),
            ..Default::default()
        };
        assert!(c.check("abc", lm, || ApiError::NotModified).is_ok());
        let c = Conditions {
            if_unmodified_since: Some(&before),
            ..Default::default()
        };
        assert!(matches!(
            c.check("abc", lm, || ApiError::NotModified),
            Err(ApiError::PreconditionFailed)
        ));
        let c = Conditions {
            if_none_match: Some("\"other\""),
            if_modified_since: Some(&after),
            ..Default::default()
        };
        assert!(
            c.check("abc", lm, || ApiError::NotModified).is_ok(),
            "If-None-Match wins over If-Modified-Since"
        );
    }

    #[test]
    fn date_formats() {
        assert_eq!(http_date(at(784_111_777)), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(at(784_111_777))
        );
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(iso8601(at(0)), "1970-01-01T00:00:00.000Z");
    }
}
