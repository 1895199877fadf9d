//! Sandboxed apps on a directory sysroot: published by strata, signed,
//! served by nginx, installed, run in the real bubblewrap, updated,
//! rolled back and removed; and each way with the real flatpak.
//!
//! The runtime is the Debian minbase tree's `/usr` (with its `/etc` as
//! `files/etc`); the apps are a shell script and GNU hello unpacked from
//! Debian's package with `dpkg -x`.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::nginx::{Nginx, have_nginx};
use crate::common::publish::{Key, keygen};
use crate::common::*;

const RUNTIME: &str = "org.strata.Platform";
const SH_APP: &str = "org.strata.Hello";
const GNU_APP: &str = "org.gnu.Hello";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A publisher (archive repository served by nginx, signing key) and a
/// machine (directory sysroot) with the publisher as remote `apps`.
struct World {
    tmp: tempfile::TempDir,
    publ: PathBuf,
    key: Key,
    nginx: Nginx,
    sys: PathBuf,
    home: PathBuf,
}

impl World {
    fn new() -> Option<World> {
        if !(have_tool("bwrap") && have_nginx() && have_tool("dpkg-deb")) {
            return None;
        }
        if !have_root("a bare system repository keeps owners") {
            return None;
        }
        let debian = debian_tree()?;
        let tmp = tempdir();
        let publ = tmp.path().join("publ");
        strata([
            "init".as_ref(),
            "--repo".as_ref(),
            publ.as_os_str(),
            "--mode".as_ref(),
            "archive".as_ref(),
        ])
        .ok();
        let key = keygen(&tmp.path().join("key"));
        let nginx = Nginx::start(&publ);
        let sys = tmp.path().join("sys");
        strata([
            "sysroot".as_ref(),
            "init".as_ref(),
            "--sysroot".as_ref(),
            sys.as_os_str(),
        ])
        .ok();
        let home = tmp.path().join("home");
        fs::create_dir_all(&home).expect("mkdir home");
        let w = World {
            tmp,
            publ,
            key,
            nginx,
            sys,
            home,
        };
        // The runtime: Debian's /usr, its /etc beside it as ostree keeps it.
        let rt = w.path("src/runtime");
        fs::create_dir_all(&rt).expect("mkdir runtime");
        run(Command::new("cp")
            .arg("-a")
            .arg(debian.join("usr"))
            .arg(rt.join("files")))
        .ok();
        run(Command::new("cp")
            .arg("-a")
            .arg(debian.join("etc"))
            .arg(rt.join("files/etc")))
        .ok();
        write_files(
            &rt,
            &[("metadata", &format!("[Runtime]\nname={RUNTIME}\n"))],
        );
        w.publish(&rt, "1");
        w.publish(&w.sh_app("v1", ""), "stable");
        w.publish(&w.gnu_app(), "stable");
        w.update_summary();
        let r = w.sys_cmd([
            "remote",
            "add",
            "apps",
            &w.nginx.url(),
            "--sign-pubkey",
            &w.key.public,
        ]);
        r.ok();
        Some(w)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    /// The shell-script app, printing `version`; `context` is appended to
    /// its metadata. It also tries to export a desktop file not named
    /// after it (which real flatpak 1.14 fails to install, with "No such
    /// file or directory", so not in the apps flatpak installs).
    fn sh_app(&self, version: &str, context: &str) -> PathBuf {
        let dir = self.clean_sh_app(version, context);
        write_files(
            &dir,
            &[(
                "export/share/applications/evil.desktop",
                "[Desktop Entry]\n",
            )],
        );
        dir
    }

    /// [`Self::sh_app`] exporting only what is its own.
    fn clean_sh_app(&self, version: &str, context: &str) -> PathBuf {
        let dir = self.path(&format!("src/sh-{version}"));
        let _ = fs::remove_dir_all(&dir);
        write_files(
            &dir,
            &[
                (
                    "metadata",
                    &format!(
                        "[Application]\nname={SH_APP}\nruntime={RUNTIME}/x86_64/1\ncommand=hello\n{context}"
                    ),
                ),
                (
                    "files/bin/hello",
                    &format!("#!/bin/sh\necho \"hello {version} from $FLATPAK_ID: $*\"\n"),
                ),
                (
                    &format!("export/share/applications/{SH_APP}.desktop"),
                    "[Desktop Entry]\nName=Hello\nExec=hello %U\nType=Application\n",
                ),
            ],
        );
        make_executable(&dir.join("files/bin/hello"));
        dir
    }

    /// GNU hello from Debian's package, as an app.
    fn gnu_app(&self) -> PathBuf {
        let debs = self.path("debs");
        run(Command::new("bash").arg(fixture("deb-repo.sh")).arg(&debs)).ok();
        let deb = fs::read_dir(&debs)
            .expect("read debs")
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("hello_"))
            })
            .expect("hello deb");
        let x = self.path("src/hello-x");
        run(Command::new("dpkg").arg("-x").arg(&deb).arg(&x)).ok();
        let dir = self.path("src/gnu-hello");
        fs::create_dir_all(&dir).expect("mkdir");
        fs::rename(x.join("usr"), dir.join("files")).expect("move usr to files");
        write_files(
            &dir,
            &[(
                "metadata",
                &format!(
                    "[Application]\nname={GNU_APP}\nruntime={RUNTIME}/x86_64/1\ncommand=hello\n"
                ),
            )],
        );
        dir
    }

    /// `strata app publish` of `dir` at `branch`, signed.
    fn publish(&self, dir: &Path, branch: &str) -> String {
        crate::common::publish::publish_app(&self.publ, dir, branch, &self.key)
    }

    /// Commits `dir` to `branch` as a hostile server could: without
    /// canonical permissions, `xa.metadata` as given; signed.
    fn raw_commit(&self, branch: &str, dir: &Path, xa_metadata: &str) -> String {
        let c = strata([
            "commit".as_ref(),
            "--repo".as_ref(),
            self.publ.as_os_str(),
            "-b".as_ref(),
            branch.as_ref(),
            "--add-metadata-string".as_ref(),
            format!("xa.metadata={xa_metadata}").as_ref(),
            "--tree".as_ref(),
            dir.as_os_str(),
        ])
        .ok()
        .line();
        crate::common::publish::sign(&self.publ, &c, &self.key);
        c
    }

    fn update_summary(&self) {
        crate::common::publish::update_summary(&self.publ, Some(&self.key));
    }

    /// `strata --sysroot SYS args…` with HOME set to the test's home.
    fn sys_cmd<'a>(&self, args: impl IntoIterator<Item = &'a str>) -> Run {
        let mut c = strata_cmd(["--sysroot".as_ref(), self.sys.as_os_str()]);
        c.args(args).env("HOME", &self.home).env("USER", "tester");
        run(&mut c)
    }

    /// Runs `script` with sh inside app `id`'s sandbox.
    fn sh(&self, id: &str, script: &str) -> Run {
        self.sys_cmd(["app", "run", "--command", "sh", id, "-c", script])
    }

    fn apps_dir(&self) -> PathBuf {
        self.sys.join("strata/state/default/var/lib/strata/apps")
    }
}

fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(p, fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn install_run_update_rollback_remove() {
    let Some(w) = World::new() else {
        return;
    };
    // The OS is in the repository first: the runtime's files equal to it
    // are the same objects.
    let debian = debian_tree().expect("debian tree");
    let repo = w.sys.join("strata/repo");
    strata([
        "commit".as_ref(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "-b".as_ref(),
        "os/base".as_ref(),
        "--tree".as_ref(),
        debian.as_os_str(),
    ])
    .ok();
    let before = du(&repo);

    let r = w.sys_cmd(["app", "install", "apps", SH_APP]).ok();
    assert!(
        r.stdout
            .contains(&format!("installed app/{SH_APP}/x86_64/stable")),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains(&format!("runtime runtime/{RUNTIME}/x86_64/1 installed")),
        "{r:#?}"
    );
    let grown = du(&repo) - before;
    let runtime_size = du(&w.path("src/runtime"));
    assert!(
        grown * 10 < runtime_size,
        "the runtime added {grown} KB to a repository holding the same Debian tree (runtime: {runtime_size} KB)"
    );

    let r = w.sys_cmd(["app", "run", SH_APP, "a", "--b"]).ok();
    assert_eq!(r.stdout, format!("hello v1 from {SH_APP}: a --b\n"));

    // Confinement, asserted from inside.
    fs::write(w.home.join("secret"), "host secret\n").expect("write secret");
    let inside = w
        .sh(
            SH_APP,
            "touch /usr/x 2>&1; touch /app/x 2>&1; cat \"$HOME/secret\" 2>&1; cat /etc/shadow 2>&1; \
             echo pids=$(ls /proc | grep -c '^[0-9]'); \
             echo ifaces=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\\n' ,); \
             unshare -U true 2>&1; echo unshare=$?; \
             id -un; echo data > \"$XDG_DATA_HOME/kept\"",
        )
        .ok();
    let out = inside.stdout;
    for want in [
        "touch: cannot touch '/usr/x': Read-only file system",
        "touch: cannot touch '/app/x': Read-only file system",
        "No such file or directory",
        "cat: /etc/shadow: No such file or directory",
        "ifaces=lo,\n",
        "unshare: unshare failed: Operation not permitted\nunshare=1",
        "tester\n",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("host secret"), "{out}");
    let pids: u32 = out
        .split("pids=")
        .nth(1)
        .and_then(|s| s.lines().next())
        .and_then(|n| n.parse().ok())
        .expect("pids");
    assert!(pids <= 5, "the sandbox sees {pids} processes:\n{out}");
    assert!(
        w.home
            .join(".var/app")
            .join(SH_APP)
            .join("data/kept")
            .is_file()
    );

    // Exports: the app's own desktop file, rewritten; not another's.
    let exports = w.apps_dir().join("exports");
    let desktop = fs::read_to_string(exports.join(format!("share/applications/{SH_APP}.desktop")))
        .expect("exported desktop file");
    assert!(
        desktop.contains(&format!("Exec=strata app run --command=hello {SH_APP} %U")),
        "{desktop}"
    );
    assert!(!exports.join("share/applications/evil.desktop").exists());
    assert!(exports.join("bin").join(SH_APP).is_file());

    // A second app on the same runtime: GNU hello from Debian.
    let r = w.sys_cmd(["app", "install", "apps", GNU_APP]).ok();
    assert!(r.stdout.contains("was installed already"), "{r:#?}");
    assert_eq!(
        w.sys_cmd(["app", "run", GNU_APP]).ok().stdout,
        "Hello, world!\n"
    );

    // Update: the new version runs, the data stays, the old one is kept.
    let v1 = w.sys_cmd(["app", "list", "--json"]).ok().stdout;
    w.publish(&w.sh_app("v2", ""), "stable");
    w.update_summary();
    let r = w.sys_cmd(["app", "update", SH_APP]).ok();
    assert!(
        r.stdout.contains(&format!("app/{SH_APP}/x86_64/stable: ")),
        "{r:#?}"
    );
    assert!(
        r.stdout
            .contains(&format!("runtime/{RUNTIME}/x86_64/1: up to date")),
        "{r:#?}"
    );
    assert!(
        w.sys_cmd(["app", "run", SH_APP])
            .ok()
            .stdout
            .starts_with("hello v2")
    );
    assert_eq!(
        w.sh(SH_APP, "cat \"$XDG_DATA_HOME/kept\"").ok().stdout,
        "data\n"
    );
    let r = w.sys_cmd(["app", "update"]).ok();
    assert!(
        r.stdout
            .contains(&format!("app/{SH_APP}/x86_64/stable: up to date")),
        "{r:#?}"
    );

    // Rollback: v1 again.
    w.sys_cmd(["app", "rollback", SH_APP]).ok();
    assert!(
        w.sys_cmd(["app", "run", SH_APP])
            .ok()
            .stdout
            .starts_with("hello v1")
    );
    let list: serde_json::Value =
        serde_json::from_str(&w.sys_cmd(["app", "list", "--json"]).ok().stdout).expect("json");
    let v1: serde_json::Value = serde_json::from_str(&v1).expect("json");
    let sh = |l: &serde_json::Value| {
        l.as_array()
            .and_then(|a| a.iter().find(|i| i["id"] == SH_APP).cloned())
            .expect("the app is listed")
    };
    assert_eq!(sh(&list)["commit"], sh(&v1)["commit"], "{list:#}");
    assert!(sh(&list)["previous"].is_string(), "{list:#}");

    // Info says what is granted.
    let info: serde_json::Value =
        serde_json::from_str(&w.sys_cmd(["app", "info", SH_APP, "--json"]).ok().stdout)
            .expect("json");
    assert_eq!(info["permissions"]["network"], false, "{info:#}");
    assert_eq!(info["runtime"]["id"], RUNTIME, "{info:#}");

    // A prune keeps what is installed.
    strata([
        "prune".as_ref(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "--refs-only".as_ref(),
    ])
    .ok();
    strata(["fsck".as_ref(), "--repo".as_ref(), repo.as_os_str()]).ok();
    assert!(
        w.sys_cmd(["app", "run", SH_APP])
            .ok()
            .stdout
            .starts_with("hello v1")
    );

    // Remove: the runtime stays while GNU hello uses it, then goes.
    let r = w.sys_cmd(["app", "remove", SH_APP]).ok();
    assert_eq!(
        r.stdout.lines().next(),
        Some(format!("removed app/{SH_APP}/x86_64/stable").as_str())
    );
    assert!(!r.stdout.contains("runtime/"), "{r:#?}");
    assert!(!exports.join("bin").join(SH_APP).exists());
    let r = w.sys_cmd(["app", "remove", GNU_APP]).ok();
    assert!(
        r.stdout
            .contains(&format!("removed runtime/{RUNTIME}/x86_64/1")),
        "{r:#?}"
    );
    assert_eq!(
        w.sys_cmd(["app", "list"]).ok().stdout,
        "no apps installed\n"
    );
    let refs = strata(["refs".as_ref(), "--repo".as_ref(), repo.as_os_str()])
        .ok()
        .stdout;
    assert!(
        !refs.contains("app/") && !refs.contains("runtime/"),
        "{refs}"
    );
}

/// KB a directory takes.
fn du(p: &Path) -> u64 {
    run(Command::new("du").arg("-sk").arg(p))
        .ok()
        .stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("du")
}

#[test]
fn grants_open_only_what_they_name() {
    let Some(w) = World::new() else {
        return;
    };
    fs::create_dir_all(w.home.join("Downloads")).expect("mkdir");
    fs::write(w.home.join("Downloads/file"), "downloaded\n").expect("write");
    fs::write(w.home.join("secret"), "host secret\n").expect("write");
    w.publish(
        &w.sh_app(
            "net",
            "[Context]\nshared=network;\nfilesystems=xdg-download:ro;/etc;\n",
        ),
        "stable",
    );
    w.update_summary();
    w.sys_cmd(["app", "install", "apps", SH_APP]).ok();
    let out = w
        .sh(
            SH_APP,
            "cat ~/Downloads/file; touch ~/Downloads/new 2>&1; cat ~/secret 2>&1; \
             tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,; echo",
        )
        .ok();
    let host_ifaces = fs::read_to_string("/proc/net/dev")
        .expect("net dev")
        .lines()
        .count()
        - 2;
    assert!(out.stdout.contains("downloaded\n"), "{out:#?}");
    assert!(out.stdout.contains("Read-only file system"), "{out:#?}");
    assert!(!out.stdout.contains("host secret"), "{out:#?}");
    let inside = out
        .stdout
        .lines()
        .last()
        .unwrap_or_default()
        .matches(',')
        .count();
    assert_eq!(
        inside, host_ifaces,
        "shared=network shows the host's interfaces: {out:#?}"
    );
    assert!(
        out.stderr
            .contains("not granted: /etc: /etc belongs to the sandbox itself"),
        "{out:#?}"
    );
    let info = w.sys_cmd(["app", "info", SH_APP]).ok().stdout;
    assert!(info.contains("network:     yes"), "{info}");
    assert!(
        info.contains("(read-only)") && info.contains("not granted: /etc"),
        "{info}"
    );
}

/// Bad input: each refused with a clear error, nothing installed.
#[test]
fn bad_apps_are_refused_and_nothing_is_installed() {
    let Some(w) = World::new() else {
        return;
    };
    let nothing_installed = |what: &str| {
        assert_eq!(
            w.sys_cmd(["app", "list"]).ok().stdout,
            "no apps installed\n",
            "{what}"
        );
    };
    // A runtime the remote does not have.
    let orphan = w.path("src/orphan");
    write_files(
        &orphan,
        &[
            (
                "metadata",
                "[Application]\nname=org.strata.Orphan\nruntime=org.strata.Missing/x86_64/1\ncommand=x\n",
            ),
            ("files/bin/x", "#!/bin/sh\n"),
        ],
    );
    w.publish(&orphan, "stable");
    // Metadata that is not a key file, committed as a hostile server would.
    let bad = w.path("src/bad");
    write_files(
        &bad,
        &[("metadata", "this is not a key file\n"), ("files/x", "x")],
    );
    w.raw_commit(
        "app/org.strata.Bad/x86_64/stable",
        &bad,
        "this is not a key file",
    );
    // files/ a symlink to the host's /, which a bind would follow.
    let link = w.path("src/link");
    let link_meta =
        format!("[Application]\nname=org.strata.Link\nruntime={RUNTIME}/x86_64/1\ncommand=sh\n");
    write_files(&link, &[("metadata", &link_meta)]);
    std::os::unix::fs::symlink("/", link.join("files")).expect("symlink");
    w.raw_commit("app/org.strata.Link/x86_64/stable", &link, &link_meta);
    // The commit shows one metadata, the tree holds another.
    let two = w.path("src/two-faced");
    let shown =
        format!("[Application]\nname=org.strata.Two\nruntime={RUNTIME}/x86_64/1\ncommand=x\n");
    write_files(
        &two,
        &[
            (
                "metadata",
                &format!("{shown}[Context]\nfilesystems=home;\n"),
            ),
            ("files/bin/x", "#!/bin/sh\n"),
        ],
    );
    w.raw_commit("app/org.strata.Two/x86_64/stable", &two, &shown);
    // An app whose commit is not signed.
    let unsigned = w.sh_app("unsigned", "");
    let r = strata([
        "app".as_ref(),
        "publish".as_ref(),
        "--repo".as_ref(),
        w.publ.as_os_str(),
        unsigned.as_os_str(),
        "--branch".as_ref(),
        "unsigned".as_ref(),
    ])
    .ok();
    assert!(r.stdout.contains("published app"), "{r:#?}");
    w.update_summary();

    for (args, says) in [
        (
            vec!["app", "install", "apps", "org.strata.Orphan"],
            "needs runtime org.strata.Missing/x86_64/1, which is not installed and which remote apps does not give",
        ),
        (
            vec!["app", "install", "apps", "org.strata.Bad"],
            "xa.metadata of commit",
        ),
        (
            vec!["app", "install", "apps", SH_APP, "unsigned"],
            "signature",
        ),
        (
            vec!["app", "install", "apps", RUNTIME],
            &format!("remote apps has no app {RUNTIME}"),
        ),
        (
            vec!["app", "install", "apps", SH_APP],
            "branches stable, unsigned: name one",
        ),
        (
            vec!["app", "install", "apps", "org.strata/../x"],
            "is not a valid app or runtime ID",
        ),
        (
            vec!["app", "install", "apps", "org.strata.Hello", ".."],
            "is not a valid branch",
        ),
        (
            vec!["app", "run", SH_APP],
            &format!("app {SH_APP} is not installed"),
        ),
        (
            vec!["app", "install", "apps", "org.strata.Link"],
            "files is not a directory",
        ),
        (
            vec!["app", "install", "apps", "org.strata.Two"],
            "its metadata file differs from its xa.metadata",
        ),
    ] {
        let r = w.sys_cmd(args.iter().copied()).failed();
        assert!(r.stderr.contains(says), "{args:?}: want {says:?} in {r:#?}");
        nothing_installed(&format!("{args:?}"));
    }
    let apps = w.apps_dir();
    assert!(!apps.join("app").exists() || sorted_entries(&apps.join("app")).is_empty());
    assert!(!apps.join("runtime").exists() || sorted_entries(&apps.join("runtime")).is_empty());
}

fn sorted_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|l| {
            l.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Setuid files in an app are refused: its checkout is on the host.
#[test]
fn an_app_with_a_setuid_file_is_refused() {
    let Some(w) = World::new() else {
        return;
    };
    let dir = w.sh_app("suid", "");
    make_executable(&dir.join("files/bin/hello"));
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        dir.join("files/bin/hello"),
        fs::Permissions::from_mode(0o4755),
    )
    .expect("chmod");
    // Committed without canonical permissions, as a hostile server could.
    let c = strata([
        "commit".as_ref(),
        "--repo".as_ref(),
        w.publ.as_os_str(),
        "-b".as_ref(),
        format!("app/{SH_APP}/x86_64/suid").as_ref(),
        "--add-metadata-string".as_ref(),
        format!(
            "xa.metadata={}",
            fs::read_to_string(dir.join("metadata")).expect("read")
        )
        .as_ref(),
        "--tree".as_ref(),
        dir.as_os_str(),
    ])
    .ok()
    .line();
    crate::common::publish::sign(&w.publ, &c, &w.key);
    w.update_summary();
    let r = w
        .sys_cmd(["app", "install", "apps", SH_APP, "suid"])
        .failed();
    assert!(
        r.stderr.contains("files/bin/hello is setuid or setgid"),
        "{r:#?}"
    );
    let m = fs::metadata(dir.join("files/bin/hello")).expect("stat");
    assert_eq!(m.mode() & 0o4000, 0o4000, "the test's file is setuid");
}

/// `flatpak` as a user whose home is `home`.
fn flatpak<'a>(home: &Path, args: impl IntoIterator<Item = &'a str>) -> Run {
    run(Command::new("flatpak")
        .arg("--user")
        .args(args)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME"))
}

/// The real flatpak installs and runs an app that strata published.
#[test]
fn flatpak_installs_and_runs_a_strata_app() {
    if !have_tool("flatpak") {
        return;
    }
    let Some(w) = World::new() else {
        return;
    };
    w.publish(&w.clean_sh_app("v1", ""), "stable");
    w.update_summary();
    let home = w.path("flatpak-home");
    fs::create_dir_all(&home).expect("mkdir");
    // Flatpak verifies GPG only, not ostree's ed25519 (flatpak#4100).
    flatpak(
        &home,
        ["remote-add", "--no-gpg-verify", "strata", &w.nginx.url()],
    )
    .ok();
    let r = flatpak(
        &home,
        ["install", "-y", "--noninteractive", "strata", SH_APP],
    )
    .ok();
    assert!(
        r.stdout.contains(&format!("runtime/{RUNTIME}/x86_64/1")),
        "{r:#?}"
    );
    let r = flatpak(&home, ["run", SH_APP, "from", "flatpak"]).ok();
    assert_eq!(
        r.stdout,
        format!("hello v1 from {SH_APP}: from flatpak\n"),
        "{r:#?}"
    );
    let r = flatpak(&home, ["run", GNU_APP]);
    assert!(!r.status.success(), "not installed yet: {r:#?}");
    flatpak(
        &home,
        ["install", "-y", "--noninteractive", "strata", GNU_APP],
    )
    .ok();
    assert_eq!(
        flatpak(&home, ["run", GNU_APP]).ok().stdout,
        "Hello, world!\n"
    );
}

/// strata installs and runs an app and a runtime that `flatpak
/// build-export` made, once strata signed them.
#[test]
fn strata_installs_and_runs_a_flatpak_built_app() {
    if !have_tool("flatpak") {
        return;
    }
    let Some(w) = World::new() else {
        return;
    };
    let debian = debian_tree().expect("debian tree");
    let repo = w.path("flatpak-repo");
    run(Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["init", "--mode=archive"]))
    .ok();
    let rt = w.path("src/flatpak-runtime");
    fs::create_dir_all(&rt).expect("mkdir");
    run(Command::new("cp")
        .arg("-a")
        .arg(debian.join("usr"))
        .arg(rt.join("usr")))
    .ok();
    write_files(
        &rt,
        &[("metadata", "[Runtime]\nname=org.flatpak.Platform\n")],
    );
    run(Command::new("flatpak")
        .args(["build-export", "--runtime", "--files=usr"])
        .arg(&repo)
        .arg(&rt)
        .arg("1"))
    .ok();
    let app = w.path("src/flatpak-app");
    write_files(
        &app,
        &[
            (
                "metadata",
                "[Application]\nname=org.flatpak.Built\nruntime=org.flatpak.Platform/x86_64/1\ncommand=built\n",
            ),
            (
                "files/bin/built",
                "#!/bin/sh\necho \"built by flatpak: $*\"\n",
            ),
            ("export/.keep", ""),
        ],
    );
    make_executable(&app.join("files/bin/built"));
    fs::remove_file(app.join("export/.keep")).expect("rm");
    run(Command::new("flatpak")
        .arg("build-export")
        .arg(&repo)
        .arg(&app)
        .arg("stable"))
    .ok();
    // Flatpak does not sign with ed25519; the publisher signs with strata.
    for r in [
        "app/org.flatpak.Built/x86_64/stable",
        "runtime/org.flatpak.Platform/x86_64/1",
    ] {
        crate::common::publish::sign(&repo, r, &w.key);
    }
    crate::common::publish::update_summary(&repo, Some(&w.key));
    let server = Nginx::start(&repo);
    w.sys_cmd([
        "remote",
        "add",
        "flatpak-built",
        &server.url(),
        "--sign-pubkey",
        &w.key.public,
    ])
    .ok();
    let r = w
        .sys_cmd(["app", "install", "flatpak-built", "org.flatpak.Built"])
        .ok();
    assert!(
        r.stdout
            .contains("runtime runtime/org.flatpak.Platform/x86_64/1 installed"),
        "{r:#?}"
    );
    let r = w.sys_cmd(["app", "run", "org.flatpak.Built", "x"]).ok();
    assert_eq!(r.stdout, "built by flatpak: x\n");
}

/// What an app can write it cannot turn against the host: a symlink it
/// plants in its data directory, exports beyond desktop files and icons;
/// and `home:ro` leaves its own data writable and hides other apps'.
#[test]
fn an_app_cannot_reach_out_through_its_data_or_exports() {
    let Some(w) = World::new() else {
        return;
    };
    let dir = w.sh_app("home-ro", "[Context]\nfilesystems=home:ro;\n");
    write_files(
        &dir,
        &[
            (
                &format!("export/share/dbus-1/services/{SH_APP}.service"),
                "[D-BUS Service]\nName=org.freedesktop.secrets\nExec=/bin/sh -c 'touch /tmp/owned'\n",
            ),
            (
                &format!("export/share/applications/{SH_APP}.Other.desktop"),
                "[Desktop Entry]\n  Exec = /bin/sh -c evil\n",
            ),
        ],
    );
    w.publish(&dir, "stable");
    w.update_summary();
    w.sys_cmd(["app", "install", "apps", GNU_APP]).ok();
    w.sys_cmd(["app", "install", "apps", SH_APP]).ok();
    let exports = w.apps_dir().join("exports");
    assert!(
        !exports.join("share/dbus-1").exists(),
        "D-Bus services are not exported"
    );
    let other =
        fs::read_to_string(exports.join(format!("share/applications/{SH_APP}.Other.desktop")))
            .expect("exported");
    assert!(
        other.contains(&format!(
            "Exec=strata app run --command=/bin/sh {SH_APP} -c evil"
        )),
        "{other}"
    );

    // home:ro: the home is there read-only, the app's data writable,
    // another app's data not there at all.
    let gnu_data = w.home.join(".var/app").join(GNU_APP).join("data");
    fs::create_dir_all(&gnu_data).expect("mkdir");
    fs::write(gnu_data.join("private"), "gnu's\n").expect("write");
    fs::write(w.home.join("notes"), "mine\n").expect("write");
    let out = w
        .sh(
            SH_APP,
            &format!(
                "cat ~/notes; touch ~/new 2>&1; echo kept > $XDG_DATA_HOME/x && cat $XDG_DATA_HOME/x; cat ~/.var/app/{GNU_APP}/data/private 2>&1; true"
            ),
        )
        .ok()
        .stdout;
    assert!(
        out.contains("mine\n") && out.contains("Read-only file system"),
        "{out}"
    );
    assert!(out.contains("kept\n") && !out.contains("gnu's"), "{out}");

    // A symlink planted in the data directory is refused, not followed.
    let config = w.home.join(".var/app").join(SH_APP).join("config");
    fs::remove_dir_all(&config).expect("rm config");
    std::os::unix::fs::symlink(&w.home, &config).expect("symlink");
    let r = w.sys_cmd(["app", "run", SH_APP]).failed();
    assert!(
        r.stderr.contains("config is not a directory (a symlink?)"),
        "{r:#?}"
    );
}
