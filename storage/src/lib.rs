//! Strata storage engine.
