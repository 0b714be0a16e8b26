//! SigV4 for browser-based uploads (POST Object with a form): the signature is not over a canonical request but
//! over the base64 policy document, with the signing key of the `x-amz-credential` form field's scope.
//!
//! Only the signature is checked here; the policy's expiration and conditions are `post_policy`'s job.

use super::canonical::{self, ALGORITHM};
use super::{CredentialStore, Identity};
use crate::error::{ApiError, ApiResult};

/// The signature fields of a POST form.
#[derive(Debug, Clone, Copy)]
pub struct FormSignature<'a> {
    /// `x-amz-algorithm`: must be AWS4-HMAC-SHA256.
    pub algorithm: &'a str,
    /// `x-amz-credential`: `AK/YYYYMMDD/region/s3/aws4_request`.
    pub credential: &'a str,
    /// `x-amz-date`: `YYYYMMDDTHHMMSSZ`, on the credential's day.
    pub date: &'a str,
    /// `policy`: the base64 policy document, exactly as sent.
    pub policy: &'a str,
    /// `x-amz-signature`: hex HMAC-SHA256 of `policy`.
    pub signature: &'a str,
}

/// Verifies a form's signature and returns who signed it.
pub fn authenticate_form(
    form: &FormSignature<'_>,
    creds: &dyn CredentialStore,
    region: &str,
) -> ApiResult<Identity> {
    if form.algorithm != ALGORITHM {
        return Err(ApiError::InvalidArgument(format!(
            "Invalid x-amz-algorithm '{}'; only {ALGORITHM} is supported.",
            form.algorithm
        )));
    }
    let credential = canonical::parse_credential(form.credential, region)
        .map_err(|m| ApiError::InvalidArgument(format!("Invalid x-amz-credential: {m}")))?;
    let time = canonical::parse_amz_date(form.date).ok_or_else(|| {
        ApiError::InvalidArgument(format!(
            "Invalid x-amz-date '{}'; expected YYYYMMDD'T'HHMMSS'Z'.",
            form.date
        ))
    })?;
    if time.format("%Y%m%d").to_string() != credential.date {
        return Err(ApiError::InvalidArgument(
            "The date in x-amz-credential does not match x-amz-date.".into(),
        ));
    }
    let (identity, secret) = creds
        .lookup(credential.access_key)
        .ok_or(ApiError::InvalidAccessKeyId)?;
    let provided = canonical::parse_hex32(form.signature).ok_or(ApiError::SignatureDoesNotMatch)?;
    let key = canonical::signing_key(&secret, credential.date, region);
    let expected = canonical::hmac_sha256(&key, form.policy.as_bytes());
    if !canonical::signatures_equal(&expected, &provided) {
        return Err(ApiError::SignatureDoesNotMatch);
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{AK, SECRET, Store};
    use super::*;

    fn sign(policy: &str) -> String {
        let key = canonical::signing_key(SECRET, "20151229", "us-east-1");
        hex::encode(canonical::hmac_sha256(&key, policy.as_bytes()))
    }

    fn form<'a>(credential: &'a str, policy: &'a str, signature: &'a str) -> FormSignature<'a> {
        FormSignature {
            algorithm: "AWS4-HMAC-SHA256",
            credential,
            date: "20151229T000000Z",
            policy,
            signature,
        }
    }

    #[test]
    fn a_signed_policy_names_its_signer() {
        let cred = format!("{AK}/20151229/us-east-1/s3/aws4_request");
        let sig = sign("eyJleHBpcmF0aW9uIjoiMjAxNS0xMi0zMFQxMjowMDowMC4wMDBaIn0=");
        let id = authenticate_form(
            &form(
                &cred,
                "eyJleHBpcmF0aW9uIjoiMjAxNS0xMi0zMFQxMjowMDowMC4wMDBaIn0=",
                &sig,
            ),
            &Store,
            "us-east-1",
        )
        .unwrap();
        assert_eq!(id.access_key, AK);
    }

    #[test]
    fn tampering_and_unknown_keys_are_refused() {
        let cred = format!("{AK}/20151229/us-east-1/s3/aws4_request");
        let sig = sign("cG9saWN5");
        let err = authenticate_form(&form(&cred, "cG9saWN6", &sig), &Store, "us-east-1");
        assert!(matches!(err, Err(ApiError::SignatureDoesNotMatch)));
        let other = "NOBODY/20151229/us-east-1/s3/aws4_request";
        let err = authenticate_form(&form(other, "cG9saWN5", &sig), &Store, "us-east-1");
        assert!(matches!(err, Err(ApiError::InvalidAccessKeyId)));
        let wrong_day = format!("{AK}/20151230/us-east-1/s3/aws4_request");
        let err = authenticate_form(&form(&wrong_day, "cG9saWN5", &sig), &Store, "us-east-1");
        assert!(matches!(err, Err(ApiError::InvalidArgument(_))));
        let mut bad_algo = form(&cred, "cG9saWN5", &sig);
        bad_algo.algorithm = "AWS4-HMAC-SHA1";
        let err = authenticate_form(&bad_algo, &Store, "us-east-1");
        assert!(matches!(err, Err(ApiError::InvalidArgument(_))));
    }
}
