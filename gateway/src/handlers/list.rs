//! Listing: ListObjects (v1, marker) and ListObjectsV2 (continuation token, start-after, fetch-owner).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as TOKEN;
use http::StatusCode;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use strata_storage::ListQuery;

use super::{Ctx, Req, Resp, xml};
use crate::conditional::iso8601;
use crate::error::{ApiError, ApiResult};
use crate::xml::XmlWriter;

/// What `encoding-type=url` leaves unescaped (as AWS: unreserved characters and '/').
const URL_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// GET /bucket (v1) or GET /bucket?list-type=2 (v2).
pub async fn handle_list_objects(ctx: &Ctx, req: &Req, bucket: &str, v2: bool) -> ApiResult<Resp> {
    let q = &req.query;
    let url_encode = url_encoding(q)?;
    let max_keys = page_size(q, "max-keys")?;
    let prefix = q.get("prefix").unwrap_or_default().to_owned();
    let delimiter = q
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let token = q.get("continuation-token");
    let start_after = if v2 {
        match token {
            Some(t) => Some(decode_token(t)?),
            None => q.get("start-after").map(str::to_owned),
        }
    } else {
        q.get("marker").map(str::to_owned)
    };
    let page = ctx
        .engine
        .list_objects(
            bucket,
            ListQuery {
                prefix: prefix.clone(),
                delimiter: delimiter.clone(),
                start_after,
                max_keys,
            },
        )
        .await?;
    let enc = |s: &str| {
        if url_encode {
            utf8_percent_encode(s, URL_ENCODE).to_string()
        } else {
            s.to_owned()
        }
    };
    let mut w = XmlWriter::new("ListBucketResult");
    w.elem("Name", bucket).elem("Prefix", &enc(&prefix));
    if v2 {
        if let Some(t) = token {
            w.elem("ContinuationToken", t);
        }
        if let Some(sa) = q.get("start-after") {
            w.elem("StartAfter", &enc(sa));
        }
        w.elem(
            "KeyCount",
            &(page.objects.len() + page.common_prefixes.len()).to_string(),
        );
    } else {
        w.elem("Marker", &enc(q.get("marker").unwrap_or_default()));
    }
    w.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if url_encode {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", if page.truncated { "true" } else { "false" });
    if page.truncated
        && let Some(last) = &page.last
    {
        if v2 {
            w.elem("NextContinuationToken", &TOKEN.encode(last));
        } else {
            w.elem("NextMarker", &enc(last));
        }
    }
    let fetch_owner = !v2 || q.get("fetch-owner") == Some("true");
    for (key, r) in &page.objects {
        let modified =
            chrono::DateTime::from_timestamp_millis(r.last_modified_ms).unwrap_or_default();
        w.open("Contents")
            .elem("Key", &enc(key))
            .elem("LastModified", &iso8601(modified))
            .elem("ETag", &format!("\"{}\"", r.etag))
            .elem("Size", &r.size.to_string());
        if let Some(c) = &r.checksum {
            w.elem("ChecksumAlgorithm", c.algorithm.name());
        }
        w.elem("StorageClass", &r.storage_class);
        if fetch_owner {
            super::owner_xml(ctx, &mut w, "Owner", &r.owner);
        }
        w.close("Contents");
    }
    for cp in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc(cp))
            .close("CommonPrefixes");
    }
    Ok(xml(StatusCode::OK, w.finish("ListBucketResult")))
}

/// Whether the listing asked for `encoding-type=url` (the only value S3 accepts).
pub(crate) fn url_encoding(q: &crate::router::Query) -> ApiResult<bool> {
    match q.get("encoding-type") {
        None => Ok(false),
        Some("url") => Ok(true),
        Some(_) => Err(ApiError::InvalidArgument(
            "Invalid Encoding Method specified in Request".into(),
        )),
    }
}

/// A page-size parameter (`max-keys`, `max-uploads`, `max-parts`): default 1000, capped at 1000.
pub(crate) fn page_size(q: &crate::router::Query, name: &str) -> ApiResult<usize> {
    match q.get(name) {
        None => Ok(1000),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .map(|n| n.min(1000) as usize)
            .ok_or_else(|| {
                ApiError::InvalidArgument(format!(
                    "Provided {name} not an integer or within integer range"
                ))
            }),
    }
}

/// Percent-encodes a key as `encoding-type=url` asks.
pub(crate) fn url_encode(s: &str) -> String {
    utf8_percent_encode(s, URL_ENCODE).to_string()
}

fn decode_token(t: &str) -> ApiResult<String> {
    TOKEN
        .decode(t)
        .ok()
        .and_then(|raw| String::from_utf8(raw).ok())
        .ok_or_else(|| {
            ApiError::InvalidArgument("The continuation token provided is incorrect".into())
        })
}
