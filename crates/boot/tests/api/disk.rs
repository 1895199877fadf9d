//! Partitioning an image file: GPT with the ESP and the root, each
//! formatted, attached through loop devices that are detached on drop.
//! Needs root (losetup) and util-linux, dosfstools, e2fsprogs, mtools.

use std::fs;
use std::path::Path;
use std::process::Command;

use strata_boot::disk::{self, ESP_MIB, ESP_TYPE, ROOT_TYPE};

use crate::{file, have_root, have_tools};

/// Runs a tool that must succeed; its trimmed stdout.
fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The number after `key=` in a partition line of `sfdisk --dump`.
fn field(line: &str, key: &str) -> u64 {
    line.split(',')
        .find_map(|f| {
            let (k, v) = f.split_once('=')?;
            k.trim().ends_with(key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
}

fn blkid(tag: &str, device: &Path) -> String {
    output(
        Command::new("blkid")
            .args(["-s", tag, "-o", "value"])
            .arg(device),
    )
}

/// An image file becomes a GPT disk with a 512 MiB vfat ESP and an ext4
/// root of the rest, typed and labelled as boot loaders and
/// systemd-gpt-auto-generator look for them; files copied onto the ESP
/// with mtools read back; the loop devices are gone once the disk drops.
#[test]
fn partition_an_image_file() {
    if !have_root("attaching loop devices")
        || !have_tools(&[
            "sfdisk",
            "losetup",
            "mkfs.vfat",
            "mkfs.ext4",
            "blkid",
            "mcopy",
            "mtype",
        ])
    {
        return;
    }
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let image = tmp.path().join("disk.img");
    let size = (ESP_MIB + 96) << 20;
    let d = disk::partition(&image, size).expect("partition");
    assert_eq!(d.device, image);
    assert_eq!(fs::metadata(&image).expect("image").len(), size);

    // The partition table, as sfdisk reads it back from the file.
    let dump = output(Command::new("sfdisk").arg("--dump").arg(&image));
    assert!(dump.lines().any(|l| l == "label: gpt"), "{dump}");
    let parts: Vec<&str> = dump.lines().filter(|l| l.contains(" : start=")).collect();
    assert_eq!(parts.len(), 2, "{dump}");
    let esp_mib = field(parts[0], "size") * 512 / (1 << 20);
    assert_eq!(esp_mib, ESP_MIB, "{dump}");
    assert!(
        field(parts[1], "start") >= field(parts[0], "start") + field(parts[0], "size"),
        "{dump}"
    );
    let root_mib = field(parts[1], "size") * 512 / (1 << 20);
    assert!(
        (90..96).contains(&root_mib),
        "the root takes the rest: {dump}"
    );
    assert!(parts[0].contains(&format!("type={ESP_TYPE}")), "{dump}");
    assert!(parts[0].contains("name=\"esp\""), "{dump}");
    assert!(parts[1].contains(&format!("type={ROOT_TYPE}")), "{dump}");
    assert!(parts[1].contains("name=\"root\""), "{dump}");

    // The filesystems on the attached partitions.
    assert_eq!(blkid("TYPE", &d.esp), "vfat");
    assert_eq!(blkid("LABEL", &d.esp), "STRATA-ESP");
    assert_eq!(blkid("TYPE", &d.root), "ext4");
    assert_eq!(blkid("LABEL", &d.root), "strata-root");
    let esp_uuid = disk::uuid(&d.esp).expect("ESP UUID");
    let root_uuid = disk::uuid(&d.root).expect("root UUID");
    assert_eq!(esp_uuid, blkid("UUID", &d.esp));
    assert_eq!(root_uuid, blkid("UUID", &d.root));
    assert!(!root_uuid.is_empty() && root_uuid != esp_uuid);

    // A staged ESP tree copied onto the vfat filesystem, without mounting.
    let staged = tmp.path().join("staged");
    fs::create_dir_all(staged.join("loader/entries")).expect("mkdir");
    file(
        &staged.join("loader/entries"),
        "strata-os-000001.conf",
        b"title t\nversion 000001\nlinux /strata/os-a/vmlinuz\n",
    );
    file(&staged.join("loader"), "loader.conf", b"timeout 3\n");
    disk::copy_to_vfat(&staged, &d.esp).expect("mcopy");
    let on_esp = |p: &str| output(Command::new("mtype").arg("-i").arg(&d.esp).arg(p));
    assert_eq!(
        on_esp("::/loader/entries/strata-os-000001.conf"),
        "title t\nversion 000001\nlinux /strata/os-a/vmlinuz"
    );
    assert_eq!(on_esp("::/loader/loader.conf"), "timeout 3");

    drop(d);
    let attached = output(Command::new("losetup").arg("-j").arg(&image));
    assert!(attached.is_empty(), "still attached: {attached}");
}
