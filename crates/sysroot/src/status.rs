//! What is deployed, in boot order, as the boot entries say.
//!
//! The boot entries are the truth: the one with the highest generation is
//! the default, the next distinct deployment is the rollback target.
//! `status --json` prints [`Status`], whose `schema` changes only when a
//! field changes meaning or goes away.

use serde::Serialize;
use strata_boot::Entry;
use strata_boot::bls::EntryName;

use crate::deployment::DeploymentId;
use crate::error::Result;
use crate::sysroot::Sysroot;

/// Version of the JSON layout of [`Status`].
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    pub stateroot: String,
    pub commit: String,
    pub serial: u32,
    /// Path in the sysroot, as `strata=` on the kernel command line.
    pub path: String,
    pub booted: bool,
    pub default: bool,
    pub rollback: bool,
    /// Boot order: higher boots first.
    pub generation: Option<u64>,
    pub refspec: Option<String>,
    pub version: Option<String>,
    pub subject: String,
    pub timestamp: u64,
    pub kargs: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub schema: u32,
    pub sysroot: String,
    pub deployments: Vec<DeploymentStatus>,
}

/// One boot entry per deployment, highest generation first; entries that
/// do not name a deployment are skipped, duplicates (a crash during a
/// rollback leaves two) collapse to the highest.
pub fn entries_by_deployment(s: &Sysroot) -> Result<Vec<(DeploymentId, EntryName, Entry)>> {
    let mut out: Vec<(DeploymentId, EntryName, Entry)> = Vec::new();
    for (name, entry) in s.esp().entries()? {
        let Some(id) = entry.karg("strata").and_then(DeploymentId::parse_rel_path) else {
            continue;
        };
        if out.iter().any(|(d, ..)| *d == id) {
            continue;
        }
        out.push((id, name, entry));
    }
    Ok(out)
}

impl Sysroot {
    /// The deployments, default first, with what each is and follows.
    pub fn status(&self) -> Result<Status> {
        let booted = self.booted();
        let mut ids: Vec<(DeploymentId, Option<u64>)> = entries_by_deployment(self)?
            .into_iter()
            .map(|(id, name, _)| (id, Some(name.generation)))
            .collect();
        if let Some(b) = &booted
            && !ids.iter().any(|(id, _)| id == b)
        {
            ids.push((b.clone(), None));
        }
        let mut deployments = Vec::new();
        for (i, (id, generation)) in ids.iter().enumerate() {
            let origin = self.load_origin(id)?;
            let commit = self.repo().load_commit(&id.commit).ok();
            deployments.push(DeploymentStatus {
                stateroot: id.stateroot.clone(),
                commit: id.commit.to_hex(),
                serial: id.serial,
                path: id.rel_path(),
                booted: booted.as_ref() == Some(id),
                default: i == 0 && generation.is_some(),
                rollback: i == 1 && generation.is_some(),
                generation: *generation,
                refspec: origin.refspec,
                version: commit.as_ref().and_then(|c| c.version().map(str::to_owned)),
                subject: commit
                    .as_ref()
                    .map(|c| c.subject.clone())
                    .unwrap_or_default(),
                timestamp: commit.as_ref().map(|c| c.timestamp).unwrap_or(0),
                kargs: origin.kargs,
            });
        }
        Ok(Status {
            schema: SCHEMA,
            sysroot: self.root().display().to_string(),
            deployments,
        })
    }
}
