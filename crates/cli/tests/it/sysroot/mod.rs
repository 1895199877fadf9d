//! The machine side through the strata binary, on directory sysroots:
//! deploy, upgrade and the /etc merge, rollback, kernel arguments, cleanup
//! and the booted deployment, a crash at every fault point, a full ESP.
//! Each test publishes releases from its own server repository
//! (`common::machine`). One module per subject.

mod booted;
mod crash;
mod deep;
mod esp;
mod etc;
mod install;
mod kargs;
mod kernel;
mod layer;
mod lifecycle;
mod staged;
mod update;
