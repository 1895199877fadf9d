//! Turning a plain root filesystem (a debootstrap tree) into a bootable
//! strata tree, in place:
//!
//! - the kernel and initramfs move to `usr/lib/modules/<kver>/{vmlinuz,initramfs.img}`;
//! - `/etc` moves to `/usr/etc` (the defaults every deploy merges into);
//! - the dpkg database moves into the image, to `usr/share/dpkg/database`
//!   (Endless OS's place), with `/var/lib/dpkg` a symlink to it made at
//!   boot, so `dpkg` and `apt` describe the deployment that runs; apt is
//!   told to refuse installing on the read-only image and to name
//!   `strata layer add` instead;
//! - `/opt` and `/usr/local` become symlinks into `/var` (as ostree makes
//!   them), so what a machine's owner puts there survives upgrades;
//! - `/var` is emptied: its content goes to `usr/share/factory/var` and a
//!   tmpfiles.d file recreates it at boot (`/var` is shared state);
//! - strata, strata-prepare-root and the initramfs-tools hook are installed
//!   and the initramfs is rebuilt in the tree (in a chroot) with the hook;
//! - strata's systemd units ([`crate::units`]) are installed and enabled;
//! - `/sysroot` (the physical root at boot) and `/efi` (the ESP) are created.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};
use strata_store::error::IoContext;

/// The initramfs-tools hook: puts strata-prepare-root into the initramfs.
const HOOK: &str = r#"#!/bin/sh
# strata: copy strata-prepare-root into the initramfs.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /usr/share/initramfs-tools/hook-functions
copy_exec /usr/lib/strata/strata-prepare-root /usr/lib/strata/strata-prepare-root
"#;

/// The init-bottom script: runs it once the root is mounted at ${rootmnt}.
const INIT_BOTTOM: &str = r#"#!/bin/sh
# strata: make the deployment named by strata= the root filesystem.
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0 ;; esac
. /scripts/functions
# Only shell builtins here: the initramfs may have no grep.
case " $(cat /proc/cmdline) " in
*" strata="*) ;;
*) exit 0 ;;
esac
/usr/lib/strata/strata-prepare-root "${rootmnt}" || panic "strata-prepare-root failed: see the messages above"
"#;

/// Where the dpkg database lives in a prepared tree.
pub const DPKG_DATABASE: &str = "usr/share/dpkg/database";

/// Recreates `/var/lib/dpkg` at boot as the link to the image's database;
/// `L+` replaces the directory a machine prepared before this had there.
const DPKG_TMPFILES: &str = "# Made by strata prepare-tree: the dpkg database is part of the image.
L+ /var/lib/dpkg - - - - ../../usr/share/dpkg/database
";

/// apt's hook before it runs dpkg: on the read-only image, refuse with a
/// message that names the way to add packages. When `/usr` is writable (a
/// layering build, or `strata usr-overlay`) it does nothing.
const APT_GUARD: &str = r#"// Made by strata prepare-tree: packages are part of the read-only image.
DPkg::Pre-Invoke { "if [ ! -w /var/lib/dpkg/ ]; then echo 'strata: this system is image-based and /usr is read-only. Add packages as a layer with: strata layer add PKG... (or make /usr writable until the next boot with: strata usr-overlay)' >&2; exit 100; fi"; };
"#;

/// What [`run`] made of the tree.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The kernel version found in `boot/` (`uname -r` form), now under
    /// `usr/lib/modules/<kernel_version>/`.
    pub kernel_version: String,
    /// Whether the initramfs was rebuilt with strata's hook. A tree without
    /// initramfs-tools keeps the initramfs it has, which cannot boot a
    /// strata deployment unless it already holds strata-prepare-root.
    pub initramfs_rebuilt: bool,
}

fn bad(path: &Path, what: impl Into<String>) -> Error {
    Error::BadInput {
        path: path.to_owned(),
        what: what.into(),
    }
}

/// Finds the one kernel version of a Debian-style tree (`boot/vmlinuz-<kver>`),
/// or of a tree prepared already.
fn kernel_version(dir: &Path) -> Result<String> {
    let mut versions = Vec::new();
    if let Ok(list) = fs::read_dir(dir.join("boot")) {
        for e in list.flatten() {
            if let Some(v) = e
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("vmlinuz-"))
                && e.path().is_file()
            {
                versions.push(v.to_owned());
            }
        }
    }
    if versions.is_empty() {
        for e in fs::read_dir(dir.join("usr/lib/modules"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if e.path().join("vmlinuz").is_file() {
                versions.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    match versions.as_slice() {
        [v] => Ok(v.clone()),
        [] => Err(bad(
            dir,
            "no kernel found: expected boot/vmlinuz-<version> (install linux-image-* in the tree)",
        )),
        _ => Err(bad(
            dir,
            format!("several kernels found ({}); keep one", versions.join(", ")),
        )),
    }
}

fn install_file(from: &Path, to: &Path, mode: u32) -> Result<()> {
    if let Some(d) = to.parent() {
        fs::create_dir_all(d).io_ctx("create", d)?;
    }
    fs::copy(from, to).io_ctx("copy to", to)?;
    Ok(fs::set_permissions(to, fs::Permissions::from_mode(mode)).io_ctx("chmod", to)?)
}

fn write_script(to: &Path, text: &str) -> Result<()> {
    if let Some(d) = to.parent() {
        fs::create_dir_all(d).io_ctx("create", d)?;
    }
    fs::write(to, text).io_ctx("write", to)?;
    Ok(fs::set_permissions(to, fs::Permissions::from_mode(0o755)).io_ctx("chmod", to)?)
}

fn exec(cmd: &mut Command, what: &str) -> Result<()> {
    crate::error::run(cmd, what).map(drop)
}

/// Rebuilds the initramfs inside the tree, with /proc, /sys and /dev bound in.
fn rebuild_initramfs(dir: &Path, kver: &str) -> Result<()> {
    let mounts = ["proc", "sys", "dev"];
    let mut mounted: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for m in mounts {
            let target = dir.join(m);
            fs::create_dir_all(&target).io_ctx("create", &target)?;
            exec(
                Command::new("mount")
                    .arg("--bind")
                    .arg(format!("/{m}"))
                    .arg(&target),
                "bind-mounting into the tree",
            )?;
            mounted.push(target);
        }
        exec(
            Command::new("chroot")
                .arg(dir)
                .args(["update-initramfs", "-c", "-k", kver])
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "update-initramfs in the tree",
        )
    })();
    for m in mounted.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    result
}

/// Moves `/var`'s content to `usr/share/factory/var` and writes tmpfiles.d
/// lines that recreate it at boot (directories, copied files, symlinks).
fn empty_var(dir: &Path) -> Result<()> {
    let var = dir.join("var");
    let factory = dir.join("usr/share/factory/var");
    if !var.is_dir() {
        fs::create_dir_all(&var).io_ctx("create", &var)?;
        return Ok(());
    }
    let mut lines =
        vec!["# Made by strata prepare-tree: recreates /var's content at boot.".to_owned()];
    fn walk(base: &Path, rel: &Path, lines: &mut Vec<String>) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(base.join(rel))
            .io_ctx("read directory", base.join(rel))?
            .flatten()
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let r = rel.join(e.file_name());
            let m = fs::symlink_metadata(e.path()).io_ctx("stat", e.path())?;
            let p = Path::new("/var").join(&r);
            let p = p.display().to_string().replace(' ', "\\x20");
            if m.is_dir() {
                lines.push(format!(
                    "d {p} {:04o} {} {} -",
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ));
                walk(base, &r, lines)?;
            } else if m.file_type().is_symlink() {
                let t = fs::read_link(e.path()).io_ctx("read symlink", e.path())?;
                lines.push(format!("L {p} - - - - {}", t.display()));
            } else if m.is_file() {
                lines.push(format!(
                    "C {p} - - - - /usr/share/factory/var/{}",
                    r.display()
                ));
            }
        }
        Ok(())
    }
    walk(&var, Path::new(""), &mut lines)?;
    if factory.exists() {
        fs::remove_dir_all(&factory).io_ctx("remove", &factory)?;
    }
    fs::create_dir_all(factory.parent().unwrap_or(dir)).io_ctx("create", &factory)?;
    fs::rename(&var, &factory).io_ctx("move /var to", &factory)?;
    fs::create_dir(&var).io_ctx("create", &var)?;
    let conf = dir.join("usr/lib/tmpfiles.d/strata-var.conf");
    fs::create_dir_all(conf.parent().unwrap_or(dir)).io_ctx("create", &conf)?;
    Ok(fs::write(&conf, lines.join("\n") + "\n").io_ctx("write", &conf)?)
}

/// Moves `var/lib/dpkg` to [`DPKG_DATABASE`], links it back at boot, and
/// installs [`APT_GUARD`] into `etc` (still `etc` at this point). A tree
/// without dpkg is left as it is.
fn dpkg_into_image(dir: &Path) -> Result<()> {
    let from = dir.join("var/lib/dpkg");
    let to = dir.join(DPKG_DATABASE);
    let is_dir = fs::symlink_metadata(&from).is_ok_and(|m| m.is_dir());
    if !is_dir {
        return Ok(());
    }
    if to.exists() {
        return Err(bad(
            dir,
            format!("both var/lib/dpkg and {DPKG_DATABASE} exist; cannot move the dpkg database"),
        ));
    }
    fs::create_dir_all(to.parent().unwrap_or(dir)).io_ctx("create", &to)?;
    fs::rename(&from, &to).io_ctx("move the dpkg database to", &to)?;
    let conf = dir.join("usr/lib/tmpfiles.d/strata-dpkg.conf");
    fs::create_dir_all(conf.parent().unwrap_or(dir)).io_ctx("create", &conf)?;
    fs::write(&conf, DPKG_TMPFILES).io_ctx("write", &conf)?;
    let etc = if dir.join("etc").is_dir() {
        "etc"
    } else {
        "usr/etc"
    };
    let guard = dir.join(etc).join("apt/apt.conf.d/50strata-read-only");
    if guard.parent().is_some_and(Path::is_dir) {
        fs::write(&guard, APT_GUARD).io_ctx("write", &guard)?;
    }
    Ok(())
}

/// Makes `name` (`opt`, `usr/local`) a symlink to `target` under `/var`,
/// moving what it held to `var/<under_var>` so [`empty_var`] keeps it.
fn link_into_var(dir: &Path, name: &str, target: &str, under_var: &str) -> Result<()> {
    let path = dir.join(name);
    let Ok(m) = fs::symlink_metadata(&path) else {
        return Ok(());
    };
    if !m.is_dir() {
        return Ok(());
    }
    let dest = dir.join("var").join(under_var);
    if dest.exists() {
        fs::remove_dir(&dest).io_ctx("remove (it must be empty)", &dest)?;
    }
    fs::create_dir_all(dir.join("var")).io_ctx("create", dir.join("var"))?;
    fs::rename(&path, &dest).io_ctx("move to", &dest)?;
    std::os::unix::fs::symlink(target, &path).io_ctx("symlink", &path)?;
    Ok(())
}

/// Prepares `dir` in place; `strata` and `prepare_root` are the binaries to install.
pub fn run(dir: &Path, strata: &Path, prepare_root: &Path) -> Result<Prepared> {
    let kver = kernel_version(dir)?;
    install_file(strata, &dir.join("usr/bin/strata"), 0o755)?;
    install_file(
        prepare_root,
        &dir.join("usr/lib/strata/strata-prepare-root"),
        0o755,
    )?;
    write_script(&dir.join("usr/share/initramfs-tools/hooks/strata"), HOOK)?;
    write_script(
        &dir.join("usr/share/initramfs-tools/scripts/init-bottom/strata"),
        INIT_BOTTOM,
    )?;
    crate::units::install(dir)?;
    // The initramfs is built while /etc is still /etc: initramfs-tools reads its config there.
    let etc = dir.join("etc");
    let initramfs_rebuilt = etc.is_dir() && dir.join("usr/sbin/update-initramfs").exists();
    if initramfs_rebuilt {
        rebuild_initramfs(dir, &kver)?;
    }
    let modules = dir.join("usr/lib/modules").join(&kver);
    fs::create_dir_all(&modules).io_ctx("create", &modules)?;
    for (from, to) in [
        (format!("boot/vmlinuz-{kver}"), "vmlinuz"),
        (format!("boot/initrd.img-{kver}"), "initramfs.img"),
    ] {
        let src = dir.join(&from);
        if src.is_file() {
            fs::rename(&src, modules.join(to)).io_ctx("move kernel file", &src)?;
        }
    }
    if !modules.join("initramfs.img").is_file() {
        return Err(bad(
            dir,
            format!("no initramfs for kernel {kver} (boot/initrd.img-{kver})"),
        ));
    }
    for link in [
        "vmlinuz",
        "vmlinuz.old",
        "initrd.img",
        "initrd.img.old",
        "boot/vmlinuz",
        "boot/initrd.img",
        "boot/vmlinuz.old",
        "boot/initrd.img.old",
    ] {
        let p = dir.join(link);
        if fs::symlink_metadata(&p).is_ok_and(|m| m.file_type().is_symlink()) {
            fs::remove_file(&p).io_ctx("remove", &p)?;
        }
    }
    dpkg_into_image(dir)?;
    if etc.is_dir() {
        let usr_etc = dir.join("usr/etc");
        if usr_etc.exists() {
            return Err(bad(dir, "both etc and usr/etc exist; cannot move etc"));
        }
        fs::rename(&etc, &usr_etc).io_ctx("move /etc to", &usr_etc)?;
    }
    link_into_var(dir, "opt", "var/opt", "opt")?;
    link_into_var(dir, "usr/local", "../var/usrlocal", "usrlocal")?;
    empty_var(dir)?;
    for d in ["sysroot", "efi"] {
        let p = dir.join(d);
        if !p.exists() {
            fs::create_dir(&p).io_ctx("create", &p)?;
        }
    }
    Ok(Prepared {
        kernel_version: kver,
        initramfs_rebuilt,
    })
}
