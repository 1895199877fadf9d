//! The origin file beside each deployment: where it came from and what
//! follows it, in ostree's key-file format. Pure.
//!
//! ```text
//! [origin]
//! refspec=origin:os/stable
//!
//! [strata]
//! kargs=quiet console=ttyS0
//!
//! [layer]
//! base=<the commit the packages were added to>
//! packages=htop;strace
//! local=<package name>:<sha256 of the .deb>;...
//! ```

use strata_store::Checksum;
use strata_store::config::Config;

/// Where the local `.deb` files of layers are kept, in the sysroot, as
/// `<sha256>.deb`.
pub const LOCAL_DEBS: &str = "strata/layer/debs";

/// Commit metadata of a layered commit: the base commit's checksum (hex).
pub const META_LAYER_BASE: &str = "strata.layer.base";

/// Packages layered on a base commit: what the deployment's commit was
/// built from, and what `upgrade` builds again on the new base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The commit the packages were added to (the deployed commit is a
    /// local one made from it).
    pub base: Checksum,
    /// Package names, as requested, sorted.
    pub packages: Vec<String>,
    /// Local `.deb` files, as `NAME:SHA256` (the file is kept in
    /// `strata/layer/debs/<sha256>.deb`), sorted.
    pub local: Vec<String>,
}

impl Layer {
    /// Whether nothing is layered.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.local.is_empty()
    }
}

/// The contents of an origin file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// `remote:ref` to follow on upgrade, or a local ref; `None` for a
    /// deployment of a bare checksum (nothing to upgrade to).
    pub refspec: Option<String>,
    /// Kernel arguments the user asked for (not the ones strata manages).
    pub kargs: Vec<String>,
    /// Packages layered on the followed commit, if any.
    pub layer: Option<Layer>,
}

fn list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split(';')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Origin {
    /// The file's text; a deployment of a checksum gets ostree's
    /// `unconfigured-state` explanation instead of a refspec.
    pub fn to_text(&self) -> String {
        let mut c = Config::default();
        match &self.refspec {
            Some(r) => c.set("origin", "refspec", r),
            None => c.set(
                "origin",
                "unconfigured-state",
                "deployed from a checksum; use `strata switch` to follow a ref",
            ),
        }
        c.set("strata", "kargs", &self.kargs.join(" "));
        if let Some(l) = &self.layer {
            c.set("layer", "base", &l.base.to_string());
            c.set("layer", "packages", &l.packages.join(";"));
            c.set("layer", "local", &l.local.join(";"));
        }
        c.to_string()
    }

    /// Parses an origin file; a missing `kargs` key means none.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let c = Config::parse(text)?;
        let layer = match c.get("layer", "base") {
            None => None,
            Some(b) => Some(Layer {
                base: Checksum::from_hex(b)
                    .map_err(|e| format!("[layer] base={b:?} is not a commit checksum: {e}"))?,
                packages: list(c.get("layer", "packages")),
                local: list(c.get("layer", "local")),
            }),
        };
        Ok(Origin {
            layer,
            refspec: c.get("origin", "refspec").map(str::to_owned),
            kargs: c
                .get("strata", "kargs")
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let o = Origin {
            refspec: Some("origin:os/stable".into()),
            kargs: vec!["quiet".into(), "a=b".into()],
            layer: Some(Layer {
                base: Checksum::from_hex(&"ab".repeat(32)).expect("checksum"),
                packages: vec!["htop".into(), "strace".into()],
                local: vec!["cd".repeat(32)],
            }),
        };
        assert_eq!(Origin::parse(&o.to_text()), Ok(o));
        let none = Origin {
            refspec: None,
            kargs: vec![],
            layer: None,
        };
        assert_eq!(Origin::parse(&none.to_text()), Ok(none));
    }
}
