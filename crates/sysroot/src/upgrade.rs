//! Following the origin: `upgrade` pulls what the default deployment's
//! refspec points at now and deploys it; `switch` changes the refspec;
//! [`Sysroot::deploy_target`] decides what a deployed target follows.

use strata_remote::progress::Progress;
use strata_remote::pull::{self, PullOptions};
use strata_store::{Checksum, RefName};

use crate::deploy::{DeployOptions, DeployReport};
use crate::error::{Error, Result};
use crate::origin::Layer;
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

/// What [`Sysroot::upgrade`] found or did.
#[derive(Debug)]
pub enum UpgradeOutcome {
    /// The followed ref names this commit, which is already deployed
    /// (booted or default): nothing to do.
    UpToDate(Checksum),
    /// `--check`: a newer commit is available.
    Available {
        /// The commit the machine runs (or would boot).
        from: Checksum,
        /// The commit the followed ref names now.
        to: Checksum,
    },
    /// The new commit was staged: it becomes the default at the next
    /// shutdown (when the service that finalizes it runs).
    Staged {
        /// The commit upgraded from.
        from: Checksum,
        /// The staged deployment.
        id: crate::deployment::DeploymentId,
        /// Layered packages the new base contains: no longer layered.
        dropped: Vec<String>,
    },
    /// The new commit was deployed and is the default from the next boot.
    Deployed {
        /// The commit upgraded from; `None` if there was none.
        from: Option<Checksum>,
        /// What the deploy did.
        report: DeployReport,
        /// Layered packages the new base contains: no longer layered.
        dropped: Vec<String>,
    },
}

/// A layered commit built on a new base by a [`Relayer`].
#[derive(Debug, Clone)]
pub struct Relayered {
    /// The new local commit: the base with the packages added.
    pub commit: Checksum,
    /// The layer as applied, for the new deployment's origin; `None` when
    /// nothing is left to layer (`commit` is then the base itself).
    pub layer: Option<Layer>,
    /// Requested packages the new base contains already: no longer layered.
    pub dropped: Vec<String>,
}

/// Builds a deployment's layered packages again on a new base. The
/// `strata-layer` crate implements it; the sysroot only decides when.
pub trait Relayer {
    /// Adds `layer`'s packages to commit `base`, in a new commit.
    fn relayer(
        &self,
        s: &Sysroot,
        base: &Checksum,
        layer: &Layer,
        progress: &dyn Progress,
    ) -> std::result::Result<Relayered, Box<dyn std::error::Error + Send + Sync>>;
}

/// How [`Sysroot::upgrade`] upgrades.
#[derive(Debug, Clone, Default)]
pub struct UpgradeOptions {
    /// Only say whether an update is available (it is still pulled,
    /// unless `commit_only`).
    pub check_only: bool,
    /// With `check_only`: fetch and verify only the new commit object.
    pub commit_only: bool,
    /// Deploy a commit even if it failed to boot here before (see
    /// [`crate::failure`]); its record is forgotten.
    pub allow_failed: bool,
    /// Stage the new commit (see [`crate::stage`]) instead of deploying it:
    /// `/etc` is merged and the entry written at the next shutdown.
    pub stage: bool,
    /// Accept the remote's summary past the expiry its publisher signed
    /// into it (an air-gapped mirror refreshed by hand).
    pub allow_expired_summary: bool,
}

/// Pulls `refspec` (`remote:ref`, or a local ref) and returns its commit.
fn fetch(
    s: &Sysroot,
    refspec: &str,
    commit_only: bool,
    allow_expired_summary: bool,
    progress: &dyn Progress,
) -> Result<Checksum> {
    let r = RefName::parse(refspec)?;
    match &r.remote {
        Some(remote) => {
            let opts = PullOptions {
                commit_only,
                remote: remote.clone(),
                ref_name: r.name.clone(),
                depth: 0,
                commit: None,
                allow_downgrade: false,
                concurrency: 8,
                stall_timeout: None,
                allow_expired_summary,
            };
            Ok(pull::run(s.repo(), &opts, progress)?.commit)
        }
        None => Ok(s.repo().resolve_rev(&r.name)?),
    }
}

impl Sysroot {
    /// Pulls what the current deployment follows and deploys it if new;
    /// with `check_only`, only says whether there is something new. A
    /// commit that failed to boot here is refused unless `allow_failed`.
    pub fn upgrade(
        &self,
        stateroot: &str,
        opts: &UpgradeOptions,
        progress: &dyn Progress,
    ) -> Result<UpgradeOutcome> {
        let entries = entries_by_deployment(self)?;
        // What follows comes from the pending deployment: a switch or a
        // layer added since the boot is what the next boot runs.
        let pending = self.pending()?.ok_or(Error::NothingDeployed)?;
        let current = self.booted().unwrap_or_else(|| pending.clone());
        let origin = self.load_origin(&pending)?;
        // A pending deployment of a bare checksum follows nothing; then the
        // running one's ref is followed, as before it was deployed.
        let refspec = match origin.refspec.clone() {
            Some(r) => Some(r),
            None => self.load_origin(&current)?.refspec,
        };
        let refspec = refspec.ok_or_else(|| Error::Refused(format!("deployment {} follows no ref (deployed from a checksum); use `strata switch REMOTE:REF`", pending.rel_path())))?;
        let new = fetch(
            self,
            &refspec,
            opts.check_only && opts.commit_only,
            opts.allow_expired_summary,
            progress,
        )?;
        // A layered deployment is up to date when its base is the new commit.
        let base_of = |id: &crate::deployment::DeploymentId| -> Result<Checksum> {
            Ok(self.load_origin(id)?.layer.map_or(id.commit, |l| l.base))
        };
        let mut known = vec![base_of(&current)?];
        if let Some((id, ..)) = entries.first() {
            known.push(base_of(id)?);
        }
        if let Some(id) = self.staged() {
            known.push(base_of(&id)?);
        }
        if known.contains(&new) {
            return Ok(UpgradeOutcome::UpToDate(new));
        }
        let failure = self.failure(&new)?;
        if let Some(f) = &failure
            && !opts.allow_failed
        {
            return Err(Error::FailedBefore {
                commit: new,
                reason: f.reason.clone(),
            });
        }
        if opts.check_only {
            return Ok(UpgradeOutcome::Available {
                from: current.commit,
                to: new,
            });
        }
        let (commit, layer, dropped) = self.layered_onto(&pending, origin.layer, new, progress)?;
        if failure.is_some() {
            self.forget_failure(&new)?;
        }
        let deploy_opts = DeployOptions {
            stateroot: stateroot.to_owned(),
            refspec: Some(refspec),
            kargs: None,
            layer,
        };
        if opts.stage {
            let id = self.stage(&commit, &deploy_opts)?;
            return Ok(UpgradeOutcome::Staged {
                from: current.commit,
                id,
                dropped,
            });
        }
        let report = self.deploy(&commit, &deploy_opts)?;
        Ok(UpgradeOutcome::Deployed {
            from: Some(current.commit),
            report,
            dropped,
        })
    }

    /// What to deploy for `target` when `current` (with `layer`) is what
    /// runs: `target` itself, or the layered packages built again on it
    /// (with the layer as applied and the packages `target` has already).
    /// A target that is a layered commit itself deploys as it is.
    fn layered_onto(
        &self,
        current: &crate::deployment::DeploymentId,
        layer: Option<Layer>,
        target: Checksum,
        progress: &dyn Progress,
    ) -> Result<(Checksum, Option<Layer>, Vec<String>)> {
        let Some(layer) = layer.filter(|l| !l.is_empty()) else {
            return Ok((target, None, Vec::new()));
        };
        if self
            .repo()
            .load_commit(&target)?
            .meta(crate::origin::META_LAYER_BASE)
            .is_some()
        {
            return Ok((target, None, Vec::new()));
        }
        let relayer = self.relayer().ok_or_else(|| {
            Error::Refused(format!(
                "deployment {} has layered packages and this program cannot add them to the new commit",
                current.rel_path()
            ))
        })?;
        let r = relayer
            .relayer(self, &target, &layer, progress)
            .map_err(Error::Layer)?;
        Ok((r.commit, r.layer, r.dropped))
    }

    /// The deployment changes start from: the staged one, else the
    /// default, else the booted one (the next boot's, as rpm-ostree's
    /// pending deployment).
    pub fn pending(&self) -> Result<Option<crate::deployment::DeploymentId>> {
        if let Some(s) = self.staged() {
            return Ok(Some(s));
        }
        let default = entries_by_deployment(self)?
            .into_iter()
            .next()
            .map(|(id, ..)| id);
        Ok(default.or_else(|| self.booted()))
    }

    /// [`Sysroot::pending`], with its layer.
    fn current_layer(&self) -> Result<Option<(crate::deployment::DeploymentId, Option<Layer>)>> {
        match self.pending()? {
            None => Ok(None),
            Some(id) => {
                let layer = self.load_origin(&id)?.layer;
                Ok(Some((id, layer)))
            }
        }
    }

    /// [`Sysroot::deploy`] of `target`, with the current deployment's
    /// layered packages built again on it (see [`Relayer`]).
    fn deploy_keeping_layer(
        &self,
        target: Checksum,
        mut opts: DeployOptions,
        progress: &dyn Progress,
    ) -> Result<DeployReport> {
        let (commit, layer) = match self.current_layer()? {
            Some((id, layer)) => {
                let (c, l, _) = self.layered_onto(&id, layer, target, progress)?;
                (c, l)
            }
            None => (target, None),
        };
        opts.layer = layer;
        self.deploy(&commit, &opts)
    }

    /// Deploys what `refspec` points at (pulled first) and follows it from
    /// now on; `kargs` as in [`DeployOptions`]. Layered packages are kept.
    pub fn switch(
        &self,
        stateroot: &str,
        refspec: &str,
        kargs: Option<Vec<String>>,
        progress: &dyn Progress,
    ) -> Result<DeployReport> {
        let new = fetch(self, refspec, false, false, progress)?;
        self.deploy_keeping_layer(
            new,
            DeployOptions {
                stateroot: stateroot.to_owned(),
                refspec: Some(refspec.to_owned()),
                kargs,
                layer: None,
            },
            progress,
        )
    }

    /// Deploys `target` as the new default. `REMOTE:REF` of a configured
    /// remote is pulled first and followed from now on, as
    /// [`Sysroot::switch`] does; any other target is a revision of the
    /// local repository, followed by upgrades when it is a ref name and not
    /// when it is a checksum. `kargs` as in [`DeployOptions`]. Layered
    /// packages are kept (built again on the target).
    pub fn deploy_target(
        &self,
        stateroot: &str,
        target: &str,
        kargs: Option<Vec<String>>,
        progress: &dyn Progress,
    ) -> Result<DeployReport> {
        if let Some((remote, _)) = target.split_once(':')
            && strata_remote::remotes::get(self.repo(), remote).is_ok()
        {
            return self.switch(stateroot, target, kargs, progress);
        }
        let commit = self.repo().resolve_rev(target)?;
        self.deploy_keeping_layer(
            commit,
            DeployOptions {
                stateroot: stateroot.to_owned(),
                refspec: followed_ref(target),
                kargs,
                layer: None,
            },
            progress,
        )
    }
}

/// What a deployment of the local revision `rev` follows: a ref name is
/// followed by upgrades; a full checksum, or a revision that is no ref name
/// (`main^`), is not.
fn followed_ref(rev: &str) -> Option<String> {
    RefName::parse(rev)
        .ok()
        .filter(|_| Checksum::from_hex(rev).is_err())
        .map(|r| r.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_are_followed_checksums_are_not() {
        let checksum = "ab".repeat(32);
        let cases = [
            ("os/stable", Some("os/stable")),
            ("main", Some("main")),
            ("origin:os/stable", Some("origin:os/stable")),
            (checksum.as_str(), None),
            ("main^", None),
        ];
        for (rev, followed) in cases {
            assert_eq!(followed_ref(rev).as_deref(), followed, "{rev}");
        }
    }
}
