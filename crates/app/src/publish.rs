//! Publishing an app or runtime directory in Flatpak's layout as a commit
//! that Flatpak installs as its own: what `flatpak build-export` makes.
//!
//! The directory holds `metadata`, `files/` and, for apps, `export/`
//! (nothing else: a build directory's `var/` is not published). The
//! commit goes to `app/ID/ARCH/BRANCH` (or `runtime/…`), with ostree's
//! canonical permissions (every owner root, no setuid bits, no xattrs, as
//! Flatpak commits), and the commit metadata Flatpak reads:
//! `xa.metadata` (the file's text), `xa.installed-size` and
//! `xa.download-size` (big-endian, as Flatpak writes them), and the ref
//! binding.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use strata_store::gvariant::Value;
use strata_store::write::commit::{CommitOptions, Source, commit};
use strata_store::write::dir::DirImportOptions;
use strata_store::{Checksum, RefName, Repo};

use crate::error::{Error, IoContext, Result};
use crate::flatpak_ref::{FlatpakRef, validate_arch, validate_branch};
use crate::metadata::{self, Metadata};

/// Commit metadata key: the `metadata` file's text.
pub const XA_METADATA: &str = "xa.metadata";
/// Commit metadata key: bytes the checkout takes (big-endian u64).
pub const XA_INSTALLED_SIZE: &str = "xa.installed-size";
/// Commit metadata key: bytes a pull downloads (big-endian u64).
pub const XA_DOWNLOAD_SIZE: &str = "xa.download-size";

/// What [`publish`] makes.
#[derive(Debug, Clone)]
pub struct PublishOptions {
    /// The arch part of the ref.
    pub arch: String,
    /// The branch part of the ref.
    pub branch: String,
    /// The commit's subject; default: `Publish <ID>`.
    pub subject: Option<String>,
    /// Seconds since the epoch; `None` for now.
    pub timestamp: Option<u64>,
}

/// What [`publish`] did.
#[derive(Debug, Clone)]
pub struct Published {
    /// The ref the commit is on.
    pub flatpak_ref: FlatpakRef,
    /// The commit.
    pub commit: Checksum,
    /// The directory's metadata.
    pub metadata: Metadata,
    /// Bytes of its files.
    pub installed_size: u64,
}

/// A size as Flatpak stores it in commit metadata: the big-endian value
/// in a `t`.
pub fn size_value(n: u64) -> Value {
    Value::Uint64(u64::from_ne_bytes(n.to_be_bytes()))
}

/// A size read back from [`size_value`]'s form.
pub fn size_of(v: &Value) -> Option<u64> {
    match v {
        Value::Uint64(n) => Some(u64::from_be_bytes(n.to_ne_bytes())),
        _ => None,
    }
}

/// Bytes of the regular files under `dir` (Flatpak's installed size).
fn tree_size(dir: &Path) -> Result<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).ctx("read directory", &d)? {
            let e = e.ctx("read directory", &d)?;
            let m = e.metadata().ctx("stat", e.path())?;
            if m.is_dir() {
                stack.push(e.path());
            } else if m.is_file() {
                total += m.size();
            }
        }
    }
    Ok(total)
}

/// Commits the app or runtime at `dir` into `repo` (see the module docs).
pub fn publish(repo: &Repo, dir: &Path, opts: &PublishOptions) -> Result<Published> {
    validate_arch(&opts.arch)?;
    validate_branch(&opts.branch)?;
    let meta_path = dir.join("metadata");
    let text = fs::read_to_string(&meta_path).ctx("read", &meta_path)?;
    let meta = metadata::parse(&text, &meta_path.display().to_string())?;
    if !dir.join("files").is_dir() {
        return Err(Error::Refused(format!(
            "{}: no files/ directory (an app's files go in files/, a runtime's /usr in files/)",
            dir.display()
        )));
    }
    for e in fs::read_dir(dir).ctx("read directory", dir)? {
        let name = e.ctx("read directory", dir)?.file_name();
        if !matches!(name.to_str(), Some("metadata" | "files" | "export")) {
            return Err(Error::Refused(format!(
                "{}: only metadata, files/ and export/ are published; remove {:?} or publish a directory without it",
                dir.display(),
                name
            )));
        }
    }
    let flatpak_ref = FlatpakRef::new(meta.kind, &meta.name, &opts.arch, &opts.branch)?;
    let installed_size = tree_size(dir)?;
    let branch = RefName::parse(&flatpak_ref.to_string())?;
    let result = commit(
        repo,
        &branch,
        &Source::Dir(
            dir.to_owned(),
            DirImportOptions {
                skip_special: false,
                canonical_permissions: true,
            },
        ),
        &CommitOptions {
            subject: opts
                .subject
                .clone()
                .unwrap_or_else(|| format!("Publish {}", meta.name)),
            body: String::new(),
            timestamp: opts.timestamp,
            metadata: vec![
                (XA_METADATA.to_owned(), Value::str(text.as_str())),
                (XA_INSTALLED_SIZE.to_owned(), size_value(installed_size)),
                // Compression is the server's business; the files' size
                // bounds what a pull downloads.
                (XA_DOWNLOAD_SIZE.to_owned(), size_value(installed_size)),
            ],
            parent: Default::default(),
            no_bindings: false,
        },
    )?;
    Ok(Published {
        flatpak_ref,
        commit: result.checksum,
        metadata: meta,
        installed_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_stored_big_endian() {
        let v = size_value(0x0102);
        let Value::Uint64(raw) = v else { panic!() };
        // Serialized little-endian, the bytes read 00 .. 01 02.
        assert_eq!(raw.to_le_bytes(), [0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(size_of(&size_value(12345)), Some(12345));
    }
}
