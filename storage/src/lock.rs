//! Object lock (WORM): retention modes, legal holds, and the one check every path that removes data goes
//! through. Pure functions of `(lock state, request, now)`, so the rules are tested without disks or clocks.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// Removable early by a user allowed to bypass governance retention.
    Governance,
    /// Nobody, the root user included, can remove or shorten it.
    Compliance,
}

impl LockMode {
    /// The name S3 uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::Governance => "GOVERNANCE",
            Self::Compliance => "COMPLIANCE",
        }
    }

    /// Parses S3's name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "GOVERNANCE" => Some(Self::Governance),
            "COMPLIANCE" => Some(Self::Compliance),
            _ => None,
        }
    }
}

/// A version's retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Mode.
    pub mode: LockMode,
    /// Protected until, milliseconds since the Unix epoch.
    pub until_ms: i64,
}

/// A bucket's default retention period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// Mode.
    pub mode: LockMode,
    /// Period in days (Years are stored as 365 days each).
    pub days: u32,
    /// Whether the period was given in years (to report it the way it was set).
    pub in_years: bool,
}

impl DefaultRetention {
    /// The retention a version written at `now_ms` gets.
    pub fn apply(&self, now_ms: i64) -> Retention {
        Retention {
            mode: self.mode,
            until_ms: now_ms + i64::from(self.days) * 86_400_000,
        }
    }
}

/// The lock state of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VersionLock {
    /// Retention, if any.
    pub retention: Option<Retention>,
    /// Legal hold: `None` if it was never set, so GetObjectLegalHold can tell "never" from "OFF".
    pub legal_hold: Option<bool>,
}

impl VersionLock {
    /// Whether a legal hold is on.
    pub fn is_held(&self) -> bool {
        self.legal_hold == Some(true)
    }

    /// The retention still in force at `now_ms`.
    pub fn active_retention(&self, now_ms: i64) -> Option<Retention> {
        self.retention.filter(|r| r.until_ms > now_ms)
    }
}

/// The one check that guards every removal of a version (DELETE by version id, replacement of a null
/// version, lifecycle, replication of deletes, admin tools).
pub fn check_removal(lock: &VersionLock, now_ms: i64, bypass_governance: bool) -> Result<()> {
    if lock.is_held() {
        return Err(Error::ObjectLocked(
            "the object version is under legal hold".into(),
        ));
    }
    match lock.active_retention(now_ms) {
        None => Ok(()),
        Some(Retention {
            mode: LockMode::Governance,
            ..
        }) if bypass_governance => Ok(()),
        Some(r) => Err(Error::ObjectLocked(format!(
            "the object version is under {} retention",
            r.mode.name()
        ))),
    }
}

/// Whether retention may change from `old` to `new` at `now_ms`: extending is always allowed; shortening,
/// removing or changing the mode of GOVERNANCE needs the bypass; of COMPLIANCE, never.
pub fn check_retention_change(
    old: Option<Retention>,
    new: Option<Retention>,
    now_ms: i64,
    bypass_governance: bool,
) -> Result<()> {
    let Some(old) = old.filter(|r| r.until_ms > now_ms) else {
        return Ok(());
    };
    let extends = new.is_some_and(|n| n.mode == old.mode && n.until_ms >= old.until_ms);
    if extends {
        return Ok(());
    }
    match old.mode {
        LockMode::Governance if bypass_governance => Ok(()),
        LockMode::Governance => Err(Error::ObjectLocked(
            "shortening or removing GOVERNANCE retention needs x-amz-bypass-governance-retention"
                .into(),
        )),
        LockMode::Compliance => Err(Error::ObjectLocked(
            "COMPLIANCE retention can only be extended".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn ret(mode: LockMode, until_ms: i64) -> Option<Retention> {
        Some(Retention { mode, until_ms })
    }

    #[test]
    fn removal_rules() {
        let free = VersionLock::default();
        assert!(check_removal(&free, NOW, false).is_ok());
        let held = VersionLock {
            retention: None,
            legal_hold: Some(true),
        };
        assert!(check_removal(&held, NOW, true).is_err());
        let gov = VersionLock {
            retention: ret(LockMode::Governance, NOW + 1),
            legal_hold: None,
        };
        assert!(check_removal(&gov, NOW, false).is_err());
        assert!(check_removal(&gov, NOW, true).is_ok());
        let comp = VersionLock {
            retention: ret(LockMode::Compliance, NOW + 1),
            legal_hold: None,
        };
        assert!(check_removal(&comp, NOW, true).is_err());
        let expired = VersionLock {
            retention: ret(LockMode::Compliance, NOW),
            legal_hold: None,
        };
        assert!(check_removal(&expired, NOW, false).is_ok());
    }

    #[test]
    fn retention_change_rules() {
        let g = |t| ret(LockMode::Governance, t);
        let c = |t| ret(LockMode::Compliance, t);
        assert!(check_retention_change(g(NOW + 10), g(NOW + 20), NOW, false).is_ok());
        assert!(check_retention_change(g(NOW + 10), g(NOW + 5), NOW, false).is_err());
        assert!(check_retention_change(g(NOW + 10), g(NOW + 5), NOW, true).is_ok());
        assert!(check_retention_change(g(NOW + 10), None, NOW, true).is_ok());
        assert!(check_retention_change(c(NOW + 10), c(NOW + 20), NOW, false).is_ok());
        assert!(check_retention_change(c(NOW + 10), c(NOW + 5), NOW, true).is_err());
        assert!(check_retention_change(c(NOW + 10), g(NOW + 50), NOW, true).is_err());
        assert!(check_retention_change(c(NOW + 10), None, NOW, true).is_err());
        assert!(
            check_retention_change(c(NOW - 1), None, NOW, false).is_ok(),
            "expired retention"
        );
        assert!(check_retention_change(None, c(NOW + 5), NOW, false).is_ok());
    }
}
