//! What is deployed, in boot order, as the boot entries say.
//!
//! The boot entries are the truth, in systemd-boot's order: the first is
//! the default (the highest generation that is not bad), the next
//! distinct deployment is the rollback target.
//! `status --json` prints [`Status`], whose `schema` changes only when a
//! field changes meaning or goes away.

use serde::Serialize;
use strata_boot::Entry;
use strata_boot::bls::EntryName;

use crate::deployment::DeploymentId;
use crate::error::Result;
use crate::failure::Failure;
use crate::sysroot::Sysroot;

/// Version of the JSON layout of [`Status`].
pub const SCHEMA: u32 = 1;

/// One deployment, as `status --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct DeploymentStatus {
    /// Its stateroot.
    pub stateroot: String,
    /// Its commit, 64 hex digits.
    pub commit: String,
    /// Its serial among deployments of the same commit.
    pub serial: u32,
    /// Path in the sysroot, as `strata=` on the kernel command line.
    pub path: String,
    /// Whether the machine is running it now.
    pub booted: bool,
    /// Whether it boots next: the highest generation not marked bad.
    pub default: bool,
    /// Whether `rollback` would make it the default: the second highest.
    pub rollback: bool,
    /// Whether it is staged: finished (`/etc` merged, entry written) at the
    /// next shutdown, and the default from then on.
    pub staged: bool,
    /// Boot order: higher boots first.
    pub generation: Option<u64>,
    /// What upgrades follow; `None` for a deployment of a checksum.
    pub refspec: Option<String>,
    /// The commit's `version` metadata, if it has one.
    pub version: Option<String>,
    /// The commit's subject; empty when the commit is no longer in the repository.
    pub subject: String,
    /// The commit's time, seconds since the epoch; 0 when the commit is no
    /// longer in the repository.
    pub timestamp: u64,
    /// The kernel arguments the user set (see [`crate::origin::Origin`]).
    pub kargs: Vec<String>,
    /// Boot counting state of its entry: `good` (no counter: blessed, or
    /// counting off), `trial` (tries left, or booted on its last try and
    /// not yet blessed), `bad` (none left: the machine falls back from
    /// it); `None` without an entry.
    pub boot_state: Option<&'static str>,
    /// Tries left while on trial.
    pub tries_left: Option<u32>,
    /// Its commit failed to boot here: when and why (`upgrade` will not
    /// deploy it again without `--allow-failed`).
    pub failed: Option<Failure>,
    /// The commit its packages are layered on; `None` when not layered.
    pub base_commit: Option<String>,
    /// Packages layered on the base, by name (see `strata layer`).
    pub layered: Vec<String>,
    /// Booted and changed until the next boot: `live` when a newer
    /// deployment's `/usr` is mounted over it (`--apply-live`),
    /// `usr-overlay` when `/usr` is a writable overlay; `None` otherwise.
    pub live: Option<&'static str>,
}

/// The state of a sysroot: the `status --json` document.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The version of this JSON layout: [`SCHEMA`].
    pub schema: u32,
    /// The sysroot's path.
    pub sysroot: String,
    /// The deployments: a staged one first, then the default, then by
    /// falling generation; a booted deployment without an entry comes last.
    pub deployments: Vec<DeploymentStatus>,
    /// The last finalize of a staged deployment failed (cleared by the next
    /// successful deploy or finalize).
    pub finalize_failure: Option<crate::stage::FinalizeFailure>,
    /// The unattended updater's policy (`[update] policy`); `None` when the
    /// settings do not parse.
    pub update_policy: Option<crate::settings::Policy>,
    /// The updater's last run.
    pub last_update: Option<crate::update::UpdateState>,
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

/// `good` (no counter), `trial` (counted and not yet blessed: tries left,
/// or running its last try now), `bad` (no tries left, not running).
fn boot_state(name: &EntryName, booted: bool) -> &'static str {
    match name.counter {
        None => "good",
        Some(_) if booted => "trial",
        Some((0, _)) => "bad",
        Some(_) => "trial",
    }
}

impl Sysroot {
    /// The deployments, default first, with what each is and follows.
    pub fn status(&self) -> Result<Status> {
        let booted = self.booted();
        let mut ids: Vec<(DeploymentId, Option<EntryName>)> = entries_by_deployment(self)?
            .into_iter()
            .map(|(id, name, _)| (id, Some(name)))
            .collect();
        if let Some(b) = &booted
            && !ids.iter().any(|(id, _)| id == b)
        {
            ids.push((b.clone(), None));
        }
        let staged = self.staged();
        let mut deployments = Vec::new();
        if let Some(id) = &staged {
            ids.insert(0, (id.clone(), None));
        }
        let first_entry = usize::from(staged.is_some());
        for (i, (id, name)) in ids.iter().enumerate() {
            let generation = name.as_ref().map(|n| n.generation);
            let is_booted = booted.as_ref() == Some(id);
            let i = i.wrapping_sub(first_entry);
            let origin = self.load_origin(id)?;
            let commit = self.repo().load_commit(&id.commit).ok();
            deployments.push(DeploymentStatus {
                stateroot: id.stateroot.clone(),
                commit: id.commit.to_hex(),
                serial: id.serial,
                path: id.rel_path(),
                booted: is_booted,
                default: i == 0 && generation.is_some(),
                rollback: i == 1 && generation.is_some(),
                staged: staged.as_ref() == Some(id) && generation.is_none(),
                generation,
                refspec: origin.refspec,
                version: commit.as_ref().and_then(|c| c.version().map(str::to_owned)),
                subject: commit
                    .as_ref()
                    .map(|c| c.subject.clone())
                    .unwrap_or_default(),
                timestamp: commit.as_ref().map(|c| c.timestamp).unwrap_or(0),
                kargs: origin.kargs,
                boot_state: name.as_ref().map(|n| boot_state(n, is_booted)),
                tries_left: name
                    .as_ref()
                    .filter(|n| boot_state(n, is_booted) == "trial")
                    .and_then(|n| n.counter.map(|c| c.0)),
                failed: self.failure(&id.commit)?,
                base_commit: origin.layer.as_ref().map(|l| l.base.to_hex()),
                layered: origin
                    .layer
                    .as_ref()
                    .map(|l| {
                        let local = l.local.iter().map(|r| r.split(':').next().unwrap_or(r));
                        let mut v: Vec<String> = l
                            .packages
                            .iter()
                            .map(String::as_str)
                            .chain(local)
                            .map(str::to_owned)
                            .collect();
                        v.sort();
                        v
                    })
                    .unwrap_or_default(),
                live: if !is_booted {
                    None
                } else if self.usr_overlay().is_some() {
                    Some("usr-overlay")
                } else if self.live().is_some() {
                    Some("live")
                } else {
                    None
                },
            });
        }
        Ok(Status {
            schema: SCHEMA,
            sysroot: self.root().display().to_string(),
            deployments,
            finalize_failure: self.finalize_failure(),
            update_policy: self.settings().ok().map(|s| s.policy),
            last_update: self.update_state(),
        })
    }
}
