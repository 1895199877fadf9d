//! Booting for real: a Debian bookworm tree made bootable by
//! `strata prepare-tree`, installed by `strata install` onto a disk image,
//! booted in QEMU through OVMF and systemd-boot; then upgraded from a
//! `file://` remote on a second disk, rolled back, power-cut mid-upgrade,
//! and booted from the menu's other entry; then the self-healing stories
//! ([`self_healing`]): bad releases that fall back by themselves, the
//! unattended updater, staged deployments, power cuts during finalize, a
//! clean power-off. One test: every boot costs a minute of emulation, and
//! each step starts from the state the last left.
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

/// `panic=5`: a kernel (or initramfs) that panics resets after 5 s, so a
/// deployment that cannot reach userspace uses up its boot tries by itself.
const KARGS: &[&str] = &[
    "--karg",
    "console=ttyS0",
    "--karg",
    "quiet",
    "--karg",
    "panic=5",
];

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
            // systemd-boot: systemd-bless-boot, which blesses counted
            // boots; dbus and libpam-systemd: logind and its sessions,
            // whose sessions and inhibitors the updater honours.
            // bubblewrap: strata layer confines apt and dpkg with it.
            "bubblewrap,dbus,initramfs-tools,libpam-systemd,linux-image-amd64,systemd-boot,systemd-sysv,udev",
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
    // apt's only source: the test packages on the updates disk.
    fs::write(
        dest.join("etc/apt/sources.list"),
        "deb [trusted=yes] file:/mnt/updates/debs ./\n",
    )
    .expect("write sources.list");
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
#[ignore = "boots QEMU VMs for about 30 minutes; scripts/test runs it"]
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
    // Packages for `strata layer`, on every updates disk.
    run(Command::new("bash")
        .arg(fixture_script("deb-repo.sh"))
        .arg(updates.join("debs")))
    .ok();
    let key = publish::keygen(&t.join("builder.key"));
    init(&srv, "archive");
    let commit_v = |v: &str, ts: &str| commit_version(t, &srv, &key, v, ts);
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

    // 4. A power cut inside `strata upgrade`: the next boot always comes up
    // (v1, or a complete v2), status is consistent, and a rerun succeeds.
    // One moment, 4 s in, while the deployment is written (two more, at
    // 300 and 1500 ms, went for CI time: every fault point of a pull and
    // a deploy is cut in the directory-sysroot crash tests, and finalize's
    // below).
    {
        let delay_ms = 4000u64;
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
    // No reboot into the default first (a boot less for CI): status says it.
    let default_release = default_version(&st);
    let other = names.iter().min().copied().unwrap_or_default(); // lower generation: the rollback entry
    set_oneshot(&mut vm, other);
    vm.reboot();
    let mut vm = Vm::boot(&disk, &vars, &disks, &log);
    let chosen = booted_version(&status(&mut vm));
    assert_ne!(
        chosen, default_release,
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
    assert_eq!(booted_version(&status(&mut vm)), default_release);
    vm.ok("rm /efi/loader/entries/bad-test.conf");
    step(
        "a bad strata= stops with a message; the next boot is normal",
        &mut clock,
    );
    vm.reboot();

    self_healing(t, &srv, &key, &disk, &vars, &updates_img, &log, &mut clock);
    let _ = fs::remove_dir_all(t);
    let _ = fs::remove_file(&log);
}

/// Commits the tree `t/<version>` as `version` to os/stable of the
/// builder's repository `srv`, signed, and updates the summary.
fn commit_version(t: &Path, srv: &Path, key: &publish::Key, version: &str, ts: &str) {
    strata([
        "commit",
        "--repo",
        srv.to_str().unwrap_or_default(),
        "-b",
        "os/stable",
        "-s",
        version,
        "--timestamp",
        ts,
        "--bootable",
        "--add-metadata-string",
        &format!("version={version}"),
        "--sign-key",
        key.secret.to_str().unwrap_or_default(),
        "--tree",
        t.join(version).to_str().unwrap_or_default(),
    ])
    .ok();
    publish::update_summary(srv, Some(key));
}

/// [`commit_version`], then an updates disk of the repository as it is now.
fn publish_disk(t: &Path, srv: &Path, key: &publish::Key, version: &str, ts: &str) -> PathBuf {
    commit_version(t, srv, key, version, ts);
    let img = t.join(format!("updates-{version}.img"));
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "updates", "-d"])
        .arg(srv.parent().unwrap_or(srv))
        .arg(&img)
        .arg("2G"))
    .ok();
    img
}

/// A release derived from the prepared v2 tree (no initramfs rebuild, the
/// same kernel), changed by `customize`.
fn derived_tree(t: &Path, version: &str, customize: impl FnOnce(&Path)) {
    let dest = t.join(version);
    run(Command::new("cp").arg("-a").arg(t.join("v2")).arg(&dest)).ok();
    customize(&dest);
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// A service every release enables, and a required health check that
/// fails unless it runs; `ok` decides whether the service works.
fn demo_service(d: &Path, ok: bool) {
    let units = d.join("usr/lib/systemd/system");
    let exec = if ok { "/bin/true" } else { "/bin/false" };
    fs::write(
        units.join("strata-demo.service"),
        format!("[Unit]\nDescription=strata demo service\n[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart={exec}\n"),
    )
    .expect("demo unit");
    fs::create_dir_all(units.join("multi-user.target.wants")).expect("wants dir");
    let link = units.join("multi-user.target.wants/strata-demo.service");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink("../strata-demo.service", link).expect("enable demo unit");
    write_exec(
        &d.join("usr/lib/strata/health.d/required.d/50-demo-service"),
        "#!/bin/sh\nsystemctl is-active --quiet strata-demo.service || { echo 'strata-demo.service is not running'; exit 1; }\n",
    );
}

fn deployment_with_version<'a>(st: &'a serde_json::Value, version: &str) -> &'a serde_json::Value {
    st["deployments"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["version"] == version))
        .unwrap_or_else(|| panic!("no deployment of {version} in {st}"))
}

/// Waits (up to a minute) until systemd-bless-boot has blessed this boot.
fn wait_blessed(vm: &mut Vm) {
    vm.ok("for i in $(seq 120); do systemctl is-active -q systemd-bless-boot.service && exit 0; sleep 0.5; done; systemctl status systemd-bless-boot.service strata-health.service; exit 1");
}

/// The self-healing stories, on the installed machine: a release
/// whose service fails its health check (case 1), a release that never
/// reaches userspace (case 2), each falling back to the previous
/// deployment with no input from the test, recorded as failed and refused
/// by `upgrade`; and a good release after a bad one, blessed.
#[allow(clippy::too_many_arguments)]
fn self_healing(
    t: &Path,
    srv: &Path,
    key: &publish::Key,
    disk: &Path,
    vars: &Path,
    updates_img: &Path,
    log: &Path,
    clock: &mut std::time::Instant,
) {
    derived_tree(t, "v3", |d| demo_service(d, false));
    derived_tree(t, "v4", |d| demo_service(d, true));
    derived_tree(t, "v5", |d| {
        demo_service(d, true);
        // systemd replaced by a program that exits: the kernel panics
        // ("Attempted to kill init!") and panic=5 resets the machine.
        let systemd = d.join("usr/lib/systemd/systemd");
        let _ = fs::remove_file(&systemd);
        write_exec(&systemd, "#!/bin/sh\necho 'v5: init exits'\nexit 1\n");
    });
    for v in ["v6", "v7", "v8", "v9"] {
        derived_tree(t, v, |d| {
            demo_service(d, true);
            fs::write(d.join("usr/share/strata-release"), format!("{v}\n")).expect("marker");
        });
    }
    // v8 has an initramfs of its own (zero padding, which the kernel
    // skips), so its finalize copies a kernel directory to the ESP.
    let modules = t.join("v8/usr/lib/modules");
    for e in fs::read_dir(&modules).expect("modules").flatten() {
        let img = e.path().join("initramfs.img");
        if img.is_file() {
            let mut f = fs::OpenOptions::new()
                .append(true)
                .open(&img)
                .expect("initramfs");
            std::io::Write::write_all(&mut f, &[0u8; 65536]).expect("pad");
        }
    }
    let v3_img = publish_disk(t, srv, key, "v3", "2024-03-01T00:00:00Z");
    let v4_img = publish_disk(t, srv, key, "v4", "2024-04-01T00:00:00Z");
    let v5_img = publish_disk(t, srv, key, "v5", "2024-05-01T00:00:00Z");
    let v6_img = publish_disk(t, srv, key, "v6", "2024-06-01T00:00:00Z");
    let v7_img = publish_disk(t, srv, key, "v7", "2024-07-01T00:00:00Z");
    let v8_img = publish_disk(t, srv, key, "v8", "2024-08-01T00:00:00Z");
    publish_apps(t, srv, key);
    let v9_img = publish_disk(t, srv, key, "v9", "2024-09-01T00:00:00Z");
    step(
        "build and publish v3 (bad service) to v9, and an app",
        clock,
    );
    // vdb: v2, vdc: v3, vdd: v4, vde: v5, vdf: v6, vdg: v7, vdh: v8, vdi: v9.
    let disks = [
        updates_img,
        v3_img.as_path(),
        v4_img.as_path(),
        v5_img.as_path(),
        v6_img.as_path(),
        v7_img.as_path(),
        v8_img.as_path(),
        v9_img.as_path(),
    ];
    let mount = |dev: &str| {
        format!(
            "umount /mnt/updates 2>/dev/null; mkdir -p /mnt/updates && mount -o ro /dev/{dev} /mnt/updates"
        )
    };

    // A machine that reboots in place, as real hardware does.
    let mut vm = Vm::boot_rebooting(disk, vars, &disks, log);
    vm.shell();
    let good = booted_version(&status(&mut vm));
    step(
        &format!("boot ({good}), rebooting in place from now on"),
        clock,
    );

    // Case 1: v3's service fails its required check.
    vm.ok(&mount("vdc"));
    let up = vm.ok("strata upgrade");
    assert!(up.contains("boot counting: 3 tries"), "{up}");
    vm.send("sync; systemctl reboot");
    let healing = std::time::Instant::now();
    vm.expect(
        "health check required.d/50-demo-service failed",
        Duration::from_secs(400),
    );
    vm.expect("rebooting to fall back", Duration::from_secs(60));
    vm.shell();
    let case1 = healing.elapsed();
    step(
        "case 1: v3's check fails, reboots, falls back by itself",
        clock,
    );
    show_status(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), good, "{st}");
    assert_eq!(default_version(&st), good, "{st}");
    let v3 = deployment_with_version(&st, "v3");
    let reason = v3["failed"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("required.d/50-demo-service") && reason.contains("not running"),
        "{st}"
    );
    assert!(v3["failed"]["time"].as_u64().unwrap_or(0) > 0, "{st}");
    assert_eq!(v3["boot_state"], "bad", "{st}");
    vm.ok(&mount("vdc"));
    let (code, out) = vm.sh("strata upgrade", Duration::from_secs(300));
    assert_ne!(code, 0, "upgrade must refuse v3 again: {out}");
    assert!(
        out.contains("failed to boot on this machine") && out.contains("--allow-failed"),
        "{out}"
    );

    // A good v4 then upgrades, boots on trial and is blessed.
    vm.ok(&mount("vdd"));
    vm.ok("strata upgrade");
    vm.send("sync; systemctl reboot");
    vm.shell();
    wait_blessed(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v4", "{st}");
    let v4 = deployment_with_version(&st, "v4");
    assert_eq!(v4["boot_state"], "good", "blessed: {st}");
    let entries = vm.ok("ls /efi/loader/entries");
    let counted: Vec<&str> = entries
        .split_whitespace()
        .filter(|n| n.contains('+'))
        .collect();
    assert_eq!(
        counted.len(),
        1,
        "only v3's entry still counts (bad): {entries}"
    );
    assert!(counted[0].contains("+0-"), "{entries}");
    let health = vm.ok("systemctl show -P ExecMainStartTimestampMonotonic strata-health.service; systemctl show -P ExecMainExitTimestampMonotonic strata-health.service");
    let us: Vec<u64> = health
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    if let [start, end] = us[..] {
        eprintln!(
            "   | strata-health.service ran {:.2} s on a good boot",
            end.saturating_sub(start) as f64 / 1e6
        );
    }
    step("v4: boots on trial, passes, is blessed", clock);

    // Case 2: v5 never reaches userspace; 2 tries (the machine's setting).
    assert!(
        vm.ok("cat /etc/strata/strata.conf").contains("#tries=3"),
        "the shipped settings, all defaults"
    );
    vm.ok("printf '[boot]\\ntries=2\\n' > /etc/strata/strata.conf");
    vm.ok(&mount("vde"));
    let up = vm.ok("strata upgrade");
    assert!(up.contains("boot counting: 2 tries"), "{up}");
    vm.send("sync; systemctl reboot");
    let healing = std::time::Instant::now();
    vm.expect("v5: init exits", Duration::from_secs(400));
    vm.expect("v5: init exits", Duration::from_secs(400));
    vm.shell();
    let case2 = healing.elapsed();
    step("case 2: v5 panics twice, the machine falls back", clock);
    show_status(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v4", "{st}");
    let v5 = deployment_with_version(&st, "v5");
    assert_eq!(
        v5["failed"]["reason"], "never reached boot-complete.target (2 tries used)",
        "{st}"
    );
    vm.ok(&mount("vde"));
    let (code, out) = vm.sh("strata upgrade", Duration::from_secs(300));
    assert_ne!(code, 0, "upgrade must refuse v5: {out}");
    assert!(out.contains("never reached boot-complete"), "{out}");
    eprintln!(
        "   | from the reboot into a bad release to the previous one running: case 1 {:.0} s, case 2 {:.0} s",
        case1.as_secs_f64(),
        case2.as_secs_f64()
    );

    // Case 3, window closed: the updater stages v6 and does not reboot.
    // Case 4: an /etc edit made after staging is in v6 after the reboot.
    let today = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        / 86400
        + 3)
        % 7; // Monday = 0
    let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let closed: Vec<&str> = (2..7).map(|k| days[((today + k) % 7) as usize]).collect();
    vm.ok(&format!(
        "printf '[boot]\\ntries=2\\n[update]\\npolicy=apply\\nwindow-days={}\\nwindow-start=00:00\\nwindow-minutes=60\\n' > /etc/strata/strata.conf",
        closed.join(" ")
    ));
    vm.ok(&mount("vdf"));
    let out = vm.ok("systemctl start strata-update.service; journalctl -b -u strata-update.service -o cat --no-pager");
    assert!(out.contains("outside the reboot window"), "{out}");
    assert!(out.contains("the updater runs again at"), "{out}");
    vm.ok("systemctl is-active strata-update-window.timer");
    vm.ok("systemctl is-active strata-finalize-staged.service");
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v4", "{st}");
    assert_eq!(deployment_with_version(&st, "v6")["staged"], true, "{st}");
    assert_eq!(st["update_policy"], "apply", "{st}");
    assert!(
        st["last_update"]["result"]
            .as_str()
            .unwrap_or_default()
            .starts_with("staged"),
        "{st}"
    );
    show_status(&mut vm);
    vm.ok("echo made-after-staging > /etc/strata-after-staging.conf");
    step("case 3: closed window: v6 staged, no reboot", clock);
    vm.send("sync; systemctl reboot");
    vm.shell();
    wait_blessed(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v6", "{st}");
    assert_eq!(
        vm.ok("cat /etc/strata-after-staging.conf").trim(),
        "made-after-staging",
        "the edit made after staging reached v6"
    );
    step(
        "case 4: reboot finalizes v6 with the later /etc edit",
        clock,
    );

    // Case 3, window open: the updater stages v7, waits for the logged-in
    // root session up to session-wait, and reboots by itself.
    vm.ok("printf '[boot]\\ntries=2\\n[update]\\npolicy=apply\\nwindow-start=00:00\\nwindow-minutes=1440\\nsession-wait=15s\\n' > /etc/strata/strata.conf");
    vm.ok(&mount("vdg"));
    // A shutdown inhibitor held: staged, no reboot.
    vm.ok("systemd-inhibit --what=shutdown --who=strata-test --why=busy sleep 600 > /dev/null 2>&1 & echo $! > /tmp/inhibitor; sleep 2");
    let out = vm.ok("systemctl start strata-update.service; journalctl -b -u strata-update.service -o cat --no-pager | tail -n 3");
    assert!(
        out.contains("shutdown is inhibited by strata-test: busy"),
        "{out}"
    );
    assert_eq!(
        deployment_with_version(&status(&mut vm), "v7")["staged"],
        true
    );
    vm.ok("kill $(cat /tmp/inhibitor); sleep 1");
    let applied = std::time::Instant::now();
    vm.send("systemctl start --no-block strata-update.service");
    vm.expect("logged-in session(s) to end", Duration::from_secs(300));
    vm.expect(
        "rebooting into the staged deployment",
        Duration::from_secs(120),
    );
    vm.shell();
    wait_blessed(&mut vm);
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v7", "{st}");
    step(
        &format!(
            "case 3: open window: v7 staged, applied after the session wait ({:.0} s)",
            applied.elapsed().as_secs_f64()
        ),
        clock,
    );

    // Case 5: a power cut while the staged v8 is finalized at shutdown,
    // while its kernel is written to the ESP (vfat, no journal). The old
    // default boots, complete; the stage is forgotten; cleanup tidies; a
    // rerun works. (A cut after the /etc merge went for CI time; the
    // directory-sysroot tests cut finalize at each of its points.)
    vm.ok("printf '[boot]\\ntries=2\\n' > /etc/strata/strata.conf");
    {
        let point = "kernel-copied";
        vm.ok(&mount("vdh"));
        vm.ok("strata upgrade --stage");
        vm.ok(&format!(
            "mkdir -p /run/systemd/system/strata-finalize-staged.service.d && printf '[Service]\\nEnvironment=STRATA_FAULT_HANG={point}\\n' > /run/systemd/system/strata-finalize-staged.service.d/fault.conf && systemctl daemon-reload"
        ));
        vm.send("systemctl reboot");
        vm.expect(
            &format!("fault point {point} reached"),
            Duration::from_secs(300),
        );
        vm.kill();
        vm = Vm::boot_rebooting(disk, vars, &disks, log);
        vm.shell();
        let st = status(&mut vm);
        assert_eq!(
            booted_version(&st),
            "v7",
            "after a power cut at {point}: {st}"
        );
        assert_eq!(
            default_version(&st),
            "v7",
            "after a power cut at {point}: {st}"
        );
        for d in st["deployments"].as_array().into_iter().flatten() {
            assert_ne!(d["staged"], true, "{st}");
            let path = d["path"].as_str().unwrap_or_default();
            vm.ok(&format!(
                "test -d /sysroot{path}/usr/lib/modules && test -d /sysroot{path}/etc"
            ));
        }
        vm.ok("strata cleanup && strata fsck");
        step(
            &format!("case 5: power cut at {point} during finalize"),
            clock,
        );
    }
    // A finalize that fails (the machine's settings broken after staging):
    // the old default boots, and status and a failed unit say why.
    vm.ok(&mount("vdh"));
    vm.ok("strata upgrade --stage");
    vm.ok("printf '[boot]\\ntries=lots\\n' > /etc/strata/strata.conf");
    vm.send("sync; systemctl reboot");
    vm.shell();
    let st = status(&mut vm);
    assert_eq!(booted_version(&st), "v7", "{st}");
    let error = st["finalize_failure"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("strata.conf:2"), "{st}");
    vm.ok("for i in $(seq 60); do systemctl is-failed -q strata-finalize-failed.service && exit 0; sleep 0.5; done; systemctl status strata-finalize-failed.service; exit 1");
    vm.ok("printf '[boot]\\ntries=2\\n' > /etc/strata/strata.conf && strata cleanup");
    step("a finalize that fails: old default, reported", clock);
    vm.ok(&mount("vdh"));
    vm.ok("strata upgrade --stage");
    vm.send("sync; systemctl reboot");
    vm.shell();
    assert_eq!(booted_version(&status(&mut vm)), "v8");
    step(
        "the staged v8 after the power cuts: finalized, boots",
        clock,
    );

    layering(&mut vm, &mount("vdi"), clock);
    apps(&mut vm, &mount("vdi"), clock);

    // Clean shutdown: the hook's report on the console, and the root file
    // system clean as the host sees it.
    let before = fs::read(log).map(|l| l.len()).unwrap_or(0);
    vm.poweroff();
    let console = fs::read(log).unwrap_or_default();
    let tail = String::from_utf8_lossy(&console[before.min(console.len())..]).into_owned();
    assert!(
        tail.contains("strata: every file system is read-only or unmounted before poweroff"),
        "no clean-shutdown report in the console:\n{tail}"
    );
    assert!(!tail.contains("still read-write"), "{tail}");
    let state = root_fs_state(disk);
    assert!(
        state.contains("Filesystem state:") && state.contains("clean"),
        "{state}"
    );
    assert!(
        !state.contains("needs_recovery"),
        "the journal needs replay: {state}"
    );
    step("power off: every file system read-only, root clean", clock);
}

/// A runtime (v9's `/usr`, so mostly the OS's own objects) and a
/// shell-script app on it, published beside the OS in the builder's
/// repository and signed with the OS's key (issue 13).
fn publish_apps(t: &Path, srv: &Path, key: &publish::Key) {
    let rt = t.join("app-runtime");
    fs::create_dir_all(&rt).expect("mkdir runtime");
    run(Command::new("cp")
        .arg("-al")
        .arg(t.join("v9/usr"))
        .arg(rt.join("files")))
    .ok();
    fs::write(rt.join("metadata"), "[Runtime]\nname=org.strata.Platform\n").expect("metadata");
    let app = t.join("app-hello");
    fs::create_dir_all(app.join("files/bin")).expect("mkdir app");
    fs::write(
        app.join("metadata"),
        "[Application]\nname=org.strata.Hello\nruntime=org.strata.Platform/x86_64/1\ncommand=hello\n",
    )
    .expect("metadata");
    write_exec(
        &app.join("files/bin/hello"),
        "#!/bin/sh\necho \"hello from $FLATPAK_ID on runtime $(cat /usr/share/strata-release)\"\n",
    );
    publish::publish_app(srv, &rt, "1", key);
    publish::publish_app(srv, &app, "stable", key);
}

/// Apps on the booted machine (issue 13): installed from the OS's own
/// remote (same repository, same key), run confined; after the OS rolls
/// back, the app still runs on its own runtime.
fn apps(vm: &mut Vm, mount_v9: &str, clock: &mut std::time::Instant) {
    let long = Duration::from_secs(900);
    vm.ok(mount_v9);
    let (code, out) = vm.sh("strata app install origin org.strata.Hello 2>&1", long);
    assert_eq!(code, 0, "{out}");
    let hello = "hello from org.strata.Hello on runtime v9";
    assert_eq!(vm.ok("strata app run org.strata.Hello").trim(), hello);
    vm.ok("strata app run --command sh org.strata.Hello -c 'test \"$(ls /proc | grep -c ^[0-9])\" -le 5 && ! touch /usr/x 2>/dev/null'");
    step(
        "strata app install from the OS's remote; run confined",
        clock,
    );
    vm.ok("strata rollback");
    vm.send("sync; systemctl reboot");
    vm.shell();
    assert_eq!(booted_version(&status(vm)), "v8");
    assert_eq!(vm.ok("cat /usr/share/strata-release").trim(), "v8");
    assert_eq!(vm.ok("strata app run org.strata.Hello").trim(), hello);
    step("the OS rolled back to v8: the app runs as before", clock);
}

/// The booted deployment in `status --json`.
fn booted(st: &serde_json::Value) -> &serde_json::Value {
    st["deployments"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["booted"] == true))
        .unwrap_or_else(|| panic!("no booted deployment in {st}"))
}

/// Packages on the booted machine (issue 12), from the updates disk
/// (`mount_v9` mounts the one with v9 and the test packages): apt-get
/// refused on the image; `strata layer add --apply-live` usable at once;
/// a writable /usr overlay gone after the reboot while the layer stays;
/// an upgrade of the base keeps the layer.
fn layering(vm: &mut Vm, mount_v9: &str, clock: &mut std::time::Instant) {
    let long = Duration::from_secs(900);
    vm.ok(mount_v9);
    let (code, out) = vm.sh(
        "apt-get -q update >/dev/null 2>&1; apt-get -y install strata-hello 2>&1",
        long,
    );
    assert_ne!(code, 0, "apt-get install on the read-only image: {out}");
    assert!(out.contains("strata layer add PKG"), "{out}");
    // A machine with its own /etc/passwd (the /etc merge keeps it whole):
    // the user strata-user's postinst makes reaches it through sysusers.d.
    vm.ok("useradd localuser");
    let (code, out) = vm.sh(
        "strata layer add --apply-live strata-hello strata-user 2>&1",
        long,
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(vm.ok("strata-hello").trim(), "hello from a layered package");
    vm.ok("getent passwd strata-svc");
    assert_eq!(booted(&status(vm))["live"], "live");
    step("apt-get refused; strata layer add --apply-live", clock);
    vm.ok("strata usr-overlay");
    let (code, out) = vm.sh("apt-get -y install strata-post 2>&1", long);
    assert_eq!(code, 0, "apt-get on the writable overlay: {out}");
    assert_eq!(
        vm.ok("cat /usr/share/strata-post-made-by-postinst").trim(),
        "postinst ran"
    );
    assert_eq!(booted(&status(vm))["live"], "usr-overlay");
    show_status(vm);
    vm.send("sync; systemctl reboot");
    vm.shell();
    assert_eq!(vm.ok("strata-hello").trim(), "hello from a layered package");
    vm.ok("test ! -e /usr/share/strata-post-made-by-postinst && ! dpkg -s strata-post >/dev/null 2>&1");
    vm.ok("dpkg -s strata-hello | grep -q 'Status: install ok installed'");
    vm.ok("getent passwd strata-svc && getent passwd localuser");
    let st = status(vm);
    assert_eq!(
        booted(&st)["layered"],
        serde_json::json!(["strata-hello", "strata-user"]),
        "{st}"
    );
    assert!(booted(&st)["live"].is_null(), "{st}");
    step(
        "usr-overlay + apt-get; reboot: layer kept, overlay gone",
        clock,
    );
    vm.ok(mount_v9);
    let (code, out) = vm.sh("strata upgrade 2>&1", long);
    assert_eq!(code, 0, "{out}");
    vm.send("sync; systemctl reboot");
    vm.shell();
    show_status(vm);
    let st = status(vm);
    assert_eq!(booted_version(&st), "v9", "{st}");
    assert_eq!(vm.ok("cat /usr/share/strata-release").trim(), "v9");
    assert_eq!(vm.ok("strata-hello").trim(), "hello from a layered package");
    step("upgrade the base to v9: the layer is built again", clock);
}

/// `dumpe2fs -h` of the installed disk's root file system (partition 2).
fn root_fs_state(disk: &Path) -> String {
    let dump = run(Command::new("sfdisk").arg("--json").arg(disk)).ok();
    let table: serde_json::Value = serde_json::from_str(&dump.stdout).expect("sfdisk --json");
    let part = &table["partitiontable"]["partitions"][1];
    let sector = table["partitiontable"]["sectorsize"]
        .as_u64()
        .unwrap_or(512);
    let (start, size) = (
        part["start"].as_u64().expect("start") * sector,
        part["size"].as_u64().expect("size") * sector,
    );
    let dev = run(Command::new("losetup")
        .args(["--find", "--show", "--read-only", "--offset"])
        .arg(start.to_string())
        .arg("--sizelimit")
        .arg(size.to_string())
        .arg(disk))
    .ok()
    .stdout
    .trim()
    .to_owned();
    let out = run(Command::new("dumpe2fs").arg("-h").arg(&dev));
    let _ = Command::new("losetup").arg("-d").arg(&dev).status();
    format!("{}{}", out.stdout, out.stderr)
        .lines()
        .filter(|l| l.starts_with("Filesystem state") || l.starts_with("Filesystem features"))
        .collect::<Vec<_>>()
        .join("\n")
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
