//! A full EFI system partition: a kernel that does not fit fails the
//! deploy before anything is written, and says why.

use std::path::PathBuf;

use crate::common::machine::*;
use crate::common::*;

/// The size of the kernel that does not fit.
const BIG_KERNEL: usize = 200 * 1024;

/// A tree whose kernel is [`BIG_KERNEL`] bytes.
fn big_kernel_tree(m: &Machine, version: u32) -> PathBuf {
    let tree = bootable_tree(&m.path("big"), version, KVER, &[("hostname", "box\n")]);
    let big = "x".repeat(BIG_KERNEL);
    let vmlinuz = format!("usr/lib/modules/{KVER}/vmlinuz");
    write_files(&tree, &[(vmlinuz.as_str(), big.as_str())]);
    tree
}

/// What a refused deploy must leave as it was.
#[derive(Debug, PartialEq)]
struct Snapshot {
    esp: Vec<String>,
    deploy: Vec<String>,
    entries: Vec<BootEntry>,
}

fn snapshot(m: &Machine) -> Snapshot {
    Snapshot {
        esp: listing(&m.esp),
        deploy: names(&m.deploy_dir()),
        entries: m.entries(),
    }
}

fn assert_refused_for_space(r: &Run) {
    assert!(
        r.stderr
            .contains("not enough space on the EFI system partition"),
        "{r:#?}"
    );
}

#[test]
fn kernel_too_big_for_the_esp_changes_nothing() {
    if !have_root("mounting a tmpfs as the ESP") {
        return;
    }
    let tmp = tempdir();
    let esp = tmp.path().join("esp");
    let _mount = Tmpfs::mount(&esp, "64k");
    let Some(m) = Machine::with_esp(&esp) else {
        return;
    };
    m.release(&big_kernel_tree(&m, 1), 1);
    let before = snapshot(&m);

    let r = m.sys(["deploy", REFSPEC]).failed();
    assert_refused_for_space(&r);
    assert_eq!(snapshot(&m), before, "a refused deploy changed something");
    assert_eq!(m.deployments(), Vec::<String>::new());
    assert_eq!(m.staging(), Vec::<String>::new());
    assert_eq!(m.entries(), Vec::new());
    assert_eq!(m.status()["deployments"], serde_json::json!([]));
}

/// A machine with a deployment on an ESP with room for little more: the
/// upgrade to a big kernel is refused and v1 stays as it was.
#[test]
fn upgrade_to_a_kernel_too_big_keeps_the_machine_as_it_was() {
    if !have_root("mounting a tmpfs as the ESP") {
        return;
    }
    let tmp = tempdir();
    let esp = tmp.path().join("esp");
    // 1 MiB spare for the ESP's own use, plus a little for v1.
    let _mount = Tmpfs::mount(&esp, "1152k");
    let Some(m) = Machine::with_esp(&esp) else {
        return;
    };
    let c1 = m.release_tree(1, KVER, &[("hostname", "box\n")]);
    m.sys(["deploy", REFSPEC]).ok();
    m.release(&big_kernel_tree(&m, 2), 2);
    let before = snapshot(&m);

    let r = m.sys(["upgrade"]).failed();
    assert_refused_for_space(&r);
    assert_eq!(snapshot(&m), before, "a refused upgrade changed something");
    assert_eq!(m.default_commit(), c1);
    m.assert_sound("after the refused upgrade");
}
