//! A sysroot through the API, not the binary: init with an ESP directory,
//! deploy, status, rollback, cleanup (`lifecycle`), boot counting and
//! fallbacks (`boot_counting`), and the fixes each
//! pinned by a test (`regression`). The CLI's sysroot tests cover the same
//! ground through `strata`; these pin the library's contract.
//!
//! Like those tests, these need root: the sysroot's repository is bare and
//! keeps the owners of the files it stores.

mod boot_counting;
mod lifecycle;
mod regression;

use std::path::Path;

use strata_store::Checksum;
use strata_store::test_util::{commit_dir, have_root, write_files};
use strata_sysroot::Sysroot;
use strata_sysroot::deploy::{DeployOptions, DeployReport};
use strata_sysroot::deployment::DeploymentId;

const STATEROOT: &str = "os";

/// The files of a bootable tree: kernel `kver`, an os-release naming
/// `version`, and `etc` as /usr/etc defaults.
fn bootable_files(version: u32, kver: &str, etc: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut files = vec![
        (
            format!("usr/lib/modules/{kver}/vmlinuz"),
            format!("vmlinuz {kver}\n"),
        ),
        (
            format!("usr/lib/modules/{kver}/initramfs.img"),
            format!("initramfs {kver}\n"),
        ),
        (
            "usr/lib/os-release".to_owned(),
            format!("PRETTY_NAME=\"Test OS {version}\"\nVERSION_ID={version}\n"),
        ),
    ];
    files.extend(
        etc.iter()
            .map(|(p, c)| (format!("usr/etc/{p}"), (*c).to_owned())),
    );
    files
}

/// Commits `files` as the tree `dir/v{version}` to `os` in the sysroot's
/// repository.
fn release_files(s: &Sysroot, dir: &Path, version: u32, files: &[(String, String)]) -> Checksum {
    let tree = dir.join(format!("v{version}"));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_files(&tree, &refs);
    commit_dir(s.repo(), STATEROOT, &tree)
}

/// Commits a bootable tree (see [`bootable_files`]).
fn release(s: &Sysroot, dir: &Path, version: u32, kver: &str, etc: &[(&str, &str)]) -> Checksum {
    release_files(s, dir, version, &bootable_files(version, kver, etc))
}

/// A sysroot in a new temporary directory, its ESP the plain directory
/// `esp` beside it; `None` (after saying why) when not root.
#[track_caller]
fn new_sysroot() -> Option<(tempfile::TempDir, Sysroot)> {
    if !have_root("a sysroot's bare repository keeps file owners") {
        return None;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let esp = tmp.path().join("esp");
    std::fs::create_dir(&esp).expect("create the ESP directory");
    let s = Sysroot::init(&tmp.path().join("sys"), Some(&esp), None).expect("init");
    Some((tmp, s))
}

fn try_deploy(
    s: &Sysroot,
    commit: &Checksum,
    kargs: Option<&[&str]>,
) -> strata_sysroot::Result<DeployReport> {
    let opts = DeployOptions {
        stateroot: STATEROOT.into(),
        refspec: None,
        kargs: kargs.map(|k| k.iter().map(|&a| a.to_owned()).collect()),
        layer: None,
    };
    s.deploy(commit, &opts)
}

fn deploy_commit(s: &Sysroot, commit: &Checksum, kargs: Option<&[&str]>) -> DeploymentId {
    try_deploy(s, commit, kargs).expect("deploy").id
}
