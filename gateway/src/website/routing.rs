//! The website endpoint's decisions as pure functions: which bucket a Host names, which key a path serves,
//! which routing rule applies, and where a redirect points. No I/O here, so every rule is unit-tested.

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};

use super::config::{RedirectAll, RoutingRule, WebsiteConfig};

/// Characters escaped when a key is put back into a URL path (`/` stays).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'\\')
    .add(b'^')
    .add(b'|');

/// The bucket a Host header names: `BUCKET.<domain>` for a configured website domain, else the whole host
/// (a bucket named like the site). The port is ignored; `None` for an empty host.
pub fn bucket_for_host(host: &str, domains: &[String]) -> Option<String> {
    if let Some(bucket) = crate::host::virtual_bucket(host, domains) {
        return Some(bucket);
    }
    let name = crate::host::host_name(host);
    (!name.is_empty()).then(|| name.to_ascii_lowercase())
}

/// The key a request path names (leading `/` removed, percent-decoded); `None` when not UTF-8.
pub fn key_for_path(path: &str) -> Option<String> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    Some(decoded.strip_prefix('/').unwrap_or(&decoded).to_owned())
}

/// The object served for `key`: the index document for the root and for "directories" (keys ending in `/`).
pub fn index_key(key: &str, suffix: &str) -> String {
    if key.is_empty() || key.ends_with('/') {
        format!("{key}{suffix}")
    } else {
        key.to_owned()
    }
}

/// The first rule that applies before the object is looked up: no error-code condition, and the key
/// starts with its prefix (a rule without a condition applies to everything).
pub fn rule_before_fetch<'a>(cfg: &'a WebsiteConfig, key: &str) -> Option<&'a RoutingRule> {
    cfg.rules
        .iter()
        .find(|r| r.error_code.is_none() && prefix_matches(r, key))
}

/// The first rule that applies when serving `key` failed with `status`: its error code equals `status` and
/// its prefix (if any) matches.
pub fn rule_after_error<'a>(
    cfg: &'a WebsiteConfig,
    key: &str,
    status: u16,
) -> Option<&'a RoutingRule> {
    cfg.rules
        .iter()
        .find(|r| r.error_code == Some(status) && prefix_matches(r, key))
}

fn prefix_matches(rule: &RoutingRule, key: &str) -> bool {
    rule.key_prefix
        .as_deref()
        .is_none_or(|p| key.starts_with(p))
}

/// Where the client came in: protocol and host, for redirects that keep them.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// `http` or `https` (from X-Forwarded-Proto behind the edge).
    pub protocol: &'a str,
    /// The Host header as sent.
    pub host: &'a str,
}

/// A redirect: status and Location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redirection {
    /// 3XX status.
    pub status: u16,
    /// The Location header.
    pub location: String,
}

/// RedirectAllRequestsTo: 301 to the same path (and query) on the other host.
pub fn redirect_all(all: &RedirectAll, from: Origin<'_>, path_and_query: &str) -> Redirection {
    let protocol = all.protocol.as_deref().unwrap_or(from.protocol);
    let path = if path_and_query.starts_with('/') {
        path_and_query.to_owned()
    } else {
        format!("/{path_and_query}")
    };
    Redirection {
        status: 301,
        location: format!("{protocol}://{}{path}", all.host_name),
    }
}

/// A routing rule's redirect for `key`: protocol and host from the rule or the request, the key replaced
/// whole (ReplaceKeyWith) or by prefix (ReplaceKeyPrefixWith replaces the condition's KeyPrefixEquals).
pub fn rule_redirect(rule: &RoutingRule, key: &str, from: Origin<'_>) -> Redirection {
    let r = &rule.redirect;
    let new_key = match (&r.replace_key_with, &r.replace_key_prefix_with) {
        (Some(k), _) => k.clone(),
        (None, Some(p)) => {
            let prefix = rule.key_prefix.as_deref().unwrap_or("");
            format!("{p}{}", key.strip_prefix(prefix).unwrap_or(key))
        }
        (None, None) => key.to_owned(),
    };
    let protocol = r.protocol.as_deref().unwrap_or(from.protocol);
    let host = r.host_name.as_deref().unwrap_or(from.host);
    Redirection {
        status: r.http_redirect_code.unwrap_or(301),
        location: format!("{protocol}://{host}/{}", encode_key(&new_key)),
    }
}

/// `key` as a URL path (without the leading `/`).
pub fn encode_key(key: &str) -> String {
    utf8_percent_encode(key, PATH).to_string()
}

/// The 302 target for `dir` when `dir/<index>` exists: the same path with a slash.
pub fn directory_redirect(key: &str) -> Redirection {
    Redirection {
        status: 302,
        location: format!("/{}/", encode_key(key)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::Redirect;
    use super::*;

    const FROM: Origin<'static> = Origin {
        protocol: "http",
        host: "site.example:9001",
    };

    fn rule(prefix: Option<&str>, code: Option<u16>, redirect: Redirect) -> RoutingRule {
        RoutingRule {
            key_prefix: prefix.map(str::to_owned),
            error_code: code,
            redirect,
        }
    }

    #[test]
    fn host_names_a_bucket() {
        let domains = vec!["s3-website.localhost".to_owned()];
        assert_eq!(
            bucket_for_host("www.example.com:9001", &domains).as_deref(),
            Some("www.example.com")
        );
        assert_eq!(
            bucket_for_host("Blog.S3-Website.Localhost", &domains).as_deref(),
            Some("blog")
        );
        assert_eq!(
            bucket_for_host("s3-website.localhost", &domains).as_deref(),
            Some("s3-website.localhost")
        );
        assert_eq!(
            bucket_for_host("[::1]:9001", &domains).as_deref(),
            Some("::1")
        );
        assert_eq!(bucket_for_host(":80", &domains), None);
    }

    #[test]
    fn paths_and_index_documents() {
        assert_eq!(key_for_path("/").as_deref(), Some(""));
        assert_eq!(key_for_path("/a%20b/c").as_deref(), Some("a b/c"));
        assert_eq!(key_for_path("/%FF"), None);
        assert_eq!(index_key("", "index.html"), "index.html");
        assert_eq!(index_key("docs/", "index.html"), "docs/index.html");
        assert_eq!(index_key("docs", "index.html"), "docs");
        assert_eq!(directory_redirect("my docs").location, "/my%20docs/");
        assert_eq!(directory_redirect("my docs").status, 302);
    }

    #[test]
    fn prefix_rules_apply_before_fetch_and_replace_the_prefix() {
        let cfg = WebsiteConfig {
            rules: vec![
                rule(
                    Some("docs/"),
                    Some(404),
                    Redirect {
                        host_name: Some("other".into()),
                        ..Redirect::default()
                    },
                ),
                rule(
                    Some("docs/"),
                    None,
                    Redirect {
                        replace_key_prefix_with: Some("documents/".into()),
                        ..Redirect::default()
                    },
                ),
            ],
            ..WebsiteConfig::default()
        };
        assert!(rule_before_fetch(&cfg, "images/a.png").is_none());
        let r = rule_before_fetch(&cfg, "docs/a b.html").unwrap();
        assert_eq!(
            rule_redirect(r, "docs/a b.html", FROM),
            Redirection {
                status: 301,
                location: "http://site.example:9001/documents/a%20b.html".into()
            }
        );
    }

    #[test]
    fn error_code_rules_apply_after_the_error() {
        let cfg = WebsiteConfig {
            rules: vec![rule(
                None,
                Some(404),
                Redirect {
                    protocol: Some("https".into()),
                    host_name: Some("fallback.example".into()),
                    replace_key_prefix_with: Some("report-404/".into()),
                    http_redirect_code: Some(302),
                    ..Redirect::default()
                },
            )],
            ..WebsiteConfig::default()
        };
        assert!(rule_before_fetch(&cfg, "missing").is_none());
        assert!(rule_after_error(&cfg, "missing", 403).is_none());
        let r = rule_after_error(&cfg, "missing", 404).unwrap();
        assert_eq!(
            rule_redirect(r, "missing", FROM),
            Redirection {
                status: 302,
                location: "https://fallback.example/report-404/missing".into()
            }
        );
    }

    #[test]
    fn replace_key_with_and_unconditional_rules() {
        let r = rule(
            None,
            None,
            Redirect {
                replace_key_with: Some("error.html".into()),
                ..Redirect::default()
            },
        );
        let cfg = WebsiteConfig {
            rules: vec![r.clone()],
            ..WebsiteConfig::default()
        };
        assert_eq!(rule_before_fetch(&cfg, "anything"), Some(&r));
        assert_eq!(
            rule_redirect(&r, "anything", FROM).location,
            "http://site.example:9001/error.html"
        );
    }

    #[test]
    fn redirect_all_keeps_path_and_query() {
        let all = RedirectAll {
            host_name: "example.com".into(),
            protocol: None,
        };
        assert_eq!(
            redirect_all(&all, FROM, "/a/b?x=1"),
            Redirection {
                status: 301,
                location: "http://example.com/a/b?x=1".into()
            }
        );
        let https = RedirectAll {
            protocol: Some("https".into()),
            ..all
        };
        assert_eq!(
            redirect_all(&https, FROM, "/").location,
            "https://example.com/"
        );
    }
}
