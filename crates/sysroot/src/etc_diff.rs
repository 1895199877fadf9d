//! What the machine changed in `/etc` against its deployment's defaults.

use crate::error::{Error, Result};
use crate::etc_merge;
use crate::etc_tree;
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

impl Sysroot {
    /// (`A`dded / `M`odified / `D`eleted, path under /etc, non-UTF-8 bytes
    /// escaped as `\\xNN`), sorted by path,
    /// for the booted deployment (or the default one when nothing is booted).
    pub fn etc_diff(&self) -> Result<Vec<(char, String)>> {
        let id = match self.booted() {
            Some(b) => b,
            None => entries_by_deployment(self)?
                .first()
                .map(|(id, ..)| id.clone())
                .ok_or(Error::NothingDeployed)?,
        };
        let path = self.deployment_path(&id);
        let defaults = etc_tree::scan(&path.join("usr/etc"))?;
        let current = etc_tree::scan(&path.join("etc"))?;
        let plan = etc_merge::plan(&defaults, &current, &defaults);
        let mut out: Vec<(char, String)> = plan
            .keep_local
            .iter()
            .filter(|p| {
                !(matches!(current.get(*p), Some(etc_merge::Node::Dir { .. }))
                    && defaults.get(*p) == current.get(*p))
            })
            .map(|p| (if defaults.contains_key(p) { 'M' } else { 'A' }, p))
            .chain(plan.remove.iter().map(|p| ('D', p)))
            .map(|(c, p)| (c, etc_merge::display_path(p)))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }
}
