//! Package layering on a directory sysroot, with the real apt, dpkg and
//! bubblewrap against a Debian repository served by nginx
//! (`tests/fixtures/deb-repo.sh`: Debian's own `hello` and small packages
//! built with dpkg-deb, one per case), on a Debian minbase image made by
//! `strata prepare-tree`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::machine::*;
use crate::common::nginx::{Nginx, have_nginx};
use crate::common::*;

/// A machine whose image is a prepared Debian minbase following the
/// server, with apt pointed at the test repository.
struct Layered {
    m: Machine,
    debs: PathBuf,
    nginx: Nginx,
    /// The prepared base tree of release 1 (later releases copy it).
    tree: PathBuf,
    c1: String,
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// `cp -a from to`.
fn copy_tree(from: &Path, to: &Path) {
    run(Command::new("cp").arg("-a").arg(from).arg(to)).ok();
}

/// Makes `tree` (a plain Debian tree) a strata image whose apt uses only
/// the test repository at `port`.
fn prepare(m: &Machine, tree: &Path, port: u16) {
    write_files(
        tree,
        &[
            (&format!("boot/vmlinuz-{KVER}"), "vmlinuz\n"),
            (&format!("boot/initrd.img-{KVER}"), "initramfs\n"),
            (
                "etc/apt/sources.list",
                &format!("deb [trusted=yes] http://127.0.0.1:{port}/ ./\n"),
            ),
        ],
    );
    let parts = tree.join("etc/apt/sources.list.d");
    if parts.is_dir() {
        fs::remove_dir_all(&parts).expect("remove sources.list.d");
        fs::create_dir(&parts).expect("mkdir sources.list.d");
    }
    // No initramfs-tools in minbase: prepare-tree keeps the fake initramfs.
    let r = m
        .sys([
            "prepare-tree".as_ref(),
            tree.as_os_str(),
            "--prepare-root".as_ref(),
            "/bin/true".as_ref(),
        ])
        .ok();
    assert!(r.stderr.contains("no initramfs-tools"), "{r:#?}");
}

fn layered_machine() -> Option<Layered> {
    let m = Machine::new()?;
    if !(have_tool("bwrap") && have_nginx() && have_tool("dpkg-deb")) {
        return None;
    }
    let debian = debian_tree()?;
    let debs = m.path("debs");
    run(Command::new("bash").arg(fixture("deb-repo.sh")).arg(&debs)).ok();
    let nginx = Nginx::start(&debs);
    let tree = m.path("base");
    copy_tree(&debian, &tree);
    prepare(&m, &tree, nginx.port);
    let c1 = m.release(&tree, 1);
    m.sys(["deploy", REFSPEC]).ok();
    Some(Layered {
        m,
        debs,
        nginx,
        tree,
        c1,
    })
}

/// `dpkg-query -W` of `pkg` in deployment `dir` (chroot, the image's database).
fn dpkg_version(dir: &Path, pkg: &str) -> Option<String> {
    let out = Command::new("chroot")
        .arg(dir)
        .args([
            "dpkg-query",
            "--admindir=/usr/share/dpkg/database",
            "-W",
            "-f=${Version} ${db:Status-Abbrev}",
            pkg,
        ])
        .output()
        .expect("chroot dpkg-query");
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && text.ends_with("ii"))
        .then(|| text.trim_end_matches("ii").trim().to_owned())
}

fn layer_json(m: &Machine) -> serde_json::Value {
    let r = m.sys(["layer", "list", "--json"]).ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("layer list --json: {e}: {r:#?}"))
}

fn listed(m: &Machine) -> Vec<String> {
    layer_json(m)["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

/// The deployments, the default entry and the repository's refs: what a
/// failed layering must leave exactly as it was.
fn snapshot(m: &Machine) -> (Vec<String>, String, String) {
    let refs = on(&m.repo(), ["refs"]).ok().stdout;
    (
        m.deployments(),
        m.default_entry().deployment().to_owned(),
        refs,
    )
}

fn assert_no_build_left(m: &Machine, when: &str) {
    let tmp = m.sysroot.join("strata/layer/tmp");
    assert_eq!(
        names(&tmp),
        Vec::<String>::new(),
        "{when}: build directories left"
    );
}

#[test]
fn prepared_image_keeps_dpkg_in_usr_and_refuses_apt_get() {
    let Some(l) = layered_machine() else {
        return;
    };
    let dir = l.m.deployment_of(&l.c1);
    assert!(dir.join("usr/share/dpkg/database/status").is_file());
    assert!(
        !dir.join("var/lib/dpkg").exists(),
        "/var/lib/dpkg is made at boot"
    );
    assert_eq!(
        read(&dir.join("usr/lib/tmpfiles.d/strata-dpkg.conf"))
            .lines()
            .nth(1),
        Some("L+ /var/lib/dpkg - - - - ../../usr/share/dpkg/database")
    );
    assert_eq!(
        fs::read_link(dir.join("opt")).expect("opt link"),
        Path::new("var/opt")
    );
    assert_eq!(
        fs::read_link(dir.join("usr/local")).expect("usr/local link"),
        Path::new("../var/usrlocal")
    );
    assert!(
        dpkg_version(&dir, "bash").is_some(),
        "dpkg reads the image's database"
    );

    // apt-get install on the read-only image: the hook's message, not a
    // half-written tree. /usr read-only, /var writable, as on a machine.
    let var = l.m.path("machine-var");
    fs::create_dir_all(var.join("lib")).expect("mkdir");
    std::os::unix::fs::symlink("../../usr/share/dpkg/database", var.join("lib/dpkg"))
        .expect("link");
    for d in [
        "log/apt",
        "cache/apt/archives/partial",
        "lib/apt/lists/partial",
    ] {
        fs::create_dir_all(var.join(d)).expect("mkdir");
    }
    let bwrap = |args: &[&str]| {
        let mut c = Command::new("bwrap");
        c.arg("--ro-bind").arg(&dir).arg("/");
        c.arg("--bind").arg(&var).arg("/var");
        c.args([
            "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
        ]);
        c.args(["--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin"]);
        c.args(args);
        run(&mut c)
    };
    bwrap(&["apt-get", "-q", "update"]).ok();
    let r = bwrap(&["apt-get", "-y", "install", "strata-hello"]).failed();
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(all.contains("strata layer add PKG"), "{r:#?}");
    assert!(dpkg_version(&dir, "strata-hello").is_none());
}

#[test]
fn add_upgrade_and_remove_keep_the_layer() {
    let Some(l) = layered_machine() else {
        return;
    };
    let m = &l.m;
    let base_dir = m.deployment_of(&l.c1);

    // Add: Debian's hello (real ELF), a dependency chain, a postinst, a
    // systemd unit, /var and /opt content, and a local .deb.
    // With a umask that would make new directories 0700: the tree's root
    // keeps the base's mode (regression: it took the build directory's).
    let c = m.cmd([
        "layer",
        "add",
        "hello",
        "strata-dep",
        "strata-post",
        "strata-unit",
        "strata-var",
    ]);
    let r = run(Command::new("sh")
        .args(["-c", "umask 077 && exec \"$0\" \"$@\""])
        .arg(c.get_program())
        .args(c.get_args()))
    .ok();
    assert!(r.stdout.contains("layered hello 2."), "{r:#?}");
    m.assert_sound("after layer add");
    let new = m.default_deployment();
    assert_ne!(new, base_dir);
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).expect("stat").permissions().mode() & 0o7777
    };
    assert_eq!(mode(&new), mode(&base_dir), "the root's mode");
    assert_eq!(mode(&new.join("usr")), mode(&base_dir.join("usr")));
    let c_layered = m.default_commit();
    assert_ne!(c_layered, l.c1, "a new local commit");
    for p in [
        "hello",
        "strata-dep",
        "strata-hello",
        "strata-post",
        "strata-unit",
        "strata-var",
    ] {
        assert!(
            dpkg_version(&new, p).is_some(),
            "{p} is installed in the new deployment"
        );
        assert!(
            dpkg_version(&base_dir, p).is_none(),
            "{p} is not in the base deployment"
        );
    }
    let hello = run(Command::new("chroot").arg(&new).arg("hello")).ok();
    assert_eq!(hello.stdout.trim(), "Hello, world!");
    assert!(
        !base_dir.join("usr/bin/hello").exists(),
        "the base deployment is untouched"
    );
    // The postinst ran, confined, inside the new tree.
    assert_eq!(
        read(&new.join("usr/share/strata-post-made-by-postinst")),
        "postinst ran\n"
    );
    // The unit's enablement is in the deployment's /etc (merged from usr/etc).
    assert!(
        fs::symlink_metadata(
            new.join("etc/systemd/system/multi-user.target.wants/strata-unit.service")
        )
        .is_ok()
    );
    // /var and /opt content became tmpfiles.d lines and files in /usr.
    let tmpfiles = read(&new.join("usr/lib/tmpfiles.d/strata-layer.conf"));
    for line in [
        "d /var/lib/strata-post 0755 0 0 -",
        "C /var/lib/strata-var/data - - - - /usr/share/factory/var/lib/strata-var/data",
        // A package's own /opt directory is one link, as rpm-ostree makes it.
        "L /var/opt/strata-var - - - - /usr/lib/opt/strata-var",
    ] {
        assert!(
            tmpfiles.lines().any(|l| l == line),
            "{line:?} missing from:\n{tmpfiles}"
        );
    }
    assert_eq!(
        read(&new.join("usr/share/factory/var/lib/strata-var/data")),
        "state shipped by the package\n"
    );
    assert!(new.join("usr/lib/opt/strata-var/bin/tool").is_file());
    // apt's, dpkg's and debconf's own state stays out; directories the
    // base has are the base's lines; logs and caches keep no files.
    for left_out in [
        "/var/lib/apt",
        "/var/cache/apt",
        "/var/log/apt",
        "/var/cache/debconf",
        "d /var/log ",
        "d /var/lib ",
    ] {
        assert!(!tmpfiles.contains(left_out), "{left_out} in:\n{tmpfiles}");
    }
    assert!(
        !tmpfiles
            .lines()
            .any(|l| l.starts_with("C /var/log") || l.starts_with("C /var/cache"))
    );
    // Metadata and origin name the base and the request.
    let show = show_json(&m.repo(), &c_layered);
    assert_eq!(
        show["metadata"]["strata.layer.base"],
        l.c1.as_str(),
        "{show:#}"
    );
    let st = m.status();
    let d0 = &st["deployments"][0];
    assert_eq!(d0["base_commit"], l.c1.as_str());
    assert_eq!(
        d0["layered"],
        serde_json::json!([
            "hello",
            "strata-dep",
            "strata-post",
            "strata-unit",
            "strata-var"
        ])
    );
    let list = layer_json(m);
    assert_eq!(list["base"], l.c1.as_str());
    assert_eq!(list["packages"][0]["name"], "hello");
    assert!(
        list["packages"][0]["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("2."))
    );
    assert_no_build_left(m, "after add");

    // Adding a layered or a base package is refused.
    let e = m.sys(["layer", "add", "hello"]).failed();
    assert!(e.stderr.contains("hello is layered already"), "{e:#?}");
    let e = m.sys(["layer", "add", "bash"]).failed();
    assert!(
        e.stderr
            .contains("bash is installed in the base image already"),
        "{e:#?}"
    );
    // Removing strata-dep removes what came only for it.
    m.sys(["layer", "remove", "strata-dep"]).ok();
    assert!(dpkg_version(&m.default_deployment(), "strata-hello").is_none());

    // Upgrade: v2 of the base (a new file in it); the layer is built again on it.
    let v2 = m.path("v2");
    copy_tree(&l.tree, &v2);
    write_files(&v2, &[("usr/share/strata-release", "2\n")]);
    let c2 = m.release(&v2, 2);
    m.sys(["upgrade"]).ok();
    m.assert_sound("after upgrade");
    let up = m.default_deployment();
    assert_eq!(read(&up.join("usr/share/strata-release")), "2\n");
    assert!(
        dpkg_version(&up, "hello").is_some(),
        "the layer survived the upgrade"
    );
    assert!(
        dpkg_version(&up, "strata-dep").is_none(),
        "removed before the upgrade"
    );
    assert_eq!(m.status()["deployments"][0]["base_commit"], c2.as_str());
    let again = m.sys(["upgrade"]).ok();
    assert!(
        again.stdout.contains("up to date"),
        "same base, nothing to do: {again:#?}"
    );

    // v3 ships strata-post in the base: it stops being layered, and says so.
    let v3 = m.path("v3");
    copy_tree(&l.tree, &v3);
    let deb = l.debs.join("strata-post_1.0_all.deb");
    fs::copy(&deb, v3.join("tmp/p.deb")).expect("copy deb");
    run(Command::new("bwrap")
        .arg("--bind")
        .arg(&v3)
        .arg("/")
        .arg("--bind")
        .arg(v3.join("usr/etc"))
        .arg("/etc")
        .args([
            "--tmpfs",
            "/var",
            "--symlink",
            "../../usr/share/dpkg/database",
            "/var/lib/dpkg",
        ])
        .args([
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--setenv",
            "PATH",
            "/usr/sbin:/usr/bin:/sbin:/bin",
        ])
        .args(["dpkg", "-i", "/tmp/p.deb"]))
    .ok();
    fs::remove_file(v3.join("tmp/p.deb")).expect("rm");
    let _ = fs::remove_dir(v3.join("etc"));
    m.release(&v3, 3);
    let r = m.sys(["upgrade"]).ok();
    assert!(
        r.stdout
            .contains("no longer layered, the new base has them: strata-post"),
        "{r:#?}"
    );
    assert!(!listed(m).contains(&"strata-post".to_owned()));
    assert!(dpkg_version(&m.default_deployment(), "strata-post").is_some());

    // Remove: the base with the rest, from scratch.
    m.sys(["layer", "remove", "hello"]).ok();
    let after = m.default_deployment();
    assert!(dpkg_version(&after, "hello").is_none());
    assert!(!after.join("usr/bin/hello").exists());
    assert!(dpkg_version(&after, "strata-var").is_some());
    // Rollback works as for any deployment.
    m.sys(["rollback"]).ok();
    assert!(dpkg_version(&m.default_deployment(), "hello").is_some());
    m.sys(["cleanup"]).ok();
    m.assert_clean("after cleanup");
    ostree_fsck_if_there(m);
}

/// The repository still verifies with strata's fsck (and ostree's, when installed).
fn ostree_fsck_if_there(m: &Machine) {
    on(&m.repo(), ["fsck"]).ok();
    if have_ostree() {
        ostree_on(&m.repo(), ["fsck"]).ok();
    }
}

#[test]
fn a_local_deb_is_layered_and_kept() {
    let Some(l) = layered_machine() else {
        return;
    };
    let m = &l.m;
    let deb = l.debs.join("strata-dep_1.0_all.deb");
    // The machine's own apt source (its /etc, not the image's): a file:
    // repository, which the sandbox sees only through strata's bind.
    fs::write(
        m.deployment_of(&l.c1).join("etc/apt/sources.list"),
        format!("deb [trusted=yes] file:{} ./\n", l.debs.display()),
    )
    .expect("write sources.list");
    drop(l.nginx);
    // The machine's own apt lists (regression: a build's apt-get update,
    // with its own names for file: sources, deleted them).
    let lists = m.sysroot.join("strata/state/default/var/lib/apt/lists");
    write_files(&lists, &[("machine_Packages", "Package: x\n")]);
    // Its dependency comes from that repository.
    m.sys(["layer".as_ref(), "add".as_ref(), deb.as_os_str()])
        .ok();
    assert_eq!(read(&lists.join("machine_Packages")), "Package: x\n");
    let dir = m.default_deployment();
    assert!(dpkg_version(&dir, "strata-dep").is_some());
    assert!(dpkg_version(&dir, "strata-hello").is_some());
    let list = layer_json(m);
    assert_eq!(list["packages"][0]["name"], "strata-dep");
    assert_eq!(list["packages"][0]["source"], "local");
    // Kept by checksum in the sysroot, so upgrades install the same file.
    let sha = list["packages"][0]["sha256"].as_str().expect("sha256");
    assert!(
        m.sysroot
            .join(format!("strata/layer/debs/{sha}.deb"))
            .is_file()
    );
    let v2 = m.path("v2");
    copy_tree(&l.tree, &v2);
    write_files(&v2, &[("usr/share/strata-release", "2\n")]);
    m.release(&v2, 2);
    m.sys(["upgrade"]).ok();
    assert!(dpkg_version(&m.default_deployment(), "strata-dep").is_some());
    assert_eq!(listed(m), ["strata-dep"]);
}

#[test]
fn failures_leave_the_machine_as_it_was() {
    let Some(l) = layered_machine() else {
        return;
    };
    let m = &l.m;
    m.sys(["layer", "add", "strata-hello"]).ok();
    let before = snapshot(m);
    let cases: [(&[&str], &str); 8] = [
        (
            &["layer", "add", "--apply-live", "strata-post"],
            "--apply-live changes the running system",
        ),
        (
            &["layer", "add", "no-such-package"],
            "Unable to locate package no-such-package",
        ),
        (
            &["layer", "add", "strata-conflict"],
            "strata-conflict : Conflicts: strata-hello",
        ),
        (
            &["layer", "add", "strata-failing"],
            "strata-failing: this postinst fails on purpose",
        ),
        (
            &["layer", "add", "--", "-o"],
            "is not a Debian package name",
        ),
        (
            &["layer", "remove", "bash"],
            "bash is not a layered package",
        ),
        (
            &["layer", "add", "./nothing-here.deb"],
            "read ./nothing-here.deb: No such file",
        ),
        (
            &["layer", "add", "curl-"],
            "\"curl-\" is not a Debian package name",
        ),
    ];
    for (args, says) in cases {
        let r = m.sys(args).failed();
        assert!(
            r.stderr.contains(says),
            "{args:?} should say {says:?}: {r:#?}"
        );
        assert_eq!(snapshot(m), before, "{args:?} changed the machine");
        assert_no_build_left(m, &format!("{args:?}"));
    }
    // A package the new base cannot take: gone from the repository.
    fs::remove_file(l.debs.join("strata-hello_1.0_all.deb")).expect("rm");
    run(Command::new("sh")
        .arg("-c")
        .arg("dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null")
        .current_dir(&l.debs))
    .ok();
    let v2 = m.path("v2");
    copy_tree(&l.tree, &v2);
    write_files(&v2, &[("usr/share/strata-release", "2\n")]);
    let c2 = m.release(&v2, 2);
    let r = m.sys(["upgrade"]).failed();
    assert!(r.stderr.contains("strata-hello"), "{r:#?}");
    assert!(r.stderr.contains(&c2), "names the new base: {r:#?}");
    assert_eq!(snapshot(m).0, before.0, "nothing deployed");
    assert_eq!(snapshot(m).1, before.1);
    m.assert_sound("after a failed upgrade");
}

#[test]
fn a_crash_at_each_step_leaves_a_bootable_default_and_nothing_half_made() {
    let Some(l) = layered_machine() else {
        return;
    };
    let m = &l.m;
    for point in [
        "layer-mounted",
        "layer-installed",
        "layer-committed",
        "deploy-checked-out",
        "deployment-in-place",
    ] {
        let before = snapshot(m);
        m.crash(point, ["layer", "add", "strata-post"]);
        m.assert_sound(&format!("after a crash at {point}"));
        assert_eq!(snapshot(m).1, before.1, "{point}: the default is unchanged");
        // The next run cleans up (mounts included) and succeeds.
        m.sys(["layer", "add", "strata-post"]).ok();
        assert_no_build_left(m, point);
        let mounts = read(Path::new("/proc/self/mountinfo"));
        let ours = m.sysroot.display().to_string();
        assert!(
            !mounts.lines().any(|l| l.contains(&ours)),
            "{point}: mounts left under the sysroot:\n{mounts}"
        );
        assert!(dpkg_version(&m.default_deployment(), "strata-post").is_some());
        m.sys(["layer", "remove", "strata-post"]).ok();
    }
    m.sys(["cleanup"]).ok();
    m.assert_clean("after the crashes");
}

#[test]
fn layering_starts_from_the_pending_deployment() {
    let Some(l) = layered_machine() else {
        return;
    };
    let m = &l.m;
    // Booted on the plain base; two additions before any reboot.
    m.mark_booted(m.default_entry().deployment());
    m.sys(["layer", "add", "strata-hello"]).ok();
    m.sys(["layer", "add", "strata-post"]).ok();
    assert_eq!(listed(m), ["strata-hello", "strata-post"]);
    let dir = m.default_deployment();
    assert!(dpkg_version(&dir, "strata-hello").is_some());
    assert!(dpkg_version(&dir, "strata-post").is_some());
    // An upgrade (as the unattended updater runs it) keeps both.
    let v2 = m.path("v2");
    copy_tree(&l.tree, &v2);
    write_files(&v2, &[("usr/share/strata-release", "2\n")]);
    m.release(&v2, 2);
    m.sys(["upgrade"]).ok();
    assert_eq!(listed(m), ["strata-hello", "strata-post"]);
    assert!(dpkg_version(&m.default_deployment(), "strata-post").is_some());
    // The rollback deployment's base survives cleanup: layering from it works.
    m.sys(["rollback"]).ok();
    m.sys(["cleanup"]).ok();
    m.sys(["layer", "remove", "strata-post"]).ok();
    assert_eq!(listed(m), ["strata-hello"]);
}

#[test]
fn users_made_by_packages_reach_a_machine_with_its_own_passwd() {
    let Some(l) = layered_machine() else {
        return;
    };
    let m = &l.m;
    let dir = m.deployment_of(&l.c1);
    assert!(
        dir.join("usr/lib/systemd/system/systemd-sysusers.service.d/strata.conf")
            .is_file(),
        "sysusers runs on every boot"
    );
    // The machine's own passwd: the /etc merge keeps it whole.
    let passwd = dir.join("etc/passwd");
    let mut text = read(&passwd);
    text.push_str("local:x:1500:1500::/home/local:/bin/sh\n");
    fs::write(&passwd, text).expect("write passwd");
    m.sys(["layer", "add", "strata-user"]).ok();
    let new = m.default_deployment();
    assert!(!read(&new.join("etc/passwd")).contains("strata-svc"));
    assert!(read(&new.join("etc/passwd")).contains("local:x:1500"));
    let conf = read(&new.join("usr/lib/sysusers.d/strata-layer.conf"));
    assert!(
        conf.lines()
            .any(|l| l.starts_with("u strata-svc ")
                && l.ends_with(" /nonexistent /usr/sbin/nologin")),
        "{conf}"
    );
    assert!(
        conf.lines().any(|l| l.starts_with("g strata-svc ")),
        "{conf}"
    );
}
