//! Removing what no boot entry needs: old deployments, duplicate entries,
//! staging leftovers, unused kernels, and repository objects.
//!
//! Kept: the default, the rollback target, the booted, the live (see
//! [`crate::live`]) and the staged
//! deployment. Order
//! matters for crashes: entries go first (durably), then the deployments
//! they named, so no entry ever names a half-removed deployment (fault
//! points `cleanup-entries-removed`, `cleanup-deployment-removed`). A deploy
//! that died before leaving staging may have written its origin and ref
//! under the final name already; both go with the staging directory.

use std::collections::HashSet;
use std::fs;

use strata_store::error::IoContext;
use strata_store::prune::PruneOptions;
use strata_store::remove::remove_tree;
use strata_store::{RefName, fault};

use crate::deployment::DeploymentId;
use crate::deployment_name::DEPLOY_DIR;
use crate::error::Result;
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

/// What [`Sysroot::cleanup`] removed.
#[derive(Debug, Default, Clone)]
pub struct CleanupReport {
    /// Boot entries removed (duplicates, and those of deployments not kept).
    pub entries_removed: usize,
    /// Deployments removed, with their origins and refs.
    pub deployments_removed: Vec<DeploymentId>,
    /// Staging directories left by interrupted deploys.
    pub staging_removed: usize,
    /// Kernel directories removed from the ESP (`<stateroot>-<hash>`).
    pub kernels_removed: Vec<String>,
    /// Repository objects pruned.
    pub objects_removed: usize,
    /// Bytes of those objects, as stored in the repository.
    pub bytes_freed: u64,
}

impl Sysroot {
    /// Removes what nothing keeps (see the module docs).
    pub fn cleanup(&self) -> Result<CleanupReport> {
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let mut report = CleanupReport::default();
        let kept_entries = entries_by_deployment(self)?;
        let mut keep: HashSet<DeploymentId> = kept_entries
            .iter()
            .take(2)
            .map(|(id, ..)| id.clone())
            .collect();
        if let Some(b) = self.booted() {
            keep.insert(b);
        }
        if let Some(staged) = self.staged() {
            keep.insert(staged);
        }
        // Its /usr is mounted over the booted one's until the next boot.
        if let Some(live) = self.live() {
            keep.insert(live);
        }
        let kept_names: HashSet<String> = kept_entries
            .iter()
            .filter(|(id, ..)| keep.contains(id))
            .map(|(_, n, _)| n.file_name())
            .collect();
        for (name, _) in self.esp().entries()? {
            if !kept_names.contains(&name.file_name()) {
                self.esp().remove_entry(&name)?;
                report.entries_removed += 1;
            }
        }
        fault::point("cleanup-entries-removed");

        for id in self.deployments_on_disk()? {
            if keep.contains(&id) {
                continue;
            }
            let _ = self.repo().delete_ref(&RefName::parse(&id.ref_name())?);
            let origin = self.origin_path(&id);
            if origin.exists() {
                fs::remove_file(&origin).io_ctx("remove", &origin)?;
            }
            let path = self.deployment_path(&id);
            remove_tree(&path)?;
            report.deployments_removed.push(id);
            fault::point("cleanup-deployment-removed");
        }
        // Staging directories of deploys that died (the lock excludes live
        // ones), and the origins and refs they wrote for a deployment that
        // never left staging.
        let on_disk: HashSet<DeploymentId> = self.deployments_on_disk()?.into_iter().collect();
        let base = self.root().join("strata/deploy");
        if let Ok(stateroots) = fs::read_dir(&base) {
            for sr in stateroots.flatten() {
                for e in fs::read_dir(sr.path()).into_iter().flatten().flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if name.starts_with(".staging-") {
                        remove_tree(&e.path())?;
                        report.staging_removed += 1;
                    } else if let Some(mut id) = name
                        .strip_suffix(".origin")
                        .and_then(DeploymentId::parse_dir_name)
                    {
                        id.stateroot = sr.file_name().to_string_lossy().into_owned();
                        if !on_disk.contains(&id) {
                            fs::remove_file(e.path()).io_ctx("remove", e.path())?;
                        }
                    }
                }
            }
        }
        for (r, _) in self.repo().list_refs()? {
            let orphan = r.remote.is_none()
                && r.name
                    .strip_prefix("deploy/")
                    .and_then(|rest| DeploymentId::parse_rel_path(&format!("{DEPLOY_DIR}{rest}")))
                    .is_some_and(|id| !on_disk.contains(&id));
            if orphan {
                self.repo().delete_ref(&r)?;
            }
        }
        // Kernels no remaining entry uses.
        let used: HashSet<String> = self
            .esp()
            .entries()?
            .iter()
            .filter_map(|(_, e)| {
                e.linux
                    .strip_prefix("/strata/")
                    .and_then(|r| r.split('/').next())
                    .map(str::to_owned)
            })
            .collect();
        for dir in self.esp().kernel_dirs()? {
            if !used.contains(&dir) {
                self.esp().remove_kernel_dir(&dir)?;
                report.kernels_removed.push(dir);
            }
        }
        // Objects: what the kept deployments' refs and the remotes' refs need.
        // A kept layered deployment's base: what `strata layer` builds on.
        let mut bases = Vec::new();
        for id in &keep {
            if let Some(l) = self.load_origin(id)?.layer {
                bases.push(l.base);
            }
        }
        self.remove_unused_debs()?;
        let pruned = self.repo().prune(&PruneOptions {
            refs_only: true,
            depth: Some(0),
            older_than: None,
            dry_run: false,
            keep: bases,
        })?;
        report.objects_removed = pruned.objects_deleted;
        report.bytes_freed = pruned.bytes_freed;
        Ok(report)
    }

    /// Removes local `.deb` files no deployment's layer names. One made in
    /// the last hour stays: a layer build that has not deployed yet may be
    /// using it (cleanup does not wait for builds).
    fn remove_unused_debs(&self) -> Result<()> {
        let dir = self.root().join(crate::origin::LOCAL_DEBS);
        let Ok(list) = fs::read_dir(&dir) else {
            return Ok(());
        };
        let mut used: HashSet<String> = HashSet::new();
        for id in self.deployments_on_disk()? {
            for rec in self
                .load_origin(&id)?
                .layer
                .map(|l| l.local)
                .unwrap_or_default()
            {
                if let Some((_, sha)) = rec.split_once(':') {
                    used.insert(format!("{sha}.deb"));
                }
            }
        }
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for e in list.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let recent = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > hour_ago);
            if !used.contains(&name) && !recent {
                fs::remove_file(e.path()).io_ctx("remove", e.path())?;
            }
        }
        Ok(())
    }
}
