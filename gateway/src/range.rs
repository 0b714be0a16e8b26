//! The `Range` request header, as S3 reads it: one `bytes=` range (`a-b`, `a-`, `-n`); anything it cannot
//! parse is ignored (the whole object is sent), and a range that starts past the end is 416 InvalidRange.

use crate::error::{ApiError, ApiResult};

/// Parses `Range` against an object of `size` bytes.
///
/// `Ok(None)`: serve the whole object. `Ok(Some((start, end)))`: inclusive byte range. `Err(InvalidRange)`:
/// unsatisfiable.
pub fn parse_range(header: Option<&str>, size: u64) -> ApiResult<Option<(u64, u64)>> {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let parse = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.is_empty(), b.is_empty()) {
        (true, true) => Ok(None),
        (true, false) => {
            let Some(n) = parse(b) else { return Ok(None) };
            if n == 0 || size == 0 {
                return Err(ApiError::InvalidRange);
            }
            Ok(Some((size.saturating_sub(n), size - 1)))
        }
        (false, _) => {
            let Some(start) = parse(a) else {
                return Ok(None);
            };
            let end = if b.is_empty() {
                u64::MAX
            } else {
                match parse(b) {
                    Some(e) if e >= start => e,
                    _ => return Ok(None),
                }
            };
            if start >= size {
                return Err(ApiError::InvalidRange);
            }
            Ok(Some((start, end.min(size - 1))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn forms() {
        assert_eq!(parse_range(Some("bytes=0-9"), 100).unwrap(), Some((0, 9)));
        assert_eq!(parse_range(Some("bytes=90-"), 100).unwrap(), Some((90, 99)));
        assert_eq!(parse_range(Some("bytes=-10"), 100).unwrap(), Some((90, 99)));
        assert_eq!(
            parse_range(Some("bytes=-1000"), 100).unwrap(),
            Some((0, 99))
        );
        assert_eq!(
            parse_range(Some("bytes=50-5000"), 100).unwrap(),
            Some((50, 99))
        );
        assert!(matches!(
            parse_range(Some("bytes=100-"), 100),
            Err(ApiError::InvalidRange)
        ));
        assert!(matches!(
            parse_range(Some("bytes=0-"), 0),
            Err(ApiError::InvalidRange)
        ));
        assert!(matches!(
            parse_range(Some("bytes=-0"), 10),
            Err(ApiError::InvalidRange)
        ));
        for ignored in [
            "bytes=5-1",
            "bytes=a-b",
            "items=0-1",
            "bytes=0-1,3-4",
            "bytes=-",
            "bytes=1",
        ] {
            assert_eq!(parse_range(Some(ignored), 100).unwrap(), None, "{ignored}");
        }
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }

    proptest! {
        #[test]
        fn satisfiable_ranges_stay_inside_the_object(size in 1u64..10_000, a in 0u64..20_000, b in 0u64..20_000) {
            for h in [format!("bytes={a}-{b}"), format!("bytes={a}-"), format!("bytes=-{b}")] {
                if let Ok(Some((s, e))) = parse_range(Some(&h), size) {
                    prop_assert!(s <= e && e < size, "{} -> {}..={}", h, s, e);
                }
            }
        }

        #[test]
        fn never_panics(h in ".*", size in 0u64..1000) {
            let _ = parse_range(Some(&h), size);
        }
    }
}
