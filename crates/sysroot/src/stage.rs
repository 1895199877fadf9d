//! Staged deployments: checked out now, finished at shutdown.
//!
//! [`Sysroot::stage`] does deploy's steps 1–5 without `/etc`: the
//! deployment is in place and durable but has no `etc`, no kernel on the
//! ESP and no entry, so nothing can boot it. It is recorded in
//! `/run/strata/staged` (tmpfs, as ostree's `/run/ostree/staged-deployment`:
//! a power cut forgets it, and `cleanup` removes the deployment).
//!
//! At shutdown, `strata-finalize-staged.service` (`ExecStop`, ordered so it
//! stops before `/sysroot` and `/efi` are unmounted) runs
//! [`Sysroot::finalize_staged`]: the `/etc` merge from the booted
//! deployment, as it is at that moment, so edits made between staging and
//! reboot are kept; then the kernel and the entry (deploy's steps 6–7).
//! Fault points `finalize-etc-merged`, then deploy's `kernel-installed`
//! and `entry-written`. Until the entry is written the old default boots.
//!
//! A deploy, rollback or kargs change before then discards the staged
//! deployment, as ostree's do: a later choice is never undone at shutdown.
//!
//! A finalize that fails leaves the old default and writes
//! `strata/finalize-failure` (durable), which `status` shows and
//! `strata-finalize-failed.service` turns into a failed unit on the next
//! boot; the next successful deploy or finalize removes it.

use std::fs;
use std::path::PathBuf;

use strata_store::config::Config;
use strata_store::error::IoContext;
use strata_store::{Checksum, durable, fault};

use crate::deploy::{DeployOptions, DeployReport, EtcNow, Placed, boot_tries};
use crate::deployment::DeploymentId;
use crate::deployment_name::validate_stateroot;
use crate::error::{Error, Result};
use crate::failure::now;
use crate::status::entries_by_deployment;
use crate::sysroot::{Sysroot, remove_if_present};

/// The staged marker, in the run directory.
const STAGED: &str = "staged";
/// The record of a failed finalize, relative to the sysroot.
const FINALIZE_FAILURE: &str = "strata/finalize-failure";

/// A finalize that failed: when, which deployment, and the error.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FinalizeFailure {
    /// When, seconds since the epoch.
    pub time: u64,
    /// The staged deployment (`strata=` path).
    pub deployment: String,
    /// The error.
    pub error: String,
}

impl Sysroot {
    /// Checks `commit` out as a staged deployment (see the module docs);
    /// a deployment staged before is replaced (left to `cleanup`).
    pub fn stage(&self, commit: &Checksum, opts: &DeployOptions) -> Result<DeploymentId> {
        validate_stateroot(&opts.stateroot).map_err(Error::Refused)?;
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let placed = self.place(commit, opts, EtcNow::Later)?;
        let run = self.run_dir();
        fs::create_dir_all(&run).io_ctx("create", &run)?;
        durable::write_file(
            &run.join(STAGED),
            format!("{}\n", placed.id.rel_path()).as_bytes(),
            0o644,
        )?;
        Ok(placed.id)
    }

    /// Forgets the staged deployment (`cleanup` removes it): any other
    /// change of the boot entries (deploy, rollback, kargs) replaces it,
    /// as in ostree, so a later choice is never undone at shutdown.
    pub(crate) fn discard_staged(&self) -> Result<()> {
        // In /run: nothing to make durable.
        remove_if_present(&self.run_dir().join(STAGED), false)
    }

    /// The staged deployment, if one waits for the next shutdown.
    pub fn staged(&self) -> Option<DeploymentId> {
        fs::read_to_string(self.run_dir().join(STAGED))
            .ok()
            .and_then(|t| DeploymentId::parse_rel_path(t.trim()))
            .filter(|id| self.deployment_path(id).is_dir())
    }

    /// Finishes the staged deployment (see the module docs); `None` when
    /// nothing is staged. The marker goes either way: a finalize is tried
    /// once, as ostree's.
    pub fn finalize_staged(&self) -> Result<Option<DeployReport>> {
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let Some(id) = self.staged() else {
            return Ok(None);
        };
        let marker = self.run_dir().join(STAGED);
        // A finalize that died after writing the entry: done already.
        if entries_by_deployment(self)?.iter().any(|(d, ..)| *d == id) {
            let _ = fs::remove_file(&marker);
            return Ok(None);
        }
        let result = (|| -> Result<DeployReport> {
            let syncer = durable::Syncer::open(self.root())?;
            let path = self.deployment_path(&id);
            // Left by a finalize that died: build it again. (Without
            // usr/etc, the etc is the commit's own, kept as deploy keeps it.)
            let etc = path.join("etc");
            if path.join("usr/etc").is_dir() && fs::symlink_metadata(&etc).is_ok() {
                strata_store::remove::remove_tree(&etc)?;
            }
            let merge_from = self.merge_source(&id.stateroot)?;
            let merge = self.build_etc(&path, merge_from.as_ref())?;
            let tries = boot_tries(&path)?;
            syncer.sync()?;
            fault::point("finalize-etc-merged");
            self.make_bootable(Placed {
                id: id.clone(),
                merge,
                tries,
            })
        })();
        let _ = fs::remove_file(&marker);
        match result {
            Ok(report) => {
                self.clear_finalize_failure()?;
                Ok(Some(report))
            }
            Err(e) => {
                let mut c = Config::default();
                c.set("finalize", "time", &now().to_string());
                c.set("finalize", "deployment", &id.rel_path());
                c.set("finalize", "error", &e.to_string().replace('\n', " "));
                // Best effort: the error itself is what the caller reports.
                let _ = durable::write_file(
                    &self.root().join(FINALIZE_FAILURE),
                    c.to_string().as_bytes(),
                    0o644,
                );
                Err(e)
            }
        }
    }

    /// The last finalize's failure, until a deploy or finalize succeeds.
    pub fn finalize_failure(&self) -> Option<FinalizeFailure> {
        let text = fs::read_to_string(self.root().join(FINALIZE_FAILURE)).ok()?;
        let c = Config::parse(&text).ok()?;
        Some(FinalizeFailure {
            time: c.get("finalize", "time")?.parse().ok()?,
            deployment: c.get("finalize", "deployment")?.to_owned(),
            error: c.get("finalize", "error")?.to_owned(),
        })
    }

    pub(crate) fn clear_finalize_failure(&self) -> Result<()> {
        remove_if_present(&self.root().join(FINALIZE_FAILURE), true)
    }

    /// Volatile state: `/run/strata` on the machine this sysroot runs,
    /// `<sysroot>/run/strata` for a directory sysroot.
    pub fn run_dir(&self) -> PathBuf {
        if self.is_running_system() {
            PathBuf::from("/run/strata")
        } else {
            self.root().join("run/strata")
        }
    }
}
