//! Deploying a commit: check it out, merge `/etc`, install its kernel, and
//! make it the default boot entry.
//!
//! The sequence, and why a crash anywhere leaves a bootable machine:
//!
//! 1. Check the ESP has room for the kernel (nothing written yet).
//! 2. Hardlink-check the commit out into `deploy/<stateroot>/.staging-…`.
//! 3. Copy `usr/etc` to `etc` and merge the machine's local changes into
//!    it: those of the booted deployment, else of the default (fault point
//!    `etc-merged`).
//! 4. Write the origin file and the ref that keeps the commit's objects.
//! 5. `syncfs`, then rename the staging directory to `<commit>.<serial>`
//!    (fault point `deployment-in-place`).
//! 6. Copy kernel and initramfs to the ESP, atomically (`kernel-installed`).
//! 7. Write the boot entry with the next generation: the single atomic step
//!    that makes the new deployment the default (`entry-written`).
//!
//! Until step 7 the default entry is the old one and names a complete
//! deployment; what steps 2–6 left behind without an entry is removed by
//! `cleanup`. After step 7 the entry names a deployment whose files and
//! kernel were durable before the entry was written.

use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};
use strata_boot::Entry;
use strata_boot::bls::EntryName;
use strata_store::checkout::CheckoutOptions;
use strata_store::error::IoContext;
use strata_store::tree::Entry as TreeEntry;
use strata_store::{Checksum, ObjectType, RefName, durable, fault};

use crate::deployment::DeploymentId;
use crate::deployment_name::validate_stateroot;
use crate::error::{Error, Result};
use crate::etc_merge::Plan;
use crate::etc_tree;
use crate::origin::Origin;
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

/// How [`Sysroot::deploy`] deploys a commit.
#[derive(Debug, Clone, Default)]
pub struct DeployOptions {
    /// The stateroot to deploy into: its `/var` is shared by its deployments.
    pub stateroot: String,
    /// What `upgrade` follows; `None` when deploying a bare checksum.
    pub refspec: Option<String>,
    /// Kernel arguments; `None` carries over those of the current default.
    pub kargs: Option<Vec<String>>,
    /// The packages the commit layers on its base (see `strata-layer`);
    /// `None` for a commit deployed as it is.
    pub layer: Option<crate::origin::Layer>,
}

/// What [`Sysroot::deploy`] did.
#[derive(Debug, Clone)]
pub struct DeployReport {
    /// The new deployment.
    pub id: DeploymentId,
    /// Its boot entry's generation: one more than the highest before.
    pub generation: u64,
    /// Its kernel directory on the ESP (`<stateroot>-<hash of the kernel's
    /// and initramfs's object checksums>`),
    /// shared by deployments with the same kernel and initramfs.
    pub kernel_dir: String,
    /// The /etc merge, when there was a deployment to merge from.
    pub merge: Option<Plan>,
    /// Boot counting: the tries its entry got (`+N` in the name); 0 when
    /// counting is off (see [`boot_tries`]).
    pub tries: u32,
}

/// Where Debian's systemd-boot package puts the tool that blesses a boot.
const BLESS_BOOT: &str = "usr/lib/systemd/systemd-bless-boot";

/// The tries a new deployment's entry gets: `[boot] tries` of its merged
/// `/etc` (the machine's settings carried over), but 0 when the deployment
/// has no `systemd-bless-boot`: nothing would mark its boots good, and
/// after the tries every boot of it would count as failed.
pub fn boot_tries(deployment: &Path) -> Result<u32> {
    let settings = crate::settings::Settings::load(deployment)?;
    let can_bless = deployment.join(BLESS_BOOT).is_file();
    Ok(if can_bless { settings.tries } else { 0 })
}

/// The kernel and initramfs of a commit: `usr/lib/modules/<kver>/{vmlinuz,initramfs.img}`.
pub struct Kernel {
    /// The kernel version (`<kver>` in the path).
    pub version: String,
    /// The kernel's content object.
    pub vmlinuz: Checksum,
    /// The initramfs's content object.
    pub initramfs: Checksum,
}

/// Finds the one kernel of `commit`; [`Error::NoKernel`] when it has none.
pub fn find_kernel(s: &Sysroot, commit: &Checksum) -> Result<Kernel> {
    let none = || Error::NoKernel { commit: *commit };
    let TreeEntry::Dir { tree, .. } = s
        .repo()
        .lookup(commit, "usr/lib/modules")
        .map_err(|_| none())?
    else {
        return Err(none());
    };
    let modules = s.repo().load_dirtree(&tree)?;
    let mut found = Vec::new();
    for d in &modules.dirs {
        let t = s.repo().load_dirtree(&d.tree)?;
        let file = |n: &str| t.files.iter().find(|(name, _)| name == n).map(|(_, c)| *c);
        if let (Some(v), Some(i)) = (file("vmlinuz"), file("initramfs.img")) {
            found.push(Kernel {
                version: d.name.clone(),
                vmlinuz: v,
                initramfs: i,
            });
        }
    }
    // Several kernels: the newest by version order boots.
    found.sort_by(|a, b| natural_cmp(&a.version, &b.version));
    found.pop().ok_or_else(none)
}

/// Compares version strings with digit runs as numbers (6.10 > 6.9).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let d = c.is_ascii_digit();
            match out.last_mut() {
                Some((kind, run)) if *kind == d => run.push(c),
                _ => out.push((d, c.to_string())),
            }
        }
        out
    };
    let (x, y) = (split(a), split(b));
    for (p, q) in x.iter().zip(&y) {
        let o = if p.0 && q.0 {
            let (pn, qn) = (p.1.trim_start_matches('0'), q.1.trim_start_matches('0'));
            pn.len().cmp(&qn.len()).then_with(|| pn.cmp(qn))
        } else {
            p.1.cmp(&q.1)
        };
        if o != std::cmp::Ordering::Equal {
            return o;
        }
    }
    x.len().cmp(&y.len())
}

/// The kernel directory's name part for a kernel and initramfs: from
/// their content objects' checksums, which the repository has verified
/// already. Hashing the files instead read them twice per deploy (80 MB
/// for the benchmark's kernel, 0.1 s of a 0.45 s `layer add`). Equal
/// objects (content, mode, owner) share a directory, as before.
fn kernel_key(vmlinuz: &Checksum, initramfs: &Checksum) -> String {
    let mut h = Sha256::new();
    h.update(vmlinuz.as_bytes());
    h.update(initramfs.as_bytes());
    hex_prefix(&h.finalize())
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The PRETTY_NAME of the tree's os-release, for entry titles.
fn pretty_name(deployment: &Path) -> String {
    for p in ["usr/lib/os-release", "usr/etc/os-release", "etc/os-release"] {
        if let Ok(text) = fs::read_to_string(deployment.join(p)) {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("PRETTY_NAME=") {
                    return v.trim_matches('"').to_owned();
                }
            }
        }
    }
    "Linux".to_owned()
}

/// When [`Sysroot::place`] builds the deployment's `/etc`.
pub(crate) enum EtcNow {
    /// Now, merging the local changes of this deployment (none: the new
    /// defaults only).
    MergeFrom(Option<DeploymentId>),
    /// At finalize time (a staged deployment): `etc` is left absent, so
    /// nothing can boot the deployment before then.
    Later,
}

/// A deployment checked out and in place (steps 1–5), not yet bootable.
pub(crate) struct Placed {
    pub(crate) id: DeploymentId,
    pub(crate) merge: Option<Plan>,
    pub(crate) tries: u32,
}

impl Sysroot {
    /// Deploys `commit` as the new default, in the order the module docs
    /// give.
    pub fn deploy(&self, commit: &Checksum, opts: &DeployOptions) -> Result<DeployReport> {
        validate_stateroot(&opts.stateroot).map_err(Error::Refused)?;
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let merge_from = self.merge_source(&opts.stateroot)?;
        let placed = self.place(commit, opts, EtcNow::MergeFrom(merge_from))?;
        let report = self.make_bootable(placed)?;
        self.discard_staged()?;
        self.clear_finalize_failure()?;
        Ok(report)
    }

    /// The deployment whose `/etc` holds the machine's changes: the booted
    /// one (edits made there after the default was deployed must not be
    /// lost), else the default.
    pub(crate) fn merge_source(&self, stateroot: &str) -> Result<Option<DeploymentId>> {
        let previous = entries_by_deployment(self)?
            .into_iter()
            .next()
            .map(|(id, ..)| id);
        Ok(self
            .booted()
            .filter(|b| b.stateroot == stateroot && self.deployment_path(b).is_dir())
            .or(previous))
    }

    /// Steps 1–5: room on the ESP, checkout, `/etc` (now or later), origin
    /// and ref, durable and in place. The caller holds the lock.
    pub(crate) fn place(
        &self,
        commit: &Checksum,
        opts: &DeployOptions,
        etc_now: EtcNow,
    ) -> Result<Placed> {
        // Before anything is written: see `Syncer`.
        let syncer = durable::Syncer::open(self.root())?;
        // The machine's settings carry into the new /etc: an error in them
        // is named here, in the file the user edits, not in the copy.
        self.settings()?;
        self.repo().load_commit(commit)?;
        if self.repo().is_partial(commit) {
            return Err(Error::PartialCommit { commit: *commit });
        }
        // 1. Room on the ESP, before anything is written.
        let kernel = self.kernel_files(commit, &opts.stateroot)?;
        self.esp().ensure_layout()?;
        if !self.esp().path().join("strata").join(&kernel.dir).is_dir() {
            let need = fs::metadata(&kernel.vmlinuz)
                .io_ctx("stat", &kernel.vmlinuz)?
                .len()
                + fs::metadata(&kernel.initramfs)
                    .io_ctx("stat", &kernel.initramfs)?
                    .len();
            let free = self.esp().free_space()?;
            if free < need + (1 << 20) {
                return Err(Error::EspFull {
                    esp: self.esp().path().to_owned(),
                    need,
                    free,
                });
            }
        }

        let previous = entries_by_deployment(self)?
            .into_iter()
            .next()
            .map(|(id, ..)| id);
        let serial = self
            .deployments_on_disk()?
            .iter()
            .filter(|d| d.stateroot == opts.stateroot && d.commit == *commit)
            .map(|d| d.serial + 1)
            .max()
            .unwrap_or(0);
        let id = DeploymentId {
            stateroot: opts.stateroot.clone(),
            commit: *commit,
            serial,
        };
        let deploy_dir = self.deploy_dir(&opts.stateroot);
        fs::create_dir_all(&deploy_dir).io_ctx("create", &deploy_dir)?;
        let var = self.state_var(&opts.stateroot);
        fs::create_dir_all(&var).io_ctx("create", &var)?;

        // 2. Checkout.
        let staging = deploy_dir.join(format!(
            ".staging-{}-{}",
            id.dir_name(),
            durable::unique_suffix()
        ));
        let result = (|| -> Result<(Option<Plan>, u32)> {
            self.repo()
                .checkout(commit, &staging, &CheckoutOptions::default())?;
            fault::point("deploy-checked-out");
            let etc = staging.join("etc");
            if staging.join("usr/etc").is_dir() && fs::symlink_metadata(&etc).is_ok() {
                return Err(Error::Refused(format!(
                    "commit {commit} has both /etc and /usr/etc; prepare the tree so /etc lives in /usr/etc"
                )));
            }
            // 3. /etc: the new defaults, then the machine's changes.
            match etc_now {
                EtcNow::MergeFrom(from) => {
                    let merge = self.build_etc(&staging, from.as_ref())?;
                    fault::point("etc-merged");
                    Ok((merge, boot_tries(&staging)?))
                }
                EtcNow::Later => Ok((None, 0)),
            }
        })();
        let (merge, tries) = match result {
            Ok(m) => m,
            Err(e) => {
                let _ = strata_store::remove::remove_tree(&staging);
                return Err(e);
            }
        };

        // 4. Origin and ref.
        let kargs = match &opts.kargs {
            Some(k) => k.clone(),
            None => previous
                .as_ref()
                .map(|p| self.load_origin(p))
                .transpose()?
                .map(|o| o.kargs)
                .unwrap_or_default(),
        };
        let origin = Origin {
            refspec: opts.refspec.clone(),
            kargs,
            layer: opts.layer.clone(),
        };
        durable::write_file(&self.origin_path(&id), origin.to_text().as_bytes(), 0o644)?;
        self.repo()
            .write_ref(&RefName::parse(&id.ref_name())?, commit)?;

        // 5. Durable, then in place.
        syncer.sync()?;
        let final_path = self.deployment_path(&id);
        fs::rename(&staging, &final_path).io_ctx("move deployment into place", &final_path)?;
        durable::sync_dir(&deploy_dir)?;
        fault::point("deployment-in-place");
        Ok(Placed { id, merge, tries })
    }

    /// Step 3: `root/etc` from `root/usr/etc` (the new defaults), with the
    /// local changes of `merge_from` merged in.
    pub(crate) fn build_etc(
        &self,
        root: &Path,
        merge_from: Option<&DeploymentId>,
    ) -> Result<Option<Plan>> {
        let etc = root.join("etc");
        let usr_etc = root.join("usr/etc");
        let mut problems = Vec::new();
        if usr_etc.is_dir() {
            etc_tree::copy_tree(&usr_etc, &etc, &mut problems)?;
        } else if fs::symlink_metadata(&etc).is_err() {
            fs::create_dir(&etc).io_ctx("create", &etc)?;
        }
        let Some(prev) = merge_from else {
            // Nothing to merge, but what the copy left out is still said.
            return Ok((!problems.is_empty()).then(|| Plan {
                problems,
                ..Plan::default()
            }));
        };
        let prev_path = self.deployment_path(prev);
        let mut plan = etc_tree::merge(
            &prev_path.join("usr/etc"),
            &prev_path.join("etc"),
            &usr_etc,
            &etc,
        )?;
        problems.append(&mut plan.problems);
        plan.problems = problems;
        Ok(Some(plan))
    }

    /// The kernel and initramfs of `commit`, and the ESP directory they go to.
    fn kernel_files(&self, commit: &Checksum, stateroot: &str) -> Result<KernelFiles> {
        let kernel = find_kernel(self, commit)?;
        let vmlinuz = self.repo().object_path(&kernel.vmlinuz, ObjectType::File);
        let initramfs = self.repo().object_path(&kernel.initramfs, ObjectType::File);
        let dir = format!(
            "{stateroot}-{}",
            kernel_key(&kernel.vmlinuz, &kernel.initramfs)
        );
        Ok(KernelFiles {
            dir,
            vmlinuz,
            initramfs,
        })
    }

    /// Steps 6–7 for a deployment in place with its `/etc`: the kernel on
    /// the ESP, then the entry that makes it the default.
    pub(crate) fn make_bootable(&self, placed: Placed) -> Result<DeployReport> {
        let Placed { id, merge, tries } = placed;
        let kernel = self.kernel_files(&id.commit, &id.stateroot)?;
        let final_path = self.deployment_path(&id);

        // 6. Kernel.
        let (linux, initrd) =
            self.esp()
                .install_kernel(&kernel.dir, &kernel.vmlinuz, &kernel.initramfs)?;
        fault::point("kernel-installed");

        // 7. The switch.
        let version = self
            .repo()
            .load_commit(&id.commit)?
            .version()
            .map(str::to_owned);
        let title = format!(
            "{} ({}, {})",
            pretty_name(&final_path),
            id.stateroot,
            version.unwrap_or_else(|| id.commit.to_hex()[..10].to_owned())
        );
        let kargs = self.load_origin(&id)?.kargs;
        let generation = self.next_generation()?;
        let entry = Entry {
            title,
            generation,
            linux,
            initrd,
            options: entry_options(self, &id, &kargs),
        };
        let name = EntryName {
            stateroot: id.stateroot.clone(),
            generation,
            counter: (tries > 0).then_some((tries, None)),
        };
        self.esp().write_entry(&name, &entry)?;
        fault::point("entry-written");
        Ok(DeployReport {
            id,
            generation,
            kernel_dir: kernel.dir,
            merge,
            tries,
        })
    }
}

/// A commit's kernel files in the repository and their ESP directory
/// (`<stateroot>-<hash of their object checksums>`).
struct KernelFiles {
    dir: String,
    vmlinuz: std::path::PathBuf,
    initramfs: std::path::PathBuf,
}

/// The kernel command line of a deployment's entry.
pub fn entry_options(s: &Sysroot, id: &DeploymentId, kargs: &[String]) -> String {
    let mut parts = vec![
        s.root_karg().to_owned(),
        format!("strata={}", id.rel_path()),
    ];
    parts.extend(kargs.iter().cloned());
    parts.retain(|p| !p.is_empty());
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::natural_cmp;
    use std::cmp::Ordering::*;

    #[test]
    fn kernel_versions() {
        assert_eq!(natural_cmp("6.1.0-10-amd64", "6.1.0-9-amd64"), Greater);
        assert_eq!(natural_cmp("6.10.0", "6.9.0"), Greater);
        assert_eq!(natural_cmp("6.1.0", "6.1.0"), Equal);
        assert_eq!(natural_cmp("5.19", "6.0"), Less);
    }
}
