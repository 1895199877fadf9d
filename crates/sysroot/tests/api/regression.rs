//! Regression tests: one per fix, named after what it pins.
//!
//! The convention: every fix lands with a test, and the test's comment
//! names the commit (or issue) it pins, so a failure says which mistake
//! came back. Tests that need a module's private state live in that
//! module's unit tests under the same rule.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use strata_store::test_util::{Tmpfs, listing};
use strata_sysroot::Sysroot;

use crate::{
    bootable_files, deploy_commit, have_root, new_sysroot, release, release_files, try_deploy,
};

/// Regression test for 22a2969: refused for a full ESP, deploy said
/// "nothing was changed", vaguer than the guarantee. It names what was
/// not written (deployment, kernel, boot entry) and the sizes, and all
/// three are indeed absent.
#[test]
fn esp_full_refusal_says_what_was_not_written() {
    if !have_root("mounting a tmpfs as the ESP") {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let t = tmp.path();
    let esp = t.join("esp");
    let _mount = Tmpfs::mount(&esp, "64k");
    let s = Sysroot::init(&t.join("sys"), Some(&esp), None).expect("init");
    let kver = "6.1.0-1";
    let mut files = bootable_files(1, kver, &[("hostname", "box\n")]);
    let vmlinuz = format!("usr/lib/modules/{kver}/vmlinuz");
    for (path, content) in &mut files {
        if *path == vmlinuz {
            *content = "x".repeat(200 * 1024);
        }
    }
    let commit = release_files(&s, t, 1, &files);
    let esp_before = listing(&esp);

    let e = try_deploy(&s, &commit, None).expect_err("a 200 KiB kernel on a 64 KiB ESP");
    let msg = e.to_string();
    for said in [
        "not enough space on the EFI system partition",
        "need 200 KiB",
        "no deployment, kernel or boot entry was written",
    ] {
        assert!(msg.contains(said), "{said:?} missing from: {msg}");
    }
    assert_eq!(listing(&esp), esp_before, "the ESP changed");
    assert!(
        s.esp().entries().expect("entries").is_empty(),
        "a boot entry"
    );
    assert!(s.deployments_on_disk().expect("deployments").is_empty());
    assert!(s.status().expect("status").deployments.is_empty());
}

/// Pins the /etc merge fix: the new defaults drop a directory
/// (`/etc/app/`) in which the machine changed a file. The merge used to
/// fail with "could not copy to …/etc/app/app.conf: No such file or
/// directory", so no deploy of such a release was possible; now the
/// changed file is kept and its directory recreated as it was.
#[test]
fn etc_merge_keeps_a_changed_file_whose_directory_was_dropped() {
    let Some((tmp, s)) = new_sysroot() else {
        return;
    };
    let t = tmp.path();
    let c1 = release(&s, t, 1, "6.1.0-1", &[("app/app.conf", "vendor\n")]);
    let d1 = deploy_commit(&s, &c1, None);
    let etc1 = s.deployment_path(&d1).join("etc");
    fs::write(etc1.join("app/app.conf"), "mine\n").expect("local change");
    let c2 = release(&s, t, 2, "6.1.0-1", &[("other.conf", "x\n")]);
    let d2 = deploy_commit(&s, &c2, None);
    let etc2 = s.deployment_path(&d2).join("etc");
    assert_eq!(
        fs::read_to_string(etc2.join("app/app.conf")).expect("kept"),
        "mine\n"
    );
    let mode = |etc: &std::path::Path| {
        fs::metadata(etc.join("app"))
            .expect("dir")
            .permissions()
            .mode()
    };
    assert_eq!(mode(&etc2), mode(&etc1), "the directory as it was");
}
