//! Finding the deployment on the kernel command line. Pure.

/// The deployment `strata=` names.
#[derive(Debug, PartialEq, Eq)]
pub struct Deployment {
    /// `/strata/deploy/<stateroot>/<commit>.<serial>`
    pub path: String,
    pub stateroot: String,
}

/// Parses the last `strata=` argument and checks its shape, so a hostile
/// or mistyped value cannot name anything outside the deployments.
pub fn deployment(cmdline: &str) -> Result<Deployment, String> {
    let value = cmdline
        .split_whitespace()
        .filter_map(|a| a.strip_prefix("strata="))
        .next_back()
        .ok_or("no strata= argument on the kernel command line")?;
    // The rules sysroot names deployments by: nothing it would not create.
    let (stateroot, _, _) = crate::deployment_name::split_rel_path(value).ok_or_else(|| {
        format!("strata={value} is not /strata/deploy/<stateroot>/<commit>.<serial>")
    })?;
    Ok(Deployment {
        path: value.to_owned(),
        stateroot: stateroot.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let c = "a".repeat(64);
        let line = format!("BOOT_IMAGE=x root=UUID=1 rw strata=/strata/deploy/debian/{c}.0 quiet");
        let d = deployment(&line).expect("parses");
        assert_eq!(d.stateroot, "debian");
        assert_eq!(d.path, format!("/strata/deploy/debian/{c}.0"));
        for bad in [
            "root=x".to_owned(),
            "strata=/etc".to_owned(),
            format!("strata=/strata/deploy/../{c}.0"),
            format!("strata=/strata/deploy/x/{c}.0/../../.."),
            format!("strata=/strata/deploy/x/{}.0", "A".repeat(64)),
            format!("strata=/strata/deploy/x/{c}."),
        ] {
            assert!(deployment(&bad).is_err(), "{bad}");
        }
    }

    /// The same table as strata-sysroot's `DeploymentId::parse_rel_path`:
    /// e.g. a 65-character stateroot or a serial past u32 is refused.
    #[test]
    fn agrees_with_sysroot() {
        for (path, ok) in crate::deployment_name::CASES {
            let line = format!("root=x strata={path}");
            assert_eq!(deployment(&line).is_ok(), *ok, "{path}");
        }
    }
}
