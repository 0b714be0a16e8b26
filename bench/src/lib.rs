//! Strata's S3 load generator. Placeholder: built by the bench issue.
