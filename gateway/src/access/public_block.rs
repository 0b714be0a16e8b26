//! Block Public Access settings of a bucket: the four flags, their stored form, and the default.
//!
//! A bucket with no stored document behaves as if all four flags were on (AWS's default for new buckets since
//! April 2023). DeletePublicAccessBlock stores an empty document, which means "removed": nothing is blocked and
//! GetPublicAccessBlock answers NoSuchPublicAccessBlockConfiguration.

use crate::error::ApiResult;
use crate::xml::{PublicAccessBlockXml, XmlWriter, parse};

/// The four Block Public Access flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicAccessBlock {
    /// PutBucketAcl / PutObjectAcl (and x-amz-acl on writes) with a public ACL are refused.
    pub block_public_acls: bool,
    /// Public ACLs grant nothing.
    pub ignore_public_acls: bool,
    /// PutBucketPolicy with a public policy is refused.
    pub block_public_policy: bool,
    /// A public bucket policy grants nothing to anonymous callers or users other than the owner.
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// All four flags on: a new bucket's behaviour.
    pub const ALL: Self = Self {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };
    /// Nothing blocked (after DeletePublicAccessBlock).
    pub const NONE: Self = Self {
        block_public_acls: false,
        ignore_public_acls: false,
        block_public_policy: false,
        restrict_public_buckets: false,
    };

    /// The effective settings from the stored document: None → all on; empty → removed; else the flags.
    /// Returns also whether a configuration exists (for GetPublicAccessBlock).
    pub fn from_stored(doc: Option<&[u8]>) -> (Self, bool) {
        match doc {
            None => (Self::ALL, true),
            Some([]) => (Self::NONE, false),
            Some(d) => (Self::parse(d).unwrap_or(Self::ALL), true),
        }
    }

    /// Parses a PublicAccessBlockConfiguration document.
    pub fn parse(body: &[u8]) -> ApiResult<Self> {
        let x: PublicAccessBlockXml = parse(body)?;
        Ok(Self {
            block_public_acls: x.block_public_acls.unwrap_or(false),
            ignore_public_acls: x.ignore_public_acls.unwrap_or(false),
            block_public_policy: x.block_public_policy.unwrap_or(false),
            restrict_public_buckets: x.restrict_public_buckets.unwrap_or(false),
        })
    }

    /// The PublicAccessBlockConfiguration document (also the stored form).
    pub fn to_xml(self) -> String {
        let b = |v: bool| if v { "true" } else { "false" };
        let mut w = XmlWriter::new("PublicAccessBlockConfiguration");
        w.elem("BlockPublicAcls", b(self.block_public_acls))
            .elem("IgnorePublicAcls", b(self.ignore_public_acls))
            .elem("BlockPublicPolicy", b(self.block_public_policy))
            .elem("RestrictPublicBuckets", b(self.restrict_public_buckets));
        w.finish("PublicAccessBlockConfiguration")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms() {
        assert_eq!(
            PublicAccessBlock::from_stored(None),
            (PublicAccessBlock::ALL, true)
        );
        assert_eq!(
            PublicAccessBlock::from_stored(Some(b"")),
            (PublicAccessBlock::NONE, false)
        );
        let some = PublicAccessBlock {
            block_public_policy: false,
            ..PublicAccessBlock::ALL
        };
        let doc = some.to_xml();
        assert_eq!(
            PublicAccessBlock::from_stored(Some(doc.as_bytes())),
            (some, true)
        );
        let partial = br#"<PublicAccessBlockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><BlockPublicPolicy>true</BlockPublicPolicy></PublicAccessBlockConfiguration>"#;
        let p = PublicAccessBlock::parse(partial).unwrap();
        assert!(p.block_public_policy && !p.block_public_acls && !p.restrict_public_buckets);
        assert!(PublicAccessBlock::parse(b"<Other/>").is_err());
    }
}
