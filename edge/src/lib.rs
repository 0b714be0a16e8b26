//! Strata's CDN edge node. Placeholder: built by the edge issue.
