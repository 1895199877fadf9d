//! The systemd units strata ships in every bootable tree: their text (the
//! files under `crates/boot/units/`) and where they are enabled. Installed
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
];

/// Where units go in a tree.
pub const UNIT_DIR: &str = "usr/lib/systemd/system";

/// Writes the units into `tree` and enables them.
pub fn install(tree: &Path) -> Result<()> {
    let dir = tree.join(UNIT_DIR);
    for u in UNITS {
        fs::create_dir_all(&dir).io_ctx("create", &dir)?;
        let path = dir.join(u.name);
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
    }
}
