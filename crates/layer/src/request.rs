//! What a user asks to layer, checked and combined. Pure.
//!
//! Requests are package names, resolved by apt against the machine's apt
//! sources, and local `.deb` files, kept by the SHA-256 of their bytes so
//! the same file is installed again on every new base.

use std::collections::BTreeSet;

use strata_sysroot::origin::Layer;

use crate::error::{Error, Result};

/// A Debian package name (policy §5.6.1: lowercase letters, digits, `+`,
/// `-`, `.`; at least two characters; starts with a letter or digit).
/// Checking it keeps names that apt would read as options out.
pub fn check_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
        // apt reads a trailing '-' as "remove".
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(Error::BadName(name.to_owned()))
    }
}

/// A local package: its name (from its control file) and the SHA-256 of
/// its bytes. In an origin it is written `NAME:SHA256`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalDeb {
    /// The package name.
    pub name: String,
    /// The hex SHA-256 of the file.
    pub sha256: String,
}

impl LocalDeb {
    /// Parses `NAME:SHA256`.
    pub fn parse(s: &str) -> Result<LocalDeb> {
        let bad = || Error::Refused(format!("{s:?} is not a local package record (NAME:SHA256)"));
        let (name, sha) = s.split_once(':').ok_or_else(bad)?;
        check_name(name)?;
        if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(LocalDeb {
            name: name.to_owned(),
            sha256: sha.to_ascii_lowercase(),
        })
    }

    /// `NAME:SHA256`.
    pub fn record(&self) -> String {
        format!("{}:{}", self.name, self.sha256)
    }
}

/// The requested packages of a layer, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// Package names apt resolves.
    pub packages: BTreeSet<String>,
    /// Local packages.
    pub local: BTreeSet<LocalDeb>,
}

impl Request {
    /// The request recorded in an origin's layer.
    pub fn from_layer(layer: &Layer) -> Result<Request> {
        let mut r = Request::default();
        for p in &layer.packages {
            check_name(p)?;
            r.packages.insert(p.clone());
        }
        for l in &layer.local {
            r.local.insert(LocalDeb::parse(l)?);
        }
        Ok(r)
    }

    /// The origin's layer for this request on `base`; `None` when empty.
    pub fn to_layer(&self, base: strata_store::Checksum) -> Option<Layer> {
        if self.is_empty() {
            return None;
        }
        Some(Layer {
            base,
            packages: self.packages.iter().cloned().collect(),
            local: self.local.iter().map(LocalDeb::record).collect(),
        })
    }

    /// Whether nothing is requested.
    pub fn is_empty(&self) -> bool {
        self.packages.is_empty() && self.local.is_empty()
    }

    /// Every requested package name, from apt or local.
    pub fn names(&self) -> BTreeSet<&str> {
        self.packages
            .iter()
            .map(String::as_str)
            .chain(self.local.iter().map(|l| l.name.as_str()))
            .collect()
    }

    /// This request with `packages` and `local` added; a package that is
    /// requested already is refused by name.
    pub fn adding(&self, packages: &[String], local: &[LocalDeb]) -> Result<Request> {
        let mut r = self.clone();
        for p in packages {
            check_name(p)?;
            if self.names().contains(p.as_str()) || !r.packages.insert(p.clone()) {
                return Err(Error::Refused(format!("{p} is layered already")));
            }
        }
        for l in local {
            if self.names().contains(l.name.as_str()) || r.packages.contains(&l.name) {
                return Err(Error::Refused(format!("{} is layered already", l.name)));
            }
            r.local.retain(|o| o.name != l.name);
            r.local.insert(l.clone());
        }
        Ok(r)
    }

    /// This request without the packages named (from apt or local); a
    /// name that is not requested is refused.
    pub fn removing(&self, names: &[String]) -> Result<Request> {
        let mut r = self.clone();
        for n in names {
            let before = r.packages.len() + r.local.len();
            r.packages.remove(n);
            r.local.retain(|l| &l.name != n);
            if r.packages.len() + r.local.len() == before {
                return Err(Error::Refused(format!(
                    "{n} is not a layered package (layered: {}); packages of the base image cannot be removed",
                    if self.is_empty() {
                        "none".to_owned()
                    } else {
                        self.names().into_iter().collect::<Vec<_>>().join(", ")
                    }
                )));
            }
        }
        Ok(r)
    }

    /// Splits off the requested packages that `installed` (the new base's
    /// packages) holds already: they stop being layered. Returns the names.
    pub fn drop_installed(&mut self, installed: &dyn Fn(&str) -> bool) -> Vec<String> {
        let mut dropped: Vec<String> = Vec::new();
        self.packages.retain(|p| {
            let keep = !installed(p);
            if !keep {
                dropped.push(p.clone());
            }
            keep
        });
        self.local.retain(|l| {
            let keep = !installed(&l.name);
            if !keep {
                dropped.push(l.name.clone());
            }
            keep
        });
        dropped.sort();
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_apt_could_read_as_options_are_refused() {
        for ok in ["htop", "g++", "libc6", "python3.11", "0ad"] {
            check_name(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "", "a", "-o", "--yes", "Htop", "a b", "../x", "a/b", "pkg=1.0", "x;y", ".x", "curl-",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn add_remove_and_drop() {
        let deb = LocalDeb {
            name: "mine".into(),
            sha256: "ab".repeat(32),
        };
        let r = Request::default()
            .adding(
                &["htop".into(), "strace".into()],
                std::slice::from_ref(&deb),
            )
            .expect("add");
        assert_eq!(
            r.names().into_iter().collect::<Vec<_>>(),
            ["htop", "mine", "strace"]
        );
        let again = r.adding(&["htop".into()], &[]).expect_err("twice");
        assert!(
            again.to_string().contains("htop is layered already"),
            "{again}"
        );
        let r2 = r.removing(&["mine".into(), "htop".into()]).expect("remove");
        assert_eq!(r2.names().into_iter().collect::<Vec<_>>(), ["strace"]);
        let e = r2.removing(&["bash".into()]).expect_err("not layered");
        assert!(
            e.to_string().contains("bash is not a layered package"),
            "{e}"
        );
        let mut r3 = r.clone();
        let dropped = r3.drop_installed(&|n| n == "htop" || n == "mine");
        assert_eq!(dropped, ["htop", "mine"]);
        assert_eq!(r3.names().into_iter().collect::<Vec<_>>(), ["strace"]);
    }

    #[test]
    fn layer_round_trip() {
        let base = strata_store::Checksum::from_hex(&"cd".repeat(32)).expect("csum");
        let r = Request::default()
            .adding(
                &["htop".into()],
                &[LocalDeb {
                    name: "mine".into(),
                    sha256: "ab".repeat(32),
                }],
            )
            .expect("add");
        let layer = r.to_layer(base).expect("not empty");
        assert_eq!(Request::from_layer(&layer).expect("parse"), r);
        assert!(Request::default().to_layer(base).is_none());
        assert!(LocalDeb::parse("mine:xyz").is_err());
        assert!(LocalDeb::parse(&format!("-x:{}", "ab".repeat(32))).is_err());
    }
}
