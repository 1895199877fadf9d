//! Resolving revisions: a ref, `remote:ref`, a full checksum, a unique
//! checksum prefix, each optionally followed by `^` (parent) any number of times.

use std::fs;

use crate::checksum::Checksum;
use crate::error::{Error, Result};
use crate::refs::RefName;
use crate::repo::Repo;

/// Shortest checksum prefix accepted, so a typo rarely matches by chance.
const MIN_PREFIX: usize = 4;

impl Repo {
    /// The commit `rev` names.
    pub fn resolve_rev(&self, rev: &str) -> Result<Checksum> {
        let base = rev.trim_end_matches('^');
        let ups = rev.len() - base.len();
        let mut c = self.resolve_base(base).map_err(|e| match e {
            Error::UnknownRev { why, .. } => Error::UnknownRev {
                rev: rev.to_owned(),
                why,
            },
            e => e,
        })?;
        for _ in 0..ups {
            c = self
                .load_commit(&c)?
                .parent
                .ok_or_else(|| Error::UnknownRev {
                    rev: rev.to_owned(),
                    why: format!("commit {c} has no parent"),
                })?;
        }
        Ok(c)
    }

    fn resolve_base(&self, rev: &str) -> Result<Checksum> {
        if let Ok(c) = Checksum::from_hex(rev) {
            return Ok(c);
        }
        if let Ok(r) = RefName::parse(rev)
            && let Some(c) = self.read_ref(&r)?
        {
            return Ok(c);
        }
        let is_hex =
            rev.len() >= MIN_PREFIX && rev.len() < 64 && rev.bytes().all(|b| b.is_ascii_hexdigit());
        if is_hex {
            let rev = rev.to_ascii_lowercase();
            let dir = self.path().join("objects").join(&rev[..2]);
            let mut found = Vec::new();
            if let Ok(entries) = fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if let Some(rest) = name.strip_suffix(".commit")
                        && rest.starts_with(&rev[2..])
                        && let Ok(c) = Checksum::from_hex(&format!("{}{rest}", &rev[..2]))
                    {
                        found.push(c);
                    }
                }
            }
            return match found.as_slice() {
                [c] => Ok(*c),
                [] => Err(Error::UnknownRev {
                    rev: rev.clone(),
                    why: "no ref or commit matches".into(),
                }),
                _ => Err(Error::UnknownRev {
                    rev: rev.clone(),
                    why: format!("prefix matches {} commits", found.len()),
                }),
            };
        }
        if let Err(e) = RefName::parse(rev) {
            return Err(Error::UnknownRev {
                rev: rev.to_owned(),
                why: e.to_string(),
            });
        }
        Err(Error::UnknownRev {
            rev: rev.to_owned(),
            why: "no such ref".into(),
        })
    }
}
