//! The installed packages of a dpkg `status` file. Pure.

use std::collections::BTreeMap;

/// Package name to version, for each paragraph whose `Status` says
/// installed (`install ok installed`; also `hold ok installed`).
pub fn installed(status: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for para in status.split("\n\n") {
        let (mut name, mut version, mut ok) = (None, None, false);
        for line in para.lines() {
            if let Some(v) = line.strip_prefix("Package:") {
                name = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = Some(v.trim());
            } else if let Some(v) = line.strip_prefix("Status:") {
                ok = v.split_whitespace().last() == Some("installed");
            }
        }
        if let (Some(n), true) = (name, ok) {
            out.insert(n.to_owned(), version.unwrap_or("").to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages() {
        let s = "Package: bash\nStatus: install ok installed\nVersion: 5.2\n\n\
                 Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
                 Package: half\nStatus: install reinstreq half-installed\nVersion: 2\n\n\
                 Package: held\nStatus: hold ok installed\nVersion: 3\nDescription: x\n y\n";
        let got = installed(s);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got["bash"], "5.2");
        assert_eq!(got["held"], "3");
    }
}
