//! The systemd units strata ships in every bootable tree, its
//! systemd-shutdown hook and its default settings (kept if the tree has
//! its own): their text (the files under `crates/boot/units/`)
//! and where they are enabled. Installed
//! by [`crate::prepare_tree`] into `usr/lib/systemd/system`, enabled by
//! symlinks there (a vendor preset the machine's `/etc` cannot lose).

use std::fs;
use std::path::Path;

use crate::error::Result;
use strata_store::error::IoContext;

/// One unit file.
pub struct Unit {
    /// Its file name.
    pub name: &'static str,
    /// Its text.
    pub text: &'static str,
    /// The `.wants`/`.requires` directories that enable it.
    pub enabled_in: &'static [&'static str],
}

/// Every unit strata ships.
pub const UNITS: &[Unit] = &[
    Unit {
        name: "strata-health.service",
        text: include_str!("../units/strata-health.service"),
        enabled_in: &["boot-complete.target.requires", "multi-user.target.wants"],
    },
    Unit {
        name: "strata-finalize-staged.service",
        text: include_str!("../units/strata-finalize-staged.service"),
        // Started by `strata upgrade --stage`, not at boot.
        enabled_in: &[],
    },
    Unit {
        name: "strata-update.service",
        text: include_str!("../units/strata-update.service"),
        enabled_in: &[],
    },
    Unit {
        name: "strata-update.timer",
        text: include_str!("../units/strata-update.timer"),
        enabled_in: &["timers.target.wants"],
    },
    Unit {
        name: "strata-finalize-failed.service",
        text: include_str!("../units/strata-finalize-failed.service"),
        enabled_in: &["multi-user.target.wants"],
    },
    Unit {
        name: "systemd-sysusers.service.d/strata.conf",
        text: include_str!("../units/systemd-sysusers-strata.conf"),
        enabled_in: &[],
    },
];

/// The default settings, all commented out: `/etc/strata/strata.conf`
/// (from `usr/etc`) shows every key where users look for it.
pub const DEFAULT_SETTINGS: &str = include_str!("../units/strata.conf");

/// The systemd-shutdown hook that leaves the physical root read-only.
pub const SHUTDOWN_HOOK: &str = include_str!("../units/strata.shutdown");
/// Where it goes in a tree.
pub const SHUTDOWN_HOOK_PATH: &str = "usr/lib/systemd/system-shutdown/strata.shutdown";

/// Where units go in a tree.
pub const UNIT_DIR: &str = "usr/lib/systemd/system";

/// Writes the units into `tree` and enables them.
pub fn install(tree: &Path) -> Result<()> {
    let dir = tree.join(UNIT_DIR);
    for u in UNITS {
        let path = dir.join(u.name);
        let parent = path.parent().unwrap_or(&dir);
        fs::create_dir_all(parent).io_ctx("create", parent)?;
        fs::write(&path, u.text).io_ctx("write", &path)?;
        for d in u.enabled_in {
            let wants = dir.join(d);
            fs::create_dir_all(&wants).io_ctx("create", &wants)?;
            let link = wants.join(u.name);
            if fs::symlink_metadata(&link).is_ok() {
                fs::remove_file(&link).io_ctx("remove", &link)?;
            }
            std::os::unix::fs::symlink(format!("../{}", u.name), &link).io_ctx("symlink", &link)?;
        }
    }
    // The tree's /etc: `etc` before prepare-tree moves it, else `usr/etc`.
    let etc = if tree.join("etc").is_dir() || !tree.join("usr/etc").is_dir() {
        tree.join("etc")
    } else {
        tree.join("usr/etc")
    };
    let conf = etc.join("strata/strata.conf");
    if !conf.exists() {
        fs::create_dir_all(etc.join("strata")).io_ctx("create", etc.join("strata"))?;
        fs::write(&conf, DEFAULT_SETTINGS).io_ctx("write", &conf)?;
    }
    let hook = tree.join(SHUTDOWN_HOOK_PATH);
    if let Some(d) = hook.parent() {
        fs::create_dir_all(d).io_ctx("create", d)?;
    }
    fs::write(&hook, SHUTDOWN_HOOK).io_ctx("write", &hook)?;
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .io_ctx("chmod", &hook)?;
    for kind in ["required.d", "wanted.d"] {
        let d = tree.join("usr/lib/strata/health.d").join(kind);
        fs::create_dir_all(&d).io_ctx("create", &d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installs_and_enables() {
        let t = tempfile::tempdir().expect("tempdir");
        install(t.path()).expect("install");
        install(t.path()).expect("again: idempotent");
        let unit = t.path().join(UNIT_DIR).join("strata-health.service");
        assert!(
            fs::read_to_string(&unit)
                .expect("unit")
                .contains("Before=boot-complete.target")
        );
        let link = t
            .path()
            .join(UNIT_DIR)
            .join("boot-complete.target.requires/strata-health.service");
        assert_eq!(
            fs::read_link(link).expect("link"),
            Path::new("../strata-health.service")
        );
        assert!(t.path().join("usr/lib/strata/health.d/required.d").is_dir());
        let conf = t.path().join("etc/strata/strata.conf");
        assert_eq!(
            fs::read_to_string(&conf).expect("settings"),
            DEFAULT_SETTINGS
        );
        fs::write(&conf, "[boot]\ntries=1\n").expect("the tree's own");
        install(t.path()).expect("again");
        assert_eq!(
            fs::read_to_string(&conf).expect("kept"),
            "[boot]\ntries=1\n"
        );
    }

    /// The shutdown hook names what is still read-write (block devices
    /// only), or says all is read-only.
    #[test]
    fn shutdown_hook_report() {
        let t = tempfile::tempdir().expect("tempdir");
        install(t.path()).expect("install");
        let hook = t.path().join(SHUTDOWN_HOOK_PATH);
        let report = |mountinfo: &str| {
            let info = t.path().join("mountinfo");
            let out = t.path().join("console");
            fs::write(&info, mountinfo).expect("write mountinfo");
            let st = std::process::Command::new("sh")
                .arg(&hook)
                .arg("poweroff")
                .env("STRATA_MOUNTINFO", &info)
                .env("STRATA_CONSOLE", &out)
                .status()
                .expect("run the hook");
            assert!(st.success());
            fs::read_to_string(out).expect("read console")
        };
        let rw = "25 1 254:2 /strata/deploy/d/c.0 / rw,relatime shared:1 - ext4 /dev/vda2 rw\n\
                  26 25 254:2 /strata/deploy/d/c.0/usr /usr ro,relatime shared:2 - ext4 /dev/vda2 rw\n\
                  27 25 0:5 / /proc rw,nosuid - proc proc rw\n";
        let out = report(rw);
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(
            out.contains("still read-write before poweroff: / (/dev/vda2)"),
            "{out}"
        );
        assert!(
            out.contains(": /usr (/dev/vda2)"),
            "the superblock is rw: {out}"
        );
        let ro = rw.replace("- ext4 /dev/vda2 rw", "- ext4 /dev/vda2 ro");
        assert_eq!(
            report(&ro),
            "strata: every file system is read-only or unmounted before poweroff\n"
        );
    }
}
