//! Naming deployments: `<commit>.<serial>` under a stateroot. Pure.

use strata_store::Checksum;

/// One deployment: a checkout of `commit`, the `serial`-th of that commit
/// in its stateroot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId {
    pub stateroot: String,
    pub commit: Checksum,
    pub serial: u32,
}

impl DeploymentId {
    /// The directory name, `<commit>.<serial>`.
    pub fn dir_name(&self) -> String {
        format!("{}.{}", self.commit, self.serial)
    }

    /// The path relative to the sysroot, as the `strata=` kernel argument names it.
    pub fn rel_path(&self) -> String {
        format!("/strata/deploy/{}/{}", self.stateroot, self.dir_name())
    }

    /// The ref that keeps the commit's objects from being pruned.
    pub fn ref_name(&self) -> String {
        format!("deploy/{}/{}", self.stateroot, self.dir_name())
    }

    /// Parses `/strata/deploy/<stateroot>/<commit>.<serial>`.
    pub fn parse_rel_path(path: &str) -> Option<DeploymentId> {
        let rest = path.strip_prefix("/strata/deploy/")?;
        let (stateroot, name) = rest.split_once('/')?;
        let mut id = Self::parse_dir_name(name)?;
        id.stateroot = stateroot.to_owned();
        validate_stateroot(stateroot).ok()?;
        Some(id)
    }

    /// Parses `<commit>.<serial>` (stateroot left empty).
    pub fn parse_dir_name(name: &str) -> Option<DeploymentId> {
        let (c, s) = name.split_once('.')?;
        Some(DeploymentId {
            stateroot: String::new(),
            commit: Checksum::from_hex(c).ok()?,
            serial: s.parse().ok()?,
        })
    }
}

/// A stateroot name: letters, digits, `-`, `_`, not starting with `-`.
pub fn validate_stateroot(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && !name.starts_with('-')
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid stateroot {name:?}: use letters, digits, '-' and '_'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id = DeploymentId {
            stateroot: "debian".into(),
            commit: Checksum::of(b"x"),
            serial: 2,
        };
        assert_eq!(
            DeploymentId::parse_rel_path(&id.rel_path()),
            Some(id.clone())
        );
        assert!(strata_store::refs::validate_ref_name(&id.ref_name()).is_ok());
        for bad in [
            "/strata/deploy/x/abc.0",
            "/strata/deploy/../x.0",
            "/etc/x",
            "/strata/deploy/-a/x.0",
        ] {
            assert_eq!(DeploymentId::parse_rel_path(bad), None, "{bad}");
        }
        assert!(validate_stateroot("a/b").is_err());
    }
}
