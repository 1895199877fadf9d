//! Building a layered commit: the base checked out (hardlinks), an
//! overlay over it, apt and dpkg run in a bubblewrap sandbox (`sandbox.rs`), the overlay's
//! upper directory committed on top of the base (only what changed is
//! read), `/var` content turned into tmpfiles.d ([`crate::var_capture`]).
//!
//! Everything happens in `strata/layer/tmp/<id>/` of the sysroot and is
//! removed afterwards; a build killed half-way leaves that directory (and
//! maybe its mounts), which the next build removes. Nothing outside it
//! changes until the commit is written, and that commit is only a new
//! object in the repository until something deploys it.
//!
//! Fault points: `layer-mounted` (apt done, the overlays still mounted),
//! `layer-installed` (apt done, unmounted, nothing committed),
//! `layer-committed` (the commit written, not deployed).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use strata_store::checkout::CheckoutOptions;
use strata_store::gvariant::{Type, Value};
use strata_store::write::{CommitOptions, Parent, Source};
use strata_store::{Checksum, RefName, Repo};

use crate::error::{Error, IoContext, Result};
use crate::mounts::{Overlay, unmount_leftover};
use crate::request::Request;
use crate::sandbox::{DEBS, Sandbox};
use crate::sources::{FileSources, rewrite};
use crate::tree::{
    copy_dir_meta, ensure_dir_like, remove_mount_point_dir, remove_mount_point_file,
};
use crate::{Progress, Step, dpkg_status};

/// Where a prepared tree keeps the dpkg database.
pub const DPKG_DATABASE: &str = "usr/share/dpkg/database";
/// Where `policy-rc.d` is bound while a layer is built.
const POLICY_RC_D_PATH: &str = "/usr/sbin/policy-rc.d";
/// It forbids every service start (invoke-rc.d's exit code 101).
const POLICY_RC_D: &str =
    "#!/bin/sh\n# strata layer: no service starts while a layer is built.\nexit 101\n";

/// The sysusers.d file for the users and groups layered packages made.
pub const SYSUSERS: &str = "usr/lib/sysusers.d/strata-layer.conf";
/// The tmpfiles.d file a layer's `/var` content becomes.
pub const TMPFILES: &str = "usr/lib/tmpfiles.d/strata-layer.conf";
/// Commit metadata: the base commit (hex string).
pub const META_BASE: &str = strata_sysroot::origin::META_LAYER_BASE;
/// Commit metadata: the requested packages (`as`).
pub const META_PACKAGES: &str = "strata.layer.packages";

/// The inputs of a build that come from the machine.
#[derive(Debug, Clone)]
pub struct Machine {
    /// The sysroot's `strata/layer` directory: local `.deb` files, build
    /// directories, the lock.
    pub layer_dir: PathBuf,
    /// The machine's `/etc/apt` (sources and keys).
    pub apt_etc: PathBuf,
    /// The machine's `/var` (apt's lists and downloads are kept there).
    pub var: PathBuf,
    /// Where local `.deb` files are kept.
    pub local_debs: PathBuf,
    /// The machine's `resolv.conf`, for the downloads.
    pub resolv_conf: PathBuf,
    /// A deployment of the base commit as it is (not layered): its
    /// directory is the overlay's lower layer instead of a new checkout.
    /// Overlayfs never writes to a lower layer; its `/etc` (the machine's)
    /// is hidden under the image's `usr/etc` in the sandbox and no part of
    /// the commit, which is the base's tree plus the upper directory.
    pub base_checkout: Option<PathBuf>,
}

/// What [`build`] made.
#[derive(Debug, Clone)]
pub struct Built {
    /// The new commit; the base itself when nothing is left to layer.
    pub commit: Checksum,
    /// The request as applied (without `dropped`).
    pub request: Request,
    /// Requested packages the base contains already.
    pub dropped: Vec<String>,
    /// Installed version of each layered package.
    pub versions: BTreeMap<String, String>,
}

/// The installed packages of commit `commit` (its dpkg status file); an
/// error naming the commit when it has no dpkg database in the image.
pub fn installed_in(repo: &Repo, commit: &Checksum) -> Result<BTreeMap<String, String>> {
    let path = format!("{DPKG_DATABASE}/status");
    let entry = repo.lookup(commit, &path).map_err(|e| match e {
        strata_store::Error::NoSuchPath { .. } => Error::Refused(format!(
            "commit {commit} has no dpkg database at /{DPKG_DATABASE}: packages can be layered only on a tree made by `strata prepare-tree` from a Debian system"
        )),
        e => Error::Store(e),
    })?;
    let strata_store::tree::Entry::File(csum) = entry else {
        return Err(Error::Refused(format!("/{path} in {commit} is not a file")));
    };
    let (_, data) = repo.load_file(&csum)?;
    Ok(dpkg_status::installed(&String::from_utf8_lossy(&data)))
}

/// Removes build directories left by builds that were killed, unmounting
/// what they left mounted. The caller holds the layer lock.
pub fn remove_leftovers(layer_dir: &Path) -> Result<()> {
    let tmp = layer_dir.join("tmp");
    let Ok(list) = fs::read_dir(&tmp) else {
        return Ok(());
    };
    for e in list.flatten() {
        let dir = e.path();
        for m in ["root", "var"] {
            unmount_leftover(&dir.join(m));
        }
        if ["root", "var"]
            .iter()
            .any(|m| crate::tree::is_mount_point(&dir.join(m)))
        {
            return Err(Error::Refused(format!(
                "{}: still mounted after unmounting; remove it by hand",
                dir.display()
            )));
        }
        fs::remove_dir_all(&dir).ctx("remove", &dir)?;
    }
    Ok(())
}

/// A build directory, removed (mounts first) when dropped.
struct Workspace {
    dir: PathBuf,
}

impl Drop for Workspace {
    fn drop(&mut self) {
        for m in ["root", "var"] {
            unmount_leftover(&self.dir.join(m));
        }
        if !["root", "var"]
            .iter()
            .any(|m| crate::tree::is_mount_point(&self.dir.join(m)))
        {
            let _ = strata_store::remove::remove_tree(&self.dir);
        }
    }
}

/// apt's lists and downloads for builds, in the machine's `/var`. The
/// lists are the builds' own: the sandbox names `file:` sources by other
/// URIs (see [`crate::sources`]), and an `apt-get update` deletes the list
/// files of sources it does not know, so sharing `/var/lib/apt/lists`
/// would empty the machine's own apt's (regression: after a layer build
/// `apt-get install` on the machine found nothing). Downloads are named
/// by package and version and are shared.
fn apt_dirs(var: &Path) -> Result<(PathBuf, PathBuf)> {
    let lists = var.join("lib/strata/layer-apt-lists");
    let archives = var.join("cache/apt/archives");
    for d in [lists.join("partial"), archives.join("partial")] {
        fs::create_dir_all(&d).ctx("create", &d)?;
    }
    Ok((lists, archives))
}

/// Writes a configuration file the layer adds (`rel` in the tree, made in
/// `upper` with directories like `lower`'s): a comment saying `what`, then
/// `lines`.
fn write_conf(upper: &Path, lower: &Path, rel: &str, what: &str, lines: &[String]) -> Result<()> {
    ensure_dir_like(
        upper,
        lower,
        Path::new(rel).parent().unwrap_or(Path::new("")),
    )?;
    let conf = upper.join(rel);
    let text = format!("# Made by strata layer: {what}.\n{}\n", lines.join("\n"));
    fs::write(&conf, text).ctx("write", &conf)
}

/// Where the machine's resolv.conf goes in the sandbox, given the image's
/// (`usr/etc/resolv.conf`, seen at `/etc/resolv.conf`): over it when it is
/// a file or absent, at its target when it links into `/run`; `None` for a
/// link elsewhere. Pure but for reading the link.
fn resolv_target(image_resolv: &Path) -> Option<String> {
    let Ok(target) = fs::read_link(image_resolv) else {
        return Some("/etc/resolv.conf".to_owned());
    };
    let mut abs = PathBuf::from("/etc");
    for c in target.components() {
        match c {
            std::path::Component::RootDir => abs = PathBuf::from("/"),
            std::path::Component::ParentDir => {
                abs.pop();
            }
            std::path::Component::Normal(n) => abs.push(n),
            _ => {}
        }
    }
    let s = abs.to_str()?.to_owned();
    s.starts_with("/run/").then_some(s)
}

/// Copies the machine's `/etc/apt` to `to`, its sources rewritten for the
/// sandbox (see [`crate::sources`]); a machine without one gets an empty
/// directory (apt then finds no sources and says so).
fn copy_apt_etc(from: &Path, to: &Path, found: &mut FileSources) -> Result<()> {
    fs::create_dir_all(to).ctx("create", to)?;
    let Ok(list) = fs::read_dir(from) else {
        return Ok(());
    };
    let mut entries: Vec<_> = list.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let (src, dest) = (e.path(), to.join(e.file_name()));
        let m = fs::symlink_metadata(&src).ctx("stat", &src)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if m.is_dir() {
            copy_apt_etc(&src, &dest, found)?;
        } else if m.file_type().is_symlink() {
            let t = fs::read_link(&src).ctx("read symlink", &src)?;
            std::os::unix::fs::symlink(t, &dest).ctx("symlink", &dest)?;
        } else if m.is_file() {
            let is_sources = name == "sources.list"
                || (src.parent().is_some_and(|p| p.ends_with("sources.list.d"))
                    && (name.ends_with(".list") || name.ends_with(".sources")));
            if is_sources {
                let text = fs::read_to_string(&src).ctx("read", &src)?;
                fs::write(&dest, rewrite(&text, found)).ctx("write", &dest)?;
            } else {
                fs::copy(&src, &dest).ctx("copy to", &dest)?;
            }
        }
    }
    Ok(())
}

/// Builds `request` on commit `base` in `repo`; the commit goes to ref
/// `branch` (which keeps it until a deployment's ref does).
pub fn build(
    repo: &Repo,
    base: &Checksum,
    request: &Request,
    machine: &Machine,
    branch: &RefName,
    progress: &dyn Progress,
) -> Result<Built> {
    let installed = installed_in(repo, base)?;
    let mut request = request.clone();
    let dropped = request.drop_installed(&|n| installed.contains_key(n));
    if request.is_empty() {
        return Ok(Built {
            commit: *base,
            request,
            dropped,
            versions: BTreeMap::new(),
        });
    }
    progress.step(Step::Checkout);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let ws = Workspace {
        dir: machine
            .layer_dir
            .join("tmp")
            .join(format!("{}-{stamp}", std::process::id())),
    };
    let d = |n: &str| ws.dir.join(n);
    for n in [
        "upper",
        "work",
        "root",
        "var-upper",
        "var-work",
        "var",
        "var-lower",
    ] {
        fs::create_dir_all(d(n)).ctx("create", d(n))?;
    }
    // Measured on minbase: a checkout and its removal are a quarter of a
    // layer add (0.11 of 0.45 s); the deployment of the base has the tree.
    let lower = match &machine.base_checkout {
        Some(dir) if dir.join(DPKG_DATABASE).is_dir() => dir.clone(),
        _ => {
            let lower = d("lower");
            repo.checkout(base, &lower, &CheckoutOptions::default())?;
            lower
        }
    };
    // The upper directory's own metadata becomes the root's in the commit.
    copy_dir_meta(&lower, &d("upper"))?;
    let factory_var = lower.join("usr/share/factory/var");
    let var_lower = if factory_var.is_dir() {
        factory_var
    } else {
        d("var-lower")
    };

    let root_mount = Overlay::mount(&[&lower], Some((&d("upper"), &d("work"))), &d("root"))?;
    let var_mount = Overlay::mount(
        &[&var_lower],
        Some((&d("var-upper"), &d("var-work"))),
        &d("var"),
    )?;
    let var = d("var");
    let dpkg_link = var.join("lib/dpkg");
    if fs::symlink_metadata(&dpkg_link).is_ok() {
        return Err(Error::Refused(format!(
            "commit {base}: /var/lib/dpkg is in its factory /var; the dpkg database must be only at /{DPKG_DATABASE}"
        )));
    }
    ensure_dir_like(&var, &var_lower, Path::new("lib"))?;
    std::os::unix::fs::symlink("../../usr/share/dpkg/database", &dpkg_link)
        .ctx("symlink", &dpkg_link)?;
    for n in ["log/apt", "lib/apt/lists", "cache/apt/archives"] {
        fs::create_dir_all(var.join(n)).ctx("create", var.join(n))?;
    }
    let (apt_lists, apt_archives) = apt_dirs(&machine.var)?;
    let mut file_sources = FileSources::default();
    copy_apt_etc(&machine.apt_etc, &d("apt-etc"), &mut file_sources)?;
    let debs_dir = machine.local_debs.clone();
    // Maintainer scripts start no services in a build (invoke-rc.d asks
    // policy-rc.d; 101: "action forbidden").
    let policy = d("policy-rc.d");
    fs::write(&policy, POLICY_RC_D).ctx("write", &policy)?;
    fs::set_permissions(&policy, fs::Permissions::from_mode(0o755)).ctx("chmod", &policy)?;
    let apt_conf = d("apt.conf");
    fs::write(&apt_conf, crate::sandbox::apt_config()).ctx("write", &apt_conf)?;
    let mut files = vec![
        (policy, POLICY_RC_D_PATH.to_owned()),
        (apt_conf, crate::sandbox::APT_CONFIG.to_owned()),
    ];
    // The machine's name servers, for the downloads: over the image's
    // resolv.conf, or where its link points in /run (systemd-resolved's
    // stub-resolv.conf), which is the sandbox's own tmpfs.
    if let (Some(at), Ok(text)) = (
        resolv_target(&lower.join("usr/etc/resolv.conf")),
        fs::read(&machine.resolv_conf),
    ) {
        let copy = d("resolv.conf");
        fs::write(&copy, text).ctx("write", &copy)?;
        files.push((copy, at));
    }
    let sandbox = Sandbox {
        files,
        root: d("root"),
        var,
        apt_etc: d("apt-etc"),
        file_sources,
        apt_lists,
        apt_archives,
        debs: (!request.local.is_empty()).then(|| debs_dir.clone()),
    };
    let mut targets: Vec<String> = request.packages.iter().cloned().collect();
    targets.extend(
        request
            .local
            .iter()
            .map(|l| format!("{DEBS}/{}.deb", l.sha256)),
    );
    let install = |extra: &[&str]| -> Vec<String> {
        // --no-remove: a layer only adds; a package that conflicts with one
        // already there is refused by apt instead of replacing it.
        let mut a: Vec<String> = vec!["install".into(), "--no-remove".into()];
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a.extend(targets.iter().cloned());
        a
    };
    // Local packages need it too: their dependencies come from the sources.
    progress.step(Step::Update);
    sandbox.apt_get(&["update".to_owned()], true, progress)?;
    // Packages from file: and copy: sources are read in place, so with
    // only those there is nothing to download (0.03 s of a 0.4 s add).
    if sandbox.file_sources.remote {
        progress.step(Step::Download);
        sandbox.apt_get(&install(&["--download-only"]), true, progress)?;
    }
    progress.step(Step::Install);
    // Everything is downloaded, and there is no network to fetch more. Not
    // --no-download: with it apt 2.6 fails on a flat file: repository
    // ("Pathname to install is not absolute"), whose packages it uses
    // in place instead of copying them.
    sandbox.apt_get(&install(&[]), false, progress)?;

    let status = fs::read_to_string(d("root").join(DPKG_DATABASE).join("status"))
        .ctx("read", d("root").join(DPKG_DATABASE).join("status"))?;
    let now = dpkg_status::installed(&status);
    let mut versions = BTreeMap::new();
    for name in request.names() {
        let v = now.get(name).ok_or_else(|| {
            Error::Refused(format!(
                "{name} is not installed after apt-get install (see its output above)"
            ))
        })?;
        versions.insert(name.to_owned(), v.clone());
    }
    strata_store::fault::point("layer-mounted");
    var_mount.unmount()?;
    root_mount.unmount()?;
    strata_store::fault::point("layer-installed");

    let upper = d("upper");
    remove_mount_point_file(&upper, &lower, &POLICY_RC_D_PATH[1..])?;
    remove_mount_point_file(&upper, &lower, "usr/etc/resolv.conf")?;
    for n in ["etc", "run", "tmp", "dev", "proc"] {
        remove_mount_point_dir(&upper, &lower, n)?;
    }
    let read = |p: PathBuf| fs::read_to_string(p).unwrap_or_default();
    let users = crate::sysusers::lines(
        &read(lower.join("usr/etc/passwd")),
        &read(upper.join("usr/etc/passwd")),
        &read(lower.join("usr/etc/group")),
        &read(upper.join("usr/etc/group")),
    );
    if !users.is_empty() && upper.join("usr/etc/passwd").exists() {
        write_conf(
            &upper,
            &lower,
            SYSUSERS,
            "users and groups of the layered packages",
            &users,
        )?;
    }
    let lines = crate::var_capture::capture(&d("var-upper"), &upper, &lower)?;
    if !lines.is_empty() {
        write_conf(
            &upper,
            &lower,
            TMPFILES,
            "the /var content of the layered packages",
            &lines,
        )?;
    }

    progress.step(Step::Commit);
    let base_commit = repo.load_commit(base)?;
    let names: Vec<&str> = request.names().into_iter().collect();
    let mut metadata = vec![
        (META_BASE.to_owned(), Value::str(base.to_hex())),
        (
            META_PACKAGES.to_owned(),
            Value::Array(Type::String, names.iter().map(|n| Value::str(*n)).collect()),
        ),
    ];
    if let Some(v) = base_commit.version() {
        metadata.push(("version".to_owned(), Value::str(v)));
    }
    let opts = CommitOptions {
        subject: format!("{} + {}", short(base), names.join(", ")),
        body: String::new(),
        timestamp: None,
        metadata,
        parent: Parent::Commit(*base),
        no_bindings: true,
    };
    let result = strata_store::write::commit(
        repo,
        branch,
        &Source::Overlay {
            base: *base,
            upper: upper.clone(),
        },
        &opts,
    )?;
    strata_store::fault::point("layer-committed");
    Ok(Built {
        commit: result.checksum,
        request,
        dropped,
        versions,
    })
}

fn short(c: &Checksum) -> String {
    c.to_hex()[..12].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_goes_over_the_file_or_where_the_link_points_in_run() {
        let t = tempfile::tempdir().expect("tmp");
        let p = t.path().join("resolv.conf");
        assert_eq!(resolv_target(&p).as_deref(), Some("/etc/resolv.conf"));
        let cases = [
            (
                "../run/systemd/resolve/stub-resolv.conf",
                Some("/run/systemd/resolve/stub-resolv.conf"),
            ),
            (
                "/run/resolvconf/resolv.conf",
                Some("/run/resolvconf/resolv.conf"),
            ),
            ("/etc/other.conf", None),
            ("../../../run/x", Some("/run/x")),
        ];
        for (link, want) in cases {
            let _ = fs::remove_file(&p);
            std::os::unix::fs::symlink(link, &p).expect("symlink");
            assert_eq!(resolv_target(&p).as_deref(), want, "{link}");
        }
    }
}
