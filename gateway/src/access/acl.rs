//! ACLs as Strata supports them: canned ACLs (`x-amz-acl`) on buckets and objects, object ownership
//! (`BucketOwnerEnforced` disables ACLs, AWS's default), the AccessControlPolicy documents Get*Acl return, and
//! what a canned ACL grants in an access decision.
//!
//! Object ACLs live in the object record as the hidden header [`OBJECT_ACL_HEADER`], never sent to clients and
//! never user metadata. Bucket ACLs are the bucket configuration document `acl` (the canned name). With no
//! ownership document a bucket is `BucketOwnerEnforced`; DeleteBucketOwnershipControls stores an empty document,
//! which means "none" (GetBucketOwnershipControls answers OwnershipControlsNotFoundError) and ACLs apply, as
//! for buckets that predate ownership controls (ObjectWriter).

use crate::error::{ApiError, ApiResult};
use crate::xml::XmlWriter;

/// The record header holding an object's canned ACL (filtered out of every response).
pub const OBJECT_ACL_HEADER: &str = "x-strata-acl";

const ALL_USERS: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
const AUTHENTICATED_USERS: &str = "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";
const LOG_DELIVERY: &str = "http://acs.amazonaws.com/groups/s3/LogDelivery";

/// A canned ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedAcl {
    /// Owner FULL_CONTROL only.
    Private,
    /// Plus AllUsers READ.
    PublicRead,
    /// Plus AllUsers READ and WRITE.
    PublicReadWrite,
    /// Plus AuthenticatedUsers READ.
    AuthenticatedRead,
    /// Plus READ for the EC2 AMI service (no effect in Strata).
    AwsExecRead,
    /// Object: plus bucket owner READ.
    BucketOwnerRead,
    /// Object: plus bucket owner FULL_CONTROL.
    BucketOwnerFullControl,
    /// Bucket: plus LogDelivery WRITE and READ_ACP.
    LogDeliveryWrite,
}

impl CannedAcl {
    /// Parses an `x-amz-acl` value; anything else is InvalidArgument.
    pub fn parse(s: &str) -> ApiResult<Self> {
        Ok(match s.trim() {
            "private" => Self::Private,
            "public-read" => Self::PublicRead,
            "public-read-write" => Self::PublicReadWrite,
            "authenticated-read" => Self::AuthenticatedRead,
            "aws-exec-read" => Self::AwsExecRead,
            "bucket-owner-read" => Self::BucketOwnerRead,
            "bucket-owner-full-control" => Self::BucketOwnerFullControl,
            "log-delivery-write" => Self::LogDeliveryWrite,
            _ => return Err(ApiError::InvalidArgument("Invalid canned ACL".into())),
        })
    }

    /// The `x-amz-acl` name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Private => "private",
            Self::PublicRead => "public-read",
            Self::PublicReadWrite => "public-read-write",
            Self::AuthenticatedRead => "authenticated-read",
            Self::AwsExecRead => "aws-exec-read",
            Self::BucketOwnerRead => "bucket-owner-read",
            Self::BucketOwnerFullControl => "bucket-owner-full-control",
            Self::LogDeliveryWrite => "log-delivery-write",
        }
    }

    /// The stored canned ACL (anything unreadable counts as private).
    pub fn from_stored(s: Option<&str>) -> Self {
        s.and_then(|s| Self::parse(s).ok()).unwrap_or(Self::Private)
    }

    /// Whether it grants to AllUsers or AuthenticatedUsers (what Block Public Access calls public).
    pub fn is_public(self) -> bool {
        matches!(
            self,
            Self::PublicRead | Self::PublicReadWrite | Self::AuthenticatedRead
        )
    }

    /// Whether the ACL is allowed while ACLs are disabled (BucketOwnerEnforced).
    pub fn allowed_when_enforced(self) -> bool {
        matches!(self, Self::Private | Self::BucketOwnerFullControl)
    }

    /// Whether this ACL, on a bucket (`on_bucket`) or an object, grants `action` to a caller who is
    /// anonymous (`signed` false) or signed.
    pub fn grants(self, on_bucket: bool, action: &str, signed: bool) -> bool {
        let read = match self {
            Self::PublicRead | Self::PublicReadWrite => true,
            Self::AuthenticatedRead => signed,
            _ => false,
        };
        let write = self == Self::PublicReadWrite;
        if on_bucket {
            let reads = matches!(
                action,
                "s3:ListBucket" | "s3:ListBucketVersions" | "s3:ListBucketMultipartUploads"
            );
            let writes = matches!(
                action,
                "s3:PutObject"
                    | "s3:DeleteObject"
                    | "s3:DeleteObjectVersion"
                    | "s3:AbortMultipartUpload"
                    | "s3:ListMultipartUploadParts"
            );
            (reads && read) || (writes && write)
        } else {
            read && matches!(action, "s3:GetObject" | "s3:GetObjectVersion")
        }
    }

    /// The AccessControlPolicy document: the owner, its FULL_CONTROL grant, and the canned grants.
    /// `bucket_owner` is set for object ACLs (the bucket-owner-* grants name it).
    pub fn to_xml(
        self,
        owner: (&str, &str),
        bucket_owner: Option<(&str, &str)>,
        on_bucket: bool,
    ) -> String {
        let mut w = XmlWriter::new("AccessControlPolicy");
        w.open("Owner")
            .elem("ID", owner.0)
            .elem("DisplayName", owner.1)
            .close("Owner");
        w.open("AccessControlList");
        user_grant(&mut w, owner, "FULL_CONTROL");
        let group = |w: &mut XmlWriter, uri: &str, perm: &str| group_grant(w, uri, perm);
        match self {
            Self::Private | Self::AwsExecRead => {}
            Self::PublicRead => group(&mut w, ALL_USERS, "READ"),
            Self::PublicReadWrite => {
                group(&mut w, ALL_USERS, "READ");
                group(&mut w, ALL_USERS, "WRITE");
            }
            Self::AuthenticatedRead => group(&mut w, AUTHENTICATED_USERS, "READ"),
            Self::LogDeliveryWrite if on_bucket => {
                group(&mut w, LOG_DELIVERY, "WRITE");
                group(&mut w, LOG_DELIVERY, "READ_ACP");
            }
            Self::LogDeliveryWrite => {}
            Self::BucketOwnerRead | Self::BucketOwnerFullControl => {
                if let Some(b) = bucket_owner.filter(|b| b.0 != owner.0) {
                    let perm = if self == Self::BucketOwnerRead {
                        "READ"
                    } else {
                        "FULL_CONTROL"
                    };
                    user_grant(&mut w, b, perm);
                }
            }
        }
        w.close("AccessControlList");
        w.finish("AccessControlPolicy")
    }
}

const XSI: &str = "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"";

fn user_grant(w: &mut XmlWriter, who: (&str, &str), perm: &str) {
    w.open("Grant");
    w.raw(&format!("<Grantee {XSI} xsi:type=\"CanonicalUser\">"));
    w.elem("ID", who.0).elem("DisplayName", who.1);
    w.close("Grantee").elem("Permission", perm).close("Grant");
}

fn group_grant(w: &mut XmlWriter, uri: &str, perm: &str) {
    w.open("Grant");
    w.raw(&format!("<Grantee {XSI} xsi:type=\"Group\">"));
    w.elem("URI", uri);
    w.close("Grantee").elem("Permission", perm).close("Grant");
}

/// Who owns the objects written into a bucket, and whether ACLs count (PutBucketOwnershipControls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectOwnership {
    /// ACLs are disabled; the bucket owner owns every object (the default).
    BucketOwnerEnforced,
    /// ACLs count; objects written with bucket-owner-full-control belong to the bucket owner.
    BucketOwnerPreferred,
    /// ACLs count; the writer owns the object.
    ObjectWriter,
}

impl ObjectOwnership {
    /// Parses an ObjectOwnership value.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "BucketOwnerEnforced" => Some(Self::BucketOwnerEnforced),
            "BucketOwnerPreferred" => Some(Self::BucketOwnerPreferred),
            "ObjectWriter" => Some(Self::ObjectWriter),
            _ => None,
        }
    }

    /// The value's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::BucketOwnerEnforced => "BucketOwnerEnforced",
            Self::BucketOwnerPreferred => "BucketOwnerPreferred",
            Self::ObjectWriter => "ObjectWriter",
        }
    }

    /// The effective setting and whether a configuration exists, from the stored document: None →
    /// BucketOwnerEnforced; empty (deleted) → none, ACLs apply as ObjectWriter.
    pub fn from_stored(doc: Option<&[u8]>) -> (Self, bool) {
        match doc {
            None => (Self::BucketOwnerEnforced, true),
            Some([]) => (Self::ObjectWriter, false),
            Some(d) => (
                std::str::from_utf8(d)
                    .ok()
                    .and_then(Self::parse)
                    .unwrap_or(Self::BucketOwnerEnforced),
                true,
            ),
        }
    }

    /// Whether ACLs take part in access decisions.
    pub fn acls_enabled(self) -> bool {
        self != Self::BucketOwnerEnforced
    }

    /// The OwnershipControls document.
    pub fn to_xml(self) -> String {
        let mut w = XmlWriter::new("OwnershipControls");
        w.open("Rule")
            .elem("ObjectOwnership", self.name())
            .close("Rule");
        w.finish("OwnershipControls")
    }
}

/// Parses a PutBucketOwnershipControls body: exactly one rule with a known ObjectOwnership.
pub fn parse_ownership_controls(body: &[u8]) -> ApiResult<ObjectOwnership> {
    let doc: crate::xml::OwnershipControlsXml = crate::xml::parse(body)?;
    match doc.rules.as_slice() {
        [rule] => ObjectOwnership::parse(&rule.object_ownership).ok_or(ApiError::MalformedXml),
        _ => Err(ApiError::MalformedXml),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_names_round_trip() {
        for name in [
            "private",
            "public-read",
            "public-read-write",
            "authenticated-read",
            "aws-exec-read",
            "bucket-owner-read",
            "bucket-owner-full-control",
            "log-delivery-write",
        ] {
            assert_eq!(CannedAcl::parse(name).unwrap().name(), name);
        }
        assert!(CannedAcl::parse("public").is_err());
        assert_eq!(CannedAcl::from_stored(None), CannedAcl::Private);
    }

    #[test]
    fn grants() {
        let pr = CannedAcl::PublicRead;
        assert!(pr.grants(false, "s3:GetObject", false));
        assert!(!pr.grants(false, "s3:PutObject", false));
        assert!(pr.grants(true, "s3:ListBucket", false));
        assert!(!pr.grants(true, "s3:PutObject", false));
        assert!(CannedAcl::PublicReadWrite.grants(true, "s3:PutObject", false));
        assert!(!CannedAcl::AuthenticatedRead.grants(false, "s3:GetObject", false));
        assert!(CannedAcl::AuthenticatedRead.grants(false, "s3:GetObject", true));
        assert!(!CannedAcl::Private.grants(false, "s3:GetObject", true));
        assert!(pr.is_public() && !CannedAcl::BucketOwnerFullControl.is_public());
    }

    #[test]
    fn documents() {
        let doc = CannedAcl::PublicRead.to_xml(("AK", "alice"), None, true);
        assert!(doc.contains("<Owner><ID>AK</ID><DisplayName>alice</DisplayName></Owner>"));
        assert!(doc.contains("<Permission>FULL_CONTROL</Permission>"));
        assert!(doc.contains(&format!(
            "<URI>{ALL_USERS}</URI></Grantee><Permission>READ</Permission>"
        )));
        let doc = CannedAcl::BucketOwnerFullControl.to_xml(("W", "w"), Some(("B", "b")), false);
        assert_eq!(doc.matches("FULL_CONTROL").count(), 2);
        assert_eq!(
            ObjectOwnership::from_stored(None),
            (ObjectOwnership::BucketOwnerEnforced, true)
        );
        assert_eq!(
            ObjectOwnership::from_stored(Some(b"")),
            (ObjectOwnership::ObjectWriter, false)
        );
        let body = ObjectOwnership::ObjectWriter.to_xml();
        assert_eq!(
            parse_ownership_controls(body.as_bytes()).unwrap(),
            ObjectOwnership::ObjectWriter
        );
        assert!(parse_ownership_controls(b"<OwnershipControls><Rule><ObjectOwnership>Nope</ObjectOwnership></Rule></OwnershipControls>").is_err());
    }
}
