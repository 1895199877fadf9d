//! Following the origin: `upgrade` pulls what the default deployment's
//! refspec points at now and deploys it; `switch` changes the refspec.

use strata_remote::progress::Progress;
use strata_remote::pull::{PullOptions, pull};
use strata_store::{Checksum, RefName};

use crate::deploy::{DeployOptions, DeployReport, deploy};
use crate::error::{Error, Result};
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

#[derive(Debug)]
pub enum UpgradeOutcome {
    UpToDate(Checksum),
    /// `--check`: a newer commit is available.
    Available {
        from: Checksum,
        to: Checksum,
    },
    Deployed {
        from: Option<Checksum>,
        report: DeployReport,
    },
}

/// Pulls `refspec` (`remote:ref`, or a local ref) and returns its commit.
fn fetch(s: &Sysroot, refspec: &str, progress: &dyn Progress) -> Result<Checksum> {
    let r = RefName::parse(refspec)?;
    match &r.remote {
        Some(remote) => {
            let opts = PullOptions {
                remote: remote.clone(),
                ref_name: r.name.clone(),
                depth: 0,
                commit: None,
                allow_downgrade: false,
                concurrency: 8,
            };
            Ok(pull(s.repo(), &opts, progress)?.commit)
        }
        None => Ok(s.repo().resolve_rev(&r.name)?),
    }
}

pub fn upgrade(
    s: &Sysroot,
    stateroot: &str,
    check_only: bool,
    progress: &dyn Progress,
) -> Result<UpgradeOutcome> {
    let entries = entries_by_deployment(s)?;
    let current = s
        .booted()
        .or_else(|| entries.first().map(|(id, ..)| id.clone()))
        .ok_or(Error::NothingDeployed)?;
    let origin = s.load_origin(&current)?;
    let refspec = origin.refspec.ok_or_else(|| Error::Refused(format!("deployment {} follows no ref (deployed from a checksum); use `strata switch REMOTE:REF`", current.rel_path())))?;
    let new = fetch(s, &refspec, progress)?;
    let default = entries.first().map(|(id, ..)| id.commit);
    if new == current.commit || Some(new) == default {
        return Ok(UpgradeOutcome::UpToDate(new));
    }
    if check_only {
        return Ok(UpgradeOutcome::Available {
            from: current.commit,
            to: new,
        });
    }
    let report = deploy(
        s,
        &new,
        &DeployOptions {
            stateroot: stateroot.to_owned(),
            refspec: Some(refspec),
            kargs: None,
        },
    )?;
    Ok(UpgradeOutcome::Deployed {
        from: Some(current.commit),
        report,
    })
}

/// Deploys what `refspec` points at (pulled first) and follows it from now
/// on; `kargs` as in [`DeployOptions`].
pub fn switch(
    s: &Sysroot,
    stateroot: &str,
    refspec: &str,
    kargs: Option<Vec<String>>,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let new = fetch(s, refspec, progress)?;
    deploy(
        s,
        &new,
        &DeployOptions {
            stateroot: stateroot.to_owned(),
            refspec: Some(refspec.to_owned()),
            kargs,
        },
    )
}
