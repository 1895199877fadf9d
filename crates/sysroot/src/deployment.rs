//! Naming deployments: `<commit>.<serial>` under a stateroot, by the
//! rules in [`crate::deployment_name`]. Pure.

use strata_store::Checksum;

use crate::deployment_name::{DEPLOY_DIR, split_dir_name, split_rel_path};

/// One deployment: a checkout of `commit`, the `serial`-th of that commit
/// in its stateroot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeploymentId {
    /// The stateroot it belongs to (see [`crate::deployment_name`]).
    pub stateroot: String,
    /// The commit checked out.
    pub commit: Checksum,
    /// Tells apart deployments of the same commit in the same stateroot.
    pub serial: u32,
}

impl DeploymentId {
    /// The directory name, `<commit>.<serial>`.
    pub fn dir_name(&self) -> String {
        format!("{}.{}", self.commit, self.serial)
    }

    /// The path relative to the sysroot, as the `strata=` kernel argument names it.
    pub fn rel_path(&self) -> String {
        format!("{DEPLOY_DIR}{}/{}", self.stateroot, self.dir_name())
    }

    /// The ref that keeps the commit's objects from being pruned.
    pub fn ref_name(&self) -> String {
        format!("deploy/{}/{}", self.stateroot, self.dir_name())
    }

    /// Parses `/strata/deploy/<stateroot>/<commit>.<serial>`.
    pub fn parse_rel_path(path: &str) -> Option<DeploymentId> {
        let (stateroot, commit, serial) = split_rel_path(path)?;
        Some(DeploymentId {
            stateroot: stateroot.to_owned(),
            commit: Checksum::from_hex(commit).ok()?,
            serial,
        })
    }

    /// Parses `<commit>.<serial>` (stateroot left empty).
    pub fn parse_dir_name(name: &str) -> Option<DeploymentId> {
        let (commit, serial) = split_dir_name(name)?;
        Some(DeploymentId {
            stateroot: String::new(),
            commit: Checksum::from_hex(commit).ok()?,
            serial,
        })
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
        assert!(crate::deployment_name::validate_stateroot("a/b").is_err());
    }

    /// The same table as strata-prepare-root's: both accept exactly these.
    #[test]
    fn agrees_with_prepare_root() {
        for (path, ok) in crate::deployment_name::CASES {
            assert_eq!(DeploymentId::parse_rel_path(path).is_some(), *ok, "{path}");
        }
    }
}
