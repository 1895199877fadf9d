//! Changing the running system until the next boot (see
//! [`strata_sysroot::live`] for the records):
//!
//! - [`apply_live`]: the new deployment's `/usr` is bind-mounted,
//!   read-only, over the booted one's. Both are hardlink checkouts of the
//!   same repository, so every file the two share is the same inode and
//!   running programs see no change; only additions are allowed (the
//!   booted layer's packages must all still be there, on the same base),
//!   as rpm-ostree's `--apply-live`. New files of its `/etc` are copied
//!   where `/etc` has none; tmpfiles.d of the layer runs; systemd reloads.
//! - [`usr_overlay`]: a writable overlayfs on `/usr`, its changes kept in
//!   `/var/tmp/strata-usr-overlay-*` and forgotten at reboot (as
//!   `ostree admin unlock`, `bootc usr-overlay`).

use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::mount::MountFlags;
use strata_sysroot::Sysroot;
use strata_sysroot::deployment::DeploymentId;

use crate::error::{Error, IoContext, Result};
use crate::mounts::Overlay;
use crate::request::Request;

/// The booted deployment of the running system `s` is; refused (naming
/// `what`) when `s` is not the running system's sysroot.
pub fn running(s: &Sysroot, what: &str) -> Result<DeploymentId> {
    if !s.is_running_system() {
        return Err(Error::Refused(format!(
            "{what} changes the running system: it works only on the booted machine's own sysroot"
        )));
    }
    s.booted().ok_or_else(|| {
        Error::Refused(format!(
            "{what}: the running system was not booted from a strata deployment"
        ))
    })
}

fn tool(what: String, e: impl std::fmt::Display) -> Error {
    Error::Tool {
        what,
        why: e.to_string(),
    }
}

/// Makes deployment `new` (just deployed by adding packages) usable now.
/// Returns warnings (a tmpfiles or systemd step that failed).
pub fn apply_live(s: &Sysroot, new: &DeploymentId) -> Result<Vec<String>> {
    let booted = running(s, "--apply-live")?;
    if s.usr_overlay().is_some() {
        return Err(Error::Refused(
            "/usr has a writable overlay (strata usr-overlay) until the next boot; install with apt-get there, or reboot into the new deployment".into(),
        ));
    }
    let from = s.live().unwrap_or(booted);
    let old = s.load_origin(&from)?.layer;
    let new_layer = s.load_origin(new)?.layer;
    let (Some(new_layer), old) = (new_layer, old) else {
        return Err(Error::Refused(
            "--apply-live: the new deployment layers nothing".into(),
        ));
    };
    let base_now = old.as_ref().map_or(from.commit, |l| l.base);
    if base_now != new_layer.base {
        return Err(Error::Refused(format!(
            "--apply-live only adds packages to the running base ({base_now}); the new deployment is on {}, so it runs after a reboot",
            new_layer.base
        )));
    }
    let old_req = old
        .map(|l| Request::from_layer(&l))
        .transpose()?
        .unwrap_or_default();
    let new_req = Request::from_layer(&new_layer)?;
    let new_names = new_req.names();
    if let Some(gone) = old_req.names().into_iter().find(|n| !new_names.contains(n)) {
        return Err(Error::Refused(format!(
            "--apply-live only adds packages, and {gone} would go; the new deployment runs after a reboot"
        )));
    }
    let dir = s.deployment_path(new);
    let usr = dir.join("usr");
    // Recorded first: cleanup must keep the deployment whose files /usr shows.
    s.set_live(new)?;
    if let Err(e) = rustix::mount::mount_bind(&usr, "/usr") {
        s.clear_live()?;
        return Err(tool(
            format!("bind-mount {} over /usr", usr.display()),
            std::io::Error::from(e),
        ));
    }
    rustix::mount::mount_remount("/usr", MountFlags::BIND | MountFlags::RDONLY, "").map_err(
        |e| {
            tool(
                "make the new /usr read-only".into(),
                std::io::Error::from(e),
            )
        },
    )?;
    let mut warnings = Vec::new();
    let mut try_run = |cmd: &mut Command, what: &str| match cmd.output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => warnings.push(format!(
            "{what}: {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => warnings.push(format!("{what}: {e}")),
    };
    // New configuration files; the ones /etc has stay as the machine has them.
    try_run(
        Command::new("cp")
            .args(["-a", "--no-clobber", "--"])
            .arg(dir.join("etc/."))
            .arg("/etc/"),
        "copy the new files of /etc",
    );
    let sysusers = Path::new("/").join(crate::build::SYSUSERS);
    if sysusers.exists() {
        try_run(
            Command::new("systemd-sysusers").arg(&sysusers),
            "systemd-sysusers for the layer",
        );
    }
    let tmpfiles = Path::new("/").join(crate::build::TMPFILES);
    if tmpfiles.exists() {
        try_run(
            Command::new("systemd-tmpfiles")
                .arg("--create")
                .arg(&tmpfiles),
            "systemd-tmpfiles --create for the layer",
        );
    }
    if Path::new("/run/systemd/system").is_dir() {
        try_run(
            Command::new("systemctl").arg("daemon-reload"),
            "systemctl daemon-reload",
        );
    }
    Ok(warnings)
}

/// What [`usr_overlay`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsrOverlay {
    /// The overlay is mounted now; its changes are kept in this directory.
    Mounted(PathBuf),
    /// It was mounted before; nothing changed.
    Already(PathBuf),
}

/// Mounts a writable overlay on `/usr` until the next boot.
pub fn usr_overlay(s: &Sysroot) -> Result<UsrOverlay> {
    running(s, "usr-overlay")?;
    if let Some(d) = s.usr_overlay() {
        return Ok(UsrOverlay::Already(d));
    }
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = PathBuf::from(format!("/var/tmp/strata-usr-overlay-{stamp}"));
    let (upper, work) = (dir.join("upper"), dir.join("work"));
    for d in [&upper, &work] {
        std::fs::create_dir_all(d).ctx("create", d)?;
    }
    s.set_usr_overlay(&dir)?;
    let mounted = Overlay::mount(
        &[Path::new("/usr")],
        Some((&upper, &work)),
        Path::new("/usr"),
    );
    match mounted {
        Ok(o) => o.keep(),
        Err(e) => {
            s.clear_usr_overlay()?;
            return Err(e);
        }
    }
    Ok(UsrOverlay::Mounted(dir))
}
