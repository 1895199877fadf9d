//! Booting for real: a Debian bookworm tree made bootable by
//! `strata prepare-tree`, installed by `strata install` onto a disk image,
//! booted in QEMU through OVMF and systemd-boot; then upgraded from a
//! `file://` remote on a second disk, rolled back, power-cut mid-upgrade,
//! and booted from the menu's other entry. One test: every boot costs a
//! minute of emulation, and each step starts from the state the last left.
//! `#[ignore]`d, so plain `cargo test` and `scripts/test --quick` stay
//! quick; `scripts/test` runs it (`--include-ignored`), as does
//! `scripts/demo` (`cargo test --profile test-release -p strata-cli --test vm -- --ignored`).

#[path = "../common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::vm::{Vm, have_qemu};
use common::*;

const KARGS: &[&str] = &["--karg", "console=ttyS0", "--karg", "quiet"];

fn fixture_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// The cached debootstrap tree with a kernel, systemd and initramfs-tools.
fn bootable_debian() -> PathBuf {
    let r = run(Command::new("bash")
        .arg(fixture_script("debian-tree.sh"))
        .args([
            "--include",
            "systemd-sysv,linux-image-amd64,udev,initramfs-tools",
        ]));
    assert!(r.status.success(), "debian-tree.sh failed: {r:#?}");
    PathBuf::from(r.stdout.trim_end().lines().last().unwrap_or_default())
}

fn prepare_root_binary() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/build-prepare-root");
    let r = run(Command::new("bash").arg(script));
    assert!(r.status.success(), "build-prepare-root failed: {r:#?}");
    PathBuf::from(r.stdout.trim())
}

/// Copies the Debian tree, logs root in on the serial console, applies
/// `customize`, and makes it bootable.
fn make_tree(base: &Path, dest: &Path, helper: &Path, customize: impl FnOnce(&Path)) {
    run(Command::new("cp").arg("-a").arg(base).arg(dest)).ok();
    let dropin = dest.join("etc/systemd/system/serial-getty@ttyS0.service.d");
    fs::create_dir_all(&dropin).expect("create getty drop-in dir");
    fs::write(dropin.join("autologin.conf"), "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear %I 115200 linux\n").expect("write drop-in");
    fs::write(dest.join("etc/hostname"), "strata-vm\n").expect("write hostname");
    run(Command::new("chroot")
        .arg(dest)
        .args(["passwd", "-d", "root"]))
    .ok();
    customize(dest);
    strata([
        "prepare-tree".as_ref(),
        dest.as_os_str(),
        "--prepare-root".as_ref(),
        helper.as_os_str(),
    ])
    .ok();
}

/// Makes systemd-boot boot entry `id` once (LoaderEntryOneShot: attributes
/// NV|BS|RT, then the UTF-16LE id with its terminating NUL).
fn set_oneshot(vm: &mut Vm, id: &str) {
    vm.ok(&format!(
        "printf '\\x07\\x00\\x00\\x00' > /tmp/v && printf '%s' '{id}' | iconv -t UTF-16LE >> /tmp/v && printf '\\x00\\x00' >> /tmp/v && cat /tmp/v > /sys/firmware/efi/efivars/LoaderEntryOneShot-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f"
    ));
}

/// Prints a step's name and duration (scripts/demo shows these lines).
fn step(name: &str, since: &mut std::time::Instant) {
    eprintln!("== {name:<44} {:8.1} s", since.elapsed().as_secs_f64());
    *since = std::time::Instant::now();
}

/// Prints `strata status` as the guest shows it.
fn show_status(vm: &mut Vm) {
    for line in vm.ok("strata status").lines() {
        eprintln!("   | {line}");
    }
}

fn status(vm: &mut Vm) -> serde_json::Value {
    serde_json::from_str(&vm.ok("strata status --json")).expect("status --json is JSON")
}

/// The version of the deployment whose `flag` (default, booted) is set.
fn version_where(st: &serde_json::Value, flag: &str) -> String {
    let d = st["deployments"]
        .as_array()
        .expect("deployments")
        .iter()
        .find(|d| d[flag] == true)
        .unwrap_or_else(|| panic!("no {flag} deployment in {st}"));
    d["version"].as_str().unwrap_or_default().to_owned()
}

fn default_version(st: &serde_json::Value) -> String {
    version_where(st, "default")
}

fn booted_version(st: &serde_json::Value) -> String {
    version_where(st, "booted")
}

#[test]
#[ignore = "boots QEMU VMs for 12 to 18 minutes; scripts/test runs it"]
fn install_boot_upgrade_rollback_power_cut() {
    if !have_root("loop devices, chroot, mkfs") || !have_qemu() {
        return;
    }
    // Kept when the test fails (disk image, trees) for a post-mortem;
    // removed at the end of a successful run.
    let kept = tempdir().keep();
    let t = kept.as_path();
    let base = bootable_debian();
    let helper = prepare_root_binary();
    // Outside the temporary directory: kept for a post-mortem when the test fails.
    let log = std::env::temp_dir().join(format!("strata-vm-console-{}.log", std::process::id()));
    eprintln!("vm: console log in {}", log.display());
    let mut clock = std::time::Instant::now();

    // v1 and v2 trees; v2 adds a package's worth of files, changes a default
    // in /etc, and has a rebuilt initramfs (so a new kernel directory).
    make_tree(&base, &t.join("v1"), &helper, |_| {});
    make_tree(&base, &t.join("v2"), &helper, |d| {
        fs::write(d.join("etc/strata-v2.conf"), "new default in v2\n").expect("v2 default");
        fs::write(d.join("etc/motd"), "v2 motd\n").expect("v2 motd");
        fs::create_dir_all(d.join("usr/share/strata-v2")).expect("v2 dir");
        fs::write(d.join("usr/share/strata-v2/payload"), "v2 payload\n").expect("v2 payload");
    });
    step("build v1 and v2 trees (prepare-tree)", &mut clock);

    // The builder's archive repository, signed.
    let updates = t.join("updates");
    let srv = updates.join("repo");
    let key = publish::keygen(&t.join("builder.key"));
    init(&srv, "archive");
    let commit_v = |v: &str, ts: &str| {
        strata([
            "commit",
            "--repo",
            srv.to_str().unwrap_or_default(),
            "-b",
            "os/stable",
            "-s",
            v,
            "--timestamp",
            ts,
            "--bootable",
            "--add-metadata-string",
            &format!("version={v}"),
            "--sign-key",
            t.join("builder.key").to_str().unwrap_or_default(),
            "--tree",
            t.join(v).to_str().unwrap_or_default(),
        ])
        .ok();
        publish::update_summary(&srv, Some(&key));
    };
    commit_v("v1", "2024-01-01T00:00:00Z");

    // Install v1; the machine will follow file:///mnt/updates/repo.
    let disk = t.join("disk.img");
    let mut args: Vec<String> = [
        "install",
        "--disk",
        disk.to_str().unwrap_or_default(),
        "--size",
        "6G",
        "--source-repo",
        srv.to_str().unwrap_or_default(),
        "--remote",
        "file:///mnt/updates/repo",
        "--sign-pubkey",
        &key.public,
        "--ref",
        "os/stable",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(KARGS.iter().map(|s| s.to_string()));
    strata(&args).ok();
    step("commit v1, install it onto a disk image", &mut clock);

    // v2 published on the updates disk (an ext4 image made from the directory).
    commit_v("v2", "2024-02-01T00:00:00Z");
    let updates_img = t.join("updates.img");
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "updates", "-d"])
        .arg(&updates)
        .arg(&updates_img)
        .arg("2G"))
    .ok();
    let vars = t.join("vars.fd");
    let disks = [updates_img.as_path()];
    let mount_updates = "mkdir -p /mnt/updates && (mountpoint -q /mnt/updates || mount -o ro /dev/vdb /mnt/updates)";

    // 1. A fresh install boots; /usr is read-only even for root.
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    step("publish v2; boot the fresh install", &mut clock);
    show_status(&mut vm);
    let st = status(&mut vm);
    assert_eq!(st["deployments"].as_array().map(Vec::len), Some(1), "{st}");
    assert_eq!(booted_version(&st), "v1");
    let (code, out) = vm.sh("touch /usr/strata-x", Duration::from_secs(30));
    assert_ne!(code, 0);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(vm.ok("findmnt -no OPTIONS /usr").contains("ro"));

    // 2. Local changes, then upgrade to v2 and reboot.
    vm.ok("echo edited-host > /etc/hostname && echo mine > /etc/strata-test.conf && mkdir -p /var/lib/strata-test && echo data > /var/lib/strata-test/data");
    vm.ok(mount_updates);
    let up = vm.ok("strata upgrade");
    assert!(up.contains("deployed"), "{up}");
    step(
        "edit /etc and /var; strata upgrade (in the guest)",
        &mut clock,
    );
    vm.reboot();
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    step("reboot into v2", &mut clock);
    show_status(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v2", "{st}");
    assert_eq!(vm.ok("cat /etc/hostname").trim(), "edited-host");
    assert_eq!(vm.ok("cat /etc/strata-test.conf").trim(), "mine");
    assert_eq!(vm.ok("cat /etc/strata-v2.conf").trim(), "new default in v2");
    assert_eq!(
        vm.ok("cat /usr/share/strata-v2/payload").trim(),
        "v2 payload"
    );
    assert_eq!(vm.ok("cat /var/lib/strata-test/data").trim(), "data");

    // 3. Rollback: v1 boots, /var intact.
    vm.ok("strata rollback");
    vm.reboot();
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    step("strata rollback; reboot into v1", &mut clock);
    show_status(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v1", "{st}");
    assert_eq!(vm.ok("cat /var/lib/strata-test/data").trim(), "data");

    // 4. Power cuts inside `strata upgrade`: the next boot always comes up
    // (v1, or a complete v2), status is consistent, and a rerun succeeds.
    for delay_ms in [300u64, 1500, 4000] {
        // v1 the default again, so the upgrade has a whole deploy to do.
        let st = status(&mut vm);
        if default_version(&st) != "v1" {
            vm.ok("strata rollback");
        }
        vm.ok(mount_updates);
        vm.send("strata upgrade > /dev/null 2>&1");
        std::thread::sleep(Duration::from_millis(delay_ms));
        vm.kill();
        vm = Vm::boot(&disk, &vars, &disks, &log);
        let st = status(&mut vm);
        let v = booted_version(&st);
        assert!(
            v == "v1" || v == "v2",
            "after a power cut at {delay_ms} ms: {st}"
        );
        let defaults = st["deployments"]
            .as_array()
            .map(|a| a.iter().filter(|d| d["default"] == true).count());
        assert_eq!(defaults, Some(1), "{st}");
        // Every deployment status lists is complete on disk.
        for d in st["deployments"].as_array().into_iter().flatten() {
            let path = d["path"].as_str().unwrap_or_default();
            vm.ok(&format!(
                "test -d /sysroot{path}/usr/lib/modules && test -d /sysroot{path}/etc"
            ));
        }
        vm.ok(mount_updates);
        vm.ok("strata upgrade; strata cleanup");
        assert_eq!(default_version(&status(&mut vm)), "v2");
        vm.ok("strata fsck");
        step(
            &format!("power cut {delay_ms} ms into an upgrade; boot; rerun"),
            &mut clock,
        );
    }

    // 5. Both entries boot from the menu: a one-shot choice of the other entry.
    let st = status(&mut vm);
    let entries = vm.ok("ls /efi/loader/entries");
    let names: Vec<&str> = entries
        .split_whitespace()
        .filter(|n| n.starts_with("strata-"))
        .collect();
    assert_eq!(names.len(), 2, "{entries}");
    let before = booted_version(&st);
    vm.reboot();
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    let default_version = booted_version(&status(&mut vm));
    let other = names.iter().min().copied().unwrap_or_default(); // lower generation: the rollback entry
    set_oneshot(&mut vm, other);
    vm.reboot();
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    let chosen = booted_version(&status(&mut vm));
    assert_ne!(
        chosen, default_version,
        "the one-shot entry {other} should boot the other deployment (was {before})"
    );
    step("boot the other entry from the menu (one-shot)", &mut clock);

    // 6. A bad deployment: an entry (not one of strata's, so strata leaves it
    // alone) whose strata= names a deployment that does not exist. Booted
    // once, it stops in the initramfs with a clear message instead of booting
    // anything else; the next boot is the default again.
    let default_entry = vm.ok("ls /efi/loader/entries | grep '^strata-' | sort | tail -n 1");
    vm.ok(&format!(
        "sed -e 's/^title .*/title bad deployment/' -e 's|\\(strata=[^ ]*\\)\\.[0-9]*|\\1.99|' /efi/loader/entries/{} > /efi/loader/entries/bad-test.conf && sync",
        default_entry.trim()
    ));
    set_oneshot(&mut vm, "bad-test.conf");
    vm.reboot();
    let vm = Vm::boot_until(
        &disk,
        &vars,
        &disks,
        &log,
        "does not exist on the root filesystem",
    );
    vm.kill();
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    assert_eq!(booted_version(&status(&mut vm)), default_version);
    vm.ok("rm /efi/loader/entries/bad-test.conf");
    step(
        "a bad strata= stops with a message; the next boot is normal",
        &mut clock,
    );
    vm.kill();
    let _ = fs::remove_dir_all(t);
    let _ = fs::remove_file(&log);
}

/// Pins the harness fix for a flaky "guest command failed: left: -1": the
/// console echoed the typed command before `stty -echo` took effect, and
/// its literal `@@E1:$?@@` was taken for the end marker. The markers the
/// guest prints must never appear in the line we type.
#[test]
fn guest_command_markers_are_not_in_the_typed_line() {
    for n in [1, 7, 42] {
        let line = common::vm::command_line(n, "strata status");
        assert!(!line.contains(&format!("@@S{n}@@")), "{line}");
        assert!(!line.contains(&format!("@@E{n}:")), "{line}");
    }
    // What the guest's shell prints for the line does contain them.
    let out = Command::new("sh")
        .arg("-c")
        .arg(common::vm::command_line(3, "true"))
        .output()
        .expect("run sh");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "@@S3@@\n@@E3:0@@\n");
}
