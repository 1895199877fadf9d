//! `strata-prepare-root [ROOTMNT]`: run by the initramfs (initramfs-tools'
//! `init-bottom` phase) once the physical root is mounted at ROOTMNT
//! (default `/root`). It turns the deployment named by `strata=` on the
//! kernel command line into the root filesystem:
//!
//! ```text
//! ROOTMNT (after)               from
//!   /                           <physical root>/strata/deploy/<stateroot>/<commit>.<serial>
//!   /usr        read-only       the deployment's usr (bind, remounted read-only)
//!   /etc        writable        the deployment's own etc
//!   /var        writable        <physical root>/strata/state/<stateroot>/var (bind)
//!   /sysroot                    the physical root (moved)
//! ```
//!
//! and records the booted deployment in `/run/strata-booted` (initramfs-tools
//! carries `/run` over to the real root). Any failure is reported on the
//! console with what to do, and the process exits non-zero so the
//! initramfs drops to its rescue shell instead of booting something else.

mod cmdline;
// Shared with strata-sysroot, which names deployments by these rules.
#[path = "../../sysroot/src/deployment_name.rs"]
mod deployment_name;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rustix::mount::{MountFlags, mount_bind, mount_move, mount_remount};

/// Where the deployment is assembled before it replaces ROOTMNT.
const STAGING: &str = "/strata.root";

fn main() {
    let start = Instant::now();
    let rootmnt = std::env::args().nth(1).unwrap_or_else(|| "/root".into());
    match run(Path::new(&rootmnt)) {
        Ok(path) => {
            let ms = start.elapsed().as_secs_f64() * 1000.0;
            eprintln!("strata-prepare-root: booting {path} ({ms:.1} ms)");
        }
        Err(e) => {
            eprintln!("strata-prepare-root: {e}");
            eprintln!(
                "strata-prepare-root: pick another entry in the boot menu (the previous deployment), or fix strata= on the kernel command line"
            );
            std::process::exit(1);
        }
    }
}

fn run(rootmnt: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string("/proc/cmdline")
        .map_err(|e| format!("cannot read /proc/cmdline: {e}"))?;
    let d = cmdline::deployment(&text)?;
    let deploy = rootmnt.join(d.path.trim_start_matches('/'));
    let var = rootmnt.join("strata/state").join(&d.stateroot).join("var");
    for (what, p) in [
        ("deployment", &deploy),
        ("deployment's /usr", &deploy.join("usr")),
        ("deployment's /etc", &deploy.join("etc")),
        ("shared /var", &var),
    ] {
        if !p.is_dir() {
            return Err(format!(
                "the {what} {} does not exist on the root filesystem: the deployment is missing or incomplete",
                p.display()
            ));
        }
    }
    let staging = PathBuf::from(STAGING);
    std::fs::create_dir_all(&staging).map_err(|e| format!("cannot create {STAGING}: {e}"))?;
    let step = |what: &str, r: rustix::io::Result<()>| r.map_err(|e| format!("{what}: {e}"));
    step("bind the deployment", mount_bind(&deploy, &staging))?;
    step("bind /var", mount_bind(&var, staging.join("var")))?;
    step(
        "bind /usr",
        mount_bind(staging.join("usr"), staging.join("usr")),
    )?;
    step(
        "make /usr read-only",
        mount_remount(
            staging.join("usr"),
            MountFlags::BIND | MountFlags::RDONLY,
            "",
        ),
    )?;
    let sysroot = staging.join("sysroot");
    if !sysroot.is_dir() {
        return Err(format!(
            "the deployment has no /sysroot directory to hold the physical root ({})",
            sysroot.display()
        ));
    }
    step(
        "move the physical root to /sysroot",
        mount_move(rootmnt, &sysroot),
    )?;
    step(
        "move the deployment to the root",
        mount_move(&staging, rootmnt),
    )?;
    std::fs::write("/run/strata-booted", format!("{}\n", d.path))
        .map_err(|e| format!("cannot write /run/strata-booted: {e}"))?;
    Ok(d.path)
}
