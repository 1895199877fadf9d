//! Sandboxed apps in Flatpak's format, from the same repository as the OS.
//!
//! Flatpak apps and runtimes are OSTree commits (`app/ID/ARCH/BRANCH`,
//! `runtime/ID/ARCH/BRANCH`: a `metadata` key file, `files/`,
//! `export/`), so strata needs no second store: apps are pulled with the
//! OS's verified pull ([`installation`]), and an app's files equal to the
//! OS's are the same objects. [`publish`] makes commits Flatpak installs;
//! [`run`] starts an app confined by bubblewrap ([`sandbox`]) and a
//! seccomp filter ([`seccomp`]), granting what its [`metadata`] asks.

pub mod error;
pub mod exports;
pub mod flatpak_ref;
pub mod installation;
pub mod metadata;
pub mod publish;
pub mod run;
pub mod sandbox;
pub mod seccomp;

pub use error::{Error, Result};
pub use flatpak_ref::{FlatpakRef, Kind};
pub use installation::{Installation, Installed};
