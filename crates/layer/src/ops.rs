//! The layering operations on a sysroot: add, remove, list, and building
//! the layer again on upgrades.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use sha2::{Digest, Sha256};
use strata_store::lock::RepoLock;
use strata_store::{Checksum, RefName};
use strata_sysroot::Sysroot;
use strata_sysroot::deploy::{DeployOptions, DeployReport};
use strata_sysroot::deployment::DeploymentId;
use strata_sysroot::origin::{Layer, Origin};
use strata_sysroot::upgrade::Relayered;

use crate::build::{Built, Machine, build, installed_in, remove_leftovers};
use crate::error::{Error, IoContext, Result};
use crate::request::{LocalDeb, Request, check_name};
use crate::{Progress, Step};

/// The sysroot's layering directory.
pub fn layer_dir(s: &Sysroot) -> PathBuf {
    s.root().join("strata/layer")
}

/// The ref that keeps a freshly built commit until its deployment's does.
fn build_ref(stateroot: &str) -> Result<RefName> {
    Ok(RefName::parse(&format!("strata/layer/{stateroot}"))?)
}

/// The deployment layering starts from: the pending one (staged, else
/// default, else booted; see [`Sysroot::pending`]), so packages added
/// since the boot are kept.
pub fn current(s: &Sysroot) -> Result<(DeploymentId, Origin)> {
    let id = s.pending()?.ok_or(strata_sysroot::Error::NothingDeployed)?;
    let origin = s.load_origin(&id)?;
    Ok((id, origin))
}

/// The machine's inputs for a build on `base`, from deployment `id`.
fn machine(s: &Sysroot, id: &DeploymentId, base: &Checksum) -> Machine {
    Machine {
        layer_dir: layer_dir(s),
        apt_etc: s.deployment_path(id).join("etc/apt"),
        var: s.state_var(&id.stateroot),
        local_debs: s.root().join(strata_sysroot::origin::LOCAL_DEBS),
        // A directory sysroot's deployment has no name servers of its own.
        resolv_conf: PathBuf::from("/etc/resolv.conf"),
        // Only a deployment of exactly the base, unlayered.
        base_checkout: (id.commit == *base && !s.load_origin(id).is_ok_and(|o| o.layer.is_some()))
            .then(|| s.deployment_path(id)),
    }
}

/// Takes the layering lock and removes what killed builds left.
fn lock(s: &Sysroot) -> Result<RepoLock> {
    let dir = layer_dir(s);
    fs::create_dir_all(&dir).ctx("create", &dir)?;
    let l = RepoLock::exclusive(&dir)?;
    remove_leftovers(&dir)?;
    Ok(l)
}

/// Keeps a local `.deb` in `strata/layer/debs/<sha256>.deb` (durably: it
/// is built again on every upgrade) and names it from its control file.
pub fn import_deb(s: &Sysroot, path: &Path) -> Result<LocalDeb> {
    // Read once: what is hashed is what is kept and what dpkg-deb reads.
    let data = fs::read(path).ctx("read", path)?;
    let sha256 = hex::encode(Sha256::digest(&data));
    let debs = s.root().join(strata_sysroot::origin::LOCAL_DEBS);
    fs::create_dir_all(&debs).ctx("create", &debs)?;
    let dest = debs.join(format!("{sha256}.deb"));
    if !dest.exists() {
        strata_store::durable::write_file(&dest, &data, 0o644)?;
    }
    let out = Command::new("dpkg-deb")
        .arg("--field")
        .arg(&dest)
        .arg("Package")
        .output()
        .map_err(|e| Error::Tool {
            what: format!("read the control file of {} with dpkg-deb", path.display()),
            why: e.to_string(),
        })?;
    if !out.status.success() {
        return Err(Error::Refused(format!(
            "{} is not a Debian package: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    check_name(&name)?;
    Ok(LocalDeb { name, sha256 })
}

/// The pending deployment ([`current`]), its base and its request.
fn layered(s: &Sysroot) -> Result<(DeploymentId, Origin, Checksum, Request)> {
    let (id, origin) = current(s)?;
    let base = origin.layer.as_ref().map_or(id.commit, |l| l.base);
    let request = match &origin.layer {
        Some(l) => Request::from_layer(l)?,
        None => Request::default(),
    };
    Ok((id, origin, base, request))
}

/// What [`add`] and [`remove`] did.
#[derive(Debug)]
pub struct Changed {
    /// The build (commit, request, versions).
    pub built: Built,
    /// The new deployment.
    pub report: DeployReport,
}

/// Adds packages (names apt resolves, and local `.deb` files) to the
/// current deployment's layer and deploys the result.
pub fn add(
    s: &Sysroot,
    packages: &[String],
    debs: &[PathBuf],
    progress: &dyn Progress,
) -> Result<Changed> {
    for p in packages {
        check_name(p)?;
    }
    let _lock = lock(s)?;
    let (id, origin, base, request) = layered(s)?;
    let in_base = installed_in(s.repo(), &base)?;
    for p in packages {
        if let Some(v) = in_base.get(p) {
            return Err(Error::Refused(format!(
                "{p} is installed in the base image already (version {v})"
            )));
        }
    }
    let mut local = Vec::new();
    for d in debs {
        local.push(import_deb(s, d)?);
    }
    let request = request.adding(packages, &local)?;
    rebuild(s, &id, &origin, base, &request, progress)
}

/// Removes layered packages and deploys the base with the rest, built
/// from scratch.
pub fn remove(s: &Sysroot, names: &[String], progress: &dyn Progress) -> Result<Changed> {
    let _lock = lock(s)?;
    let (id, origin, base, request) = layered(s)?;
    let request = request.removing(names)?;
    rebuild(s, &id, &origin, base, &request, progress)
}

fn rebuild(
    s: &Sysroot,
    id: &DeploymentId,
    origin: &Origin,
    base: Checksum,
    request: &Request,
    progress: &dyn Progress,
) -> Result<Changed> {
    let branch = build_ref(&id.stateroot)?;
    let built = build(
        s.repo(),
        &base,
        request,
        &machine(s, id, &base),
        &branch,
        progress,
    )?;
    progress.step(Step::Deploy);
    let report = s.deploy(
        &built.commit,
        &DeployOptions {
            stateroot: id.stateroot.clone(),
            refspec: origin.refspec.clone(),
            kargs: None,
            layer: built.request.to_layer(base),
        },
    )?;
    // The deployment's own ref keeps the commit now.
    if let Err(e) = s.repo().delete_ref(&branch) {
        tracing::warn!(%e, "could not delete the build ref");
    }
    Ok(Changed { built, report })
}

/// One layered package, as `layer list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// The version installed in the deployment; `None` if it is missing.
    pub version: Option<String>,
    /// `repository` (resolved by apt) or `local` (a `.deb` file).
    pub source: &'static str,
    /// For a local package, the SHA-256 of the file.
    pub sha256: Option<String>,
}

/// A deployment's layer, as `layer list --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The deployment (`strata=` path).
    pub deployment: String,
    /// Its commit.
    pub commit: String,
    /// The base commit the packages are layered on; the commit itself when
    /// nothing is layered.
    pub base: String,
    /// The layered packages, by name.
    pub packages: Vec<Listed>,
}

/// The layer of the current deployment (booted, else default).
pub fn list(s: &Sysroot) -> Result<Listing> {
    let (id, origin) = current(s)?;
    let installed: BTreeMap<String, String> = installed_in(s.repo(), &id.commit)?;
    let layer = origin.layer.unwrap_or(Layer {
        base: id.commit,
        packages: Vec::new(),
        local: Vec::new(),
    });
    let request = Request::from_layer(&layer)?;
    let mut packages: Vec<Listed> = request
        .packages
        .iter()
        .map(|n| Listed {
            name: n.clone(),
            version: installed.get(n).cloned(),
            source: "repository",
            sha256: None,
        })
        .chain(request.local.iter().map(|l| Listed {
            name: l.name.clone(),
            version: installed.get(&l.name).cloned(),
            source: "local",
            sha256: Some(l.sha256.clone()),
        }))
        .collect();
    packages.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Listing {
        deployment: id.rel_path(),
        commit: id.commit.to_hex(),
        base: layer.base.to_hex(),
        packages,
    })
}

/// Builds layers again on a new base for `upgrade` (see
/// [`strata_sysroot::upgrade::Relayer`]).
pub struct Relayer {
    /// Where the build reports.
    pub progress: Box<dyn Progress + Send>,
}

impl strata_sysroot::upgrade::Relayer for Relayer {
    fn relayer(
        &self,
        s: &Sysroot,
        base: &Checksum,
        layer: &Layer,
        _pull: &dyn strata_remote::progress::Progress,
    ) -> std::result::Result<Relayered, Box<dyn std::error::Error + Send + Sync>> {
        let _lock = lock(s)?;
        let (id, _) = current(s)?;
        let request = Request::from_layer(layer)?;
        let built = build(
            s.repo(),
            base,
            &request,
            &machine(s, &id, base),
            &build_ref(&id.stateroot)?,
            self.progress.as_ref(),
        )
        .map_err(|e| Error::Refused(format!("the layered packages cannot be added to the new commit {base}, so nothing was deployed: {e}")))?;
        Ok(Relayered {
            commit: built.commit,
            layer: built.request.to_layer(*base),
            dropped: built.dropped,
        })
    }
}
