//! Commits that failed to boot on this machine: the denylist `upgrade`
//! consults, and what `status` shows as failed, when and why.
//!
//! One key file per commit, `strata/failed/<commit>`, written atomically.
//! Records are kept by commit, not by deployment: `cleanup` removes the
//! failed deployment, and the machine must still not deploy that commit
//! again (zincati's denylist is the deployments on disk, so a cleaned-up
//! bad release is retried; ours is not).
//!
//! ```text
//! [failure]
//! deployment=/strata/deploy/default/<commit>.0
//! time=1733050000
//! reason=health check required.d/50-app failed (exit status 1)
//! ```

use std::fs;
use std::path::PathBuf;

use strata_store::config::Config;
use strata_store::error::IoContext;
use strata_store::{Checksum, durable};

use crate::deployment::DeploymentId;
use crate::error::{Error, Result};
use crate::sysroot::{Sysroot, remove_if_present};

/// The directory of the records, relative to the sysroot.
const DIR: &str = "strata/failed";

/// Why and when a commit failed to boot.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Failure {
    /// The deployment that failed (`strata=` path).
    pub deployment: String,
    /// When the failure was recorded, seconds since the epoch.
    pub time: u64,
    /// What failed: a health check, or "never reached boot-complete".
    pub reason: String,
}

impl Failure {
    fn to_text(&self) -> String {
        let mut c = Config::default();
        c.set("failure", "deployment", &self.deployment);
        c.set("failure", "time", &self.time.to_string());
        // One line: the key file has no multi-line values.
        c.set("failure", "reason", &self.reason.replace('\n', " "));
        c.to_string()
    }

    fn parse(text: &str) -> Option<Failure> {
        let c = Config::parse(text).ok()?;
        Some(Failure {
            deployment: c.get("failure", "deployment")?.to_owned(),
            time: c.get("failure", "time")?.parse().ok()?,
            reason: c.get("failure", "reason")?.to_owned(),
        })
    }
}

/// Seconds since the epoch, now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Sysroot {
    fn failure_path(&self, commit: &Checksum) -> PathBuf {
        self.root().join(DIR).join(commit.to_hex())
    }

    /// The record of `commit`'s failure, if it failed here. A record that
    /// does not parse still counts as a failure (a half-written one is
    /// impossible: records are written atomically).
    pub fn failure(&self, commit: &Checksum) -> Result<Option<Failure>> {
        let p = self.failure_path(commit);
        match fs::read_to_string(&p) {
            Ok(t) => Ok(Some(Failure::parse(&t).unwrap_or(Failure {
                deployment: String::new(),
                time: 0,
                reason: format!("unreadable record {}", p.display()),
            }))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Store(strata_store::Error::Io {
                action: "read",
                path: p,
                source: e,
            })),
        }
    }

    /// Records that deployment `id` failed to boot, unless its commit has a
    /// record already (the first reason, from the failing boot itself, is
    /// the precise one). Returns whether a record was written.
    pub fn record_failure(&self, id: &DeploymentId, reason: &str) -> Result<bool> {
        if self.failure(&id.commit)?.is_some() {
            return Ok(false);
        }
        let dir = self.root().join(DIR);
        fs::create_dir_all(&dir).io_ctx("create", &dir)?;
        let f = Failure {
            deployment: id.rel_path(),
            time: now(),
            reason: reason.to_owned(),
        };
        durable::write_file(
            &self.failure_path(&id.commit),
            f.to_text().as_bytes(),
            0o644,
        )?;
        // A layered commit is built anew on every upgrade, so its own record
        // would never match again: the base it failed on is recorded too.
        let base = self
            .load_origin(id)
            .ok()
            .and_then(|o| o.layer)
            .map(|l| l.base);
        if let Some(base) = base
            && self.failure(&base)?.is_none()
        {
            let f = Failure {
                reason: format!("{reason} (with packages layered on it)"),
                ..f
            };
            durable::write_file(&self.failure_path(&base), f.to_text().as_bytes(), 0o644)?;
        }
        Ok(true)
    }

    /// Forgets `commit`'s failure (`upgrade --allow-failed` deploys it again).
    pub fn forget_failure(&self, commit: &Checksum) -> Result<()> {
        remove_if_present(&self.failure_path(commit), true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = Failure {
            deployment: "/strata/deploy/default/ab.0".into(),
            time: 1_733_050_000,
            reason: "health check required.d/x failed\nexit status 1".into(),
        };
        let back = Failure::parse(&f.to_text()).expect("parses");
        assert_eq!(
            back.reason,
            "health check required.d/x failed exit status 1"
        );
        assert_eq!((back.deployment, back.time), (f.deployment, f.time));
        assert_eq!(Failure::parse("[failure]\ntime=x\n"), None);
    }
}
