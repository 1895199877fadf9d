//! A sysroot through the API, not the binary: init with an ESP directory,
//! deploy, a local /etc edit carried into the next deployment, status,
//! rollback, cleanup. The CLI's sysroot tests cover the same ground
//! through `strata`; these pin the library's contract.
//!
//! Like those tests, these need root: the sysroot's repository is bare and
//! keeps the owners of the files it stores.

use std::fs;
use std::path::Path;

use strata_store::test_util::{commit_dir, skip, write_files};
use strata_store::{Checksum, fsck::fsck};
use strata_sysroot::Sysroot;
use strata_sysroot::cleanup::cleanup;
use strata_sysroot::deploy::{DeployOptions, deploy};
use strata_sysroot::deployment::DeploymentId;
use strata_sysroot::rollback::rollback;
use strata_sysroot::status::{Status, status};

const STATEROOT: &str = "os";

fn have_root() -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        skip("needs root (a sysroot's bare repository keeps file owners)");
    }
    root
}

/// Commits a bootable tree to `os` in the sysroot's repository: kernel
/// `kver`, an os-release naming `version`, and `etc` as /usr/etc defaults.
fn release(s: &Sysroot, dir: &Path, version: u32, kver: &str, etc: &[(&str, &str)]) -> Checksum {
    let tree = dir.join(format!("v{version}"));
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
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_files(&tree, &refs);
    commit_dir(s.repo(), STATEROOT, &tree)
}

fn deploy_commit(s: &Sysroot, commit: &Checksum, kargs: Option<&[&str]>) -> DeploymentId {
    let opts = DeployOptions {
        stateroot: STATEROOT.into(),
        refspec: None,
        kargs: kargs.map(|k| k.iter().map(|&a| a.to_owned()).collect()),
    };
    deploy(s, commit, &opts).expect("deploy").id
}

/// (commit, default, rollback) per deployment, in status order.
fn summary(st: &Status) -> Vec<(String, bool, bool)> {
    st.deployments
        .iter()
        .map(|d| (d.commit.clone(), d.default, d.rollback))
        .collect()
}

#[test]
fn deploy_status_rollback_cleanup() {
    if !have_root() {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let t = tmp.path();
    let esp = t.join("esp");
    fs::create_dir(&esp).expect("create the ESP directory");
    let s = Sysroot::init(&t.join("sys"), Some(&esp), None).expect("init");
    assert!(status(&s).expect("status").deployments.is_empty());

    let c1 = release(&s, t, 1, "6.1.0-1", &[("hostname", "factory\n")]);
    let d1 = deploy_commit(&s, &c1, Some(&["quiet"]));
    let st = status(&s).expect("status");
    assert_eq!(summary(&st), [(c1.to_string(), true, false)]);
    assert_eq!(st.deployments[0].kargs, ["quiet"]);
    let etc1 = s.deployment_path(&d1).join("etc");
    assert_eq!(
        fs::read_to_string(etc1.join("hostname")).expect("read"),
        "factory\n"
    );
    fs::write(etc1.join("hostname"), "mybox\n").expect("edit /etc/hostname");

    // v2: the local edit is merged in, kargs carry over, v1 is the rollback.
    let c2 = release(
        &s,
        t,
        2,
        "6.2.0-1",
        &[("hostname", "factory\n"), ("new.conf", "v2\n")],
    );
    let d2 = deploy_commit(&s, &c2, None);
    let st = status(&s).expect("status");
    assert_eq!(
        summary(&st),
        [(c2.to_string(), true, false), (c1.to_string(), false, true)]
    );
    assert_eq!(st.deployments[0].kargs, ["quiet"], "kargs carried over");
    let etc2 = s.deployment_path(&d2).join("etc");
    assert_eq!(
        fs::read_to_string(etc2.join("hostname")).expect("read"),
        "mybox\n"
    );
    assert_eq!(
        fs::read_to_string(etc2.join("new.conf")).expect("read"),
        "v2\n"
    );

    let (new_default, old_default) = rollback(&s).expect("rollback");
    assert_eq!((&new_default, &old_default), (&d1, &d2));
    let st = status(&s).expect("status");
    assert_eq!(
        summary(&st),
        [(c1.to_string(), true, false), (c2.to_string(), false, true)]
    );

    // v3 on top of v1: v2, neither default nor rollback, is cleaned up.
    let c3 = release(&s, t, 3, "6.3.0-1", &[("hostname", "factory\n")]);
    let d3 = deploy_commit(&s, &c3, None);
    let report = cleanup(&s).expect("cleanup");
    assert_eq!(
        report.deployments_removed,
        std::slice::from_ref(&d2),
        "{report:?}"
    );
    assert!(!s.deployment_path(&d2).exists());
    let mut on_disk = s.deployments_on_disk().expect("list deployments");
    on_disk.sort_by_key(DeploymentId::dir_name);
    let mut want = vec![d1, d3];
    want.sort_by_key(DeploymentId::dir_name);
    assert_eq!(on_disk, want);
    assert_eq!(
        summary(&status(&s).expect("status")),
        [(c3.to_string(), true, false), (c1.to_string(), false, true)]
    );
    assert_eq!(s.esp().entries().expect("boot entries").len(), 2);
    assert!(fsck(s.repo(), false).expect("fsck").is_clean());
}
