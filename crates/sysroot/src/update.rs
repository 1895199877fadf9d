//! The unattended updater: what `strata-update.service` (on
//! `strata-update.timer`) does, by `[update] policy` in
//! `/etc/strata/strata.conf`:
//!
//! | policy | does |
//! |---|---|
//! | `none` | nothing |
//! | `check` | fetches and verifies the new commit object only, remembers it |
//! | `download` | pulls the new commit, deploys nothing |
//! | `stage` | stages it (finalized at the next shutdown, see [`crate::stage`]) |
//! | `apply` | stages it and reboots, inside the reboot window, unless a shutdown inhibitor is held, after logged-in users are gone or `session-wait` passed |
//!
//! It acts only once the booted deployment is blessed (the service also
//! requires `boot-complete.target`): a machine still judging its own boot
//! does not pile another update on it. A commit that failed to boot here
//! is never taken (see [`crate::failure`]). Each run is remembered in
//! `strata/update-state` for `status`. The reboot decision,
//! [`reboot_gate`], is pure: the clock and logind's answers are passed in.

use std::fs;
use std::time::Duration;

use strata_remote::progress::Progress;
use strata_store::config::Config;
use strata_store::{Checksum, durable};

use crate::deployment::DeploymentId;
use crate::error::{Error, Result};
use crate::failure::now;
use crate::settings::{Policy, Settings};
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;
use crate::upgrade::{UpgradeOptions, UpgradeOutcome};
use crate::window::Window;

/// The record of the last run, relative to the sysroot.
const STATE: &str = "strata/update-state";

/// What one run of the updater found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AutoUpdate {
    /// `policy=none`.
    Disabled,
    /// The booted deployment is still on trial: nothing until it is blessed.
    NotBlessed,
    /// Nothing new (or the new commit is already staged or deployed).
    UpToDate(Checksum),
    /// The followed ref names a commit that failed to boot here.
    Denied {
        /// The commit.
        commit: Checksum,
        /// Why it failed, as recorded.
        reason: String,
    },
    /// `check`: a new commit is available (its commit object is here).
    Available(Checksum),
    /// `download`: the new commit is pulled, ready to deploy.
    Downloaded(Checksum),
    /// `stage`/`apply`: the new commit is staged.
    Staged(DeploymentId),
    /// `stage`/`apply`: not staging, because the last finalize failed; a
    /// deploy or stage by hand clears it (staging again by itself would
    /// reboot into the same failure every day).
    FinalizeFailed(crate::stage::FinalizeFailure),
}

/// The last run, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UpdateState {
    /// When it ran, seconds since the epoch.
    pub time: u64,
    /// What it found or did, in words.
    pub result: String,
    /// The commit available (or pulled, or staged), if any.
    pub available: Option<String>,
    /// That commit's version, when known.
    pub version: Option<String>,
}

/// Whether an `apply` may reboot now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RebootGate {
    /// Yes.
    Now,
    /// Outside the reboot window; it opens at this time (seconds since the
    /// epoch), if ever.
    WindowClosed(Option<u64>),
    /// Shutdown inhibitors are held (who, why): not now, as `systemctl
    /// reboot` on a terminal would refuse.
    Inhibited(Vec<String>),
    /// Users are logged in: wait, up to `session-wait`.
    WaitForSessions(usize),
}

/// The reboot decision for an `apply`, in this order: the window, the
/// inhibitors, then logged-in users (waited for up to `session_wait`,
/// `waited` so far). Pure.
pub fn reboot_gate(
    now: u64,
    window: Option<&Window>,
    inhibitors: &[String],
    sessions: usize,
    waited: Duration,
    session_wait: Duration,
) -> RebootGate {
    if let Some(w) = window
        && !w.is_open(now)
    {
        return RebootGate::WindowClosed(w.next_open(now));
    }
    if !inhibitors.is_empty() {
        return RebootGate::Inhibited(inhibitors.to_vec());
    }
    if sessions > 0 && waited < session_wait {
        return RebootGate::WaitForSessions(sessions);
    }
    RebootGate::Now
}

impl Sysroot {
    /// One run of the updater with `settings` (see the module docs). The
    /// reboot of `apply` is the caller's, after [`reboot_gate`].
    pub fn auto_update(
        &self,
        stateroot: &str,
        settings: &Settings,
        progress: &dyn Progress,
    ) -> Result<AutoUpdate> {
        if settings.policy == Policy::None {
            return Ok(AutoUpdate::Disabled);
        }
        if let Some(booted) = self.booted() {
            let on_trial = entries_by_deployment(self)?
                .iter()
                .any(|(id, name, _)| *id == booted && name.counter.is_some());
            if on_trial {
                return Ok(AutoUpdate::NotBlessed);
            }
        }
        if matches!(settings.policy, Policy::Stage | Policy::Apply)
            && let Some(f) = self.finalize_failure()
        {
            let out = AutoUpdate::FinalizeFailed(f);
            self.remember(&out)?;
            return Ok(out);
        }
        let opts = UpgradeOptions {
            check_only: matches!(settings.policy, Policy::Check | Policy::Download),
            commit_only: settings.policy == Policy::Check,
            stage: matches!(settings.policy, Policy::Stage | Policy::Apply),
            allow_failed: false,
            allow_expired_summary: false,
        };
        let outcome = match self.upgrade(stateroot, &opts, progress) {
            Ok(o) => o,
            Err(Error::FailedBefore { commit, reason }) => {
                let out = AutoUpdate::Denied { commit, reason };
                self.remember(&out)?;
                return Ok(out);
            }
            Err(e) => {
                let _ = self.write_state(&UpdateState {
                    time: now(),
                    result: format!("failed: {e}"),
                    available: None,
                    version: None,
                });
                return Err(e);
            }
        };
        let out = match outcome {
            UpgradeOutcome::UpToDate(c) => AutoUpdate::UpToDate(c),
            UpgradeOutcome::Available { to, .. } if settings.policy == Policy::Check => {
                AutoUpdate::Available(to)
            }
            UpgradeOutcome::Available { to, .. } => AutoUpdate::Downloaded(to),
            UpgradeOutcome::Staged { id, .. } => AutoUpdate::Staged(id),
            // Not asked for by these options; reported as staged would be wrong.
            UpgradeOutcome::Deployed { report, .. } => AutoUpdate::Staged(report.id),
        };
        self.remember(&out)?;
        Ok(out)
    }

    fn remember(&self, out: &AutoUpdate) -> Result<()> {
        let version = |c: &Checksum| {
            self.repo()
                .load_commit(c)
                .ok()
                .and_then(|c| c.version().map(str::to_owned))
        };
        let (result, commit) = match out {
            AutoUpdate::Disabled | AutoUpdate::NotBlessed => return Ok(()),
            AutoUpdate::UpToDate(_) => ("up to date".to_owned(), None),
            AutoUpdate::Denied { commit, reason } => (
                format!("not taken: it failed to boot here ({reason})"),
                Some(*commit),
            ),
            AutoUpdate::Available(c) => ("update available".to_owned(), Some(*c)),
            AutoUpdate::Downloaded(c) => ("update downloaded".to_owned(), Some(*c)),
            AutoUpdate::Staged(id) => (format!("staged {}", id.rel_path()), Some(id.commit)),
            AutoUpdate::FinalizeFailed(f) => (
                format!(
                    "not staging: the finalize of {} failed ({}); deploy or stage by hand",
                    f.deployment, f.error
                ),
                None,
            ),
        };
        self.write_state(&UpdateState {
            time: now(),
            result,
            version: commit.as_ref().and_then(version),
            available: commit.map(|c| c.to_hex()),
        })
    }

    fn write_state(&self, s: &UpdateState) -> Result<()> {
        let mut c = Config::default();
        c.set("update", "time", &s.time.to_string());
        c.set("update", "result", &s.result.replace('\n', " "));
        if let Some(a) = &s.available {
            c.set("update", "available", a);
        }
        if let Some(v) = &s.version {
            c.set("update", "version", v);
        }
        durable::write_file(&self.root().join(STATE), c.to_string().as_bytes(), 0o644)?;
        Ok(())
    }

    /// The updater's last run, if it ran.
    pub fn update_state(&self) -> Option<UpdateState> {
        let text = fs::read_to_string(self.root().join(STATE)).ok()?;
        let c = Config::parse(&text).ok()?;
        Some(UpdateState {
            time: c.get("update", "time")?.parse().ok()?,
            result: c.get("update", "result")?.to_owned(),
            available: c.get("update", "available").map(str::to_owned),
            version: c.get("update", "version").map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_order() {
        let always = None;
        let closed = Window {
            days: [false, false, false, false, false, false, true],
            start_minute: 0,
            minutes: 60,
        };
        // 2024-01-01 12:00 UTC, a Monday: the Sunday window is closed.
        let now = 1_704_067_200 + 12 * 3600;
        let hour = Duration::from_secs(3600);
        let users = |n, waited| reboot_gate(now, always, &[], n, waited, hour);
        assert_eq!(users(0, Duration::ZERO), RebootGate::Now);
        assert_eq!(users(2, Duration::ZERO), RebootGate::WaitForSessions(2));
        assert_eq!(users(2, hour), RebootGate::Now, "waited long enough");
        let inhibited = reboot_gate(
            now,
            always,
            &["apt: upgrading".into()],
            0,
            Duration::ZERO,
            hour,
        );
        assert_eq!(
            inhibited,
            RebootGate::Inhibited(vec!["apt: upgrading".into()])
        );
        let next_sunday = 1_704_067_200 + 6 * 24 * 3600;
        assert_eq!(
            reboot_gate(now, Some(&closed), &["x".into()], 3, Duration::ZERO, hour),
            RebootGate::WindowClosed(Some(next_sunday)),
            "the window first"
        );
        assert_eq!(
            reboot_gate(
                next_sunday + 60,
                Some(&closed),
                &[],
                0,
                Duration::ZERO,
                hour
            ),
            RebootGate::Now
        );
    }
}
