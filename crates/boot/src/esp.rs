//! The EFI system partition: boot entries and kernels, written atomically.
//!
//! Kernels go into a temporary directory, are fsynced, and the directory is
//! renamed into place: an entry names only complete kernel directories.
//! Entries are written to a temporary name, fsynced and renamed; the entries
//! directory is fsynced after every change. vfat has no atomic rename of
//! directories over existing ones, so a kernel directory is never replaced,
//! only created or removed.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use strata_store::durable;
use strata_store::error::IoContext;

use crate::bls::{Entry, EntryName};

/// Room kept free on the ESP beyond what a kernel needs, for the entries
/// and for the filesystem's own bookkeeping.
const ESP_MARGIN: u64 = 1 << 20;

/// The EFI system partition at a path (its mount point): kernels, initramfs
/// images and boot entries.
#[derive(Debug, Clone)]
pub struct Esp {
    path: PathBuf,
}

impl Esp {
    /// The ESP mounted at `path`.
    pub fn new(path: &Path) -> Self {
        Esp {
            path: path.to_owned(),
        }
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn entries_dir(&self) -> PathBuf {
        self.path.join("loader/entries")
    }

    fn kernels_dir(&self) -> PathBuf {
        self.path.join("strata")
    }

    /// Creates `loader/entries`, `strata/` and a `loader.conf` if missing.
    pub fn ensure_layout(&self) -> Result<()> {
        for d in [self.entries_dir(), self.kernels_dir()] {
            fs::create_dir_all(&d).io_ctx("create", &d)?;
        }
        let conf = self.path.join("loader/loader.conf");
        if !conf.exists() {
            durable::write_file(&conf, b"timeout 3\neditor no\n", 0o644)?;
        }
        Ok(())
    }

    /// Our entries in systemd-boot's boot order, the default first (see
    /// [`EntryName::boot_order`]: bad entries last). Files that are not
    /// ours or do not parse are skipped.
    pub fn entries(&self) -> Result<Vec<(EntryName, Entry)>> {
        let dir = self.entries_dir();
        let mut out = Vec::new();
        for e in list_if_present(&dir)? {
            let e = e.io_ctx("list", &dir)?;
            let Some(name) = e.file_name().to_str().and_then(EntryName::parse) else {
                continue;
            };
            let text = fs::read_to_string(e.path()).io_ctx("read", e.path())?;
            if let Ok(entry) = Entry::parse(&text) {
                out.push((name, entry));
            }
        }
        out.sort_by(|a, b| a.0.boot_order(&b.0));
        Ok(out)
    }

    /// Writes an entry atomically and durably.
    pub fn write_entry(&self, name: &EntryName, entry: &Entry) -> Result<()> {
        let dir = self.entries_dir();
        fs::create_dir_all(&dir).io_ctx("create", &dir)?;
        durable::write_file(
            &dir.join(name.file_name()),
            entry.to_text().as_bytes(),
            0o644,
        )?;
        Ok(())
    }

    /// Removes an entry, durably.
    pub fn remove_entry(&self, name: &EntryName) -> Result<()> {
        let p = self.entries_dir().join(name.file_name());
        match fs::remove_file(&p) {
            Ok(()) => Ok(durable::sync_dir(&self.entries_dir())?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Ok(Err(e).io_ctx("remove boot entry", &p)?),
        }
    }

    /// Bytes free for us on the ESP.
    pub fn free_space(&self) -> Result<u64> {
        let st = rustix::fs::statvfs(&self.path).io_ctx("statvfs", &self.path)?;
        Ok(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Installs a kernel and initramfs as `strata/<dir_name>/` unless that
    /// directory exists already; returns the ESP-relative paths for an entry.
    /// Checks the free space first: too little is an error with nothing written.
    pub fn install_kernel(
        &self,
        dir_name: &str,
        vmlinuz: &Path,
        initramfs: &Path,
    ) -> Result<(String, String)> {
        let rel = (
            format!("/strata/{dir_name}/vmlinuz"),
            format!("/strata/{dir_name}/initramfs.img"),
        );
        let dest = self.kernels_dir().join(dir_name);
        if dest.is_dir() {
            return Ok(rel);
        }
        let need = fs::metadata(vmlinuz).io_ctx("stat", vmlinuz)?.len()
            + fs::metadata(initramfs).io_ctx("stat", initramfs)?.len();
        let free = self.free_space()?;
        if free < need + ESP_MARGIN {
            return Err(Error::EspFull {
                path: self.path.clone(),
                need,
                margin: ESP_MARGIN,
                free,
            });
        }
        let tmp = self
            .kernels_dir()
            .join(format!(".tmp-{dir_name}-{}", durable::unique_suffix()));
        let result = (|| -> Result<()> {
            fs::create_dir_all(&tmp).io_ctx("create", &tmp)?;
            for (src, name) in [(vmlinuz, "vmlinuz"), (initramfs, "initramfs.img")] {
                let to = tmp.join(name);
                let mut out = fs::File::create(&to).io_ctx("create", &to)?;
                let mut input = fs::File::open(src).io_ctx("open", src)?;
                std::io::copy(&mut input, &mut out).io_ctx("copy to", &to)?;
                out.flush().io_ctx("write", &to)?;
                out.sync_all().io_ctx("fsync", &to)?;
            }
            durable::sync_dir(&tmp)?;
            strata_store::fault::point("kernel-copied");
            fs::rename(&tmp, &dest).io_ctx("move into place", &dest)?;
            Ok(durable::sync_dir(&self.kernels_dir())?)
        })();
        if result.is_err() {
            let _ = fs::remove_dir_all(&tmp);
        }
        result.map(|()| rel)
    }

    /// Names of the kernel directories under `strata/`, including leftover
    /// `.tmp-*` copies of an interrupted install (cleanup removes those).
    pub fn kernel_dirs(&self) -> Result<Vec<String>> {
        let dir = self.kernels_dir();
        let mut out = Vec::new();
        for e in list_if_present(&dir)? {
            let e = e.io_ctx("list", &dir)?;
            out.push(e.file_name().to_string_lossy().into_owned());
        }
        out.sort();
        Ok(out)
    }

    /// Removes a kernel directory (or a leftover temporary one).
    pub fn remove_kernel_dir(&self, name: &str) -> Result<()> {
        let p = self.kernels_dir().join(name);
        fs::remove_dir_all(&p).io_ctx("remove", &p)?;
        Ok(durable::sync_dir(&self.kernels_dir())?)
    }

    /// Installs systemd-boot from `efi_binary` as the removable-media
    /// loader (`EFI/BOOT/BOOTX64.EFI`) and as `EFI/systemd/systemd-bootx64.efi`.
    pub fn install_systemd_boot(&self, efi_binary: &Path) -> Result<()> {
        for rel in ["EFI/BOOT/BOOTX64.EFI", "EFI/systemd/systemd-bootx64.efi"] {
            let to = self.path.join(rel);
            if let Some(d) = to.parent() {
                fs::create_dir_all(d).io_ctx("create", d)?;
            }
            let bytes = fs::read(efi_binary).io_ctx("read", efi_binary)?;
            durable::write_file(&to, &bytes, 0o644)?;
        }
        Ok(())
    }
}

/// The entries of `dir`; none when it does not exist.
fn list_if_present(dir: &Path) -> Result<Vec<std::io::Result<fs::DirEntry>>> {
    match fs::read_dir(dir) {
        Ok(l) => Ok(l.collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Ok(Err(e).io_ctx("list", dir)?),
    }
}
