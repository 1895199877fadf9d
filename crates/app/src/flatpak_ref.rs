//! Flatpak's names: app and runtime IDs, arches, branches, and the refs
//! they make (`app/ID/ARCH/BRANCH`, `runtime/ID/ARCH/BRANCH`). Pure.
//!
//! The rules are Flatpak's (`flatpak_is_valid_name`, `_branch`), so what
//! one tool accepts the other does too; they also keep every part a
//! single path component, never `.` or `..`, as the installation's
//! directories are named after them.

use crate::error::{Error, Result};

/// An app or a runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An application: its files are mounted at `/app`.
    App,
    /// A runtime: its files are mounted at `/usr`.
    Runtime,
}

impl Kind {
    /// The first part of its refs, also its directory in an installation.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::App => "app",
            Kind::Runtime => "runtime",
        }
    }
}

/// A full Flatpak ref.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlatpakRef {
    /// App or runtime.
    pub kind: Kind,
    /// Reverse-DNS ID (`org.example.Hello`).
    pub id: String,
    /// Architecture (`x86_64`).
    pub arch: String,
    /// Branch (`stable`, `1`, `22.08`).
    pub branch: String,
}

impl FlatpakRef {
    /// A ref from its parts, each checked.
    pub fn new(kind: Kind, id: &str, arch: &str, branch: &str) -> Result<Self> {
        validate_id(id)?;
        validate_arch(arch)?;
        validate_branch(branch)?;
        Ok(FlatpakRef {
            kind,
            id: id.to_owned(),
            arch: arch.to_owned(),
            branch: branch.to_owned(),
        })
    }

    /// Parses `app/ID/ARCH/BRANCH` or `runtime/ID/ARCH/BRANCH`.
    pub fn parse(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        let kind = match parts.first() {
            Some(&"app") => Kind::App,
            Some(&"runtime") => Kind::Runtime,
            _ => {
                return Err(bad(
                    "Flatpak ref",
                    s,
                    "must be app/ID/ARCH/BRANCH or runtime/ID/ARCH/BRANCH",
                ));
            }
        };
        if parts.len() != 4 {
            return Err(bad(
                "Flatpak ref",
                s,
                "must have four parts: KIND/ID/ARCH/BRANCH",
            ));
        }
        FlatpakRef::new(kind, parts[1], parts[2], parts[3])
    }

    /// Parses a runtime as an app's metadata names it: `ID/ARCH/BRANCH`.
    pub fn parse_runtime(s: &str) -> Result<Self> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.len() != 3 {
            return Err(bad("runtime", s, "must be ID/ARCH/BRANCH"));
        }
        FlatpakRef::new(Kind::Runtime, parts[0], parts[1], parts[2])
    }

    /// `ID/ARCH/BRANCH`, as metadata names runtimes.
    pub fn triple(&self) -> String {
        format!("{}/{}/{}", self.id, self.arch, self.branch)
    }
}

impl std::fmt::Display for FlatpakRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.kind.as_str(), self.triple())
    }
}

fn bad(what: &'static str, value: &str, rule: &'static str) -> Error {
    Error::BadName {
        what,
        value: value.to_owned(),
        rule,
    }
}

/// Flatpak's rule for app and runtime IDs: at most 255 bytes, at least
/// three `.`-separated elements, each of ASCII letters, digits and `_`,
/// not starting with a digit; `-` only in the last element.
pub fn validate_id(id: &str) -> Result<()> {
    let b = |rule| Err(bad("app or runtime ID", id, rule));
    if id.is_empty() || id.len() > 255 {
        return b("must be 1 to 255 characters");
    }
    let elements: Vec<&str> = id.split('.').collect();
    if elements.len() < 3 {
        return b("must have at least three elements, as org.example.App");
    }
    let last = elements.len() - 1;
    for (i, e) in elements.iter().enumerate() {
        let Some(first) = e.chars().next() else {
            return b("elements must not be empty");
        };
        if first.is_ascii_digit() {
            return b("elements must not start with a digit");
        }
        let ok = |c: char| c.is_ascii_alphanumeric() || c == '_' || (c == '-' && i == last);
        if !e.chars().all(ok) {
            return b("only ASCII letters, digits and _ are allowed (- only in the last element)");
        }
    }
    Ok(())
}

/// An architecture: ASCII letters, digits and `_`.
pub fn validate_arch(arch: &str) -> Result<()> {
    if arch.is_empty() || !arch.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(bad(
            "arch",
            arch,
            "only ASCII letters, digits and _ are allowed",
        ));
    }
    Ok(())
}

/// Flatpak's rule for branches: ASCII letters, digits, `_`, `-` and `.`,
/// not starting with `.` or `-`.
pub fn validate_branch(branch: &str) -> Result<()> {
    let b = |rule| Err(bad("branch", branch, rule));
    let Some(first) = branch.chars().next() else {
        return b("must not be empty");
    };
    if branch.len() > 255 {
        return b("must be at most 255 characters");
    }
    if first == '.' || first == '-' {
        return b("must not start with . or -");
    }
    if !branch
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return b("only ASCII letters, digits, _, - and . are allowed");
    }
    Ok(())
}

/// The machine's architecture as Flatpak names it.
pub fn default_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86" => "i386",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_parse_and_print() {
        let r = FlatpakRef::parse("app/org.example.Hello/x86_64/stable").expect("test input");
        assert_eq!(r.kind, Kind::App);
        assert_eq!(r.to_string(), "app/org.example.Hello/x86_64/stable");
        let rt = FlatpakRef::parse_runtime("org.example.Platform/x86_64/1").expect("test input");
        assert_eq!(rt.to_string(), "runtime/org.example.Platform/x86_64/1");
        for bad in [
            "app/org.example.Hello/x86_64",
            "os/org.example.Hello/x86_64/stable",
            "app/org.example.Hello/x86_64/stable/x",
            "app/../x86_64/stable",
            "app/org.example.Hello/x86_64/..",
        ] {
            assert!(FlatpakRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_follow_flatpak() {
        for good in ["org.example.Hello", "org.gnome.Platform", "io.x_y.App-dev"] {
            validate_id(good).expect("test input");
        }
        for bad in [
            "",
            "org.example",
            "org..Hello",
            "org.1example.Hello",
            "org.exa-mple.Hello",
            "org.example.Hello/../x",
            "org.example.Hel lo",
            "..",
            "org.example.Hello.",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&format!("org.example.{}", "a".repeat(250))).is_err());
    }

    #[test]
    fn branches_follow_flatpak() {
        for good in ["stable", "1", "22.08", "master_x-y"] {
            validate_branch(good).expect("test input");
        }
        for bad in ["", ".", "..", "-x", "a/b", "a b"] {
            assert!(validate_branch(bad).is_err(), "{bad:?}");
        }
    }
}
