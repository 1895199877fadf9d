//! Writing an image to disk: an OCI image layout directory (`oci-layout`,
//! `index.json`, `blobs/sha256/…`), or the same as one tar file
//! (`oci-archive`, what `podman load` and `skopeo` read). Each is written
//! aside, in the destination's directory, synced, and renamed into place
//! whole (a directory with `RENAME_NOREPLACE`): a crash leaves the old
//! state or the new, never half an image; at worst a `.strata-export-*`
//! beside it. An image with a file others may not read (`/etc/shadow`)
//! is readable by its owner only; else by everyone.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use strata_store::{Checksum, Repo};

use crate::error::{Error, IoContext, Result};
use crate::image::{self, COMMIT_LABEL, CONFIG_MEDIA_TYPE, Compression, Descriptor, REF_NAME};
use crate::layer::{self, LayerStats};

/// The name an image of `commit` gets by default, and the one a toolbox
/// looks for: `strata:<commit>`.
pub fn default_tag(commit: &Checksum) -> String {
    format!("strata:{commit}")
}

/// What an export is asked for beyond the commit.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The tag the index gives the image (`org.opencontainers.image.ref.name`).
    pub tag: String,
    /// How the layer is compressed.
    pub compression: Compression,
    /// RFC 3339 time for the configuration's `created`: the commit's time.
    pub created: String,
    /// OCI architecture name ([`image::host_architecture`] by default).
    pub architecture: String,
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The manifest's digest: the image's identity in a registry.
    pub manifest_digest: String,
    /// The configuration's digest: the image ID podman shows.
    pub config_digest: String,
    /// The layer blob's digest.
    pub layer_digest: String,
    /// The uncompressed layer's digest (`rootfs.diff_ids`).
    pub diff_id: String,
    /// The layer blob's size in bytes.
    pub layer_size: u64,
    /// What the layer holds.
    pub stats: LayerStats,
}

/// Writes `commit` as an OCI image layout at `dest`, which must not exist.
pub fn export_dir(
    repo: &Repo,
    commit: &Checksum,
    dest: &Path,
    opts: &ExportOptions,
) -> Result<Exported> {
    let parent = parent_of(dest)?;
    let taken = || {
        fs::symlink_metadata(dest)
            .is_ok()
            .then(|| Error::BadDestination {
                path: dest.to_owned(),
                what: "exists already; give a path that does not",
            })
    };
    if let Some(e) = taken() {
        return Err(e);
    }
    let tmp = aside(&parent)?;
    let exported = write_layout(repo, commit, tmp.path(), opts)?;
    let mode = if exported.stats.private { 0o700 } else { 0o755 };
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode))
        .io_ctx("set the mode of", tmp.path())?;
    sync_dir(tmp.path())?;
    rustix::fs::renameat_with(
        rustix::fs::CWD,
        tmp.path(),
        rustix::fs::CWD,
        dest,
        rustix::fs::RenameFlags::NOREPLACE,
    )
    .map_err(|e| match taken() {
        Some(taken) => taken,
        None => Error::Io {
            action: "move the image into place at",
            path: dest.to_owned(),
            source: e.into(),
        },
    })?;
    // In place: the temporary directory is the image now.
    let _ = tmp.keep();
    sync_dir(&parent)?;
    Ok(exported)
}

/// Writes `commit` as an `oci-archive` (a tar of the layout) at `dest`,
/// replacing what is there.
pub fn export_archive(
    repo: &Repo,
    commit: &Checksum,
    dest: &Path,
    opts: &ExportOptions,
) -> Result<Exported> {
    let parent = parent_of(dest)?;
    let tmp = aside(&parent)?;
    let exported = write_layout(repo, commit, tmp.path(), opts)?;
    let out = tempfile::Builder::new()
        .prefix(".strata-export-")
        .tempfile_in(&parent)
        .io_ctx("create a file in", &parent)?;
    let mut tar = tar::Builder::new(BufWriter::new(out));
    append_layout(&mut tar, tmp.path()).io_ctx("write the archive in", &parent)?;
    let out = tar
        .into_inner()
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()))
        .io_ctx("write the archive in", &parent)?;
    let mode = if exported.stats.private { 0o600 } else { 0o644 };
    fs::set_permissions(out.path(), fs::Permissions::from_mode(mode))
        .io_ctx("set the mode of", out.path())?;
    out.as_file().sync_all().io_ctx("sync", out.path())?;
    out.persist(dest)
        .map_err(|e| e.error)
        .io_ctx("move the archive into place at", dest)?;
    sync_dir(&parent)?;
    Ok(exported)
}

/// The directory a destination is made in (for the rename to be atomic).
fn parent_of(dest: &Path) -> Result<PathBuf> {
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    if dest.file_name().is_none() {
        return Err(Error::BadDestination {
            path: dest.to_owned(),
            what: "names no file",
        });
    }
    if !parent.is_dir() {
        return Err(Error::BadDestination {
            path: dest.to_owned(),
            what: "its directory does not exist",
        });
    }
    Ok(parent)
}

/// Makes a directory's entries durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .io_ctx("sync the directory", dir)
}

fn aside(parent: &Path) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(".strata-export-")
        .tempdir_in(parent)
        .io_ctx("create a directory in", parent)
}

/// A writer that counts and hashes what passes through it.
struct Digesting<W> {
    inner: W,
    hasher: Sha256,
    len: u64,
}

impl<W: Write> Digesting<W> {
    fn new(inner: W) -> Self {
        Digesting {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.len)
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes the layout of `commit`'s image into the empty directory `dir`.
pub fn write_layout(
    repo: &Repo,
    commit: &Checksum,
    dir: &Path,
    opts: &ExportOptions,
) -> Result<Exported> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).io_ctx("create", &blobs)?;

    // The layer: tar → (diff_id) → compression → (digest) → file.
    let file = tempfile::NamedTempFile::new_in(&blobs).io_ctx("create a file in", &blobs)?;
    let outer = Digesting::new(BufWriter::with_capacity(1 << 20, file));
    let (stats, outer, diff_id) = match opts.compression {
        Compression::None => {
            let mut inner = Digesting::new(outer);
            let stats = layer::write_layer(repo, commit, &mut inner)?;
            let (outer, diff_id, _) = inner.finish();
            (stats, outer, diff_id)
        }
        Compression::Gzip => {
            let gz = flate2::write::GzEncoder::new(outer, flate2::Compression::new(GZIP_LEVEL));
            let mut inner = Digesting::new(gz);
            let stats = layer::write_layer(repo, commit, &mut inner)?;
            let (gz, diff_id, _) = inner.finish();
            let outer = gz.finish().io_ctx("compress the layer in", &blobs)?;
            (stats, outer, diff_id)
        }
    };
    let (buffered, layer_digest, layer_size) = outer.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| e.into_error())
        .io_ctx("write the layer in", &blobs)?;
    let layer_path = blob_path(dir, &layer_digest);
    let mode = if stats.private { 0o600 } else { 0o644 };
    fs::set_permissions(file.path(), fs::Permissions::from_mode(mode))
        .io_ctx("set the mode of", file.path())?;
    file.as_file().sync_all().io_ctx("sync", file.path())?;
    file.persist(&layer_path)
        .map_err(|e| e.error)
        .io_ctx("move the layer to", &layer_path)?;

    let c = repo.load_commit(commit)?;
    let mut labels = BTreeMap::from([
        (COMMIT_LABEL.to_owned(), commit.to_hex()),
        (
            "org.opencontainers.image.revision".to_owned(),
            commit.to_hex(),
        ),
    ]);
    if let Some(v) = c.version() {
        labels.insert("org.opencontainers.image.version".to_owned(), v.to_owned());
    }
    let shell = if repo.lookup(commit, "usr/bin/bash").is_ok() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let info = image::ImageInfo {
        created: opts.created.clone(),
        architecture: opts.architecture.clone(),
        cmd: vec![shell.to_owned()],
        labels: labels.clone(),
        created_by: format!("strata export {commit}"),
    };
    let config = write_blob(dir, CONFIG_MEDIA_TYPE, &image::config(&info, &diff_id))?;
    let layer = Descriptor {
        media_type: opts.compression.layer_media_type().to_owned(),
        digest: layer_digest.clone(),
        size: layer_size,
        annotations: BTreeMap::new(),
    };
    let annotations = labels;
    let mut manifest = write_blob(
        dir,
        image::MANIFEST_MEDIA_TYPE,
        &image::manifest(&config, &layer, &annotations),
    )?;
    let manifest_digest = manifest.digest.clone();
    manifest
        .annotations
        .insert(REF_NAME.to_owned(), opts.tag.clone());
    write_synced(&dir.join("index.json"), &image::index(&manifest))?;
    write_synced(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    sync_dir(&blobs)?;
    Ok(Exported {
        manifest_digest,
        config_digest: config.digest,
        layer_digest,
        diff_id,
        layer_size,
        stats,
    })
}

/// gzip's level for layers: 6, the level `podman push` and `docker` use.
const GZIP_LEVEL: u32 = 6;

fn blob_path(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// Writes a small file and syncs it.
fn write_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = File::create(path).io_ctx("create", path)?;
    f.write_all(data)
        .and_then(|()| f.sync_all())
        .io_ctx("write", path)
}

fn write_blob(dir: &Path, media_type: &str, data: &[u8]) -> Result<Descriptor> {
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(data)));
    let path = blob_path(dir, &digest);
    write_synced(&path, data)?;
    Ok(Descriptor {
        media_type: media_type.to_owned(),
        digest,
        size: data.len() as u64,
        annotations: BTreeMap::new(),
    })
}

/// Appends the layout in `dir` to `tar`: the marker, the index, the blobs
/// in name order; owner root, mode 0644 (0755 for directories), time 0.
fn append_layout<W: Write>(tar: &mut tar::Builder<W>, dir: &Path) -> std::io::Result<()> {
    let entry = |kind: tar::EntryType, mode: u32, size: u64| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        h
    };
    for name in ["oci-layout", "index.json"] {
        let data = fs::read(dir.join(name))?;
        tar.append_data(
            &mut entry(tar::EntryType::Regular, 0o644, data.len() as u64),
            name,
            &data[..],
        )?;
    }
    for d in ["blobs/", "blobs/sha256/"] {
        tar.append_data(
            &mut entry(tar::EntryType::Directory, 0o755, 0),
            d,
            std::io::empty(),
        )?;
    }
    let mut blobs: Vec<_> = fs::read_dir(dir.join("blobs/sha256"))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    blobs.sort();
    for name in blobs {
        let path = dir.join("blobs/sha256").join(&name);
        let f = File::open(&path)?;
        let size = f.metadata()?.len();
        tar.append_data(
            &mut entry(tar::EntryType::Regular, 0o644, size),
            Path::new("blobs/sha256").join(&name),
            f,
        )?;
    }
    tar.finish()
}
