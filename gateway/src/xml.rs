//! S3 XML documents: a small writer for responses (exact element order, no intermediate tree) and serde
//! DTOs, parsed with quick-xml, for the request bodies clients send.

use serde::Deserialize;

use crate::error::{ApiError, ApiResult, xml_escape};

/// The namespace every S3 response document carries.
pub const S3_NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Builds an XML document element by element.
#[derive(Debug)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    /// Starts a document whose root element is `root` in the S3 namespace.
    pub fn new(root: &str) -> Self {
        let mut out = String::with_capacity(1024);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<");
        out.push_str(root);
        out.push_str(" xmlns=\"");
        out.push_str(S3_NS);
        out.push_str("\">");
        Self { out }
    }

    /// Opens an element.
    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// Closes an element.
    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    /// `<name>text</name>` with the text escaped.
    pub fn elem(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name);
        self.out.push_str(&xml_escape(text));
        self.close(name)
    }

    /// Appends markup as is (for elements with attributes); the caller escapes.
    pub fn raw(&mut self, markup: &str) -> &mut Self {
        self.out.push_str(markup);
        self
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self, root: &str) -> String {
        self.close(root);
        self.out
    }
}

/// A request document and the root element it must have (serde does not check the root's name).
pub trait XmlDoc: for<'de> Deserialize<'de> {
    /// The root element's local name.
    const ROOT: &'static str;
}

/// The local name of the document's root element, if there is one.
fn root_element(text: &str) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(text);
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) | Event::Empty(e) => {
                return Some(String::from_utf8_lossy(e.local_name().as_ref()).into_owned());
            }
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Parses a request body into a DTO; anything malformed, or a document with another root, is MalformedXML.
pub fn parse<T: XmlDoc>(body: &[u8]) -> ApiResult<T> {
    let text = std::str::from_utf8(body).map_err(|_| ApiError::MalformedXml)?;
    if root_element(text).as_deref() != Some(T::ROOT) {
        tracing::debug!(want = T::ROOT, "XML body has another root element");
        return Err(ApiError::MalformedXml);
    }
    quick_xml::de::from_str(text).map_err(|e| {
        tracing::debug!(error = %e, "malformed XML body");
        ApiError::MalformedXml
    })
}

/// CreateBucket's optional body.
#[derive(Debug, Deserialize)]
#[serde(rename = "CreateBucketConfiguration")]
pub struct CreateBucketConfiguration {
    /// Region the bucket should live in.
    #[serde(rename = "LocationConstraint")]
    pub location_constraint: Option<String>,
}

impl XmlDoc for CreateBucketConfiguration {
    const ROOT: &'static str = "CreateBucketConfiguration";
}

/// DeleteObjects' body.
#[derive(Debug, Deserialize)]
#[serde(rename = "Delete")]
pub struct Delete {
    /// Only report errors.
    #[serde(rename = "Quiet", default)]
    pub quiet: Option<bool>,
    /// Objects to delete.
    #[serde(rename = "Object", default)]
    pub objects: Vec<DeleteObject>,
}

impl XmlDoc for Delete {
    const ROOT: &'static str = "Delete";
}

/// One entry of [`Delete`].
#[derive(Debug, Deserialize)]
pub struct DeleteObject {
    /// Key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Version id.
    #[serde(rename = "VersionId", default)]
    pub version_id: Option<String>,
}

/// PutObjectTagging's body.
#[derive(Debug, Deserialize)]
#[serde(rename = "Tagging")]
pub struct Tagging {
    /// The tags.
    #[serde(rename = "TagSet")]
    pub tag_set: TagSet,
}

impl XmlDoc for Tagging {
    const ROOT: &'static str = "Tagging";
}

/// A set of tags.
#[derive(Debug, Deserialize)]
pub struct TagSet {
    /// Tags in order.
    #[serde(rename = "Tag", default)]
    pub tags: Vec<Tag>,
}

/// One tag.
#[derive(Debug, Deserialize)]
pub struct Tag {
    /// Tag key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Tag value.
    #[serde(rename = "Value")]
    pub value: String,
}

/// PutBucketVersioning's body.
#[derive(Debug, Deserialize)]
#[serde(rename = "VersioningConfiguration")]
pub struct VersioningConfiguration {
    /// Enabled or Suspended.
    #[serde(rename = "Status", default)]
    pub status: Option<String>,
    /// MFA delete (not supported: only Disabled is accepted).
    #[serde(rename = "MfaDelete", default)]
    pub mfa_delete: Option<String>,
}

impl XmlDoc for VersioningConfiguration {
    const ROOT: &'static str = "VersioningConfiguration";
}

/// PutObjectLockConfiguration's body.
#[derive(Debug, Deserialize)]
#[serde(rename = "ObjectLockConfiguration")]
pub struct ObjectLockConfiguration {
    /// Must be "Enabled" when given.
    #[serde(rename = "ObjectLockEnabled", default)]
    pub object_lock_enabled: Option<String>,
    /// Default retention rule.
    #[serde(rename = "Rule", default)]
    pub rule: Option<ObjectLockRule>,
}

/// The rule of an [`ObjectLockConfiguration`].
#[derive(Debug, Deserialize)]
pub struct ObjectLockRule {
    /// Default retention.
    #[serde(rename = "DefaultRetention")]
    pub default_retention: DefaultRetentionXml,
}

/// A default retention period: Mode and exactly one of Days or Years.
#[derive(Debug, Deserialize)]
pub struct DefaultRetentionXml {
    /// GOVERNANCE or COMPLIANCE.
    #[serde(rename = "Mode", default)]
    pub mode: Option<String>,
    /// Days.
    #[serde(rename = "Days", default)]
    pub days: Option<i64>,
    /// Years.
    #[serde(rename = "Years", default)]
    pub years: Option<i64>,
}

impl XmlDoc for ObjectLockConfiguration {
    const ROOT: &'static str = "ObjectLockConfiguration";
}

/// PutObjectRetention's body.
#[derive(Debug, Deserialize)]
#[serde(rename = "Retention")]
pub struct RetentionXml {
    /// GOVERNANCE or COMPLIANCE.
    #[serde(rename = "Mode", default)]
    pub mode: Option<String>,
    /// ISO 8601 date.
    #[serde(rename = "RetainUntilDate", default)]
    pub retain_until_date: Option<String>,
}

impl XmlDoc for RetentionXml {
    const ROOT: &'static str = "Retention";
}

/// PutObjectLegalHold's body.
#[derive(Debug, Deserialize)]
#[serde(rename = "LegalHold")]
pub struct LegalHoldXml {
    /// ON or OFF.
    #[serde(rename = "Status", default)]
    pub status: Option<String>,
}

impl XmlDoc for LegalHoldXml {
    const ROOT: &'static str = "LegalHold";
}

/// CompleteMultipartUpload's body.
#[derive(Debug, Deserialize)]
#[serde(rename = "CompleteMultipartUpload")]
pub struct CompleteMultipartUpload {
    /// Parts in the order given.
    #[serde(rename = "Part", default)]
    pub parts: Vec<CompletedPart>,
}

impl XmlDoc for CompleteMultipartUpload {
    const ROOT: &'static str = "CompleteMultipartUpload";
}

/// One part of [`CompleteMultipartUpload`].
#[derive(Debug, Deserialize)]
pub struct CompletedPart {
    /// Part number.
    #[serde(rename = "PartNumber")]
    pub part_number: u32,
    /// ETag returned by UploadPart.
    #[serde(rename = "ETag")]
    pub etag: String,
    /// CRC-32 of the part.
    #[serde(rename = "ChecksumCRC32", default)]
    pub checksum_crc32: Option<String>,
    /// CRC-32C of the part.
    #[serde(rename = "ChecksumCRC32C", default)]
    pub checksum_crc32c: Option<String>,
    /// CRC-64/NVME of the part.
    #[serde(rename = "ChecksumCRC64NVME", default)]
    pub checksum_crc64nvme: Option<String>,
    /// SHA-1 of the part.
    #[serde(rename = "ChecksumSHA1", default)]
    pub checksum_sha1: Option<String>,
    /// SHA-256 of the part.
    #[serde(rename = "ChecksumSHA256", default)]
    pub checksum_sha256: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_delete_sample_parses() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Object><Key>sample1.txt</Key></Object>
    <Object><Key>sample2.txt</Key><VersionId>OYcLXagmS.WaD..oyH4KRguB95_YhLs7</VersionId></Object>
    <Quiet>true</Quiet>
</Delete>"#;
        let d: Delete = parse(body).unwrap();
        assert_eq!(d.objects.len(), 2);
        assert_eq!(d.quiet, Some(true));
        assert_eq!(
            d.objects[1].version_id.as_deref(),
            Some("OYcLXagmS.WaD..oyH4KRguB95_YhLs7")
        );
    }

    #[test]
    fn aws_tagging_sample_parses() {
        let body = br#"<Tagging><TagSet><Tag><Key>tag1</Key><Value>val1</Value></Tag><Tag><Key>t2</Key><Value></Value></Tag></TagSet></Tagging>"#;
        let t: Tagging = parse(body).unwrap();
        assert_eq!(t.tag_set.tags.len(), 2);
        assert_eq!(t.tag_set.tags[1].value, "");
    }

    #[test]
    fn another_root_is_malformed() {
        assert!(matches!(
            parse::<Delete>(b"<NotDelete><Object><Key>k</Key></Object></NotDelete>"),
            Err(ApiError::MalformedXml)
        ));
        assert!(matches!(
            parse::<Tagging>(b"<?xml version=\"1.0\"?><Tags><TagSet></TagSet></Tags>"),
            Err(ApiError::MalformedXml)
        ));
        let t: Tagging = parse(b"<?xml version=\"1.0\"?>\n<!-- c --><s3:Tagging xmlns:s3=\"x\"><TagSet></TagSet></s3:Tagging>")
            .unwrap();
        assert!(t.tag_set.tags.is_empty());
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(
            parse::<Delete>(b"<Delete><Object>"),
            Err(ApiError::MalformedXml)
        ));
        assert!(matches!(
            parse::<Tagging>(b"not xml"),
            Err(ApiError::MalformedXml)
        ));
    }

    #[test]
    fn writer_escapes() {
        let mut w = XmlWriter::new("R");
        w.elem("Key", "a<&>\"b");
        assert!(w.finish("R").contains("<Key>a&lt;&amp;&gt;&quot;b</Key>"));
    }
}

/// PutPublicAccessBlock's body (a missing flag is false, as S3).
#[derive(Debug, Deserialize)]
#[serde(rename = "PublicAccessBlockConfiguration")]
pub struct PublicAccessBlockXml {
    /// Refuse public ACLs.
    #[serde(rename = "BlockPublicAcls", default)]
    pub block_public_acls: Option<bool>,
    /// Ignore public ACLs in access decisions.
    #[serde(rename = "IgnorePublicAcls", default)]
    pub ignore_public_acls: Option<bool>,
    /// Refuse public bucket policies.
    #[serde(rename = "BlockPublicPolicy", default)]
    pub block_public_policy: Option<bool>,
    /// A public policy grants nothing to anonymous or other users.
    #[serde(rename = "RestrictPublicBuckets", default)]
    pub restrict_public_buckets: Option<bool>,
}

impl XmlDoc for PublicAccessBlockXml {
    const ROOT: &'static str = "PublicAccessBlockConfiguration";
}

/// PutBucketOwnershipControls' body.
#[derive(Debug, Deserialize)]
#[serde(rename = "OwnershipControls")]
pub struct OwnershipControlsXml {
    /// The rules (exactly one is valid).
    #[serde(rename = "Rule", default)]
    pub rules: Vec<OwnershipRuleXml>,
}

/// One ownership rule.
#[derive(Debug, Deserialize)]
pub struct OwnershipRuleXml {
    /// BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter.
    #[serde(rename = "ObjectOwnership")]
    pub object_ownership: String,
}

impl XmlDoc for OwnershipControlsXml {
    const ROOT: &'static str = "OwnershipControls";
}
