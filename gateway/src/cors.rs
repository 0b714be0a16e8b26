//! CORS: the bucket's CORSConfiguration (parsed, validated with AWS's rules, rendered for GetBucketCors),
//! rule matching as pure functions, preflight (OPTIONS) answers and the Access-Control-* headers of actual
//! requests. Used by both the REST endpoint and the website endpoint.
//!
//! Matching as S3: the first rule whose AllowedOrigin matches the Origin (patterns anchored, one `*` matching any
//! run of characters, the empty one included) and whose AllowedMethod holds the method wins; a preflight also
//! needs every requested header to match an AllowedHeader (case-insensitively). An actual request is matched
//! on its Access-Control-Request-Method header when present, else its method; its headers are not checked.

use http::{HeaderMap, Method, StatusCode};
use serde::Deserialize;

use crate::access::kinds;
use crate::error::{ApiError, ApiResult};
use crate::handlers::{Ctx, Resp, empty, set_header};
use crate::xml::{XmlDoc, XmlWriter, parse};

/// Most rules in one configuration, as AWS.
const MAX_RULES: usize = 100;
/// Methods a rule may allow.
const METHODS: [&str; 5] = ["GET", "PUT", "POST", "DELETE", "HEAD"];
/// What every CORS answer varies on.
pub const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

/// One validated CORSRule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsRule {
    /// Optional rule id.
    pub id: Option<String>,
    /// Origin patterns (at most one `*` each).
    pub allowed_origins: Vec<String>,
    /// GET, PUT, POST, DELETE or HEAD.
    pub allowed_methods: Vec<String>,
    /// Header name patterns a preflight may request (at most one `*` each).
    pub allowed_headers: Vec<String>,
    /// Response headers scripts may read.
    pub expose_headers: Vec<String>,
    /// Seconds a browser may cache the preflight answer.
    pub max_age_seconds: Option<i64>,
}

/// A bucket's CORS rules, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsConfig {
    /// The rules; the first match wins.
    pub rules: Vec<CorsRule>,
}

#[derive(Debug, Deserialize)]
struct CorsConfigurationXml {
    #[serde(rename = "CORSRule", default)]
    rules: Vec<CorsRuleXml>,
}

impl XmlDoc for CorsConfigurationXml {
    const ROOT: &'static str = "CORSConfiguration";
}

#[derive(Debug, Deserialize)]
struct CorsRuleXml {
    #[serde(rename = "ID", default)]
    id: Option<String>,
    #[serde(rename = "AllowedOrigin", default)]
    allowed_origins: Vec<String>,
    #[serde(rename = "AllowedMethod", default)]
    allowed_methods: Vec<String>,
    #[serde(rename = "AllowedHeader", default)]
    allowed_headers: Vec<String>,
    #[serde(rename = "ExposeHeader", default)]
    expose_headers: Vec<String>,
    #[serde(rename = "MaxAgeSeconds", default)]
    max_age_seconds: Option<i64>,
}

fn invalid(msg: String) -> ApiError {
    ApiError::InvalidRequest(msg)
}

fn validate_rule(r: CorsRuleXml) -> ApiResult<CorsRule> {
    if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
        return Err(ApiError::MalformedXml);
    }
    if r.id.as_ref().is_some_and(|id| id.chars().count() > 255) {
        return Err(invalid("ID must be no more than 255 characters".into()));
    }
    if let Some(m) = r
        .allowed_methods
        .iter()
        .find(|m| !METHODS.contains(&m.as_str()))
    {
        return Err(invalid(format!(
            "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
        )));
    }
    if let Some(o) = r
        .allowed_origins
        .iter()
        .find(|o| o.matches('*').count() > 1)
    {
        return Err(invalid(format!(
            "AllowedOrigin \"{o}\" can not have more than one wildcard."
        )));
    }
    if let Some(h) = r
        .allowed_headers
        .iter()
        .find(|h| h.matches('*').count() > 1)
    {
        return Err(invalid(format!(
            "AllowedHeader \"{h}\" can not have more than one wildcard."
        )));
    }
    if let Some(h) = r.expose_headers.iter().find(|h| h.contains('*')) {
        return Err(invalid(format!(
            "ExposeHeader \"{h}\" contains wildcard. We currently do not support wildcard for ExposeHeader."
        )));
    }
    if r.max_age_seconds.is_some_and(|s| s < 0) {
        return Err(ApiError::MalformedXml);
    }
    Ok(CorsRule {
        id: r.id,
        allowed_origins: r.allowed_origins,
        allowed_methods: r.allowed_methods,
        allowed_headers: r.allowed_headers,
        expose_headers: r.expose_headers,
        max_age_seconds: r.max_age_seconds,
    })
}

impl CorsConfig {
    /// Parses and validates a PutBucketCors body.
    pub fn from_xml(body: &[u8]) -> ApiResult<Self> {
        let doc: CorsConfigurationXml = parse(body)?;
        if doc.rules.is_empty() {
            return Err(ApiError::MalformedXml);
        }
        if doc.rules.len() > MAX_RULES {
            return Err(invalid(format!(
                "The number of CORS rules should not exceed allowed limit of {MAX_RULES} rules."
            )));
        }
        let rules = doc
            .rules
            .into_iter()
            .map(validate_rule)
            .collect::<ApiResult<_>>()?;
        Ok(Self { rules })
    }

    /// Renders the GetBucketCors document (also the stored form).
    pub fn to_xml(&self) -> String {
        const ROOT: &str = "CORSConfiguration";
        let mut w = XmlWriter::new(ROOT);
        for r in &self.rules {
            w.open("CORSRule");
            if let Some(id) = &r.id {
                w.elem("ID", id);
            }
            for (name, list) in [
                ("AllowedHeader", &r.allowed_headers),
                ("AllowedMethod", &r.allowed_methods),
                ("AllowedOrigin", &r.allowed_origins),
                ("ExposeHeader", &r.expose_headers),
            ] {
                for v in list {
                    w.elem(name, v);
                }
            }
            if let Some(s) = r.max_age_seconds {
                w.elem("MaxAgeSeconds", &s.to_string());
            }
            w.close("CORSRule");
        }
        w.finish(ROOT)
    }

    /// The first rule allowing `origin` and `method` and, for a preflight, every header in `headers`.
    pub fn matching(&self, origin: &str, method: &str, headers: &[String]) -> Option<&CorsRule> {
        self.rules.iter().find(|r| {
            r.allowed_origins.iter().any(|p| wildcard_match(p, origin))
                && r.allowed_methods.iter().any(|m| m == method)
                && headers.iter().all(|h| {
                    r.allowed_headers
                        .iter()
                        .any(|p| wildcard_match(&p.to_ascii_lowercase(), h))
                })
        })
    }
}

/// Whether `text` matches `pattern`, anchored at both ends, where one `*` stands for any run of characters.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((pre, post)) => {
            text.len() >= pre.len() + post.len() && text.starts_with(pre) && text.ends_with(post)
        }
    }
}

/// The Access-Control-* headers a matched rule gives; `requested` are a preflight's requested headers.
pub fn rule_headers(
    rule: &CorsRule,
    origin: &str,
    requested: &[String],
) -> Vec<(&'static str, String)> {
    let any_origin = rule.allowed_origins.iter().any(|o| o == "*")
        && !rule
            .allowed_origins
            .iter()
            .any(|o| o != "*" && wildcard_match(o, origin));
    let mut out = vec![(
        "access-control-allow-origin",
        if any_origin {
            "*".to_owned()
        } else {
            origin.to_owned()
        },
    )];
    out.push((
        "access-control-allow-methods",
        rule.allowed_methods.join(", "),
    ));
    if !requested.is_empty() {
        out.push(("access-control-allow-headers", requested.join(", ")));
    }
    if !rule.expose_headers.is_empty() {
        out.push((
            "access-control-expose-headers",
            rule.expose_headers.join(", "),
        ));
    }
    if let Some(s) = rule.max_age_seconds {
        out.push(("access-control-max-age", s.to_string()));
    }
    if !any_origin {
        out.push(("access-control-allow-credentials", "true".to_owned()));
    }
    out.push(("vary", VARY.to_owned()));
    out
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The header names a preflight asks for: lowercase, in order, empty items dropped.
pub fn requested_headers(headers: &HeaderMap) -> Vec<String> {
    header(headers, "access-control-request-headers")
        .map(|v| {
            v.split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

/// The bucket's CORS configuration; NoSuchBucket when the bucket does not exist.
pub async fn load(ctx: &Ctx, bucket: &str) -> ApiResult<Option<CorsConfig>> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    match ctx.engine.bucket_config(bucket, kinds::CORS).await? {
        Some(doc) => Ok(Some(CorsConfig::from_xml(&doc)?)),
        None => Ok(None),
    }
}

/// Answers a preflight OPTIONS for `bucket` (unauthenticated; `key`: whether the URL names an object): 200 with
/// the matched rule's headers, 400 without Origin or Access-Control-Request-Method, 403 AccessForbidden when
/// nothing allows it.
pub async fn preflight(
    ctx: &Ctx,
    bucket: Option<&str>,
    key: bool,
    headers: &HeaderMap,
) -> ApiResult<Resp> {
    let origin = header(headers, "origin").ok_or_else(|| {
        ApiError::CorsBadRequest("Insufficient information. Origin request header needed.".into())
    })?;
    let asked = header(headers, "access-control-request-method");
    let forbidden = |message: &'static str, resource_type: &'static str| ApiError::CorsForbidden {
        message,
        method: asked.unwrap_or("OPTIONS").to_owned(),
        resource_type,
    };
    let bucket = bucket.ok_or_else(|| forbidden(BUCKET_NOT_FOUND, "BUCKET"))?;
    let cfg = match load(ctx, bucket).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(forbidden(NOT_ENABLED, "BUCKET")),
        Err(ApiError::NoSuchBucket) => return Err(forbidden(BUCKET_NOT_FOUND, "BUCKET")),
        Err(e) => return Err(e),
    };
    let method = asked.ok_or_else(|| {
        ApiError::CorsBadRequest(
            "Insufficient information. Access-Control-Request-Method request header needed.".into(),
        )
    })?;
    let requested = requested_headers(headers);
    let resource_type = if key { "OBJECT" } else { "BUCKET" };
    let rule = cfg
        .matching(origin, method, &requested)
        .ok_or_else(|| forbidden(NOT_ALLOWED, resource_type))?;
    let mut resp = empty(StatusCode::OK);
    for (name, value) in rule_headers(rule, origin, &requested) {
        set_header(&mut resp, name, &value);
    }
    set_header(&mut resp, "content-length", "0");
    Ok(resp)
}

/// The message of a preflight for a bucket that does not exist.
const BUCKET_NOT_FOUND: &str = "CORSResponse: Bucket not found";
/// The message of a preflight for a bucket without CORS rules.
const NOT_ENABLED: &str = "CORSResponse: CORS is not enabled for this bucket.";

/// The message of a preflight that no rule allows.
pub const NOT_ALLOWED: &str = "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.";

/// Adds the Access-Control-* headers to the response of an actual request carrying Origin, when a rule of
/// `bucket` matches (errors included, as S3). Requests without Origin, and buckets without CORS, are untouched.
pub async fn decorate(
    ctx: &Ctx,
    bucket: Option<&str>,
    headers: &HeaderMap,
    method: &Method,
    resp: &mut Resp,
) {
    let (Some(origin), Some(bucket)) = (header(headers, "origin"), bucket) else {
        return;
    };
    let Ok(Some(cfg)) = load(ctx, bucket).await else {
        return;
    };
    let method = header(headers, "access-control-request-method").unwrap_or(method.as_str());
    if let Some(rule) = cfg.matching(origin, method, &[]) {
        for (name, value) in rule_headers(rule, origin, &[]) {
            set_header(resp, name, &value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(xml: &str) -> CorsConfig {
        CorsConfig::from_xml(xml.as_bytes()).unwrap()
    }

    fn refused(xml: &str) -> (&'static str, String) {
        let e = CorsConfig::from_xml(xml.as_bytes()).unwrap_err();
        (e.aws_code(), e.message())
    }

    const SAMPLE: &str = r#"<CORSConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
 <CORSRule>
   <ID>site</ID>
   <AllowedOrigin>http://www.example.com</AllowedOrigin>
   <AllowedMethod>PUT</AllowedMethod>
   <AllowedMethod>POST</AllowedMethod>
   <AllowedMethod>DELETE</AllowedMethod>
   <AllowedHeader>*</AllowedHeader>
   <MaxAgeSeconds>3000</MaxAgeSeconds>
   <ExposeHeader>x-amz-server-side-encryption</ExposeHeader>
   <ExposeHeader>ETag</ExposeHeader>
 </CORSRule>
 <CORSRule>
   <AllowedOrigin>*</AllowedOrigin>
   <AllowedMethod>GET</AllowedMethod>
 </CORSRule>
</CORSConfiguration>"#;

    #[test]
    fn aws_sample_parses_and_round_trips() {
        let c = cfg(SAMPLE);
        assert_eq!(c.rules.len(), 2);
        assert_eq!(c.rules[0].id.as_deref(), Some("site"));
        assert_eq!(c.rules[0].max_age_seconds, Some(3000));
        assert_eq!(c.rules[0].expose_headers.len(), 2);
        assert_eq!(CorsConfig::from_xml(c.to_xml().as_bytes()).unwrap(), c);
    }

    #[test]
    fn invalid_configurations() {
        assert_eq!(refused("<CORSConfiguration/>").0, "MalformedXML");
        assert_eq!(
            refused("<CORSConfiguration><CORSRule><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>").0,
            "MalformedXML"
        );
        assert_eq!(
            refused(
                "<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>PATCH</AllowedMethod></CORSRule></CORSConfiguration>"
            ),
            (
                "InvalidRequest",
                "Found unsupported HTTP method in CORS config. Unsupported method is PATCH".into()
            )
        );
        assert_eq!(
            refused(
                "<CORSConfiguration><CORSRule><AllowedOrigin>*example*.com</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
            ),
            (
                "InvalidRequest",
                "AllowedOrigin \"*example*.com\" can not have more than one wildcard.".into()
            )
        );
        assert_eq!(
            refused("<CORSConfiguration><CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>x-*-*</AllowedHeader></CORSRule></CORSConfiguration>").0,
            "InvalidRequest"
        );
        let rule = "<CORSRule><AllowedOrigin>*</AllowedOrigin><AllowedMethod>GET</AllowedMethod></CORSRule>";
        assert_eq!(
            refused(&format!(
                "<CORSConfiguration>{}</CORSConfiguration>",
                rule.repeat(101)
            ))
            .0,
            "InvalidRequest"
        );
        assert_eq!(
            cfg(&format!(
                "<CORSConfiguration>{}</CORSConfiguration>",
                rule.repeat(100)
            ))
            .rules
            .len(),
            100
        );
    }

    #[test]
    fn wildcards_are_anchored_and_match_empty_runs() {
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("*suffix", "foo.suffix"));
        assert!(wildcard_match("start*end", "startend"));
        assert!(wildcard_match("start*end", "start12end"));
        assert!(!wildcard_match("start*end", "0start12end"));
        assert!(wildcard_match("prefix*", "prefix"));
        assert!(!wildcard_match("prefix*", "bla.prefix"));
        assert!(!wildcard_match("*suffix", "foo.suffix.get"));
        assert!(wildcard_match(
            "http://*.origin.com",
            "http://test.origin.com"
        ));
        assert!(!wildcard_match(
            "http://*.origin.com",
            "http://test.origin.com/"
        ));
        assert!(
            !wildcard_match("ab*ba", "aba"),
            "prefix and suffix may not overlap"
        );
    }

    #[test]
    fn matching_checks_origin_method_and_requested_headers() {
        let c = cfg(SAMPLE);
        let put = c.matching("http://www.example.com", "PUT", &["x-amz-meta-a".into()]);
        assert_eq!(put.and_then(|r| r.id.as_deref()), Some("site"));
        assert!(c.matching("http://other.example", "PUT", &[]).is_none());
        let get = c.matching("http://other.example", "GET", &[]).unwrap();
        assert_eq!(get.allowed_origins, vec!["*"]);
        // The `*` rule allows no requested header.
        assert!(
            c.matching("http://other.example", "GET", &["x-a".into()])
                .is_none()
        );
        let header_rule = cfg(
            "<CORSConfiguration><CORSRule><AllowedOrigin>o</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedHeader>X-Amz-*</AllowedHeader></CORSRule></CORSConfiguration>",
        );
        assert!(
            header_rule
                .matching("o", "GET", &["x-amz-date".into()])
                .is_some()
        );
        assert!(
            header_rule
                .matching("o", "GET", &["x-amz-date".into(), "range".into()])
                .is_none()
        );
    }

    #[test]
    fn headers_of_a_matched_rule() {
        let c = cfg(SAMPLE);
        let rule = &c.rules[0];
        let h = rule_headers(
            rule,
            "http://www.example.com",
            &["x-a".into(), "x-b".into()],
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(
            get("access-control-allow-origin"),
            Some("http://www.example.com")
        );
        assert_eq!(
            get("access-control-allow-methods"),
            Some("PUT, POST, DELETE")
        );
        assert_eq!(get("access-control-allow-headers"), Some("x-a, x-b"));
        assert_eq!(
            get("access-control-expose-headers"),
            Some("x-amz-server-side-encryption, ETag")
        );
        assert_eq!(get("access-control-max-age"), Some("3000"));
        assert_eq!(get("access-control-allow-credentials"), Some("true"));
        assert_eq!(get("vary"), Some(VARY));
        let any = rule_headers(&c.rules[1], "http://x", &[]);
        let get = |n: &str| any.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("access-control-allow-origin"), Some("*"));
        assert_eq!(get("access-control-allow-credentials"), None);
        assert_eq!(get("access-control-allow-headers"), None);
    }
}
