//! Answering a viewer from a cached response: conditional requests and byte ranges.
//!
//! This module owns the evaluation of the viewer's preconditions (`If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since`, RFC 9110 §13) against the cached representation's validators, the
//! parsing of a single-range `Range` request with its `If-Range` guard (RFC 9110 §14), and the `Content-Range`
//! values of 206 and 416 responses. It decides; building the response is the caller's.
//!
//! Validators are passed as the origin sent them: an ETag header value with its quotes (`"abc"` or `W/"abc"`),
//! a Last-Modified HTTP-date string.

use std::time::SystemTime;

use http::header::{
    IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, IF_UNMODIFIED_SINCE, RANGE,
};
use http::{HeaderMap, Method};

/// How to answer a request that may carry a `Range` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole representation with 200 (no Range, an ignored Range, or a failed If-Range).
    Full,
    /// Send these bytes with 206 and `Content-Range: bytes start-end_inclusive/len`.
    Partial {
        /// First byte offset, `< len`.
        start: u64,
        /// Last byte offset, `start <= end_inclusive < len`.
        end_inclusive: u64,
    },
    /// Answer 416 with `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Single byte range per RFC 9110 §14: `bytes=a-b`, `bytes=a-`, `bytes=-n`; end clamped to len-1; a multi-range
/// request or a syntactically invalid header → Full (ignored, as CloudFront does for invalid ones); a range
/// starting at/after len (or suffix 0, or len 0 with a range) → Unsatisfiable. `If-Range` (an ETag, strong
/// compare, or an HTTP date equal to last_modified) that does not match → Full.
///
/// A zero-length representation answers any valid range with Unsatisfiable, as S3 does (RFC 9110 would let a
/// non-zero suffix range through, but there is no byte range to put in a 206 for it).
pub fn range(
    req: &HeaderMap,
    len: u64,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> RangeOutcome {
    let mut values = req.get_all(RANGE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        // No Range, or several Range field lines (not a valid single field value): the whole thing.
        return RangeOutcome::Full;
    };
    let Some(spec) = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(parse_range)
    else {
        return RangeOutcome::Full;
    };
    // RFC 9110 §13.1.5: a server MUST ignore a Range whose If-Range condition is false.
    if let Some(if_range) = req.get(IF_RANGE) {
        let matched = std::str::from_utf8(if_range.as_bytes())
            .ok()
            .is_some_and(|v| if_range_matches(v.trim(), etag, last_modified));
        if !matched {
            return RangeOutcome::Full;
        }
    }
    if len == 0 {
        return RangeOutcome::Unsatisfiable;
    }
    match spec {
        // int-range: satisfiable iff first-pos < len; a last-pos at or past the end means "to the end".
        Spec::From { first, last } => {
            if first >= len {
                RangeOutcome::Unsatisfiable
            } else {
                RangeOutcome::Partial {
                    start: first,
                    end_inclusive: last.map_or(len - 1, |l| l.min(len - 1)),
                }
            }
        }
        // suffix-range: the last n bytes (all of them when n >= len); n = 0 is unsatisfiable.
        Spec::Suffix(0) => RangeOutcome::Unsatisfiable,
        Spec::Suffix(n) => RangeOutcome::Partial {
            start: len - n.min(len),
            end_inclusive: len - 1,
        },
    }
}

/// A single parsed range-spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    /// `first-last` or `first-`.
    From { first: u64, last: Option<u64> },
    /// `-n`.
    Suffix(u64),
}

/// Parses `bytes=<one range-spec>`; `None` for anything else (other units, several ranges, bad syntax,
/// last < first). The unit is case-insensitive; OWS around the list and empty list elements are allowed
/// (RFC 9110 §5.6.1). Numbers too large for u64 saturate.
fn parse_range(value: &str) -> Option<Spec> {
    let (unit, set) = value.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = set.split(',').map(str::trim).filter(|s| !s.is_empty());
    let (Some(spec), None) = (specs.next(), specs.next()) else {
        return None;
    };
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        return Some(Spec::Suffix(digits(last)?));
    }
    let first = digits(first)?;
    let last = if last.is_empty() {
        None
    } else {
        Some(digits(last)?)
    };
    if last.is_some_and(|l| l < first) {
        return None;
    }
    Some(Spec::From { first, last })
}

/// One or more ASCII digits, saturating at `u64::MAX`.
fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.bytes().fold(0u64, |n, b| {
        n.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    }))
}

/// RFC 9110 §13.1.5: an entity-tag If-Range matches by strong comparison; a date If-Range matches when it
/// equals the Last-Modified date exactly. A weak tag never matches.
fn if_range_matches(value: &str, etag: Option<&str>, last_modified: Option<&str>) -> bool {
    if value.starts_with('"') || value.starts_with("W/") {
        let Some(wanted) = parse_tag_list(value) else {
            return false;
        };
        let [wanted] = wanted.as_slice() else {
            return false;
        };
        return etag.is_some_and(|e| strong_eq(wanted, &parse_own_etag(e)));
    }
    match (http_date(value), last_modified.and_then(http_date)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// The result of evaluating the viewer's preconditions against the cached representation.
///
/// RFC 9110 §13.2.2 order: If-Match / If-Unmodified-Since failing → PreconditionFailed (412); then
/// If-None-Match (weak comparison, `*`, comma lists) matching → NotModified (304) for GET/HEAD; when
/// If-None-Match is absent, If-Modified-Since ≥ Last-Modified → NotModified; else Proceed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Serve the request normally.
    Proceed,
    /// Answer 304 Not Modified.
    NotModified,
    /// Answer 412 Precondition Failed.
    PreconditionFailed,
}

/// Evaluates the request's conditional headers in RFC 9110 §13.2.2 order against the cached representation's
/// `etag` and `last_modified`.
///
/// - If-Match present: `*` passes; otherwise some listed tag must equal `etag` by strong comparison, else 412.
/// - Else If-Unmodified-Since (valid date, Last-Modified known): Last-Modified later than it → 412.
/// - If-None-Match present: `*` or some listed tag equal to `etag` by weak comparison → 304 for GET/HEAD, 412
///   for other methods.
/// - Else, GET/HEAD only, If-Modified-Since (valid date, Last-Modified known): Last-Modified not later than
///   it → 304.
///
/// Invalid dates are ignored, as are dates when `last_modified` is unknown or unparseable (RFC 9110 §13.1.3,
/// §13.1.4).
pub fn evaluate(
    method: &Method,
    req: &HeaderMap,
    etag: Option<&str>,
    last_modified: Option<&str>,
) -> Precondition {
    let current = etag.map(parse_own_etag);
    let modified = last_modified.and_then(http_date);
    let safe = method == Method::GET || method == Method::HEAD;

    // Step 1: If-Match.
    if let Some(list) = field_list(req, &IF_MATCH) {
        let pass = match list {
            TagList::Any => true,
            TagList::Tags(tags) => current
                .as_ref()
                .is_some_and(|c| tags.iter().any(|t| strong_eq(t, c))),
        };
        if !pass {
            return Precondition::PreconditionFailed;
        }
    } else if let (Some(since), Some(modified)) = (single_date(req, &IF_UNMODIFIED_SINCE), modified)
    {
        // Step 2: If-Unmodified-Since, only without If-Match.
        if modified > since {
            return Precondition::PreconditionFailed;
        }
    }

    // Step 3: If-None-Match.
    if let Some(list) = field_list(req, &IF_NONE_MATCH) {
        let matched = match list {
            TagList::Any => true,
            TagList::Tags(tags) => current
                .as_ref()
                .is_some_and(|c| tags.iter().any(|t| t.opaque == c.opaque)),
        };
        if matched {
            return if safe {
                Precondition::NotModified
            } else {
                Precondition::PreconditionFailed
            };
        }
    } else if safe {
        // Step 4: If-Modified-Since, only without If-None-Match and only for GET/HEAD.
        if let (Some(since), Some(modified)) = (single_date(req, &IF_MODIFIED_SINCE), modified)
            && modified <= since
        {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// `Content-Range` value for a 206 (`bytes a-b/len`).
pub fn content_range(start: u64, end_inclusive: u64, len: u64) -> String {
    format!("bytes {start}-{end_inclusive}/{len}")
}

/// `Content-Range` value for a 416 (`bytes */len`).
pub fn unsatisfied_range(len: u64) -> String {
    format!("bytes */{len}")
}

/// An entity-tag: its opaque part (without quotes), whether it is weak, and whether it came unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Tag {
    weak: bool,
    opaque: String,
    bare: bool,
}

/// RFC 9110 §8.8.3.2 strong comparison: both strong and the same opaque-tag.
fn strong_eq(a: &Tag, b: &Tag) -> bool {
    !a.weak && !b.weak && a.opaque == b.opaque
}

/// The cached representation's own ETag. A well-formed one parses as usual; an origin that sent an unquoted
/// value gets it taken whole as a strong opaque tag, so that a viewer echoing it back still matches.
fn parse_own_etag(value: &str) -> Tag {
    match parse_tag_list(value).as_deref() {
        Some([tag]) => tag.clone(),
        _ => Tag {
            weak: false,
            opaque: value.trim().to_owned(),
            bare: true,
        },
    }
}

enum TagList {
    Any,
    Tags(Vec<Tag>),
}

/// Gathers every line of an If-Match / If-None-Match field into one list. `None` when the field is absent.
/// A `*` anywhere makes it `Any`. An unparseable list is an empty one: it matches nothing.
fn field_list(req: &HeaderMap, name: &http::header::HeaderName) -> Option<TagList> {
    let mut lines = req.get_all(name).iter().peekable();
    lines.peek()?;
    let mut tags = Vec::new();
    for line in lines {
        let Ok(text) = std::str::from_utf8(line.as_bytes()) else {
            continue;
        };
        if let Some(mut parsed) = parse_tag_list(text) {
            // A bare `*` member (not the quoted tag `"*"`) means "any current representation".
            if parsed.iter().any(|t| t.bare && t.opaque == "*") {
                return Some(TagList::Any);
            }
            tags.append(&mut parsed);
        }
    }
    Some(TagList::Tags(tags))
}

/// Parses `1#entity-tag` (RFC 9110 §8.8.3): `"x"` or `W/"x"` separated by commas with OWS; a comma inside
/// quotes belongs to the tag. Bare tokens (`abc`, which some clients send without quotes) are accepted as
/// strong tags running to the next comma. `None` on an unterminated quote.
fn parse_tag_list(text: &str) -> Option<Vec<Tag>> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            return Some(out);
        }
        let (weak, body) = match rest.strip_prefix("W/") {
            Some(b) => (true, b),
            None => (false, rest),
        };
        if let Some(quoted) = body.strip_prefix('"') {
            let end = quoted.find('"')?;
            out.push(Tag {
                weak,
                opaque: quoted[..end].to_owned(),
                bare: false,
            });
            rest = &quoted[end + 1..];
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            out.push(Tag {
                weak: false,
                opaque: rest[..end].trim().to_owned(),
                bare: true,
            });
            rest = &rest[end..];
        }
    }
}

/// A date field that must have exactly one member (RFC 9110 §13.1.3: ignore it otherwise).
fn single_date(req: &HeaderMap, name: &http::header::HeaderName) -> Option<SystemTime> {
    let mut lines = req.get_all(name).iter();
    let (Some(line), None) = (lines.next(), lines.next()) else {
        return None;
    };
    http_date(std::str::from_utf8(line.as_bytes()).ok()?)
}

fn http_date(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use proptest::prelude::*;

    const LM: &str = "Wed, 21 Oct 2015 07:28:00 GMT";
    const BEFORE: &str = "Wed, 21 Oct 2015 07:27:59 GMT";
    const AFTER: &str = "Wed, 21 Oct 2015 07:28:01 GMT";
    const ETAG: &str = "\"abc\"";

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (n, v) in pairs {
            m.append(
                http::header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        m
    }

    fn r(value: &str, len: u64) -> RangeOutcome {
        range(&h(&[("range", value)]), len, Some(ETAG), Some(LM))
    }

    fn part(start: u64, end_inclusive: u64) -> RangeOutcome {
        RangeOutcome::Partial {
            start,
            end_inclusive,
        }
    }

    #[test]
    fn range_forms() {
        assert_eq!(range(&h(&[]), 100, None, None), RangeOutcome::Full);
        assert_eq!(r("bytes=0-9", 100), part(0, 9));
        assert_eq!(r("bytes=10-", 100), part(10, 99));
        assert_eq!(r("bytes=-10", 100), part(90, 99));
        assert_eq!(r("bytes=99-99", 100), part(99, 99));
        assert_eq!(r("bytes=0-0", 1), part(0, 0));
    }

    #[test]
    fn range_clamping_and_unsatisfiable() {
        assert_eq!(r("bytes=50-500", 100), part(50, 99));
        assert_eq!(r("bytes=-500", 100), part(0, 99));
        assert_eq!(r("bytes=0-18446744073709551615", 100), part(0, 99));
        assert_eq!(r("bytes=0-99999999999999999999999", 100), part(0, 99));
        assert_eq!(r("bytes=-99999999999999999999999", 100), part(0, 99));
        assert_eq!(r("bytes=100-", 100), RangeOutcome::Unsatisfiable);
        assert_eq!(r("bytes=100-200", 100), RangeOutcome::Unsatisfiable);
        assert_eq!(
            r("bytes=99999999999999999999999-", 100),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(r("bytes=-0", 100), RangeOutcome::Unsatisfiable);
        assert_eq!(r("bytes=0-", 0), RangeOutcome::Unsatisfiable);
        assert_eq!(r("bytes=-5", 0), RangeOutcome::Unsatisfiable);
    }

    #[test]
    fn range_syntax_leniency() {
        assert_eq!(r("BYTES=0-9", 100), part(0, 9));
        assert_eq!(r(" bytes = 0 - 9 ", 100), part(0, 9));
        assert_eq!(r("bytes=0-9,", 100), part(0, 9));
        assert_eq!(r("bytes=, 0-9 ,,", 100), part(0, 9));
    }

    #[test]
    fn invalid_or_multi_range_is_ignored() {
        for v in [
            "bytes=0-1,5-6",
            "bytes=-1,-2",
            "bytes=9-0",
            "bytes=abc",
            "bytes=",
            "bytes=-",
            "bytes=--1",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=0x10-",
            "items=0-9",
            "bytes 0-9",
            "0-9",
            "",
        ] {
            assert_eq!(r(v, 100), RangeOutcome::Full, "{v:?}");
        }
        let two_lines = h(&[("range", "bytes=0-1"), ("range", "bytes=2-3")]);
        assert_eq!(range(&two_lines, 100, None, None), RangeOutcome::Full);
        let mut non_utf8 = HeaderMap::new();
        non_utf8.insert(RANGE, HeaderValue::from_bytes(b"bytes=0-1\xff").unwrap());
        assert_eq!(range(&non_utf8, 100, None, None), RangeOutcome::Full);
    }

    #[test]
    fn if_range() {
        let ir = |v: &str, etag: Option<&str>| {
            range(
                &h(&[("range", "bytes=0-9"), ("if-range", v)]),
                100,
                etag,
                Some(LM),
            )
        };
        assert_eq!(ir(ETAG, Some(ETAG)), part(0, 9));
        assert_eq!(ir("\"other\"", Some(ETAG)), RangeOutcome::Full);
        // Strong comparison: a weak tag on either side never matches.
        assert_eq!(ir("W/\"abc\"", Some(ETAG)), RangeOutcome::Full);
        assert_eq!(ir(ETAG, Some("W/\"abc\"")), RangeOutcome::Full);
        assert_eq!(ir(ETAG, None), RangeOutcome::Full);
        // Dates: exact equality with Last-Modified.
        assert_eq!(ir(LM, Some(ETAG)), part(0, 9));
        assert_eq!(ir(AFTER, Some(ETAG)), RangeOutcome::Full);
        assert_eq!(ir(BEFORE, Some(ETAG)), RangeOutcome::Full);
        assert_eq!(ir("not a date", Some(ETAG)), RangeOutcome::Full);
        // Date If-Range without a known Last-Modified cannot match.
        assert_eq!(
            range(
                &h(&[("range", "bytes=0-9"), ("if-range", LM)]),
                100,
                Some(ETAG),
                None
            ),
            RangeOutcome::Full
        );
        // A failing If-Range wins over an unsatisfiable range: the whole representation.
        assert_eq!(
            range(
                &h(&[("range", "bytes=500-"), ("if-range", "\"old\"")]),
                100,
                Some(ETAG),
                Some(LM)
            ),
            RangeOutcome::Full
        );
        // A matching one lets the 416 through.
        assert_eq!(
            range(
                &h(&[("range", "bytes=500-"), ("if-range", ETAG)]),
                100,
                Some(ETAG),
                Some(LM)
            ),
            RangeOutcome::Unsatisfiable
        );
        // If-Range without Range does nothing.
        assert_eq!(
            range(&h(&[("if-range", "\"old\"")]), 100, Some(ETAG), Some(LM)),
            RangeOutcome::Full
        );
    }

    #[test]
    fn content_range_values() {
        assert_eq!(content_range(0, 9, 100), "bytes 0-9/100");
        assert_eq!(unsatisfied_range(100), "bytes */100");
        assert_eq!(unsatisfied_range(0), "bytes */0");
    }

    fn ev(method: Method, pairs: &[(&str, &str)]) -> Precondition {
        evaluate(&method, &h(pairs), Some(ETAG), Some(LM))
    }

    use Precondition::{NotModified, PreconditionFailed, Proceed};

    #[test]
    fn no_preconditions() {
        assert_eq!(ev(Method::GET, &[]), Proceed);
        assert_eq!(evaluate(&Method::GET, &h(&[]), None, None), Proceed);
    }

    #[test]
    fn if_match() {
        assert_eq!(ev(Method::GET, &[("if-match", ETAG)]), Proceed);
        assert_eq!(ev(Method::GET, &[("if-match", "*")]), Proceed);
        assert_eq!(ev(Method::GET, &[("if-match", "\"x\", \"abc\"")]), Proceed);
        assert_eq!(
            ev(
                Method::GET,
                &[("if-match", "\"x\""), ("if-match", "\"abc\"")]
            ),
            Proceed
        );
        assert_eq!(ev(Method::GET, &[("if-match", "abc")]), Proceed);
        assert_eq!(
            ev(Method::GET, &[("if-match", "\"x\"")]),
            PreconditionFailed
        );
        // Strong comparison.
        assert_eq!(
            ev(Method::GET, &[("if-match", "W/\"abc\"")]),
            PreconditionFailed
        );
        assert_eq!(
            evaluate(
                &Method::GET,
                &h(&[("if-match", ETAG)]),
                Some("W/\"abc\""),
                None
            ),
            PreconditionFailed
        );
        assert_eq!(
            evaluate(&Method::GET, &h(&[("if-match", ETAG)]), None, Some(LM)),
            PreconditionFailed
        );
        assert_eq!(
            ev(Method::GET, &[("if-match", "\"unterminated")]),
            PreconditionFailed
        );
        // If-Match takes precedence over If-Unmodified-Since.
        assert_eq!(
            ev(
                Method::GET,
                &[("if-match", ETAG), ("if-unmodified-since", BEFORE)]
            ),
            Proceed
        );
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(ev(Method::GET, &[("if-unmodified-since", LM)]), Proceed);
        assert_eq!(ev(Method::GET, &[("if-unmodified-since", AFTER)]), Proceed);
        assert_eq!(
            ev(Method::GET, &[("if-unmodified-since", BEFORE)]),
            PreconditionFailed
        );
        assert_eq!(ev(Method::GET, &[("if-unmodified-since", "junk")]), Proceed);
        assert_eq!(
            evaluate(
                &Method::GET,
                &h(&[("if-unmodified-since", BEFORE)]),
                Some(ETAG),
                None
            ),
            Proceed
        );
        // A 412 beats a 304.
        assert_eq!(
            ev(
                Method::GET,
                &[("if-unmodified-since", BEFORE), ("if-none-match", ETAG)]
            ),
            PreconditionFailed
        );
    }

    #[test]
    fn if_none_match() {
        assert_eq!(ev(Method::GET, &[("if-none-match", ETAG)]), NotModified);
        assert_eq!(ev(Method::HEAD, &[("if-none-match", ETAG)]), NotModified);
        assert_eq!(ev(Method::GET, &[("if-none-match", "*")]), NotModified);
        assert_eq!(
            ev(Method::GET, &[("if-none-match", "\"x\", *")]),
            NotModified
        );
        // A quoted "*" is an ordinary tag, and a comma-space-star inside a tag is not a wildcard.
        assert_eq!(ev(Method::GET, &[("if-none-match", "\"*\"")]), Proceed);
        assert_eq!(ev(Method::GET, &[("if-none-match", "\"a, *\"")]), Proceed);
        // Weak comparison, lists, several lines, commas inside tags.
        assert_eq!(
            ev(Method::GET, &[("if-none-match", "W/\"abc\"")]),
            NotModified
        );
        assert_eq!(
            evaluate(
                &Method::GET,
                &h(&[("if-none-match", ETAG)]),
                Some("W/\"abc\""),
                None
            ),
            NotModified
        );
        assert_eq!(
            ev(Method::GET, &[("if-none-match", "\"a,b\" , W/\"abc\"")]),
            NotModified
        );
        assert_eq!(
            ev(
                Method::GET,
                &[("if-none-match", "\"x\""), ("if-none-match", ETAG)]
            ),
            NotModified
        );
        assert_eq!(ev(Method::GET, &[("if-none-match", "\"x\"")]), Proceed);
        assert_eq!(
            evaluate(&Method::GET, &h(&[("if-none-match", ETAG)]), None, Some(LM)),
            Proceed
        );
        // Other methods get 412 instead of 304.
        assert_eq!(
            ev(Method::POST, &[("if-none-match", ETAG)]),
            PreconditionFailed
        );
        assert_eq!(
            ev(Method::PUT, &[("if-none-match", "*")]),
            PreconditionFailed
        );
        // If-None-Match present: If-Modified-Since is not looked at.
        assert_eq!(
            ev(
                Method::GET,
                &[("if-none-match", "\"x\""), ("if-modified-since", AFTER)]
            ),
            Proceed
        );
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(ev(Method::GET, &[("if-modified-since", LM)]), NotModified);
        assert_eq!(
            ev(Method::GET, &[("if-modified-since", AFTER)]),
            NotModified
        );
        assert_eq!(
            ev(Method::HEAD, &[("if-modified-since", AFTER)]),
            NotModified
        );
        assert_eq!(ev(Method::GET, &[("if-modified-since", BEFORE)]), Proceed);
        // Obsolete date formats are valid HTTP-dates.
        assert_eq!(
            ev(
                Method::GET,
                &[("if-modified-since", "Wednesday, 21-Oct-15 07:28:00 GMT")]
            ),
            NotModified
        );
        assert_eq!(
            ev(
                Method::GET,
                &[("if-modified-since", "Wed Oct 21 07:28:00 2015")]
            ),
            NotModified
        );
        assert_eq!(ev(Method::GET, &[("if-modified-since", "junk")]), Proceed);
        assert_eq!(ev(Method::POST, &[("if-modified-since", AFTER)]), Proceed);
        assert_eq!(
            ev(
                Method::GET,
                &[("if-modified-since", AFTER), ("if-modified-since", AFTER)]
            ),
            Proceed
        );
        assert_eq!(
            evaluate(
                &Method::GET,
                &h(&[("if-modified-since", AFTER)]),
                Some(ETAG),
                None
            ),
            Proceed
        );
        assert_eq!(
            evaluate(
                &Method::GET,
                &h(&[("if-modified-since", AFTER)]),
                Some(ETAG),
                Some("garbage")
            ),
            Proceed
        );
    }

    #[test]
    fn tag_list_parsing() {
        let t = |weak, o: &str, bare| Tag {
            weak,
            opaque: o.to_owned(),
            bare,
        };
        assert_eq!(
            parse_tag_list(" \"a\",W/\"b,c\" , bare ,"),
            Some(vec![
                t(false, "a", false),
                t(true, "b,c", false),
                t(false, "bare", true)
            ])
        );
        assert_eq!(parse_tag_list("\"a"), None);
        assert_eq!(parse_tag_list(""), Some(vec![]));
        assert_eq!(parse_own_etag("  unquoted "), t(false, "unquoted", true));
        assert_eq!(parse_own_etag("W/\"x\""), t(true, "x", false));
    }

    fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            "[ a-zA-Z0-9=,\"/*W-]{0,40}".prop_map(String::into_bytes),
            (
                "(bytes|BYTES|items)?[ =]{0,2}",
                "[0-9]{0,22}",
                "[ -]{0,2}",
                "[0-9]{0,22}",
                "(,[0-9]{0,3}-[0-9]{0,3})?"
            )
                .prop_map(|(a, b, c, d, e)| format!("{a}{b}{c}{d}{e}").into_bytes()),
        ]
    }

    fn arbitrary_request() -> impl Strategy<Value = HeaderMap> {
        proptest::collection::vec(
            (
                prop::sample::select(vec![
                    RANGE,
                    IF_RANGE,
                    IF_MATCH,
                    IF_NONE_MATCH,
                    IF_MODIFIED_SINCE,
                    IF_UNMODIFIED_SINCE,
                ]),
                header_bytes(),
            ),
            0..5,
        )
        .prop_map(|pairs| {
            let mut m = HeaderMap::new();
            for (n, b) in pairs {
                if let Ok(v) = HeaderValue::from_bytes(&b) {
                    m.append(n, v);
                }
            }
            m
        })
    }

    proptest! {
        #[test]
        fn partial_is_within_bounds(
            req in arbitrary_request(),
            len in prop_oneof![0u64..300, any::<u64>()],
            etag in proptest::option::of("(W/)?\"?[a-z,]{0,5}\"?"),
            lm in proptest::option::of(prop_oneof![Just(LM.to_owned()), "[ -~]{0,30}"]),
        ) {
            let out = range(&req, len, etag.as_deref(), lm.as_deref());
            if let RangeOutcome::Partial { start, end_inclusive } = out {
                prop_assert!(start <= end_inclusive && end_inclusive < len);
            }
            if len == 0 {
                let partial = matches!(out, RangeOutcome::Partial { .. });
                prop_assert!(!partial, "a zero-length representation has no byte range");
            }
            let _ = evaluate(&Method::GET, &req, etag.as_deref(), lm.as_deref());
            let _ = evaluate(&Method::PUT, &req, etag.as_deref(), lm.as_deref());
        }

        #[test]
        fn well_formed_ranges_are_exact(len in 1u64..10_000, a in 0u64..12_000, b in 0u64..12_000) {
            let (first, last) = (a.min(b), a.max(b));
            let out = r(&format!("bytes={first}-{last}"), len);
            if first >= len {
                prop_assert_eq!(out, RangeOutcome::Unsatisfiable);
            } else {
                prop_assert_eq!(out, part(first, last.min(len - 1)));
            }
            let out = r(&format!("bytes=-{a}"), len);
            if a == 0 {
                prop_assert_eq!(out, RangeOutcome::Unsatisfiable);
            } else {
                prop_assert_eq!(out, part(len - a.min(len), len - 1));
            }
        }
    }
}
