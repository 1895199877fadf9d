//! Which kernel a deployment boots: none is a clear error before anything
//! is written; of several, the newest by version order.

use crate::common::machine::*;
use crate::common::*;

fn assert_no_kernel_message(r: &Run) {
    assert!(
        r.stderr.contains("has no kernel")
            && r.stderr
                .contains("usr/lib/modules/<version>/vmlinuz and initramfs.img"),
        "{r:#?}"
    );
}

#[test]
fn deploying_a_tree_without_a_kernel_fails_clearly() {
    let Some(m) = Machine::new() else { return };
    let tree = m.path("nokernel");
    write_files(
        &tree,
        &[
            ("usr/etc/hostname", "box\n"),
            ("usr/bin/tool", "#!/bin/sh\n"),
        ],
    );
    m.release(&tree, 1);
    let esp = listing(&m.esp);

    let r = m.sys(["deploy", REFSPEC]).failed();
    assert_no_kernel_message(&r);
    assert_eq!(
        names(&m.deploy_dir()),
        Vec::<String>::new(),
        "nothing deployed"
    );
    assert_eq!(listing(&m.esp), esp, "the ESP changed");
}

/// A vmlinuz without its initramfs is no kernel either; the machine keeps
/// booting what it booted.
#[test]
fn upgrade_to_a_tree_without_an_initramfs_keeps_the_default() {
    let Some(m) = Machine::new() else { return };
    let c1 = m.release_tree(1, KVER, &[("hostname", "box\n")]);
    m.sys(["deploy", REFSPEC]).ok();
    let tree = m.path("v2");
    write_files(
        &tree,
        &[
            ("usr/etc/hostname", "box\n"),
            ("usr/lib/modules/6.2.0-1/vmlinuz", "vmlinuz 6.2.0-1\n"),
        ],
    );
    m.release(&tree, 2);
    let (esp, deploy) = (listing(&m.esp), names(&m.deploy_dir()));

    let r = m.sys(["upgrade"]).failed();
    assert_no_kernel_message(&r);
    assert_eq!(m.default_commit(), c1);
    assert_eq!(
        names(&m.deploy_dir()),
        deploy,
        "a deployment was left behind"
    );
    assert_eq!(listing(&m.esp), esp, "the ESP changed");
    m.assert_sound("after the refused upgrade");
}

#[test]
fn the_newest_of_several_kernels_boots() {
    let Some(m) = Machine::new() else { return };
    let tree = bootable_tree(&m.path("v1"), 1, "6.9.0-1", &[("hostname", "box\n")]);
    add_kernel(&tree, "6.10.0-1");
    add_kernel(&tree, "6.1.0-1");
    m.release(&tree, 1);
    m.sys(["deploy", REFSPEC]).ok();
    let e = m.default_entry();
    assert_eq!(read(&m.on_esp(&e.linux)), "vmlinuz 6.10.0-1\n");
    assert_eq!(read(&m.on_esp(&e.initrd)), "initramfs 6.10.0-1\n");
    m.assert_sound("after deploy");
}
