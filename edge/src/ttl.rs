//! The TTL policy: whether, and for how long, the edge keeps an origin response, following CloudFront's rules.
//!
//! This module owns the reading of the origin's `Cache-Control`, `Expires`, `Date` and `Age` headers and their
//! combination with a cache behaviour's minimum, default and maximum TTL and its error caching minimum TTL. It
//! decides; it stores nothing.
//!
//! The rules are those of the CloudFront Developer Guide, "Managing how long content stays in the cache
//! (expiration)" (the table of origin headers against Minimum TTL = 0 / > 0), "HTTP 4xx and 5xx status codes that
//! CloudFront caches" and "Controlling how long CloudFront caches errors". Header syntax follows RFC 9111.

use std::time::{Duration, SystemTime};

use http::header::{AGE, CACHE_CONTROL, DATE, EXPIRES, SET_COOKIE};
use http::{HeaderMap, HeaderValue, StatusCode};

/// RFC 9111 §1.2.2: a delta-seconds value too large to represent is taken as 2^31 seconds.
const DELTA_SECONDS_CAP: u64 = 1 << 31;

/// A cache behaviour's TTL settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    /// Floor of any origin-supplied lifetime; also the lifetime of `no-cache`/`no-store`/`private` responses when
    /// non-zero.
    pub min: Duration,
    /// Lifetime of a response whose origin sent neither `max-age`/`s-maxage` nor `Expires`.
    pub default: Duration,
    /// Ceiling of any origin-supplied lifetime.
    pub max: Duration,
    /// CloudFront's "error caching minimum TTL": the lifetime of cached 4xx/5xx responses.
    pub error_ttl: Duration,
}

impl From<&strata_config::edge::Behavior> for TtlPolicy {
    fn from(b: &strata_config::edge::Behavior) -> Self {
        Self {
            min: Duration::from_secs(b.min_ttl),
            default: Duration::from_secs(b.default_ttl),
            max: Duration::from_secs(b.max_ttl),
            error_ttl: Duration::from_secs(b.error_ttl),
        }
    }
}

/// What to do with an origin response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Keep it for this long. `Store(Duration::ZERO)` keeps it stale from the start: every later request
    /// revalidates it with the origin (a conditional request), as CloudFront does when all its TTLs are 0.
    Store(Duration),
    /// Do not keep it at all.
    DoNotStore,
}

/// Decides whether and how long to cache an origin response to a GET or HEAD.
///
/// `now` is the edge's clock when the response arrived; Expires is measured against the response's Date
/// header when present (else `now`). A 304 is a revalidation answer and never comes here (it would get
/// [`Decision::DoNotStore`]).
pub fn decide(
    policy: &TtlPolicy,
    status: StatusCode,
    headers: &HeaderMap,
    now: SystemTime,
) -> Decision {
    // Deliberate difference from CloudFront, which caches a response with Set-Cookie unless the behaviour
    // forwards cookies (and then strips nothing). Our cache key never includes cookies, so a stored Set-Cookie
    // would hand one viewer's session cookie to every later viewer of the object. Never store those.
    if headers.contains_key(SET_COOKIE) {
        return Decision::DoNotStore;
    }
    let cc = CacheControl::parse(headers);
    match status.as_u16() {
        // The statuses CloudFront caches by the expiration table (RFC 9110's heuristically cacheable
        // successes and permanent redirects, less 204/206: a 206 is a fragment, not the object).
        200 | 203 | 300 | 301 => decide_success(policy, &cc, headers, now),
        // "HTTP 4xx and 5xx status codes that CloudFront always caches".
        404 | 405 | 410 | 414 | 500 | 501 | 502 | 503 | 504 => {
            decide_error(policy, status, &cc, headers, now, true)
        }
        // "HTTP 4xx status codes that CloudFront caches based on Cache-Control headers".
        400 | 403 | 412 | 415 => decide_error(policy, status, &cc, headers, now, false),
        // Everything else, including 416 ("CloudFront doesn't cache status code 416 responses"), 302/307
        // and 206.
        _ => Decision::DoNotStore,
    }
}

fn decide_success(
    policy: &TtlPolicy,
    cc: &CacheControl,
    headers: &HeaderMap,
    now: SystemTime,
) -> Decision {
    if cc.no_store || cc.no_cache || cc.private {
        // "Origin adds Cache-Control: no-cache, no-store, and/or private directives":
        // Minimum TTL = 0 → "CloudFront and browsers respect the headers";
        // Minimum TTL > 0 → "CloudFront caches objects for the value of the CloudFront minimum TTL".
        return if policy.min.is_zero() {
            Decision::DoNotStore
        } else {
            Decision::Store(policy.min)
        };
    }
    if let Some(s) = cc.s_maxage {
        // "The origin adds Cache-Control max-age and Cache-Control s-maxage": CloudFront caches for the
        // lesser of s-maxage and the maximum TTL (min TTL = 0), or s-maxage raised to the minimum TTL and
        // lowered to the maximum TTL (min TTL > 0).
        return Decision::Store(clamp(policy, secs(s)));
    }
    if let Some(m) = cc.max_age {
        // "The origin adds a Cache-Control max-age directive": the lesser of max-age and the maximum TTL
        // (min TTL = 0); between the minimum and the maximum TTL (min TTL > 0).
        return Decision::Store(clamp(policy, secs(m)));
    }
    if let Some(e) = expires_ttl(headers, now) {
        // "The origin adds an Expires header": "until the date in the Expires header or for the value of
        // the CloudFront maximum TTL, whichever is sooner", and never less than the minimum TTL. An Expires
        // in the past (or invalid) is an expired response: it gets the minimum TTL.
        return Decision::Store(clamp(policy, e));
    }
    // "The origin does not add a Cache-Control max-age directive": the default TTL (min TTL = 0); "the
    // greater of the value of the CloudFront minimum TTL or default TTL" (min TTL > 0). The configuration
    // guarantees default ≤ max, so clamping only ever raises it to the minimum.
    Decision::Store(clamp(policy, policy.default))
}

fn decide_error(
    policy: &TtlPolicy,
    status: StatusCode,
    cc: &CacheControl,
    headers: &HeaderMap,
    now: SystemTime,
    always: bool,
) -> Decision {
    let explicit = cc.s_maxage.or(cc.max_age).map(secs);
    if !always && explicit.is_none() {
        // "CloudFront only caches the following HTTP 4xx status codes ... if your origin returns a
        // Cache-Control max-age or Cache-Control s-maxage header" (400, 403, 412, 415).
        return Decision::DoNotStore;
    }
    let ttl = if cc.no_store || cc.no_cache || cc.private {
        // "If the origin adds Cache-Control: no-store, no-cache, or private to error codes 404, 410, 414,
        // or 501, CloudFront doesn't cache the error response. For all other error codes, CloudFront
        // ignores [them] and caches the error response according to the Error Caching Minimum TTL."
        if matches!(status.as_u16(), 404 | 410 | 414 | 501) {
            return Decision::DoNotStore;
        }
        policy.error_ttl
    } else {
        match explicit.or_else(|| expires_ttl(headers, now)) {
            // "If the origin adds a Cache-Control max-age or s-maxage directive, or an Expires header:
            // CloudFront caches error responses for the greater of the value in the header or the value of
            // Error Caching Minimum TTL", and "max-age and s-maxage values cannot be greater than the
            // Maximum TTL".
            Some(t) => t.min(policy.max).max(policy.error_ttl),
            // "If the origin adds other Cache-Control directives or adds no headers: CloudFront caches
            // error responses for the value of Error Caching Minimum TTL."
            None => policy.error_ttl,
        }
    };
    // An error kept for zero seconds is no use to anyone (it would only be revalidated against a failing
    // origin): an error caching TTL of 0 means "do not cache errors".
    if ttl.is_zero() {
        Decision::DoNotStore
    } else {
        Decision::Store(ttl)
    }
}

/// Seconds of the origin's `Age` header (0 when absent/garbage), for computing the Age the edge reports.
///
/// Only the first `Age` field line counts; values beyond 2^31 seconds saturate there (RFC 9111 §1.2.2).
pub fn origin_age(headers: &HeaderMap) -> Duration {
    headers
        .get(AGE)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|s| delta_seconds(s.trim()))
        .map_or(Duration::ZERO, secs)
}

/// Raises `ttl` to the policy's minimum and lowers it to its maximum. Unlike [`Ord::clamp`] it never panics;
/// with a misordered policy (min > max, which configuration validation rejects) the minimum wins.
fn clamp(policy: &TtlPolicy, ttl: Duration) -> Duration {
    ttl.min(policy.max).max(policy.min)
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Lifetime given by `Expires`, measured from `Date` (or `now` without a valid one). `None` when there is no
/// Expires header; zero when it is in the past or invalid (RFC 9111 §5.3: "A cache recipient MUST interpret
/// invalid date formats, especially the value "0", as representing a time in the past"). With several
/// Expires lines the first one counts (RFC 9111 §4.2.1).
fn expires_ttl(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let expires = headers.get(EXPIRES)?;
    let Some(expires) = http_date(expires) else {
        return Some(Duration::ZERO);
    };
    let base = headers.get(DATE).and_then(http_date).unwrap_or(now);
    Some(expires.duration_since(base).unwrap_or(Duration::ZERO))
}

fn http_date(v: &HeaderValue) -> Option<SystemTime> {
    let s = std::str::from_utf8(v.as_bytes()).ok()?;
    httpdate::parse_http_date(s.trim()).ok()
}

/// RFC 9111 §1.2.2 delta-seconds: one or more digits; saturates at 2^31. Anything else (empty, a sign, a
/// fraction, letters) is invalid.
fn delta_seconds(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        n = n * 10 + u64::from(b - b'0');
        if n >= DELTA_SECONDS_CAP {
            return Some(DELTA_SECONDS_CAP);
        }
    }
    Some(n)
}

/// The `Cache-Control` directives the TTL rules look at, gathered from every Cache-Control field line.
#[derive(Debug, Default, PartialEq, Eq)]
struct CacheControl {
    max_age: Option<u64>,
    s_maxage: Option<u64>,
    no_store: bool,
    no_cache: bool,
    private: bool,
}

impl CacheControl {
    fn parse(headers: &HeaderMap) -> Self {
        let mut cc = Self::default();
        for value in headers.get_all(CACHE_CONTROL) {
            // obs-text bytes are not ours to interpret; a lossy view keeps the ASCII directives readable.
            let text = String::from_utf8_lossy(value.as_bytes());
            for (name, arg) in directives(&text) {
                match name.as_str() {
                    // The first valid occurrence of a duplicated directive counts (RFC 9111 §4.2.1); an
                    // invalid argument (`max-age=abc`, `max-age=-1`, no argument) is ignored.
                    "max-age" if cc.max_age.is_none() => {
                        cc.max_age = arg.as_deref().and_then(delta_seconds);
                    }
                    "s-maxage" if cc.s_maxage.is_none() => {
                        cc.s_maxage = arg.as_deref().and_then(delta_seconds);
                    }
                    "no-store" => cc.no_store = true,
                    // The qualified forms (`no-cache="Set-Cookie"`, `private="X"`) restrict only the named
                    // fields in RFC 9111; like CloudFront we do not store partial responses, so any form
                    // counts as the whole directive.
                    "no-cache" => cc.no_cache = true,
                    "private" => cc.private = true,
                    _ => {}
                }
            }
        }
        cc
    }
}

/// Splits one Cache-Control field value into (lower-case name, unquoted argument) pairs. Commas inside
/// quoted strings do not split; backslash escapes inside them are undone (RFC 9110 §5.6.4); an unterminated
/// quote runs to the end. Empty list elements are skipped (RFC 9110 §5.6.1).
fn directives(value: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut element = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in value.chars() {
        if in_quotes {
            element.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_quotes = false;
            }
        } else if c == ',' {
            push_directive(&mut out, &element);
            element.clear();
        } else {
            if c == '"' {
                in_quotes = true;
            }
            element.push(c);
        }
    }
    push_directive(&mut out, &element);
    out
}

fn push_directive(out: &mut Vec<(String, Option<String>)>, element: &str) {
    let element = element.trim();
    if element.is_empty() {
        return;
    }
    let (name, arg) = match element.split_once('=') {
        Some((name, arg)) => (name.trim(), Some(unquote(arg.trim()))),
        None => (element, None),
    };
    out.push((name.to_ascii_lowercase(), arg));
}

/// `"abc"` → `abc` with `\x` → `x`; anything not starting with a quote is returned as it is.
fn unquote(s: &str) -> String {
    let Some(inner) = s.strip_prefix('"') else {
        return s.to_owned();
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '"' => break,
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW_SECS: u64 = 1_700_000_000;

    fn now() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS)
    }

    fn policy(min: u64, default: u64, max: u64) -> TtlPolicy {
        TtlPolicy {
            min: secs(min),
            default: secs(default),
            max: secs(max),
            error_ttl: secs(10),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        h
    }

    fn date(offset: i64) -> String {
        let t = if offset >= 0 {
            now() + secs(offset.unsigned_abs())
        } else {
            now() - secs(offset.unsigned_abs())
        };
        httpdate::fmt_http_date(t)
    }

    fn ok(p: &TtlPolicy, pairs: &[(&str, &str)]) -> Decision {
        decide(p, StatusCode::OK, &headers(pairs), now())
    }

    fn store(s: u64) -> Decision {
        Decision::Store(secs(s))
    }

    #[test]
    fn from_behavior() {
        let b = strata_config::edge::Behavior {
            min_ttl: 1,
            default_ttl: 2,
            max_ttl: 3,
            error_ttl: 4,
            ..Default::default()
        };
        assert_eq!(
            TtlPolicy::from(&b),
            TtlPolicy {
                min: secs(1),
                default: secs(2),
                max: secs(3),
                error_ttl: secs(4)
            }
        );
    }

    // Row "max-age", Minimum TTL = 0: the lesser of max-age and the maximum TTL.
    #[test]
    fn max_age_min_zero() {
        let p = policy(0, 86_400, 3_600);
        assert_eq!(ok(&p, &[("cache-control", "max-age=600")]), store(600));
        assert_eq!(ok(&p, &[("cache-control", "max-age=7200")]), store(3_600));
        assert_eq!(ok(&p, &[("cache-control", "max-age=0")]), store(0));
    }

    // Row "max-age", Minimum TTL > 0: between the minimum and the maximum TTL.
    #[test]
    fn max_age_min_positive() {
        let p = policy(60, 86_400, 3_600);
        assert_eq!(ok(&p, &[("cache-control", "max-age=600")]), store(600));
        assert_eq!(ok(&p, &[("cache-control", "max-age=5")]), store(60));
        assert_eq!(ok(&p, &[("cache-control", "max-age=0")]), store(60));
        assert_eq!(ok(&p, &[("cache-control", "max-age=99999")]), store(3_600));
    }

    // Row "no max-age": the default TTL (min 0); the greater of the minimum and default TTL (min > 0).
    #[test]
    fn no_caching_headers() {
        assert_eq!(ok(&policy(0, 300, 3_600), &[]), store(300));
        assert_eq!(ok(&policy(60, 300, 3_600), &[]), store(300));
        assert_eq!(ok(&policy(300, 300, 3_600), &[]), store(300));
        // Other directives are not caching headers.
        assert_eq!(
            ok(
                &policy(0, 300, 3_600),
                &[("cache-control", "public, must-revalidate")]
            ),
            store(300)
        );
        // Misordered policy (rejected by config): never panics, the minimum wins.
        assert_eq!(ok(&policy(500, 300, 100), &[]), store(500));
    }

    // Row "max-age and s-maxage": s-maxage wins, clamped the same way.
    #[test]
    fn s_maxage_wins() {
        let p = policy(0, 86_400, 3_600);
        assert_eq!(
            ok(&p, &[("cache-control", "max-age=60, s-maxage=600")]),
            store(600)
        );
        assert_eq!(
            ok(&p, &[("cache-control", "s-maxage=600, max-age=60")]),
            store(600)
        );
        assert_eq!(ok(&p, &[("cache-control", "s-maxage=9000")]), store(3_600));
        let p = policy(100, 86_400, 3_600);
        assert_eq!(
            ok(&p, &[("cache-control", "max-age=1000, s-maxage=5")]),
            store(100)
        );
        // An invalid s-maxage falls back to max-age.
        assert_eq!(
            ok(&p, &[("cache-control", "max-age=1000, s-maxage=x")]),
            store(1000)
        );
    }

    // Row "Expires": until the Expires date or the maximum TTL, whichever is sooner; raised to the minimum.
    #[test]
    fn expires() {
        let p = policy(0, 86_400, 3_600);
        assert_eq!(ok(&p, &[("expires", &date(600))]), store(600));
        assert_eq!(ok(&p, &[("expires", &date(99_999))]), store(3_600));
        assert_eq!(ok(&p, &[("expires", &date(-600))]), store(0));
        let p = policy(60, 86_400, 3_600);
        assert_eq!(ok(&p, &[("expires", &date(600))]), store(600));
        assert_eq!(ok(&p, &[("expires", &date(30))]), store(60));
        assert_eq!(ok(&p, &[("expires", &date(-600))]), store(60));
        assert_eq!(ok(&p, &[("expires", "0")]), store(60));
        assert_eq!(ok(&p, &[("expires", "garbage")]), store(60));
        assert_eq!(ok(&p, &[("expires", &date(99_999))]), store(3_600));
    }

    #[test]
    fn expires_measured_from_date_header() {
        let p = policy(0, 86_400, 86_400);
        // The origin's clock is 1000 s behind ours: Expires - Date is what counts.
        let h = [("date", date(-1000)), ("expires", date(-400))];
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(ok(&p, &h), store(600));
        // An unparseable Date falls back to our clock.
        let h = [("date", "yesterday".to_owned()), ("expires", date(500))];
        let h: Vec<(&str, &str)> = h.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(ok(&p, &h), store(500));
    }

    #[test]
    fn max_age_beats_expires() {
        let p = policy(0, 86_400, 86_400);
        assert_eq!(
            ok(
                &p,
                &[("cache-control", "max-age=100"), ("expires", &date(5_000))]
            ),
            store(100)
        );
        // An invalid max-age is ignored, so Expires applies.
        assert_eq!(
            ok(
                &p,
                &[("cache-control", "max-age=abc"), ("expires", &date(5_000))]
            ),
            store(5_000)
        );
    }

    // Row "no-cache, no-store, private": respected when Minimum TTL = 0, else cached for the minimum TTL.
    #[test]
    fn no_cache_no_store_private() {
        for directive in [
            "no-cache",
            "no-store",
            "private",
            "NO-STORE",
            "private=\"x-a\"",
            "no-cache=\"set-cookie\"",
        ] {
            let with_max_age = format!("{directive}, max-age=600");
            assert_eq!(
                ok(&policy(0, 300, 3_600), &[("cache-control", directive)]),
                Decision::DoNotStore,
                "{directive}"
            );
            assert_eq!(
                ok(&policy(0, 300, 3_600), &[("cache-control", &with_max_age)]),
                Decision::DoNotStore,
                "{directive}"
            );
            assert_eq!(
                ok(&policy(30, 300, 3_600), &[("cache-control", directive)]),
                store(30),
                "{directive}"
            );
            assert_eq!(
                ok(&policy(30, 300, 3_600), &[("cache-control", &with_max_age)]),
                store(30),
                "{directive}"
            );
        }
    }

    #[test]
    fn set_cookie_is_never_stored() {
        let h = [("cache-control", "max-age=600"), ("set-cookie", "a=b")];
        assert_eq!(ok(&policy(60, 300, 3_600), &h), Decision::DoNotStore);
        let h = headers(&[("set-cookie", "a=b")]);
        assert_eq!(
            decide(&policy(60, 300, 3_600), StatusCode::NOT_FOUND, &h, now()),
            Decision::DoNotStore
        );
    }

    #[test]
    fn cacheable_statuses() {
        let p = policy(0, 300, 3_600);
        let h = headers(&[("cache-control", "max-age=60")]);
        for code in [200, 203, 300, 301] {
            let s = StatusCode::from_u16(code).unwrap();
            assert_eq!(decide(&p, s, &h, now()), store(60), "{code}");
        }
        for code in [
            201, 202, 204, 206, 302, 303, 304, 307, 308, 401, 406, 409, 416, 429, 505,
        ] {
            let s = StatusCode::from_u16(code).unwrap();
            assert_eq!(decide(&p, s, &h, now()), Decision::DoNotStore, "{code}");
        }
    }

    fn err(p: &TtlPolicy, code: u16, pairs: &[(&str, &str)]) -> Decision {
        decide(
            p,
            StatusCode::from_u16(code).unwrap(),
            &headers(pairs),
            now(),
        )
    }

    #[test]
    fn always_cached_errors() {
        let p = policy(0, 300, 3_600);
        for code in [404, 405, 410, 414, 500, 501, 502, 503, 504] {
            // No header: the error caching minimum TTL.
            assert_eq!(err(&p, code, &[]), store(10), "{code}");
            // Other directives: the same.
            assert_eq!(err(&p, code, &[("cache-control", "public")]), store(10));
            // max-age / s-maxage / Expires: the greater of it and the error TTL, capped at the maximum TTL.
            assert_eq!(
                err(&p, code, &[("cache-control", "max-age=120")]),
                store(120)
            );
            assert_eq!(
                err(&p, code, &[("cache-control", "max-age=120, s-maxage=240")]),
                store(240)
            );
            assert_eq!(err(&p, code, &[("cache-control", "max-age=2")]), store(10));
            assert_eq!(
                err(&p, code, &[("cache-control", "max-age=999999")]),
                store(3_600)
            );
            assert_eq!(err(&p, code, &[("expires", &date(200))]), store(200));
            assert_eq!(err(&p, code, &[("expires", &date(-200))]), store(10));
        }
    }

    #[test]
    fn header_conditioned_errors() {
        let p = policy(0, 300, 3_600);
        for code in [400, 403, 412, 415] {
            assert_eq!(err(&p, code, &[]), Decision::DoNotStore, "{code}");
            assert_eq!(
                err(&p, code, &[("expires", &date(200))]),
                Decision::DoNotStore
            );
            assert_eq!(err(&p, code, &[("cache-control", "max-age=60")]), store(60));
            assert_eq!(err(&p, code, &[("cache-control", "s-maxage=1")]), store(10));
        }
    }

    #[test]
    fn errors_with_no_store() {
        let p = policy(60, 300, 3_600);
        for code in [404, 410, 414, 501] {
            for d in ["no-store", "no-cache", "private", "no-store, max-age=600"] {
                assert_eq!(
                    err(&p, code, &[("cache-control", d)]),
                    Decision::DoNotStore,
                    "{code} {d}"
                );
            }
        }
        for code in [405, 500, 502, 503, 504] {
            for d in ["no-store", "no-cache", "private", "no-store, max-age=600"] {
                assert_eq!(
                    err(&p, code, &[("cache-control", d)]),
                    store(10),
                    "{code} {d}"
                );
            }
        }
        // 403 with no-store but no max-age still needs max-age to be cached at all.
        assert_eq!(
            err(&p, 403, &[("cache-control", "no-store")]),
            Decision::DoNotStore
        );
        assert_eq!(
            err(&p, 403, &[("cache-control", "no-store, max-age=600")]),
            store(10)
        );
    }

    #[test]
    fn zero_error_ttl_does_not_store() {
        let mut p = policy(0, 300, 3_600);
        p.error_ttl = Duration::ZERO;
        assert_eq!(err(&p, 404, &[]), Decision::DoNotStore);
        assert_eq!(
            err(&p, 503, &[("cache-control", "max-age=0")]),
            Decision::DoNotStore
        );
        assert_eq!(err(&p, 503, &[("cache-control", "max-age=5")]), store(5));
    }

    #[test]
    fn cache_control_syntax() {
        let p = policy(0, 300, 86_400);
        // Several field lines are one list.
        assert_eq!(
            ok(
                &p,
                &[("cache-control", "public"), ("cache-control", "max-age=77")]
            ),
            store(77)
        );
        assert_eq!(
            ok(
                &p,
                &[
                    ("cache-control", "max-age=77"),
                    ("cache-control", "no-store")
                ]
            ),
            Decision::DoNotStore
        );
        // Case, whitespace, empty elements, quoted arguments.
        assert_eq!(ok(&p, &[("cache-control", "  MAX-AGE=77 ")]), store(77));
        assert_eq!(ok(&p, &[("cache-control", ",, max-age = 77 ,")]), store(77));
        assert_eq!(ok(&p, &[("cache-control", "max-age=\"77\"")]), store(77));
        assert_eq!(ok(&p, &[("cache-control", "S-MaxAge=88")]), store(88));
        // Commas and directive look-alikes inside quoted strings are not directives.
        assert_eq!(
            ok(
                &p,
                &[(
                    "cache-control",
                    "ext=\"a, max-age=5, no-store\", max-age=60"
                )]
            ),
            store(60)
        );
        assert_eq!(
            ok(
                &p,
                &[("cache-control", "ext=\"a\\\", no-store\", max-age=60")]
            ),
            store(60)
        );
        // Unterminated quote swallows the rest.
        assert_eq!(
            ok(&p, &[("cache-control", "ext=\"a, no-store")]),
            store(300)
        );
        // Invalid values are ignored.
        for v in [
            "max-age=abc",
            "max-age=-5",
            "max-age=",
            "max-age",
            "max-age=1.5",
            "max-age=+5",
            "max-age=5s",
        ] {
            assert_eq!(ok(&p, &[("cache-control", v)]), store(300), "{v}");
        }
        // The first valid duplicate counts.
        assert_eq!(
            ok(&p, &[("cache-control", "max-age=10, max-age=20")]),
            store(10)
        );
        assert_eq!(
            ok(&p, &[("cache-control", "max-age=x, max-age=20")]),
            store(20)
        );
    }

    #[test]
    fn huge_values_saturate() {
        let p = policy(0, 300, u64::MAX >> 1);
        assert_eq!(
            ok(
                &p,
                &[("cache-control", "max-age=99999999999999999999999999999")]
            ),
            store(DELTA_SECONDS_CAP)
        );
        assert_eq!(
            ok(&p, &[("cache-control", "max-age=2147483647")]),
            store(DELTA_SECONDS_CAP - 1)
        );
        let p = policy(0, 300, 3_600);
        assert_eq!(
            ok(
                &p,
                &[("cache-control", "max-age=99999999999999999999999999999")]
            ),
            store(3_600)
        );
    }

    #[test]
    fn non_utf8_cache_control_does_not_panic() {
        let mut h = HeaderMap::new();
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_bytes(b"max-age=50, x=\xff\xfe").unwrap(),
        );
        assert_eq!(
            decide(&policy(0, 300, 3_600), StatusCode::OK, &h, now()),
            store(50)
        );
        h.insert(EXPIRES, HeaderValue::from_bytes(b"\xff").unwrap());
        h.remove(CACHE_CONTROL);
        assert_eq!(
            decide(&policy(0, 300, 3_600), StatusCode::OK, &h, now()),
            store(0)
        );
    }

    #[test]
    fn origin_age_parsing() {
        assert_eq!(origin_age(&headers(&[])), Duration::ZERO);
        assert_eq!(origin_age(&headers(&[("age", "42")])), secs(42));
        assert_eq!(origin_age(&headers(&[("age", " 42 ")])), secs(42));
        assert_eq!(
            origin_age(&headers(&[("age", "42"), ("age", "7")])),
            secs(42)
        );
        for garbage in ["", "-1", "abc", "1.5", "4 2"] {
            assert_eq!(
                origin_age(&headers(&[("age", garbage)])),
                Duration::ZERO,
                "{garbage:?}"
            );
        }
        assert_eq!(
            origin_age(&headers(&[("age", "123456789012345678901234567890")])),
            secs(DELTA_SECONDS_CAP)
        );
    }

    #[test]
    fn directive_splitting() {
        assert_eq!(
            directives(" a , B=1,c=\"x,y\" ,, d=\"q\\\"r\""),
            vec![
                ("a".to_owned(), None),
                ("b".to_owned(), Some("1".to_owned())),
                ("c".to_owned(), Some("x,y".to_owned())),
                ("d".to_owned(), Some("q\"r".to_owned())),
            ]
        );
    }

    fn header_text() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..48),
            "[ a-zA-Z0-9=,\"\\\\+.-]{0,48}".prop_map(String::into_bytes),
            (
                prop::sample::select(vec![
                    "max-age", "s-maxage", "no-cache", "no-store", "private", "public", "MAX-AGE"
                ]),
                "[ =\"-]{0,2}",
                "-?[0-9]{0,30}",
                "[ ,\"]{0,2}",
            )
                .prop_map(|(a, b, c, d)| format!("{a}{b}{c}{d}").into_bytes()),
        ]
    }

    fn arbitrary_headers() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec(
            (
                prop::sample::select(vec![CACHE_CONTROL, EXPIRES, DATE, AGE]),
                header_text(),
            ),
            0..6,
        )
        .prop_map(|pairs| {
            let mut h = HeaderMap::new();
            for (name, bytes) in pairs {
                if let Ok(v) = HeaderValue::from_bytes(&bytes) {
                    h.append(name, v);
                }
            }
            h
        })
    }

    proptest! {
        #[test]
        fn decide_is_total_and_bounded(
            h in arbitrary_headers(),
            code in prop::sample::select(vec![
                200u16, 203, 206, 300, 301, 302, 304, 400, 403, 404, 410, 416, 500, 503,
            ]),
            ttls in (0u64..1_000_000, 0u64..1_000_000, 0u64..1_000_000, 0u64..1_000),
            now_secs in 0u64..4_000_000_000,
        ) {
            let mut v = [ttls.0, ttls.1, ttls.2];
            v.sort_unstable();
            let p = TtlPolicy {
                min: secs(v[0]),
                default: secs(v[1]),
                max: secs(v[2]),
                error_ttl: secs(ttls.3),
            };
            let now = SystemTime::UNIX_EPOCH + secs(now_secs);
            let d = decide(&p, StatusCode::from_u16(code).unwrap(), &h, now);
            if matches!(code, 200 | 203 | 300 | 301)
                && let Decision::Store(t) = d
            {
                prop_assert!(p.min <= t && t <= p.max, "{t:?} outside {p:?}");
            }
            let _ = origin_age(&h);
        }
    }
}
