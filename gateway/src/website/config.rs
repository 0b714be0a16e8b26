//! The bucket website configuration (PutBucketWebsite's document): parsed from XML, validated with AWS's
//! rules and messages, and rendered back for GetBucketWebsite. The stored form is the rendered document.

use serde::Deserialize;

use crate::error::{ApiError, ApiResult};
use crate::xml::{XmlDoc, XmlWriter, parse};

/// Most routing rules in one configuration, as AWS.
const MAX_RULES: usize = 50;

/// A validated website configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WebsiteConfig {
    /// Appended to keys that end in `/` (and to the empty key).
    pub index_suffix: Option<String>,
    /// Object served for 4XX errors.
    pub error_key: Option<String>,
    /// Redirect every request to another host (exclusive with everything else).
    pub redirect_all: Option<RedirectAll>,
    /// Conditional redirects, first match wins.
    pub rules: Vec<RoutingRule>,
}

/// RedirectAllRequestsTo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectAll {
    /// Target host.
    pub host_name: String,
    /// `http` or `https`; the request's protocol when absent.
    pub protocol: Option<String>,
}

/// One RoutingRule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RoutingRule {
    /// The rule applies to keys starting with this.
    pub key_prefix: Option<String>,
    /// The rule applies when serving the key would return this status.
    pub error_code: Option<u16>,
    /// Where it redirects.
    pub redirect: Redirect,
}

/// A RoutingRule's Redirect.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Redirect {
    /// `http` or `https`.
    pub protocol: Option<String>,
    /// Target host.
    pub host_name: Option<String>,
    /// Replaces the matched KeyPrefixEquals.
    pub replace_key_prefix_with: Option<String>,
    /// Replaces the whole key.
    pub replace_key_with: Option<String>,
    /// 3XX status; 301 when absent.
    pub http_redirect_code: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct WebsiteConfigurationXml {
    #[serde(rename = "IndexDocument", default)]
    index_document: Option<IndexDocumentXml>,
    #[serde(rename = "ErrorDocument", default)]
    error_document: Option<ErrorDocumentXml>,
    #[serde(rename = "RedirectAllRequestsTo", default)]
    redirect_all: Option<RedirectAllXml>,
    #[serde(rename = "RoutingRules", default)]
    routing_rules: Option<RoutingRulesXml>,
}

impl XmlDoc for WebsiteConfigurationXml {
    const ROOT: &'static str = "WebsiteConfiguration";
}

#[derive(Debug, Deserialize)]
struct IndexDocumentXml {
    #[serde(rename = "Suffix", default)]
    suffix: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorDocumentXml {
    #[serde(rename = "Key", default)]
    key: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RedirectAllXml {
    #[serde(rename = "HostName", default)]
    host_name: Option<String>,
    #[serde(rename = "Protocol", default)]
    protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RoutingRulesXml {
    #[serde(rename = "RoutingRule", default)]
    rules: Vec<RoutingRuleXml>,
}

#[derive(Debug, Deserialize)]
struct RoutingRuleXml {
    #[serde(rename = "Condition", default)]
    condition: Option<ConditionXml>,
    #[serde(rename = "Redirect", default)]
    redirect: Option<RedirectXml>,
}

#[derive(Debug, Deserialize)]
struct ConditionXml {
    #[serde(rename = "KeyPrefixEquals", default)]
    key_prefix_equals: Option<String>,
    #[serde(rename = "HttpErrorCodeReturnedEquals", default)]
    http_error_code_returned_equals: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RedirectXml {
    #[serde(rename = "Protocol", default)]
    protocol: Option<String>,
    #[serde(rename = "HostName", default)]
    host_name: Option<String>,
    #[serde(rename = "ReplaceKeyPrefixWith", default)]
    replace_key_prefix_with: Option<String>,
    #[serde(rename = "ReplaceKeyWith", default)]
    replace_key_with: Option<String>,
    #[serde(rename = "HttpRedirectCode", default)]
    http_redirect_code: Option<String>,
}

fn invalid_request(msg: &str) -> ApiError {
    ApiError::InvalidRequest(msg.to_owned())
}

fn check_protocol(p: Option<String>) -> ApiResult<Option<String>> {
    match p.as_deref() {
        None => Ok(None),
        Some("http" | "https") => Ok(p),
        Some(_) => Err(invalid_request(
            "Invalid protocol, protocol can be http or https. If not defined the protocol will be selected automatically.",
        )),
    }
}

/// Longest HostName accepted: a DNS name (253) plus a port.
const MAX_HOST_NAME: usize = 253 + 6;

/// Refuses a HostName that is not a host (a DNS name or IPv4 address, or a bracketed IPv6 address), optionally
/// with `:port`: the website endpoint puts it into a Location header, so it may hold no whitespace, control
/// characters, `/`, `@` or anything else that would change the URL's meaning.
fn check_host_name(h: &str) -> ApiResult<()> {
    if valid_host_name(h) {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(
            "The HostName is not valid: it must be a host name or IP address, optionally with a port."
                .into(),
        ))
    }
}

fn valid_host_name(h: &str) -> bool {
    if h.len() > MAX_HOST_NAME {
        return false;
    }
    let (host, port) = match h.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, after)) => {
                let ok = !v6.is_empty()
                    && v6
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
                if !ok {
                    return false;
                }
                match after {
                    "" => return true,
                    a => match a.strip_prefix(':') {
                        Some(p) => (None, Some(p)),
                        None => return false,
                    },
                }
            }
            None => return false,
        },
        None => match h.split_once(':') {
            Some((host, p)) => (Some(host), Some(p)),
            None => (Some(h), None),
        },
    };
    let host_ok = host.is_none_or(|host| {
        !host.is_empty()
            && !host.starts_with(['.', '-'])
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    });
    let port_ok =
        port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    host_ok && port_ok
}

/// A non-empty value, or MalformedXML (the schema has no empty strings here).
fn non_empty(v: Option<String>) -> ApiResult<Option<String>> {
    match v {
        Some(s) if s.is_empty() => Err(ApiError::MalformedXml),
        other => Ok(other),
    }
}

fn parse_code(text: &str) -> Option<u16> {
    let t = text.trim();
    if t.len() != 3 || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

impl WebsiteConfig {
    /// Parses and validates a PutBucketWebsite body.
    pub fn from_xml(body: &[u8]) -> ApiResult<Self> {
        let doc: WebsiteConfigurationXml = parse(body)?;
        Self::validate(doc)
    }

    fn validate(doc: WebsiteConfigurationXml) -> ApiResult<Self> {
        if let Some(all) = doc.redirect_all {
            if doc.index_document.is_some()
                || doc.error_document.is_some()
                || doc.routing_rules.is_some()
            {
                return Err(ApiError::InvalidArgument(
                    "RedirectAllRequestsTo cannot be provided in conjunction with other Routing Rules."
                        .into(),
                ));
            }
            let host_name = non_empty(all.host_name)?.ok_or(ApiError::MalformedXml)?;
            check_host_name(&host_name)?;
            return Ok(Self {
                redirect_all: Some(RedirectAll {
                    host_name,
                    protocol: check_protocol(all.protocol)?,
                }),
                ..Self::default()
            });
        }
        let Some(index) = doc.index_document else {
            return Err(ApiError::InvalidArgument(
                "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty"
                    .into(),
            ));
        };
        let suffix = index.suffix.unwrap_or_default();
        if suffix.is_empty() || suffix.contains('/') {
            return Err(ApiError::InvalidArgument(
                "The IndexDocument Suffix is not well formed".into(),
            ));
        }
        let error_key = match doc.error_document {
            None => None,
            Some(e) => Some(non_empty(e.key)?.ok_or(ApiError::MalformedXml)?),
        };
        let rules = match doc.routing_rules {
            None => Vec::new(),
            Some(r) => validate_rules(r.rules)?,
        };
        Ok(Self {
            index_suffix: Some(suffix),
            error_key,
            redirect_all: None,
            rules,
        })
    }

    /// Reads a stored configuration (written by [`Self::to_xml`]).
    pub fn from_stored(bytes: &[u8]) -> ApiResult<Self> {
        Self::from_xml(bytes)
    }

    /// Renders the GetBucketWebsite document.
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "WebsiteConfiguration";
        let mut w = XmlWriter::new(ROOT);
        if let Some(all) = &self.redirect_all {
            w.open("RedirectAllRequestsTo");
            w.elem("HostName", &all.host_name);
            if let Some(p) = &all.protocol {
                w.elem("Protocol", p);
            }
            w.close("RedirectAllRequestsTo");
        }
        if let Some(s) = &self.index_suffix {
            w.open("IndexDocument")
                .elem("Suffix", s)
                .close("IndexDocument");
        }
        if let Some(k) = &self.error_key {
            w.open("ErrorDocument")
                .elem("Key", k)
                .close("ErrorDocument");
        }
        if !self.rules.is_empty() {
            w.open("RoutingRules");
            for rule in &self.rules {
                rule_xml(&mut w, rule);
            }
            w.close("RoutingRules");
        }
        w.finish(ROOT)
    }
}

fn rule_xml(w: &mut XmlWriter, rule: &RoutingRule) {
    w.open("RoutingRule");
    if rule.key_prefix.is_some() || rule.error_code.is_some() {
        w.open("Condition");
        if let Some(c) = rule.error_code {
            w.elem("HttpErrorCodeReturnedEquals", &c.to_string());
        }
        if let Some(p) = &rule.key_prefix {
            w.elem("KeyPrefixEquals", p);
        }
        w.close("Condition");
    }
    let r = &rule.redirect;
    w.open("Redirect");
    let code = r.http_redirect_code.map(|c| c.to_string());
    for (name, value) in [
        ("HostName", &r.host_name),
        ("HttpRedirectCode", &code),
        ("Protocol", &r.protocol),
        ("ReplaceKeyPrefixWith", &r.replace_key_prefix_with),
        ("ReplaceKeyWith", &r.replace_key_with),
    ] {
        if let Some(v) = value {
            w.elem(name, v);
        }
    }
    w.close("Redirect");
    w.close("RoutingRule");
}

fn validate_rules(rules: Vec<RoutingRuleXml>) -> ApiResult<Vec<RoutingRule>> {
    if rules.is_empty() {
        return Err(ApiError::MalformedXml);
    }
    if rules.len() > MAX_RULES {
        return Err(invalid_request(&format!(
            "{} routing rules provided, the number of routing rules in a website configuration is limited to {MAX_RULES}.",
            rules.len()
        )));
    }
    rules.into_iter().map(validate_rule).collect()
}

fn validate_rule(rule: RoutingRuleXml) -> ApiResult<RoutingRule> {
    let mut out = RoutingRule::default();
    if let Some(c) = rule.condition {
        if c.key_prefix_equals.is_none() && c.http_error_code_returned_equals.is_none() {
            return Err(invalid_request(
                "Condition cannot be empty. To redirect all requests without a condition, the condition element shouldn't be present.",
            ));
        }
        out.key_prefix = c.key_prefix_equals;
        if let Some(code) = c.http_error_code_returned_equals {
            let n = parse_code(&code)
                .filter(|n| (400..600).contains(n))
                .ok_or_else(|| {
                    invalid_request(&format!(
                        "The provided HTTP error code ({code}) is not valid. Valid codes are 4XX or 5XX."
                    ))
                })?;
            out.error_code = Some(n);
        }
    }
    let r = rule.redirect.ok_or(ApiError::MalformedXml)?;
    if r.replace_key_prefix_with.is_some() && r.replace_key_with.is_some() {
        return Err(invalid_request(
            "You can only define ReplaceKeyPrefix or ReplaceKey but not both.",
        ));
    }
    if r.protocol.is_none()
        && r.host_name.is_none()
        && r.replace_key_prefix_with.is_none()
        && r.replace_key_with.is_none()
        && r.http_redirect_code.is_none()
    {
        return Err(ApiError::MalformedXml);
    }
    let code = match r.http_redirect_code {
        None => None,
        Some(text) => Some(
            parse_code(&text)
                .filter(|n| (301..400).contains(n))
                .ok_or_else(|| {
                    invalid_request(&format!(
                        "The provided HTTP redirect code ({text}) is not valid. Valid codes are 3XX except 300."
                    ))
                })?,
        ),
    };
    let host_name = non_empty(r.host_name)?;
    if let Some(h) = &host_name {
        check_host_name(h)?;
    }
    out.redirect = Redirect {
        protocol: check_protocol(r.protocol)?,
        host_name,
        replace_key_prefix_with: r.replace_key_prefix_with,
        replace_key_with: r.replace_key_with,
        http_redirect_code: code,
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> (String, String) {
        let e = WebsiteConfig::from_xml(body.as_bytes()).unwrap_err();
        (e.aws_code().to_owned(), e.message())
    }

    #[test]
    fn aws_sample_with_routing_rules_round_trips() {
        let body = r#"<WebsiteConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <IndexDocument><Suffix>index.html</Suffix></IndexDocument>
  <ErrorDocument><Key>Error.html</Key></ErrorDocument>
  <RoutingRules>
    <RoutingRule>
      <Condition><KeyPrefixEquals>docs/</KeyPrefixEquals></Condition>
      <Redirect><ReplaceKeyPrefixWith>documents/</ReplaceKeyPrefixWith></Redirect>
    </RoutingRule>
    <RoutingRule>
      <Condition><HttpErrorCodeReturnedEquals>404</HttpErrorCodeReturnedEquals></Condition>
      <Redirect><HostName>ec2-11-22-333-44.compute-1.amazonaws.com</HostName><ReplaceKeyPrefixWith>report-404/</ReplaceKeyPrefixWith><HttpRedirectCode>302</HttpRedirectCode></Redirect>
    </RoutingRule>
  </RoutingRules>
</WebsiteConfiguration>"#;
        let c = WebsiteConfig::from_xml(body.as_bytes()).unwrap();
        assert_eq!(c.index_suffix.as_deref(), Some("index.html"));
        assert_eq!(c.error_key.as_deref(), Some("Error.html"));
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].key_prefix.as_deref(), Some("docs/"));
        assert_eq!(c.rules[1].error_code, Some(404));
        assert_eq!(c.rules[1].redirect.http_redirect_code, Some(302));
        let again = WebsiteConfig::from_stored(c.to_xml().as_bytes()).unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn host_names_must_be_hosts() {
        for ok in [
            "example.com",
            "ec2-11-22-333-44.compute-1.amazonaws.com",
            "example.com:8080",
            "192.0.2.1",
            "[2001:db8::1]",
            "[2001:db8::1]:443",
            "localhost",
        ] {
            assert!(valid_host_name(ok), "{ok}");
        }
        for bad in [
            "",
            "example.com/path",
            "evil.com\r\nSet-Cookie: a=b",
            "evil.com\tx",
            "a b",
            "user@evil.com",
            "evil.com?x",
            "evil.com#x",
            "example.com:",
            "example.com:80:80",
            "example.com:http",
            "[::1",
            "[::1]x",
            "[zz]",
            ".example.com",
        ] {
            assert!(!valid_host_name(bad), "{bad:?}");
        }
        for place in [
            "<RedirectAllRequestsTo><HostName>evil.com/x</HostName></RedirectAllRequestsTo>",
            "<IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule><Redirect><HostName>a b</HostName></Redirect></RoutingRule></RoutingRules>",
        ] {
            let (code, _) = err(&format!(
                "<WebsiteConfiguration>{place}</WebsiteConfiguration>"
            ));
            assert_eq!(code, "InvalidArgument", "{place}");
        }
    }

    #[test]
    fn redirect_all_round_trips_and_is_exclusive() {
        let c = WebsiteConfig::from_xml(
            b"<WebsiteConfiguration><RedirectAllRequestsTo><HostName>example.com</HostName><Protocol>https</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>",
        )
        .unwrap();
        assert_eq!(
            c.redirect_all,
            Some(RedirectAll {
                host_name: "example.com".into(),
                protocol: Some("https".into())
            })
        );
        assert_eq!(
            WebsiteConfig::from_stored(c.to_xml().as_bytes()).unwrap(),
            c
        );
        let (code, msg) = err(
            "<WebsiteConfiguration><RedirectAllRequestsTo><HostName>a</HostName></RedirectAllRequestsTo><IndexDocument><Suffix>i</Suffix></IndexDocument></WebsiteConfiguration>",
        );
        assert_eq!(code, "InvalidArgument");
        assert!(msg.starts_with("RedirectAllRequestsTo cannot be provided"));
        let (code, _) = err(
            "<WebsiteConfiguration><RedirectAllRequestsTo><Protocol>http</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>",
        );
        assert_eq!(code, "MalformedXML");
        let (code, msg) = err(
            "<WebsiteConfiguration><RedirectAllRequestsTo><HostName>a</HostName><Protocol>ftp</Protocol></RedirectAllRequestsTo></WebsiteConfiguration>",
        );
        assert_eq!(code, "InvalidRequest");
        assert!(msg.starts_with("Invalid protocol"));
    }

    #[test]
    fn index_document_rules() {
        let (code, msg) = err("<WebsiteConfiguration></WebsiteConfiguration>");
        assert_eq!(code, "InvalidArgument");
        assert_eq!(
            msg,
            "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty"
        );
        for bad in ["", "a/index.html"] {
            let (code, msg) = err(&format!(
                "<WebsiteConfiguration><IndexDocument><Suffix>{bad}</Suffix></IndexDocument></WebsiteConfiguration>"
            ));
            assert_eq!(code, "InvalidArgument");
            assert_eq!(msg, "The IndexDocument Suffix is not well formed");
        }
        let (code, _) = err(
            "<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><ErrorDocument><Key></Key></ErrorDocument></WebsiteConfiguration>",
        );
        assert_eq!(code, "MalformedXML");
        assert_eq!(err("<Website/>").0, "MalformedXML");
    }

    fn with_rule(rule: &str) -> String {
        format!(
            "<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules><RoutingRule>{rule}</RoutingRule></RoutingRules></WebsiteConfiguration>"
        )
    }

    #[test]
    fn routing_rule_rules() {
        let (code, msg) = err(&with_rule(
            "<Redirect><ReplaceKeyPrefixWith>a</ReplaceKeyPrefixWith><ReplaceKeyWith>b</ReplaceKeyWith></Redirect>",
        ));
        assert_eq!(code, "InvalidRequest");
        assert_eq!(
            msg,
            "You can only define ReplaceKeyPrefix or ReplaceKey but not both."
        );
        let (code, msg) = err(&with_rule(
            "<Condition></Condition><Redirect><HostName>h</HostName></Redirect>",
        ));
        assert_eq!(code, "InvalidRequest");
        assert!(msg.starts_with("Condition cannot be empty."));
        let (code, msg) = err(&with_rule(
            "<Condition><HttpErrorCodeReturnedEquals>200</HttpErrorCodeReturnedEquals></Condition><Redirect><HostName>h</HostName></Redirect>",
        ));
        assert_eq!(code, "InvalidRequest");
        assert!(msg.contains("(200)"));
        let (code, _) = err(&with_rule(
            "<Redirect><HostName>h</HostName><HttpRedirectCode>300</HttpRedirectCode></Redirect>",
        ));
        assert_eq!(code, "InvalidRequest");
        assert_eq!(err(&with_rule("<Redirect></Redirect>")).0, "MalformedXML");
        assert_eq!(
            err(&with_rule(
                "<Condition><KeyPrefixEquals>a</KeyPrefixEquals></Condition>"
            ))
            .0,
            "MalformedXML"
        );
        let many =
            "<RoutingRule><Redirect><HostName>h</HostName></Redirect></RoutingRule>".repeat(51);
        let (code, msg) = err(&format!(
            "<WebsiteConfiguration><IndexDocument><Suffix>i</Suffix></IndexDocument><RoutingRules>{many}</RoutingRules></WebsiteConfiguration>"
        ));
        assert_eq!(code, "InvalidRequest");
        assert!(msg.starts_with("51 routing rules provided"));
        // A rule without a condition is allowed and applies to every request.
        let c = WebsiteConfig::from_xml(
            with_rule("<Redirect><HostName>h</HostName></Redirect>").as_bytes(),
        )
        .unwrap();
        assert_eq!(c.rules[0].key_prefix, None);
    }
}
