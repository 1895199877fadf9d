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
    let bad = || format!("strata={value} is not /strata/deploy/<stateroot>/<commit>.<serial>");
    let rest = value.strip_prefix("/strata/deploy/").ok_or_else(bad)?;
    let (stateroot, name) = rest.split_once('/').ok_or_else(bad)?;
    let (commit, serial) = name.split_once('.').ok_or_else(bad)?;
    let stateroot_ok = !stateroot.is_empty()
        && !stateroot.starts_with('-')
        && stateroot
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let commit_ok = commit.len() == 64
        && commit
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let serial_ok = !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit());
    if !(stateroot_ok && commit_ok && serial_ok) {
        return Err(bad());
    }
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
}
