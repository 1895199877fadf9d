//! The origin file beside each deployment: where it came from and what
//! follows it, in ostree's key-file format. Pure.
//!
//! ```text
//! [origin]
//! refspec=origin:os/stable
//!
//! [strata]
//! kargs=quiet console=ttyS0
//! ```

use strata_store::config::Config;

/// The contents of an origin file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// `remote:ref` to follow on upgrade, or a local ref; `None` for a
    /// deployment of a bare checksum (nothing to upgrade to).
    pub refspec: Option<String>,
    /// Kernel arguments the user asked for (not the ones strata manages).
    pub kargs: Vec<String>,
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
        c.to_string()
    }

    /// Parses an origin file; a missing `kargs` key means none.
    pub fn parse(text: &str) -> Result<Origin, String> {
        let c = Config::parse(text)?;
        Ok(Origin {
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
        };
        assert_eq!(Origin::parse(&o.to_text()), Ok(o));
        let none = Origin {
            refspec: None,
            kargs: vec![],
        };
        assert_eq!(Origin::parse(&none.to_text()), Ok(none));
    }
}
