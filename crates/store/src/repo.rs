//! Opening, creating and reading a repository.
//!
//! ```text
//! <repo>/
//!   config                 [core] repo_version=1, mode=bare|bare-user|archive-z2
//!   objects/XX/YYYY….ext   loose objects, XX the first two hex digits
//!   refs/heads/<ref>       local branches: a checksum and a newline
//!   refs/remotes/<r>/<ref> branches pulled from remote <r>
//!   refs/mirrors/
//!   state/<csum>.commitpartial   commits whose objects are not all present
//!   tmp/                   staging for writes, renamed into objects/
//!   extensions/
//! ```

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::config::Config;
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::objects::{Commit, DirMeta, DirTree, FileHeader, ObjectType, file_header};
use crate::xattr;

/// How content objects are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoMode {
    /// Files as themselves, with real ownership, mode and xattrs.
    Bare,
    /// Files as plain files; metadata in the `user.ostreemeta` xattr.
    BareUser,
    /// Compressed `.filez` objects, for serving over HTTP.
    Archive,
}

impl RepoMode {
    /// The name written to the config file (as ostree writes it).
    pub fn config_name(self) -> &'static str {
        match self {
            RepoMode::Bare => "bare",
            RepoMode::BareUser => "bare-user",
            RepoMode::Archive => "archive-z2",
        }
    }
}

impl std::str::FromStr for RepoMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bare" => Ok(RepoMode::Bare),
            "bare-user" => Ok(RepoMode::BareUser),
            "archive" | "archive-z2" => Ok(RepoMode::Archive),
            "bare-user-only" | "bare-split-xattrs" => {
                Err(format!("repository mode {s:?} is not supported yet"))
            }
            _ => Err(format!(
                "unknown repository mode {s:?} (expected bare, bare-user or archive)"
            )),
        }
    }
}

/// An open repository.
#[derive(Debug)]
pub struct Repo {
    path: PathBuf,
    /// `objects/`, open: lookups relative to it skip walking the path.
    objects: fs::File,
    mode: RepoMode,
    config: Config,
}

const DIRS: &[&str] = &[
    "objects",
    "refs",
    "refs/heads",
    "refs/remotes",
    "refs/mirrors",
    "tmp",
    "tmp/cache",
    "state",
    "extensions",
];

impl Repo {
    /// Creates a repository at `path` (which may exist, empty or not yet).
    pub fn init(path: &Path, mode: RepoMode) -> Result<Repo> {
        let config_path = path.join("config");
        if config_path.exists() {
            return Err(Error::BadInput {
                path: path.to_owned(),
                what: "a repository already exists here".into(),
            });
        }
        fs::create_dir_all(path).io_ctx("create repository directory", path)?;
        for d in DIRS {
            let p = path.join(d);
            fs::create_dir_all(&p).io_ctx("create", &p)?;
        }
        let mut config = Config::default();
        config.set("core", "repo_version", "1");
        config.set("core", "mode", mode.config_name());
        durable::write_file(&config_path, config.to_string().as_bytes(), 0o644)?;
        Repo::open(path)
    }

    /// Opens the repository at `path`.
    pub fn open(path: &Path) -> Result<Repo> {
        let config_path = path.join("config");
        let text = fs::read_to_string(&config_path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::BadInput {
                    path: path.to_owned(),
                    what: "not a repository (no config file); create one with `strata init`".into(),
                }
            } else {
                Error::Io {
                    action: "read",
                    path: config_path.clone(),
                    source,
                }
            }
        })?;
        let config = Config::parse(&text).map_err(|what| Error::BadInput {
            path: config_path.clone(),
            what,
        })?;
        let version = config.get("core", "repo_version").unwrap_or("");
        if version != "1" {
            return Err(Error::BadInput {
                path: config_path,
                what: format!("unsupported repo_version {version:?}"),
            });
        }
        let mode = config
            .get("core", "mode")
            .unwrap_or("bare")
            .parse()
            .map_err(|what| Error::BadInput {
                path: config_path.clone(),
                what,
            })?;
        let objects_path = path.join("objects");
        let objects = rustix::fs::open(
            &objects_path,
            rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .map(fs::File::from)
        .map_err(std::io::Error::from)
        .io_ctx("open", &objects_path)?;
        Ok(Repo {
            path: path.to_owned(),
            objects,
            mode,
            config,
        })
    }

    /// The repository's directory, as it was opened.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How content objects are stored, from the config's `core.mode`.
    pub fn mode(&self) -> RepoMode {
        self.mode
    }

    /// The parsed `config` file, as last read or written.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Replaces the config file durably.
    pub fn write_config(&mut self, config: Config) -> Result<()> {
        durable::write_file(
            &self.path.join("config"),
            config.to_string().as_bytes(),
            0o644,
        )?;
        self.config = config;
        Ok(())
    }

    /// Path of a loose object, relative to the repository.
    pub fn object_relpath(&self, checksum: &Checksum, kind: ObjectType) -> String {
        crate::objects::loose_path(checksum, kind, self.mode == RepoMode::Archive)
    }

    /// Absolute path of a loose object.
    pub fn object_path(&self, checksum: &Checksum, kind: ObjectType) -> PathBuf {
        self.path.join(self.object_relpath(checksum, kind))
    }

    /// Whether the object is present as a loose object; its content is not
    /// checked.
    pub fn has_object(&self, checksum: &Checksum, kind: ObjectType) -> bool {
        let rel = self.object_relpath(checksum, kind);
        rustix::fs::statat(
            &self.objects,
            Self::in_objects(&rel),
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
        )
        .is_ok()
    }

    /// The open `objects/` directory.
    pub(crate) fn objects_dir(&self) -> &fs::File {
        &self.objects
    }

    /// `XX/YYYY….ext` of an [`Repo::object_relpath`]: the path inside `objects/`.
    pub(crate) fn in_objects(relpath: &str) -> &str {
        relpath.strip_prefix("objects/").unwrap_or(relpath)
    }

    /// Reads a metadata object and checks its bytes against its name.
    pub fn read_meta(&self, checksum: &Checksum, kind: ObjectType) -> Result<Vec<u8>> {
        let path = self.object_path(checksum, kind);
        let mut f =
            File::open(&path).map_err(|source| read_error(source, checksum, kind, &path))?;
        let max = crate::objects::MAX_METADATA_SIZE;
        let mut data = Vec::new();
        (&mut f)
            .take(max + 1)
            .read_to_end(&mut data)
            .io_ctx("read", &path)?;
        if data.len() as u64 > max {
            return Err(Error::Corrupt {
                checksum: *checksum,
                kind,
                what: format!(
                    "larger than the {} MiB limit of a metadata object",
                    max >> 20
                ),
            });
        }
        if kind != ObjectType::CommitMeta && Checksum::of(&data) != *checksum {
            return Err(Error::Corrupt {
                checksum: *checksum,
                kind,
                what: "checksum mismatch".into(),
            });
        }
        Ok(data)
    }

    /// Reads, verifies and parses a commit object.
    pub fn load_commit(&self, checksum: &Checksum) -> Result<Commit> {
        let data = self.read_meta(checksum, ObjectType::Commit)?;
        Commit::from_bytes(&data).map_err(|source| Error::Format {
            path: self.object_path(checksum, ObjectType::Commit),
            source,
        })
    }

    /// Reads, verifies and parses a dirtree object.
    pub fn load_dirtree(&self, checksum: &Checksum) -> Result<DirTree> {
        let data = self.read_meta(checksum, ObjectType::DirTree)?;
        DirTree::from_bytes(&data).map_err(|source| Error::Format {
            path: self.object_path(checksum, ObjectType::DirTree),
            source,
        })
    }

    /// Reads, verifies and parses a dirmeta object.
    pub fn load_dirmeta(&self, checksum: &Checksum) -> Result<DirMeta> {
        let data = self.read_meta(checksum, ObjectType::DirMeta)?;
        DirMeta::from_bytes(&data).map_err(|source| Error::Format {
            path: self.object_path(checksum, ObjectType::DirMeta),
            source,
        })
    }

    /// Reads a content object: its header and its content bytes (empty for
    /// symlinks). Does not verify the checksum; see `fsck`.
    pub fn load_file(&self, checksum: &Checksum) -> Result<(FileHeader, Vec<u8>)> {
        let path = self.object_path(checksum, ObjectType::File);
        let missing = |source| read_error(source, checksum, ObjectType::File, &path);
        let fmt_err = |source| Error::Format {
            path: path.clone(),
            source,
        };
        match self.mode {
            RepoMode::Archive => {
                let data = fs::read(&path).map_err(missing)?;
                let (header, compressed) = file_header::split_prefixed(&data).map_err(fmt_err)?;
                let (header, size) = FileHeader::from_archive(header).map_err(fmt_err)?;
                if header.is_symlink() {
                    return Ok((header, Vec::new()));
                }
                let content =
                    crate::archive::inflate(compressed, size).map_err(|what| Error::Corrupt {
                        checksum: *checksum,
                        kind: ObjectType::File,
                        what,
                    })?;
                Ok((header, content))
            }
            RepoMode::Bare => {
                let meta = fs::symlink_metadata(&path).map_err(missing)?;
                let xattrs = xattr::read(&path)?;
                let mut header = FileHeader {
                    uid: meta.uid(),
                    gid: meta.gid(),
                    mode: meta.mode(),
                    symlink_target: String::new(),
                    xattrs,
                };
                if meta.file_type().is_symlink() {
                    let target = fs::read_link(&path).io_ctx("read symlink", &path)?;
                    header.symlink_target = target
                        .to_str()
                        .ok_or_else(|| Error::BadInput {
                            path: path.clone(),
                            what: "symlink target is not UTF-8".into(),
                        })?
                        .to_owned();
                    return Ok((header, Vec::new()));
                }
                let content = fs::read(&path).io_ctx("read", &path)?;
                Ok((header, content))
            }
            RepoMode::BareUser => {
                let mut f = File::open(&path).map_err(missing)?;
                let meta =
                    xattr::get_fd(&f, file_header::BARE_USER_XATTR, &path)?.ok_or_else(|| {
                        Error::Corrupt {
                            checksum: *checksum,
                            kind: ObjectType::File,
                            what: format!("no {} xattr", file_header::BARE_USER_XATTR),
                        }
                    })?;
                let mut header = FileHeader::from_bare_user_meta(&meta).map_err(fmt_err)?;
                let mut content = Vec::new();
                f.read_to_end(&mut content).io_ctx("read", &path)?;
                if header.is_symlink() {
                    // ostree stores the target with its terminating NUL.
                    if content.last() == Some(&0) {
                        content.pop();
                    }
                    header.symlink_target =
                        String::from_utf8(content).map_err(|_| Error::BadInput {
                            path: path.clone(),
                            what: "symlink target is not UTF-8".into(),
                        })?;
                    return Ok((header, Vec::new()));
                }
                Ok((header, content))
            }
        }
    }

    /// A content object's header and content size, without reading the content.
    pub fn load_file_header(&self, checksum: &Checksum) -> Result<(FileHeader, u64)> {
        let path = self.object_path(checksum, ObjectType::File);
        let missing = |source| read_error(source, checksum, ObjectType::File, &path);
        match self.mode {
            RepoMode::Archive => {
                let mut f = File::open(&path).map_err(missing)?;
                let mut len = [0u8; 8];
                f.read_exact(&mut len).io_ctx("read", &path)?;
                let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let mut header = vec![0u8; n];
                f.read_exact(&mut header).io_ctx("read", &path)?;
                FileHeader::from_archive(&header).map_err(|source| Error::Format {
                    path: path.clone(),
                    source,
                })
            }
            RepoMode::Bare | RepoMode::BareUser => {
                let (header, content) = if self.mode == RepoMode::Bare
                    && fs::symlink_metadata(&path).map_err(missing)?.is_file()
                {
                    let meta = fs::metadata(&path).io_ctx("stat", &path)?;
                    let header = FileHeader {
                        uid: meta.uid(),
                        gid: meta.gid(),
                        mode: meta.mode(),
                        symlink_target: String::new(),
                        xattrs: xattr::read(&path)?,
                    };
                    return Ok((header, meta.len()));
                } else {
                    self.load_file(checksum)?
                };
                Ok((header, content.len() as u64))
            }
        }
    }

    /// A content object as a stream: its header, its content size and a
    /// reader that yields exactly that many bytes, verified against
    /// `checksum` as they are read (a short, long or altered object is an
    /// error from the reader, never silent). For content too large to hold;
    /// symlinks have an empty reader.
    pub fn open_file(&self, checksum: &Checksum) -> Result<(FileHeader, u64, ContentReader)> {
        let path = self.object_path(checksum, ObjectType::File);
        let missing = |source| read_error(source, checksum, ObjectType::File, &path);
        let (header, size, inner): (FileHeader, u64, Box<dyn Read + Send>) = match self.mode {
            RepoMode::Archive => {
                let f = File::open(&path).map_err(missing)?;
                let len = f.metadata().io_ctx("stat", &path)?.len();
                let mut r = std::io::BufReader::new(f);
                let raw = file_header::read_prefixed(&mut r, len, len).map_err(|e| match e {
                    file_header::PrefixError::Io(source) => Error::Io {
                        action: "read",
                        path: path.clone(),
                        source,
                    },
                    file_header::PrefixError::Bad(source) => Error::Format {
                        path: path.clone(),
                        source,
                    },
                })?;
                let (header, size) =
                    FileHeader::from_archive(&raw).map_err(|source| Error::Format {
                        path: path.clone(),
                        source,
                    })?;
                let inner: Box<dyn Read + Send> = if header.is_symlink() {
                    Box::new(std::io::empty())
                } else {
                    Box::new(flate2::bufread::DeflateDecoder::new(r))
                };
                (header, size, inner)
            }
            RepoMode::BareUser => {
                // The metadata from the open file, the content streamed from it.
                let f = File::open(&path).map_err(missing)?;
                let meta = xattr::get_fd(&f, file_header::BARE_USER_XATTR, &path)?;
                let header = meta
                    .map(|m| {
                        FileHeader::from_bare_user_meta(&m).map_err(|source| Error::Format {
                            path: path.clone(),
                            source,
                        })
                    })
                    .transpose()?;
                match header {
                    Some(h) if !h.is_symlink() => {
                        let size = f.metadata().io_ctx("stat", &path)?.len();
                        (h, size, Box::new(f))
                    }
                    // A symlink (its target is the content) or an error
                    // worth the full message: as load_file says it.
                    _ => (self.load_file(checksum)?.0, 0, Box::new(std::io::empty())),
                }
            }
            RepoMode::Bare => {
                if fs::symlink_metadata(&path).map_err(missing)?.is_file() {
                    let (header, size) = self.load_file_header(checksum)?;
                    let f = File::open(&path).map_err(missing)?;
                    (header, size, Box::new(f))
                } else {
                    let (header, _) = self.load_file(checksum)?;
                    (header, 0, Box::new(std::io::empty()))
                }
            }
        };
        let size = if header.is_symlink() { 0 } else { size };
        let hasher = header.hasher();
        Ok((
            header,
            size,
            ContentReader {
                inner,
                left: size,
                hasher: Some(hasher),
                checksum: *checksum,
                path,
            },
        ))
    }

    /// Whether `state/<commit>.commitpartial` marks the commit incomplete.
    pub fn is_partial(&self, commit: &Checksum) -> bool {
        self.partial_marker(commit).exists()
    }

    pub(crate) fn partial_marker(&self, commit: &Checksum) -> PathBuf {
        self.path
            .join("state")
            .join(format!("{commit}.commitpartial"))
    }

    /// Marks a commit as partial (some of its objects are missing).
    pub fn mark_partial(&self, commit: &Checksum) -> Result<()> {
        durable::write_file(&self.partial_marker(commit), b"", 0o644)
    }

    /// Removes the partial mark of a commit, once all its objects are present.
    pub fn clear_partial(&self, commit: &Checksum) -> Result<()> {
        let p = self.partial_marker(commit);
        match fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).io_ctx("remove", &p),
        }
    }
}

/// A failed read of an object: missing when it does not exist, an I/O
/// error naming the path otherwise.
fn read_error(source: std::io::Error, checksum: &Checksum, kind: ObjectType, path: &Path) -> Error {
    if source.kind() == std::io::ErrorKind::NotFound {
        Error::MissingObject {
            checksum: *checksum,
            kind,
        }
    } else {
        Error::Io {
            action: "read",
            path: path.to_owned(),
            source,
        }
    }
}

/// The content of one object, from [`Repo::open_file`]: ends with an error
/// when the object holds fewer or more bytes than its header says, or
/// bytes whose checksum is not the object's name.
pub struct ContentReader {
    inner: Box<dyn Read + Send>,
    left: u64,
    hasher: Option<crate::checksum::Hasher>,
    checksum: Checksum,
    path: PathBuf,
}

/// Why a [`ContentReader`] stopped: the object is corrupt. It is the inner
/// error of the `InvalidData` error the reader returns, so a caller that
/// reports the object itself (fsck) can take just [`ContentCorrupt::what`].
#[derive(Debug)]
pub struct ContentCorrupt {
    /// The object's file.
    pub path: PathBuf,
    /// The object's name.
    pub checksum: Checksum,
    /// What is wrong, as in "checksum mismatch: its content hashes to …".
    pub what: String,
}

impl std::fmt::Display for ContentCorrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: object {} is corrupt: {}",
            self.path.display(),
            self.checksum,
            self.what
        )
    }
}

impl std::error::Error for ContentCorrupt {}

impl ContentCorrupt {
    /// The corruption behind `e`, if a [`ContentReader`] returned it.
    pub fn of(e: &std::io::Error) -> Option<&ContentCorrupt> {
        e.get_ref()?.downcast_ref()
    }
}

impl ContentReader {
    fn corrupt(&self, what: String) -> std::io::Error {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            ContentCorrupt {
                path: self.path.clone(),
                checksum: self.checksum,
                what,
            },
        )
    }
}

impl Read for ContentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // The end: nothing may follow, and the checksum must match.
            let Some(hasher) = self.hasher.take() else {
                return Ok(0);
            };
            let mut extra = [0u8; 1];
            if self
                .inner
                .read(&mut extra)
                .map_err(|e| self.corrupt(e.to_string()))?
                != 0
            {
                return Err(self.corrupt("more content than its header says".into()));
            }
            let got = hasher.finish();
            if got != self.checksum {
                return Err(self.corrupt(format!("checksum mismatch: its content hashes to {got}")));
            }
            return Ok(0);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want]) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => return Err(e),
            r => r.map_err(|e| self.corrupt(e.to_string()))?,
        };
        if n == 0 {
            return Err(self.corrupt(format!("{} bytes short of its size", self.left)));
        }
        if let Some(h) = self.hasher.as_mut() {
            h.update(&buf[..n]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}
