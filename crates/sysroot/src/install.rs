//! Installing: a disk (image file or block device) partitioned, formatted,
//! with systemd-boot on the ESP and a first deployment, or the same into an
//! already mounted target.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use strata_boot::disk::{self, Mounted};
use strata_remote::progress::Progress;
use strata_remote::pull::{self, PullOptions};
use strata_remote::remotes::{self, Remote};
use strata_store::copy::copy_commit;
use strata_store::error::IoContext;
use strata_store::{Checksum, RefName, Repo};

use crate::deploy::{DeployOptions, DeployReport};
use crate::error::{Error, Result};
use crate::sysroot::Sysroot;

/// The systemd-boot binary Debian's systemd-boot-efi package ships.
pub const SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
/// Where the installed machine mounts its ESP.
pub const ESP_MOUNT: &str = "/efi";

/// Where the first commit comes from, and what the machine follows after.
#[derive(Debug, Clone)]
pub struct Source {
    /// A local repository (any mode) holding the ref; without it, the
    /// commit is pulled from `remote`.
    pub repo: Option<PathBuf>,
    /// The remote the machine upgrades from, kept as `origin` (URL, public
    /// key; no key means unverified pulls).
    pub remote: Option<(String, Option<String>)>,
}

/// What [`install_disk`] and [`install_into`] put on the target.
#[derive(Debug, Clone)]
pub struct InstallOptions {
    /// Where the first commit comes from.
    pub source: Source,
    /// The ref to deploy, in `source`.
    pub ref_name: String,
    /// Kernel arguments of the first deployment, beside the ones strata manages.
    pub kargs: Vec<String>,
    /// The stateroot of the first deployment.
    pub stateroot: String,
}

/// Installs onto `disk_path` (created at `size` bytes if it is not a block device).
pub fn install_disk(
    disk_path: &Path,
    size: u64,
    opts: &InstallOptions,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let d = disk::partition(disk_path, size)?;
    let root_uuid = disk::uuid(&d.root)?;
    let esp_uuid = disk::uuid(&d.esp)?;
    let work = std::env::temp_dir().join(format!("strata-install-{}", std::process::id()));
    let root = Mounted::new(&d.root, &work.join("root"))?;
    // Before anything is written: see `Syncer`.
    let syncer = strata_store::durable::Syncer::open(&root.0)?;
    // The ESP's content is assembled in a directory and copied onto the vfat
    // filesystem with mtools: no vfat driver is needed on the installing host.
    let esp_dir = work.join("esp");
    fs::create_dir_all(&esp_dir).io_ctx("create", &esp_dir)?;
    let report = install_into(
        &root.0,
        &esp_dir,
        &format!("root=UUID={root_uuid} rw"),
        Some(&esp_uuid),
        opts,
        progress,
    )?;
    disk::copy_to_vfat(&esp_dir, &d.esp)?;
    syncer.sync()?;
    drop(syncer);
    drop(root);
    let _ = strata_store::remove::remove_tree(&work);
    Ok(report)
}

/// Installs into a mounted target: `sysroot` (the future root filesystem)
/// and `esp` (its EFI system partition, mounted at /efi on the machine).
pub fn install_into(
    sysroot: &Path,
    esp: &Path,
    root_karg: &str,
    esp_uuid: Option<&str>,
    opts: &InstallOptions,
    progress: &dyn Progress,
) -> Result<DeployReport> {
    let mut s = Sysroot::init_with_esp(
        sysroot,
        Some(Path::new(ESP_MOUNT)),
        Some(root_karg),
        Some(esp),
    )?;
    let (commit, refspec) = fetch(&mut s, opts, progress)?;
    let boot = Path::new(SYSTEMD_BOOT);
    if !boot.is_file() {
        return Err(Error::Refused(format!(
            "{SYSTEMD_BOOT} is missing: install Debian's systemd-boot-efi package"
        )));
    }
    s.esp().install_systemd_boot(boot)?;
    let report = s.deploy(
        &commit,
        &DeployOptions {
            stateroot: opts.stateroot.clone(),
            refspec: Some(refspec),
            kargs: Some(opts.kargs.clone()),
            layer: None,
        },
    )?;
    if let Some(uuid) = esp_uuid {
        // The machine mounts its ESP at /efi, so `strata` there can manage entries.
        let fstab = s.deployment_path(&report.id).join("etc/fstab");
        let mut f = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&fstab)
            .io_ctx("open", &fstab)?;
        writeln!(f, "UUID={uuid} {ESP_MOUNT} vfat umask=0077 0 2").io_ctx("write", &fstab)?;
    }
    Ok(report)
}

fn fetch(
    s: &mut Sysroot,
    opts: &InstallOptions,
    progress: &dyn Progress,
) -> Result<(Checksum, String)> {
    let src = &opts.source;
    if let Some((url, key)) = &src.remote {
        let remote = Remote {
            name: "origin".into(),
            url: url.clone(),
            sign_verify: key.is_some(),
            key: key.clone(),
            key_file: None,
            revoked_file: None,
            stall: Default::default(),
            ignore_summary_expiry: false,
            sign_verify_summary: true,
        };
        remotes::add(s.repo_mut(), &remote)?;
    }
    match (&src.repo, &src.remote) {
        (Some(path), remote) => {
            let from = Repo::open(path)?;
            let commit = from.resolve_rev(&opts.ref_name)?;
            copy_commit(&from, s.repo(), &commit)?;
            // Following the remote when there is one: the local copy is the
            // remote's content, delivered another way.
            let refspec = match remote {
                Some(_) => format!("origin:{}", opts.ref_name),
                None => opts.ref_name.clone(),
            };
            s.repo().write_ref(&RefName::parse(&refspec)?, &commit)?;
            Ok((commit, refspec))
        }
        (None, Some(_)) => {
            let r = pull::run(
                s.repo(),
                &PullOptions {
                    commit_only: false,
                    remote: "origin".into(),
                    ref_name: opts.ref_name.clone(),
                    depth: 0,
                    commit: None,
                    allow_downgrade: false,
                    concurrency: 8,
                    stall_timeout: None,
                    allow_expired_summary: false,
                },
                progress,
            )?;
            Ok((r.commit, format!("origin:{}", opts.ref_name)))
        }
        (None, None) => Err(Error::Refused(
            "nothing to install from: give --repo (or --source-repo) with the commit, or --remote URL to pull it".into(),
        )),
    }
}
