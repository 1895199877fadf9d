//! Changing the kernel arguments of the default deployment
//! ([`Sysroot::change_kargs`]): its origin records them, its entry is
//! rewritten in place (atomically, same name).

use strata_store::durable;

use crate::deploy::entry_options;
use crate::error::{Error, Result};
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

impl Sysroot {
    /// Applies deletions then additions; returns the resulting arguments.
    pub fn change_kargs(&self, append: &[String], delete: &[String]) -> Result<Vec<String>> {
        let _lock = strata_store::lock::RepoLock::exclusive(&self.root().join("strata"))?;
        let entries = entries_by_deployment(self)?;
        let (id, name, entry) = entries.first().ok_or(Error::NothingDeployed)?;
        let mut origin = self.load_origin(id)?;
        for d in delete {
            let before = origin.kargs.len();
            // `--delete key` removes `key` and every `key=…`; `--delete key=v` only that one.
            origin.kargs.retain(|k| {
                !(k == d || (!d.contains('=') && k.split('=').next() == Some(d.as_str())))
            });
            if origin.kargs.len() == before {
                return Err(Error::Refused(format!("kernel argument {d:?} is not set")));
            }
        }
        for a in append {
            if a.contains(char::is_whitespace) || a.is_empty() {
                return Err(Error::Refused(format!(
                    "kernel argument {a:?} must be one non-empty word"
                )));
            }
            if !origin.kargs.contains(a) {
                origin.kargs.push(a.clone());
            }
        }
        if append.is_empty() && delete.is_empty() {
            return Ok(origin.kargs);
        }
        durable::write_file(&self.origin_path(id), origin.to_text().as_bytes(), 0o644)?;
        let mut entry = entry.clone();
        entry.options = entry_options(self, id, &origin.kargs);
        self.esp().write_entry(name, &entry)?;
        self.discard_staged()?;
        Ok(origin.kargs)
    }
}
