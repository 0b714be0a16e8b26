//! Listing: a range scan over the ordered object index, with delimiter roll-up into common prefixes.
//!
//! Cost grows with the page, not the bucket: the scan starts at the marker, and a run of keys under one common
//! prefix is skipped with a single seek past the prefix instead of being walked.

use std::ops::Bound;

use crate::error::Result;
use crate::meta::{MetaStore, ObjectRecord};

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Start strictly after this key or common prefix.
    pub start_after: Option<String>,
    /// Most keys plus common prefixes in the page (0 gives an empty, untruncated page).
    pub max_keys: usize,
}

/// One page of results.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<(String, ObjectRecord)>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// More results follow.
    pub truncated: bool,
    /// The last key or prefix in this page, to continue from.
    pub last: Option<String>,
}

/// The smallest byte string greater than every string starting with `prefix` (None: no such string).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut out = prefix.to_vec();
    while let Some(last) = out.pop() {
        if last < 0xff {
            out.push(last + 1);
            return Some(out);
        }
    }
    None
}

/// Runs a listing query against the metadata store.
pub(crate) fn list(meta: &dyn MetaStore, bucket: &str, q: &ListQuery) -> Result<ListPage> {
    let mut page = ListPage::default();
    if q.max_keys == 0 {
        return Ok(page);
    }
    let mut cursor: Vec<u8>;
    let mut inclusive;
    match &q.start_after {
        Some(after) if after.as_str() >= q.prefix.as_str() => {
            cursor = after.as_bytes().to_vec();
            inclusive = false;
        }
        _ => {
            cursor = q.prefix.as_bytes().to_vec();
            inclusive = true;
        }
    }
    let batch = (q.max_keys + 1).min(1001);
    'scan: loop {
        let start = if inclusive {
            Bound::Included(&cursor[..])
        } else {
            Bound::Excluded(&cursor[..])
        };
        let rows = meta.scan(bucket, start, batch)?;
        if rows.is_empty() {
            break;
        }
        let exhausted = rows.len() < batch;
        for (key, record) in rows {
            if !key.starts_with(&q.prefix) {
                break 'scan;
            }
            if record.is_delete_marker() {
                // A key whose current version is a delete marker is not listed (nor rolled up).
                cursor = key.into_bytes();
                inclusive = false;
                continue;
            }
            let rolled = q
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    key[q.prefix.len()..]
                        .find(d)
                        .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
                });
            let entry_name = rolled.clone().unwrap_or_else(|| key.clone());
            if rolled.is_some() && rolled.as_deref() == q.start_after.as_deref() {
                // The common prefix the previous page ended on: skip everything under it.
                match prefix_successor(entry_name.as_bytes()) {
                    Some(next) => {
                        cursor = next;
                        inclusive = true;
                        continue 'scan;
                    }
                    None => break 'scan,
                }
            }
            if page.objects.len() + page.common_prefixes.len() == q.max_keys {
                page.truncated = true;
                break 'scan;
            }
            page.last = Some(entry_name);
            match rolled {
                Some(cp) => {
                    let next = prefix_successor(cp.as_bytes());
                    page.common_prefixes.push(cp);
                    match next {
                        Some(next) => {
                            cursor = next;
                            inclusive = true;
                            continue 'scan;
                        }
                        None => break 'scan,
                    }
                }
                None => {
                    cursor = key.as_bytes().to_vec();
                    inclusive = false;
                    page.objects.push((key, record));
                }
            }
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::prefix_successor;

    #[test]
    fn successor() {
        assert_eq!(prefix_successor(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }
}

/// What to list of a bucket's versions (ListObjectVersions).
#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Start after this key (after all its versions, unless `version_marker` names one).
    pub key_marker: Option<String>,
    /// Start after this version of `key_marker` (its version key).
    pub version_marker: Option<crate::meta::VersionKey>,
    /// Most versions plus common prefixes in the page.
    pub max_keys: usize,
}

/// One page of versions.
#[derive(Debug, Clone, Default)]
pub struct VersionPage {
    /// `(key, record, is_latest)` in key order, newest first within a key.
    pub versions: Vec<(String, ObjectRecord, bool)>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// More results follow.
    pub truncated: bool,
    /// Where the next page starts: key and version id (empty after a common prefix).
    pub next: Option<(String, String)>,
}

/// Runs a ListObjectVersions query over [`MetaStore::scan_versions`]: key order, newest first within a key.
pub(crate) fn list_versions(
    meta: &dyn MetaStore,
    bucket: &str,
    q: &VersionQuery,
) -> Result<VersionPage> {
    use crate::meta::VersionKey;
    const FIRST: VersionKey = VersionKey([0; 16]);
    let mut page = VersionPage::default();
    if q.max_keys == 0 {
        return Ok(page);
    }
    let mut start: (Vec<u8>, VersionKey, bool) = match (&q.key_marker, q.version_marker) {
        (Some(k), Some(v)) => (k.as_bytes().to_vec(), v, false),
        (Some(k), None) if k.as_str() >= q.prefix.as_str() => {
            let mut after = k.as_bytes().to_vec();
            after.push(0);
            (after, FIRST, true)
        }
        _ => (q.prefix.as_bytes().to_vec(), FIRST, true),
    };
    // A page that starts inside a key (after one of its versions) does not see that key's latest version.
    let mut previous_key: Option<String> = match (&q.key_marker, q.version_marker) {
        (Some(k), Some(_)) => Some(k.clone()),
        _ => None,
    };
    let batch = (q.max_keys + 1).min(1001);
    'scan: loop {
        let bound = if start.2 {
            Bound::Included((&start.0[..], start.1))
        } else {
            Bound::Excluded((&start.0[..], start.1))
        };
        let rows = meta.scan_versions(bucket, bound, batch)?;
        if rows.is_empty() {
            break;
        }
        let exhausted = rows.len() < batch;
        for (key, record) in rows {
            if !key.starts_with(&q.prefix) {
                break 'scan;
            }
            if page.versions.len() + page.common_prefixes.len() == q.max_keys {
                page.truncated = true;
                break 'scan;
            }
            let rolled = q
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    key[q.prefix.len()..]
                        .find(d)
                        .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
                });
            if let Some(cp) = rolled {
                let next = prefix_successor(cp.as_bytes());
                page.next = Some((cp.clone(), String::new()));
                page.common_prefixes.push(cp);
                match next {
                    Some(n) => {
                        start = (n, FIRST, true);
                        previous_key = None;
                        continue 'scan;
                    }
                    None => break 'scan,
                }
            }
            let is_latest = previous_key.as_deref() != Some(key.as_str());
            previous_key = Some(key.clone());
            start = (key.as_bytes().to_vec(), record.version_key, false);
            page.next = Some((key.clone(), record.version_id_or_null().to_owned()));
            page.versions.push((key, record, is_latest));
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}
