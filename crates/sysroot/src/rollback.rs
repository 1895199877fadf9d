//! Making the previous deployment the default again.
//!
//! One atomic step: a new entry for the rollback target with the next
//! generation (now the default), then the target's old entry goes. A crash
//! in between leaves two entries for the same complete deployment, which
//! status collapses and cleanup removes (fault point `rollback-entry-written`).

use strata_boot::Entry;
use strata_boot::bls::EntryName;
use strata_store::fault;

use crate::deployment::DeploymentId;
use crate::error::{Error, Result};
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

impl Sysroot {
    /// Makes the previous deployment the default again; returns (the new
    /// default, the old default).
    pub fn rollback(&self) -> Result<(DeploymentId, DeploymentId)> {
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let entries = entries_by_deployment(self)?;
        let [(current, ..), (target, target_name, target_entry), ..] = entries.as_slice() else {
            return Err(Error::Refused(
                "nothing to roll back to: there is only one deployment".into(),
            ));
        };
        if !self.deployment_path(target).is_dir() {
            return Err(Error::Refused(format!(
                "the rollback deployment {} is missing on disk",
                target.rel_path()
            )));
        }
        self.promote(target_name, target_entry)?;
        self.discard_staged()?;
        Ok((target.clone(), current.clone()))
    }

    /// Makes the deployment of entry `name` the default: the same entry
    /// with the next generation and no counter (chosen, so not on trial),
    /// then the old file goes. Returns the new generation.
    pub(crate) fn promote(&self, name: &EntryName, entry: &Entry) -> Result<u64> {
        let generation = self.next_generation()?;
        let mut entry = entry.clone();
        entry.generation = generation;
        let new_name = EntryName {
            stateroot: name.stateroot.clone(),
            generation,
            counter: None,
        };
        self.esp().write_entry(&new_name, &entry)?;
        fault::point("rollback-entry-written");
        self.esp().remove_entry(name)?;
        Ok(generation)
    }
}
