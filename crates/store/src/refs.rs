//! Refs: named pointers to commits, one small file each.
//!
//! `refs/heads/<name>` for local branches, `refs/remotes/<remote>/<name>`
//! for pulled ones (written `remote:name`). A ref file holds 64 hex digits
//! and a newline and changes by atomic rename (see [`crate::durable`]).

use std::fs;
use std::path::{Path, PathBuf};

use crate::checksum::Checksum;
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::repo::Repo;

/// A ref, local or of a remote.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RefName {
    /// The remote whose ref this is; `None` for a local ref.
    pub remote: Option<String>,
    /// The ref's name, such as `os/stable`.
    pub name: String,
}

impl RefName {
    /// Parses `name` or `remote:name`, validating both parts.
    pub fn parse(spec: &str) -> Result<Self> {
        let (remote, name) = match spec.split_once(':') {
            Some((r, n)) => {
                validate_remote_name(r)?;
                (Some(r.to_owned()), n)
            }
            None => (None, spec),
        };
        validate_ref_name(name)?;
        Ok(RefName {
            remote,
            name: name.to_owned(),
        })
    }

    fn relpath(&self) -> PathBuf {
        match &self.remote {
            Some(r) => Path::new("refs/remotes").join(r).join(&self.name),
            None => Path::new("refs/heads").join(&self.name),
        }
    }
}

impl std::fmt::Display for RefName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.remote {
            Some(r) => write!(f, "{r}:{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Checks OSTree's ref syntax: fragments `[\w\d][-._\w\d]*` joined by `/`.
pub fn validate_ref_name(name: &str) -> Result<()> {
    let err = |rule| {
        Err(Error::InvalidRef {
            name: name.to_owned(),
            rule,
        })
    };
    if name.is_empty() {
        return err("a ref name must not be empty");
    }
    for frag in name.split('/') {
        let mut chars = frag.chars();
        match chars.next() {
            None => return err("empty path component (leading, trailing or doubled '/')"),
            Some(c) if !(c.is_ascii_alphanumeric() || c == '_') => {
                return err("each '/'-separated part must start with a letter, digit or '_'");
            }
            _ => {}
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            return err("only letters, digits, '_', '-' and '.' are allowed (parts joined by '/')");
        }
    }
    Ok(())
}

/// Checks a remote name: one fragment of ref syntax.
pub fn validate_remote_name(name: &str) -> Result<()> {
    if name.contains('/') {
        return Err(Error::InvalidRef {
            name: name.to_owned(),
            rule: "a remote name must not contain '/'",
        });
    }
    validate_ref_name(name)
}

impl Repo {
    /// The commit a ref points to, `None` when the ref does not exist.
    pub fn read_ref(&self, r: &RefName) -> Result<Option<Checksum>> {
        let path = self.path().join(r.relpath());
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(Checksum::from_hex(text.trim_end()).map_err(|e| {
                Error::BadInput {
                    path: path.clone(),
                    what: e.to_string(),
                }
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
                Ok(None)
            }
            Err(e) if e.kind() == std::io::ErrorKind::IsADirectory => Ok(None),
            Err(e) => Err(e).io_ctx("read ref", &path),
        }
    }

    /// Points `r` at `commit`, atomically and durably.
    pub fn write_ref(&self, r: &RefName, commit: &Checksum) -> Result<()> {
        let path = self.path().join(r.relpath());
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).io_ctx("create ref directory", parent)?;
        }
        // Deleting `os/stable` leaves the directory `os`; as ostree does,
        // it gives way to a ref `os` unless a ref still lives under it.
        if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            let mut under = Vec::new();
            collect(&path, "", &mut |name| under.push(name))?;
            if let Some(name) = under.first() {
                return Err(Error::BadInput {
                    path,
                    what: format!("cannot write ref {r}: ref {r}/{name} exists under it"),
                });
            }
            fs::remove_dir_all(&path).io_ctx("remove emptied ref directory", &path)?;
        }
        durable::write_file(&path, format!("{commit}\n").as_bytes(), 0o644)
    }

    /// Deletes a ref; an error if it does not exist.
    pub fn delete_ref(&self, r: &RefName) -> Result<()> {
        let path = self.path().join(r.relpath());
        fs::remove_file(&path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::UnknownRev {
                    rev: r.to_string(),
                    why: "no such ref".into(),
                }
            } else {
                Error::Io {
                    action: "delete ref",
                    path: path.clone(),
                    source,
                }
            }
        })?;
        durable::sync_dir(path.parent().unwrap_or(self.path()))
    }

    /// All refs, local and remote, sorted by name.
    pub fn list_refs(&self) -> Result<Vec<(RefName, Checksum)>> {
        let mut out = Vec::new();
        let heads = self.path().join("refs/heads");
        collect(&heads, "", &mut |name| {
            out.push(RefName { remote: None, name })
        })?;
        let remotes = self.path().join("refs/remotes");
        if let Ok(entries) = fs::read_dir(&remotes) {
            for e in entries {
                let e = e.io_ctx("list", &remotes)?;
                let remote = e.file_name().to_string_lossy().into_owned();
                collect(&e.path(), "", &mut |name| {
                    out.push(RefName {
                        remote: Some(remote.clone()),
                        name,
                    })
                })?;
            }
        }
        let mut resolved = Vec::with_capacity(out.len());
        for r in out {
            if let Some(c) = self.read_ref(&r)? {
                resolved.push((r, c));
            }
        }
        resolved.sort();
        Ok(resolved)
    }
}

fn collect(dir: &Path, prefix: &str, found: &mut dyn FnMut(String)) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).io_ctx("list refs in", dir),
    };
    for e in entries {
        let e = e.io_ctx("list refs in", dir)?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") {
            continue;
        }
        let full = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        if e.file_type().io_ctx("stat", e.path())?.is_dir() {
            collect(&e.path(), &full, found)?;
        } else {
            found(full);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ref_syntax() {
        for ok in ["main", "os/x86_64/stable", "a-b.c_d", "_x", "1.0"] {
            assert!(validate_ref_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", "/a", "a/", "a//b", "-a", ".a", "a b", "../x", "a/../b", "a:b", "é",
        ] {
            assert!(validate_ref_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            RefName::parse("origin:os/stable")
                .expect("ok")
                .remote
                .as_deref(),
            Some("origin")
        );
        assert!(RefName::parse("or/igin:x").is_err());
    }
}
