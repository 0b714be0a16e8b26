//! Placeholder: the SigV4 authentication layer is being written.
