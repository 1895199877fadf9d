//! `strata install` into a mounted target (here: two directories): the
//! sysroot layout, systemd-boot on the ESP, one entry naming a complete
//! deployment, the ESP recorded as /efi for the machine, the remote kept.

use crate::common::machine::{bootable_tree, names, read};
use crate::common::*;

#[test]
fn install_into_a_mounted_target() {
    let boot = std::path::Path::new("/usr/lib/systemd/boot/efi/systemd-bootx64.efi");
    if !boot.exists() {
        skip("systemd-boot-efi is not installed (scripts/deps installs it)");
        return;
    }
    let tmp = tempdir();
    let t = tmp.path();
    let tree = bootable_tree(&t.join("tree"), 1, "6.1.0-1", &[("hostname", "box\n")]);
    let repo = t.join("repo");
    init(&repo, "archive");
    let commit = commit(&repo, "os/stable", &tree, &[]);
    let (root, esp) = (t.join("root"), t.join("esp"));
    std::fs::create_dir_all(&root).expect("create target root");
    std::fs::create_dir_all(&esp).expect("create target esp");
    strata([
        "install".as_ref(),
        "--target-sysroot".as_ref(),
        root.as_os_str(),
        "--target-esp".as_ref(),
        esp.as_os_str(),
        "--root-karg".as_ref(),
        "root=LABEL=r rw".as_ref(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "--remote".as_ref(),
        "https://updates.example.com/repo".as_ref(),
        "--ref".as_ref(),
        "os/stable".as_ref(),
        "--karg".as_ref(),
        "quiet".as_ref(),
    ])
    .ok();

    assert!(esp.join("EFI/BOOT/BOOTX64.EFI").is_file());
    assert!(esp.join("EFI/systemd/systemd-bootx64.efi").is_file());
    assert!(read(&root.join("strata/sysroot.conf")).contains("esp=/efi"));
    let entries = names(&esp.join("loader/entries"));
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = read(&esp.join("loader/entries").join(&entries[0]));
    let path = format!("/strata/deploy/default/{commit}.0");
    assert!(
        entry.contains(&format!("options root=LABEL=r rw strata={path} quiet")),
        "{entry}"
    );
    assert!(
        root.join(path.trim_start_matches('/'))
            .join("etc/hostname")
            .is_file()
    );
    // The machine follows the remote it was given.
    let origin = read(&root.join(format!("strata/deploy/default/{commit}.0.origin")));
    assert!(origin.contains("refspec=origin:os/stable"), "{origin}");
    let remotes = on(&root.join("strata/repo"), ["remote", "list"])
        .ok()
        .stdout;
    assert!(
        remotes.contains("https://updates.example.com/repo"),
        "{remotes}"
    );
}
