//! The Host header, as the S3 API (virtual-hosted-style buckets) and the website endpoint both read it: the
//! name without its port, and the bucket that a `<bucket>.<domain>` name gives under one of a list of domains.

/// `host` without its port, an IPv6 address's brackets and the root's trailing dot.
pub(crate) fn host_name(host: &str) -> &str {
    let host = host.trim();
    let name = match host.strip_prefix('[') {
        Some(bracketed) => bracketed
            .split_once(']')
            .map_or(host, |(address, _)| address),
        None => match host.rsplit_once(':') {
            // An IPv6 address without brackets has colons of its own and no port.
            Some((name, port))
                if !name.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) =>
            {
                name
            }
            _ => host,
        },
    };
    name.strip_suffix('.').unwrap_or(name)
}

/// The bucket that `host` names as `<bucket>.<domain>` for one of `domains`, lower-cased, since host names are
/// case-insensitive (a domain's own leading or trailing dot is ignored); `None` when it is under none of them.
pub(crate) fn virtual_bucket(host: &str, domains: &[String]) -> Option<String> {
    let name = host_name(host);
    domains.iter().find_map(|domain| {
        let domain = domain.trim_matches('.');
        let at = name.len().checked_sub(domain.len())?;
        if domain.is_empty()
            || !name.is_char_boundary(at)
            || !name[at..].eq_ignore_ascii_case(domain)
        {
            return None;
        }
        name[..at]
            .strip_suffix('.')
            .filter(|bucket| !bucket.is_empty())
            .map(str::to_ascii_lowercase)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_port_brackets_and_root_dot() {
        for (host, name) in [
            ("example.com", "example.com"),
            ("example.com:9000", "example.com"),
            ("example.com.:9000", "example.com"),
            (" example.com ", "example.com"),
            ("[::1]:9000", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("host:port", "host:port"),
            (":80", ""),
        ] {
            assert_eq!(host_name(host), name, "{host}");
        }
    }

    #[test]
    fn buckets_under_a_domain() {
        let domains = ["localhost".to_owned(), ".s3-website.example.".to_owned()];
        for (host, bucket) in [
            ("bkt.localhost:9000", Some("bkt")),
            ("Bkt.LocalHost.", Some("bkt")),
            ("a.b.localhost", Some("a.b")),
            ("site.S3-Website.Example.com", None),
            ("site.s3-website.example", Some("site")),
            ("localhost", None),
            (".localhost", None),
            ("bktlocalhost", None),
            ("ééélocalhost", None),
            ("[::1]:9000", None),
        ] {
            assert_eq!(virtual_bucket(host, &domains).as_deref(), bucket, "{host}");
        }
        assert_eq!(virtual_bucket("bkt.localhost", &[String::new()]), None);
    }
}
