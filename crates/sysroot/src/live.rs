//! Changes to the running system that end at the next boot, recorded in
//! the volatile run directory so `status` and `cleanup` see them:
//!
//! - **live**: the `/usr` of a newer deployment (made by adding packages)
//!   is mounted over the booted one's, so its programs run before a reboot
//!   (`strata layer add --apply-live`). `cleanup` keeps that deployment:
//!   its files are what `/usr` shows.
//! - **usr-overlay**: a writable overlay on `/usr` whose changes vanish
//!   at reboot (`strata usr-overlay`, as `ostree admin unlock`).
//!
//! The mounts themselves are made by `strata-layer`; this module only
//! keeps the records, written before the mount (a kill in between leaves
//! a record of a mount that may not be there, which errs on the side of
//! keeping the deployment).

use std::fs;
use std::path::PathBuf;

use strata_store::durable;

use crate::deployment::DeploymentId;
use crate::error::Result;
use crate::sysroot::Sysroot;

const LIVE: &str = "live";
const USR_OVERLAY: &str = "usr-overlay";

impl Sysroot {
    /// The deployment whose `/usr` is mounted over the booted one's.
    pub fn live(&self) -> Option<DeploymentId> {
        fs::read_to_string(self.run_dir().join(LIVE))
            .ok()
            .and_then(|t| DeploymentId::parse_rel_path(t.trim()))
    }

    /// Records that `id`'s `/usr` is now mounted over the booted one's.
    pub fn set_live(&self, id: &DeploymentId) -> Result<()> {
        self.write_run_record(LIVE, &id.rel_path())
    }

    /// Forgets the live record (the mount it recorded failed).
    pub fn clear_live(&self) -> Result<()> {
        crate::sysroot::remove_if_present(&self.run_dir().join(LIVE), false)
    }

    /// Forgets the `/usr` overlay record (the mount it recorded failed).
    pub fn clear_usr_overlay(&self) -> Result<()> {
        crate::sysroot::remove_if_present(&self.run_dir().join(USR_OVERLAY), false)
    }

    /// Where the writable `/usr` overlay keeps its changes, when there is one.
    pub fn usr_overlay(&self) -> Option<PathBuf> {
        fs::read_to_string(self.run_dir().join(USR_OVERLAY))
            .ok()
            .map(|t| PathBuf::from(t.trim()))
    }

    /// Records the writable `/usr` overlay and where its changes are.
    pub fn set_usr_overlay(&self, dir: &std::path::Path) -> Result<()> {
        self.write_run_record(USR_OVERLAY, &dir.display().to_string())
    }

    /// Writes `text` to record `name` in the run directory.
    fn write_run_record(&self, name: &str, text: &str) -> Result<()> {
        let run = self.run_dir();
        fs::create_dir_all(&run).map_err(|e| strata_store::Error::Io {
            action: "create",
            path: run.clone(),
            source: e,
        })?;
        durable::write_file(&run.join(name), text.as_bytes(), 0o644)?;
        Ok(())
    }
}
