//! Listing: ListObjectsV2 (prefix, delimiter, CommonPrefixes, max-keys, continuation tokens, start-after,
//! encoding-type=url, fetch-owner, KeyCount) and ListObjects v1 (marker, NextMarker, delimiter).

use std::collections::BTreeSet;

use aws_sdk_s3::Client;
use aws_sdk_s3::types::EncodingType;

use crate::harness::{Server, status_and_code};
use crate::sigv4::{RawRequest, xml_elem};

/// Puts every key (body = key) with a few requests in flight.
async fn put_many(s3: &Client, bucket: &str, keys: &[String]) {
    let mut set = tokio::task::JoinSet::new();
    for key in keys {
        if set.len() >= 8 {
            set.join_next().await.unwrap().unwrap();
        }
        let (s3, bucket, key) = (s3.clone(), bucket.to_owned(), key.clone());
        set.spawn(async move {
            crate::harness::put(&s3, &bucket, &key, key.as_bytes()).await;
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
}

fn keys_of(out: &aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output) -> Vec<String> {
    out.contents()
        .iter()
        .filter_map(|o| o.key())
        .map(str::to_owned)
        .collect()
}

fn prefixes_of(cps: &[aws_sdk_s3::types::CommonPrefix]) -> Vec<String> {
    cps.iter()
        .filter_map(|p| p.prefix())
        .map(str::to_owned)
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test]
async fn prefix_delimiter_and_common_prefixes() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("tree").send().await.unwrap();
    let keys = strings(&[
        "a/1",
        "a/2",
        "a/b/3",
        "a/b/4",
        "b/1",
        "c",
        "d/e/f",
        "dd",
        "photos/2024/jan.jpg",
    ]);
    put_many(&s3, "tree", &keys).await;

    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&out), ["c", "dd"]);
    assert_eq!(
        prefixes_of(out.common_prefixes()),
        ["a/", "b/", "d/", "photos/"]
    );
    assert_eq!(
        out.key_count(),
        Some(6),
        "KeyCount counts keys and common prefixes"
    );
    assert_eq!(out.delimiter(), Some("/"));
    assert_eq!(out.is_truncated(), Some(false));

    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .prefix("a/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&out), ["a/1", "a/2"]);
    assert_eq!(prefixes_of(out.common_prefixes()), ["a/b/"]);
    assert_eq!(out.prefix(), Some("a/"));
    assert_eq!(out.key_count(), Some(3));

    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .prefix("a/")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&out), ["a/1", "a/2", "a/b/3", "a/b/4"]);
    assert!(out.common_prefixes().is_empty());

    // A prefix that is not a "directory".
    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .prefix("d")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&out), ["dd"]);
    assert_eq!(prefixes_of(out.common_prefixes()), ["d/"]);

    // A delimiter other than '/'.
    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .delimiter("b")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixes_of(out.common_prefixes()), ["a/b", "b"]);
    assert_eq!(
        keys_of(&out),
        ["a/1", "a/2", "c", "d/e/f", "dd", "photos/2024/jan.jpg"]
    );

    // A multi-character delimiter.
    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .delimiter("/20")
        .send()
        .await
        .unwrap();
    assert_eq!(prefixes_of(out.common_prefixes()), ["photos/20"]);

    // Nothing under the prefix.
    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .prefix("zzz")
        .send()
        .await
        .unwrap();
    assert!(out.contents().is_empty() && out.common_prefixes().is_empty());
    assert_eq!(out.key_count(), Some(0));

    // Sizes and ETags are listed.
    let out = s3
        .list_objects_v2()
        .bucket("tree")
        .prefix("c")
        .send()
        .await
        .unwrap();
    let obj = &out.contents()[0];
    assert_eq!(obj.size(), Some(1));
    assert_eq!(
        obj.e_tag(),
        Some(format!("\"{}\"", crate::cksum::md5_hex(b"c")).as_str())
    );
    assert!(obj.last_modified().is_some());
    assert_eq!(obj.storage_class().map(|s| s.as_str()), Some("STANDARD"));
}

#[tokio::test]
async fn continuation_tokens_page_through_250_keys_with_max_keys_7() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("pages").send().await.unwrap();
    let keys: Vec<String> = (0..250).map(|i| format!("key-{i:03}")).collect();
    put_many(&s3, "pages", &keys).await;
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 40, "paging does not end");
        let out = s3
            .list_objects_v2()
            .bucket("pages")
            .max_keys(7)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        let page = keys_of(&out);
        assert_eq!(out.max_keys(), Some(7));
        assert_eq!(out.key_count(), Some(page.len() as i32));
        assert_eq!(
            out.continuation_token(),
            token.as_deref(),
            "the request's token is echoed"
        );
        seen.extend(page.iter().cloned());
        if out.is_truncated() == Some(true) {
            assert_eq!(page.len(), 7, "a truncated page is full");
            token = Some(
                out.next_continuation_token()
                    .expect("truncated page has a token")
                    .to_owned(),
            );
        } else {
            assert!(out.next_continuation_token().is_none());
            break;
        }
    }
    assert_eq!(pages, 36, "ceil(250 / 7) pages");
    assert_eq!(seen, keys, "every key exactly once, in order");
}

#[tokio::test]
async fn start_after_and_its_interplay_with_tokens() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("after").send().await.unwrap();
    let keys: Vec<String> = (0..20).map(|i| format!("k{i:02}")).collect();
    put_many(&s3, "after", &keys).await;
    let out = s3
        .list_objects_v2()
        .bucket("after")
        .start_after("k09")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&out), &keys[10..]);
    assert_eq!(out.start_after(), Some("k09"));
    // A start-after that is not a key.
    let out = s3
        .list_objects_v2()
        .bucket("after")
        .start_after("k095")
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&out), &keys[10..]);
    // Past the end.
    let out = s3
        .list_objects_v2()
        .bucket("after")
        .start_after("z")
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_count(), Some(0));
    // With a token, the token decides where the page starts.
    let first = s3
        .list_objects_v2()
        .bucket("after")
        .start_after("k04")
        .max_keys(3)
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&first), ["k05", "k06", "k07"]);
    let second = s3
        .list_objects_v2()
        .bucket("after")
        .start_after("k04")
        .max_keys(3)
        .continuation_token(first.next_continuation_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(keys_of(&second), ["k08", "k09", "k10"]);
}

#[tokio::test]
async fn paging_through_common_prefixes_returns_each_once() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("dirs").send().await.unwrap();
    let mut keys = Vec::new();
    for d in 0..30 {
        for f in 0..3 {
            keys.push(format!("dir{d:02}/file{f}"));
        }
    }
    // Some top-level keys between the prefixes.
    for k in ["dir05x", "dir17", "top"] {
        keys.push(k.to_owned());
    }
    put_many(&s3, "dirs", &keys).await;
    let want_prefixes: Vec<String> = (0..30).map(|d| format!("dir{d:02}/")).collect();
    let want_keys = strings(&["dir05x", "dir17", "top"]);

    // V2 with continuation tokens.
    let (mut prefixes, mut top) = (Vec::new(), Vec::new());
    let mut token: Option<String> = None;
    for round in 0.. {
        assert!(round < 40, "paging does not end");
        let out = s3
            .list_objects_v2()
            .bucket("dirs")
            .delimiter("/")
            .max_keys(4)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        let n = out.contents().len() + out.common_prefixes().len();
        assert!(n <= 4, "a page holds at most max-keys entries");
        assert_eq!(out.key_count(), Some(n as i32));
        prefixes.extend(prefixes_of(out.common_prefixes()));
        top.extend(keys_of(&out));
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    assert_eq!(prefixes, want_prefixes, "v2: each prefix once, in order");
    assert_eq!(top, want_keys);

    // V1 with markers.
    let (mut prefixes, mut top) = (Vec::new(), Vec::new());
    let mut marker: Option<String> = None;
    for round in 0.. {
        assert!(round < 40, "paging does not end");
        let out = s3
            .list_objects()
            .bucket("dirs")
            .delimiter("/")
            .max_keys(4)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert!(out.contents().len() + out.common_prefixes().len() <= 4);
        prefixes.extend(prefixes_of(out.common_prefixes()));
        top.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
        if out.is_truncated() == Some(true) {
            marker = Some(
                out.next_marker()
                    .expect("with a delimiter, a truncated v1 page has NextMarker")
                    .to_owned(),
            );
        } else {
            break;
        }
    }
    assert_eq!(prefixes, want_prefixes, "v1: each prefix once, in order");
    assert_eq!(top, want_keys);
}

#[tokio::test]
async fn list_objects_v1_marker_paging() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("v1list").send().await.unwrap();
    let keys: Vec<String> = (0..50).map(|i| format!("obj/{i:02}")).collect();
    put_many(&s3, "v1list", &keys).await;
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for round in 0.. {
        assert!(round < 20, "paging does not end");
        let out = s3
            .list_objects()
            .bucket("v1list")
            .max_keys(7)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.marker().unwrap_or_default(),
            marker.as_deref().unwrap_or_default()
        );
        let page: Vec<String> = out
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .map(str::to_owned)
            .collect();
        for o in out.contents() {
            assert!(
                o.owner().and_then(|w| w.id()).is_some(),
                "v1 always lists owners"
            );
        }
        seen.extend(page.iter().cloned());
        if out.is_truncated() == Some(true) {
            // Without a delimiter NextMarker is optional; the last key is the marker then.
            marker = Some(
                out.next_marker()
                    .map(str::to_owned)
                    .unwrap_or_else(|| page.last().unwrap().clone()),
            );
        } else {
            break;
        }
    }
    assert_eq!(seen, keys);
    // Prefix and delimiter in v1.
    let out = s3
        .list_objects()
        .bucket("v1list")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert!(out.contents().is_empty());
    assert_eq!(prefixes_of(out.common_prefixes()), ["obj/"]);
    let out = s3
        .list_objects()
        .bucket("v1list")
        .prefix("obj/4")
        .send()
        .await
        .unwrap();
    assert_eq!(out.contents().len(), 10);
}

#[tokio::test]
async fn fetch_owner_controls_owner_in_v2() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("owner").send().await.unwrap();
    crate::harness::put(&s3, "owner", "k", b"x").await;
    let out = s3.list_objects_v2().bucket("owner").send().await.unwrap();
    assert!(
        out.contents()[0].owner().is_none(),
        "no Owner without fetch-owner"
    );
    let out = s3
        .list_objects_v2()
        .bucket("owner")
        .fetch_owner(true)
        .send()
        .await
        .unwrap();
    let owner = out.contents()[0]
        .owner()
        .expect("Owner with fetch-owner=true");
    assert!(owner.id().is_some_and(|id| !id.is_empty()));
    let out = s3
        .list_objects_v2()
        .bucket("owner")
        .fetch_owner(false)
        .send()
        .await
        .unwrap();
    assert!(out.contents()[0].owner().is_none());
}

/// Query-string unescaping as SDKs apply it to encoding-type=url listings (`%XX`, and `+` as a space).
pub(crate) fn query_unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).expect("hex escape"));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).expect("utf-8")
}

#[tokio::test]
async fn encoding_type_url_escapes_keys_prefixes_and_delimiters() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("encoded").send().await.unwrap();
    let keys = strings(&[
        "dir one/a b.txt",
        "dir one/ü.txt",
        "plain",
        "plus+key",
        "pct%20key",
        "日本/語",
        "amp&lt<",
    ]);
    put_many(&s3, "encoded", &keys).await;
    let mut want = keys.clone();
    want.sort();
    let out = s3
        .list_objects_v2()
        .bucket("encoded")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(out.encoding_type().map(|e| e.as_str()), Some("url"));
    let decoded: Vec<String> = keys_of(&out).iter().map(|k| query_unescape(k)).collect();
    assert_eq!(decoded, want);
    for k in keys_of(&out) {
        assert!(
            k.bytes().all(|c| c.is_ascii_graphic()),
            "{k:?} is escaped to plain ASCII"
        );
        assert!(!k.contains('<') && !k.contains('&'), "{k:?}");
    }
    // Common prefixes and the echoed prefix are encoded too.
    let out = s3
        .list_objects_v2()
        .bucket("encoded")
        .prefix("dir one/")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    assert_eq!(query_unescape(out.prefix().unwrap()), "dir one/");
    let decoded: Vec<String> = keys_of(&out).iter().map(|k| query_unescape(k)).collect();
    assert_eq!(decoded, ["dir one/a b.txt", "dir one/ü.txt"]);
    let out = s3
        .list_objects_v2()
        .bucket("encoded")
        .delimiter("/")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let cps: Vec<String> = prefixes_of(out.common_prefixes())
        .iter()
        .map(|p| query_unescape(p))
        .collect();
    assert_eq!(cps, ["dir one/", "日本/"]);
    // On the raw wire: the key element is escaped, not XML-entity-encoded.
    let raw = RawRequest::new(
        "GET",
        "/encoded",
        "list-type=2&encoding-type=url&prefix=plus",
    )
    .signed(&server.endpoint)
    .send(&server.endpoint);
    assert_eq!(
        xml_elem(&raw.text(), "Key").as_deref(),
        Some("plus%2Bkey"),
        "{}",
        raw.text()
    );
    // v1 too.
    let out = s3
        .list_objects()
        .bucket("encoded")
        .encoding_type(EncodingType::Url)
        .send()
        .await
        .unwrap();
    let decoded: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(query_unescape)
        .collect();
    assert_eq!(decoded, want);
    // Without encoding-type the keys come back raw.
    let out = s3.list_objects_v2().bucket("encoded").send().await.unwrap();
    assert_eq!(keys_of(&out), want);
}

#[tokio::test]
async fn bad_list_parameters_are_invalid_argument() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("badlist").send().await.unwrap();
    let err = s3
        .list_objects_v2()
        .bucket("badlist")
        .continuation_token("%%%not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidArgument".into()));
    for query in [
        "list-type=2&max-keys=-1",
        "list-type=2&max-keys=abc",
        "list-type=2&encoding-type=base64",
    ] {
        let raw = RawRequest::new("GET", "/badlist", query)
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(
            (raw.status, raw.code().as_deref()),
            (400, Some("InvalidArgument")),
            "{query}: {}",
            raw.text()
        );
    }
}

#[tokio::test]
async fn listing_reflects_deletes_and_overwrites() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("live").send().await.unwrap();
    let keys: Vec<String> = (0..12).map(|i| format!("x{i:02}")).collect();
    put_many(&s3, "live", &keys).await;
    for k in keys.iter().step_by(3) {
        s3.delete_object()
            .bucket("live")
            .key(k)
            .send()
            .await
            .unwrap();
    }
    crate::harness::put(&s3, "live", "x01", b"a longer body than before").await;
    let listed = crate::harness::all_keys(&s3, "live").await;
    let want: Vec<String> = keys
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 3 != 0)
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(listed, want);
    let out = s3
        .list_objects_v2()
        .bucket("live")
        .prefix("x01")
        .send()
        .await
        .unwrap();
    assert_eq!(out.contents()[0].size(), Some(25));
    let unique: BTreeSet<_> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len());
}

#[tokio::test]
async fn delimiter_paging_with_keys_sorting_around_the_prefix() {
    // '!' < '/' < '0': the common prefix "a/" sits between two plain keys; one entry per page.
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("around").send().await.unwrap();
    put_many(
        &s3,
        "around",
        &strings(&["a!", "a/1", "a/2", "a/x/3", "a0", "b"]),
    )
    .await;
    let want = strings(&["a!", "a/", "a0", "b"]);
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for round in 0.. {
        assert!(round < 10, "paging does not end");
        let out = s3
            .list_objects_v2()
            .bucket("around")
            .delimiter("/")
            .max_keys(1)
            .set_continuation_token(token.clone())
            .send()
            .await
            .unwrap();
        seen.extend(keys_of(&out));
        seen.extend(prefixes_of(out.common_prefixes()));
        match out.next_continuation_token() {
            Some(t) if out.is_truncated() == Some(true) => token = Some(t.to_owned()),
            _ => break,
        }
    }
    assert_eq!(seen, want, "v2");
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    for round in 0.. {
        assert!(round < 10, "paging does not end");
        let out = s3
            .list_objects()
            .bucket("around")
            .delimiter("/")
            .max_keys(1)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        seen.extend(
            out.contents()
                .iter()
                .filter_map(|o| o.key())
                .map(str::to_owned),
        );
        seen.extend(prefixes_of(out.common_prefixes()));
        if out.is_truncated() == Some(true) {
            marker = Some(out.next_marker().expect("NextMarker").to_owned());
        } else {
            break;
        }
    }
    assert_eq!(seen, want, "v1");
}
