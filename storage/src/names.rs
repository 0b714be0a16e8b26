//! Naming rules for buckets and keys. Keys are opaque: they never become file paths (shard files are named
//! by random data ids), so `../x` or a NUL byte is just another key.

/// Longest key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_LEN: usize = 1024;

/// Why a key was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyProblem {
    /// Empty key.
    Empty,
    /// Longer than [`MAX_KEY_LEN`] bytes.
    TooLong,
}

/// Checks a key (already percent-decoded and known to be UTF-8).
pub fn check_key(key: &str) -> Result<(), KeyProblem> {
    if key.is_empty() {
        Err(KeyProblem::Empty)
    } else if key.len() > MAX_KEY_LEN {
        Err(KeyProblem::TooLong)
    } else {
        Ok(())
    }
}

/// True if `name` follows the S3 general-purpose bucket naming rules.
pub fn is_valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let edge_ok = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !edge_ok(b[0]) || !edge_ok(b[b.len() - 1]) {
        return false;
    }
    if !b.iter().all(|&c| edge_ok(c) || c == b'.' || c == b'-') {
        return false;
    }
    if name.contains("..") || name.contains(".-") || name.contains("-.") {
        return false;
    }
    if name.parse::<std::net::Ipv4Addr>().is_ok() {
        return false;
    }
    const BAD_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
    const BAD_SUFFIXES: [&str; 4] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3"];
    !BAD_PREFIXES.iter().any(|p| name.starts_with(p))
        && !BAD_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names() {
        for ok in ["abc", "my-bucket", "my.bucket.1", "a1b", &"a".repeat(63)] {
            assert!(is_valid_bucket_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "Abc",
            "-abc",
            "abc-",
            "a..b",
            "a.-b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "a_b",
            &"a".repeat(64),
            "ab/c",
        ] {
            assert!(!is_valid_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn keys() {
        assert_eq!(check_key(""), Err(KeyProblem::Empty));
        assert_eq!(check_key(&"k".repeat(1025)), Err(KeyProblem::TooLong));
        assert!(check_key(&"k".repeat(1024)).is_ok());
        assert!(check_key("../../etc/passwd").is_ok());
    }
}
