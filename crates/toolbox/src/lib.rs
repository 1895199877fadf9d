//! Toolboxes: a mutable system in a podman container, for the software an
//! image-based machine does not have. As Toolbx and distrobox, strata
//! runs no container of its own making: podman does.
//!
//! - [`host`] gathers who the caller is and what of the host is shared;
//! - [`spec`] turns that into podman's arguments and the setup script (pure);
//! - [`podman`] runs podman and reads what it prints;
//! - [`Toolboxes`] is the operations: create, run (and enter), list, remove.
//!
//! The image is any podman has; strata's own come from `strata export`
//! (crate `strata-oci`), put together by the command line. The library
//! never prints.

pub mod error;
pub mod host;
pub mod podman;
pub mod spec;

pub use error::{Error, Result};
pub use host::Host;
pub use podman::{Podman, Toolbox};
pub use spec::ExecOptions;

/// The toolbox commands use when given no name.
pub const DEFAULT_NAME: &str = "strata";

/// Checks a toolbox name: podman's rule for container names, and short
/// enough to be a host name.
pub fn validate_name(name: &str) -> Result<()> {
    let bad = |rule| {
        Err(Error::BadName {
            name: name.to_owned(),
            rule,
        })
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("it is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return bad("it must start with a letter or digit");
        }
        _ => {}
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return bad("only letters, digits, '_', '.' and '-' are allowed");
    }
    if name.len() > 64 {
        return bad("it is longer than 64 characters");
    }
    Ok(())
}

/// The toolboxes of the caller's podman.
#[derive(Debug, Clone)]
pub struct Toolboxes {
    podman: Podman,
}

impl Toolboxes {
    /// With the podman [`Podman::find`] finds.
    pub fn open() -> Result<Toolboxes> {
        Ok(Toolboxes {
            podman: Podman::find()?,
        })
    }

    /// The podman used.
    pub fn podman(&self) -> &Podman {
        &self.podman
    }

    /// Makes toolbox `name` from `image` (which podman must have) for the
    /// user of `host`, starts it and sets it up. On failure nothing is left.
    pub fn create(&self, name: &str, image: &str, host: &Host) -> Result<()> {
        validate_name(name)?;
        if image.is_empty() || image.starts_with('-') || image.contains(char::is_whitespace) {
            return Err(Error::BadImage(image.to_owned()));
        }
        match self.podman.state(name)? {
            Some(s) if s.toolbox => return Err(Error::Exists(name.to_owned())),
            Some(_) => return Err(Error::NotAToolbox(name.to_owned())),
            None => {}
        }
        self.podman.output(&spec::create_args(name, image, host))?;
        let set_up = self
            .podman
            .output(&["start".to_owned(), name.to_owned()])
            .and_then(|_| self.podman.output(&spec::init_args(name, host)));
        if let Err(e) = set_up {
            // Best effort: the error that matters is the one above.
            let _ = self
                .podman
                .output(&["rm".into(), "--force".into(), name.to_owned()]);
            return Err(e);
        }
        Ok(())
    }

    /// Runs `cmd` in toolbox `name` (started if it is not running), on the
    /// caller's terminal; its exit code.
    pub fn run(&self, name: &str, host: &Host, opts: ExecOptions, cmd: &[String]) -> Result<i32> {
        let state = self.existing(name)?;
        if !state.running {
            self.podman.output(&["start".to_owned(), name.to_owned()])?;
        }
        self.podman
            .interactive(&spec::exec_args(name, host, opts, cmd))
    }

    /// Removes toolbox `name`; a running one only with `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<()> {
        let state = self.existing(name)?;
        if state.running && !force {
            return Err(Error::Running(name.to_owned()));
        }
        self.podman
            .output(&["rm".into(), "--force".into(), name.to_owned()])?;
        Ok(())
    }

    /// The toolboxes, by name.
    pub fn list(&self) -> Result<Vec<Toolbox>> {
        self.podman.list()
    }

    fn existing(&self, name: &str) -> Result<podman::State> {
        validate_name(name)?;
        match self.podman.state(name)? {
            None => Err(Error::NoSuchToolbox(name.to_owned())),
            Some(s) if !s.toolbox => Err(Error::NotAToolbox(name.to_owned())),
            Some(s) => Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_podman_rules() {
        for good in ["strata", "dev-1", "a.b_c", "9"] {
            assert!(validate_name(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a b", "a/b", "ü", &"x".repeat(65)] {
            let e = validate_name(bad).expect_err(bad).to_string();
            assert!(e.contains("not a valid toolbox name"), "{e}");
        }
    }
}
