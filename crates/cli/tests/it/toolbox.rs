//! `strata export` and `strata toolbox` against the real podman (Debian's
//! 4.3 with runc), GNU tar and apt: a Debian minbase commit prepared by
//! `strata prepare-tree` is exported (checked against its own checkout),
//! loaded and run by podman; toolboxes are made from it rootful (as root)
//! and rootless (as a test user), and apt-get installs inside from a
//! repository nginx serves on 127.0.0.1.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::machine::{Machine, REFSPEC, read};
use crate::common::nginx::{Nginx, have_nginx};
use crate::common::*;

/// The rootless test's user, made when missing.
const TEST_USER: &str = "strata-tbx";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// A prepared Debian commit in a bare repository, whose apt uses only a
/// test repository served by nginx; podman images and containers made
/// from it are removed when it is dropped.
struct Os {
    tmp: tempfile::TempDir,
    repo: PathBuf,
    commit: String,
    tree: PathBuf,
    /// What toolboxes made as root see as the home.
    home: PathBuf,
    _nginx: Nginx,
    /// Names given out by [`Os::name`], removed at the end.
    containers: std::cell::RefCell<Vec<String>>,
    /// Images made besides [`Os::image`], removed at the end.
    images: std::cell::RefCell<Vec<String>>,
}

impl Os {
    /// `test` names the test, in the commit's metadata: each test has a
    /// commit, so an image, of its own.
    fn new(test: &str) -> Option<Os> {
        if !(have_tool("podman") && have_nginx() && have_tool("dpkg-deb")) {
            return None;
        }
        if !have_root("podman runs rootful as root, and the repository keeps owners") {
            return None;
        }
        let debian = debian_tree()?;
        let tmp = tempdir();
        // Readable by the rootless test's user.
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let debs = tmp.path().join("debs");
        run(Command::new("bash").arg(fixture("deb-repo.sh")).arg(&debs)).ok();
        let nginx = Nginx::start(&debs);
        let tree = tmp.path().join("tree");
        run(Command::new("cp").arg("-a").arg(&debian).arg(&tree)).ok();
        write_files(
            &tree,
            &[
                ("boot/vmlinuz-6.1.0-test", "vmlinuz\n"),
                ("boot/initrd.img-6.1.0-test", "initramfs\n"),
                (
                    "etc/apt/sources.list",
                    &format!("deb [trusted=yes] http://127.0.0.1:{}/ ./\n", nginx.port),
                ),
            ],
        );
        let parts = tree.join("etc/apt/sources.list.d");
        if parts.is_dir() {
            fs::remove_dir_all(&parts).expect("remove sources.list.d");
        }
        strata([
            "prepare-tree".as_ref(),
            tree.as_os_str(),
            "--prepare-root".as_ref(),
            "/bin/true".as_ref(),
        ])
        .ok();
        let repo = tmp.path().join("repo");
        init(&repo, "bare");
        let commit = commit(
            &repo,
            "os",
            &tree,
            &[
                "--add-metadata-string=version=12.test",
                &format!("--add-metadata-string=strata.test={test}"),
            ],
        );
        let home = tmp.path().join("home");
        fs::create_dir(&home).expect("mkdir home");
        Some(Os {
            tmp,
            repo,
            commit,
            tree,
            home,
            _nginx: nginx,
            containers: Default::default(),
            images: Default::default(),
        })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// A container name of this test run, removed at the end.
    fn name(&self, what: &str) -> String {
        let n = format!("it-{what}-{}", std::process::id());
        self.containers.borrow_mut().push(n.clone());
        n
    }

    fn image(&self) -> String {
        format!("localhost/strata:{}", self.commit)
    }

    /// `strata toolbox ARGS` as root, with [`Os::home`] as the home.
    fn toolbox<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Run {
        let mut c = strata_cmd(["toolbox".as_ref(), "--repo".as_ref(), self.repo.as_os_str()]);
        c.args(args)
            .env("HOME", &self.home)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("STRATA_PODMAN");
        run(&mut c)
    }
}

impl Drop for Os {
    fn drop(&mut self) {
        for name in self.containers.borrow().iter() {
            let _ = Command::new("podman")
                .args(["rm", "--force", name])
                .output();
        }
        for image in std::iter::once(self.image()).chain(self.images.borrow().iter().cloned()) {
            let _ = Command::new("podman")
                .args(["rmi", "--force", &image])
                .output();
        }
    }
}

/// podman's `--ulimit` arguments this host allows (see
/// `strata_toolbox::host::clamp_nproc`): plain `podman run` cannot start a
/// container here without them.
fn ulimits() -> Vec<String> {
    let limits = fs::read_to_string("/proc/self/limits").expect("limits");
    let hard = |name: &str| -> u64 {
        let line = limits
            .lines()
            .find(|l| l.starts_with(name))
            .expect("a limit");
        let v = line.split_whitespace().rev().nth(1).expect("hard");
        v.parse().unwrap_or(u64::MAX)
    };
    let pid_max: u64 = fs::read_to_string("/proc/sys/kernel/pid_max")
        .expect("pid_max")
        .trim()
        .parse()
        .expect("number");
    let nofile = hard("Max open files");
    let nproc = hard("Max processes").min(pid_max);
    vec![
        "--ulimit".into(),
        format!("nofile={nofile}:{nofile}"),
        "--ulimit".into(),
        format!("nproc={nproc}:{nproc}"),
    ]
}

fn json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).expect("JSON")
}

/// The export is the commit: GNU tar extracts its layer to the commit's
/// own checkout (with `/usr/etc` at `/etc` and `/var` filled); the same
/// commit gives the same bytes; podman loads and runs it.
#[test]
fn export_is_the_commit_the_same_bytes_each_time_and_runs_in_podman() {
    let Some(os) = Os::new("export") else { return };
    let export = |dest: &Path, how: &[&str]| {
        let mut args = vec!["export", "--repo"];
        let repo = os.repo.display().to_string();
        let dest = dest.display().to_string();
        args.push(&repo);
        args.push("os");
        args.extend_from_slice(how);
        args.push(&dest);
        args.push("--json");
        json(&strata(&args).ok())
    };
    let d1 = os.path("d1");
    let d2 = os.path("d2");
    let one = export(&d1, &["--compression", "none", "--oci"]);
    let two = export(&d2, &["--compression", "none", "--oci"]);
    for key in ["manifest", "config", "layer", "diff_id"] {
        assert_eq!(one[key], two[key], "{key} differs between two exports");
    }
    assert_eq!(
        one["layer"], one["diff_id"],
        "an uncompressed layer is its diff_id"
    );
    assert_eq!(one["tag"], format!("strata:{}", os.commit));
    let blob = |dir: &Path, digest: &serde_json::Value| {
        dir.join("blobs/sha256").join(
            digest
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:"),
        )
    };
    assert_eq!(
        fs::read(blob(&d1, &one["layer"])).expect("layer"),
        fs::read(blob(&d2, &two["layer"])).expect("layer"),
        "the same commit, the same layer bytes"
    );
    let archive = os.path("os.tar");
    let gz = export(&archive, &["--oci-archive"]);
    assert_eq!(gz["diff_id"], one["diff_id"], "gzip wraps the same tar");
    assert_ne!(gz["layer"], one["layer"]);
    // An existing --oci destination is refused, and left as it was.
    let r = strata([
        "export".as_ref(),
        "--repo".as_ref(),
        os.repo.as_os_str(),
        "os".as_ref(),
        "--oci".as_ref(),
        d1.as_os_str(),
    ])
    .failed();
    assert!(r.stderr.contains("exists already"), "{r:#?}");

    // GNU tar's view of the layer against the commit's checkout.
    let x = os.path("extracted");
    fs::create_dir(&x).expect("mkdir");
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf"])
        .arg(blob(&d1, &one["layer"]))
        .arg("-C")
        .arg(&x))
    .ok();
    let var = x.join("var");
    assert_eq!(
        fs::read_link(var.join("lib/dpkg")).expect("var/lib/dpkg"),
        Path::new("../../usr/share/dpkg/database"),
        "strata-dpkg.conf's L+ line"
    );
    assert_eq!(
        fs::metadata(var.join("tmp")).expect("var/tmp").mode() & 0o7777,
        0o1777,
        "strata-var.conf's d line with its mode"
    );
    let factory = x.join("usr/share/factory/var/cache/debconf/config.dat");
    let copied = var.join("cache/debconf/config.dat");
    assert_eq!(
        fs::read(&copied).expect("a C line's copy"),
        fs::read(&factory).expect("the factory file")
    );
    assert_ne!(
        fs::metadata(&copied).expect("copy").ino(),
        fs::metadata(&factory).expect("factory").ino(),
        "/var gets a copy of its own, not a link into /usr"
    );
    // /etc/shadow is in the image: only its owner may read the export.
    assert_eq!(
        fs::metadata(&archive).expect("archive").mode() & 0o777,
        0o600
    );
    assert_eq!(fs::metadata(&d1).expect("layout").mode() & 0o777, 0o700);
    assert!(!x.join("usr/etc").exists(), "no /usr/etc in an image");
    for e in fs::read_dir(&var).expect("var") {
        let p = e.expect("entry").path();
        if p.is_dir() && !p.is_symlink() {
            fs::remove_dir_all(&p).expect("rm");
        } else {
            fs::remove_file(&p).expect("rm");
        }
    }
    fs::rename(x.join("etc"), x.join("usr/etc")).expect("etc back to usr/etc");
    let checkout = os.path("checkout");
    strata([
        "checkout".as_ref(),
        "--repo".as_ref(),
        os.repo.as_os_str(),
        "os".as_ref(),
        checkout.as_os_str(),
    ])
    .ok();
    assert_same_tree(
        &manifest(&checkout),
        &manifest(&x),
        "the layer, /etc and /var put back, against the commit's checkout",
    );

    // podman loads the archive under the default tag and runs it.
    let r = run(Command::new("podman")
        .args(["load", "--input"])
        .arg(&archive))
    .ok();
    assert!(r.stdout.contains(&os.image()), "{r:#?}");
    let r = run(Command::new("podman")
        .arg("run")
        .arg("--rm")
        .args(ulimits())
        .arg(os.image())
        .args(["cat", "/etc/os-release"]))
    .ok();
    assert_eq!(r.stdout, read(&os.tree.join("usr/lib/os-release")));
    let labels = run(Command::new("podman").args([
        "image",
        "inspect",
        "--format",
        "{{index .Labels \"dev.strata.commit\"}} {{index .Labels \"org.opencontainers.image.version\"}}",
        &os.image(),
    ]))
    .ok();
    assert_eq!(labels.stdout.trim(), format!("{} 12.test", os.commit));

    // A base image for podman build.
    let ctx = os.path("build");
    fs::create_dir(&ctx).expect("mkdir");
    fs::write(
        ctx.join("Containerfile"),
        format!(
            "FROM {}\nRUN echo built-on-strata > /etc/motd\n",
            os.image()
        ),
    )
    .expect("Containerfile");
    let built = format!("localhost/it-built-{}", std::process::id());
    os.images.borrow_mut().push(built.clone());
    run(Command::new("podman")
        .arg("build")
        .args(ulimits())
        .args(["--tag", &built])
        .arg(&ctx))
    .ok();
    let r = run(Command::new("podman")
        .arg("run")
        .arg("--rm")
        .args(ulimits())
        .args([&built, "cat", "/etc/motd"]))
    .ok();
    assert_eq!(r.stdout, "built-on-strata\n");
}

/// A toolbox made as root from the booted deployment's commit (the
/// default): root inside, the home shared, the host's files linked,
/// apt-get installs there and not on the host; listed, refused and removed
/// as the commands say.
#[test]
fn a_toolbox_is_the_caller_with_a_mutable_debian() {
    let Some(os) = Os::new("rootful") else { return };
    // A machine booted into the commit: a directory sysroot that deployed
    // it, with the marker strata-prepare-root leaves.
    let Some(m) = Machine::new() else { return };
    let booted = m.release(&os.tree, 1);
    m.sys(["deploy", REFSPEC]).ok();
    m.mark_booted(m.default_entry().deployment());
    os.images
        .borrow_mut()
        .push(format!("localhost/strata:{booted}"));
    let name = os.name("root");
    let create = |name: &str| {
        let mut c = m.cmd(["toolbox", "create", name]);
        c.env("HOME", &os.home).env_remove("XDG_RUNTIME_DIR");
        run(&mut c)
    };
    let r = create(&name).ok();
    assert!(
        r.stderr
            .contains(&format!("exporting commit {}", &booted[..12])),
        "the booted commit is exported: {r:#?}"
    );
    let r = create(&name).failed();
    assert!(r.stderr.contains("exists already"), "{r:#?}");

    let out = |cmd: &str| {
        os.toolbox(["run", &name, "--", "sh", "-c", cmd])
            .ok()
            .stdout
    };
    assert_eq!(out("id -un; id -u"), "root\n0\n");
    out("echo made-inside > \"$HOME/inside\"; pwd > \"$HOME/pwd\"");
    let inside = os.home.join("inside");
    assert_eq!(read(&inside), "made-inside\n");
    assert_eq!(fs::metadata(&inside).expect("stat").uid(), 0);
    assert_eq!(
        read(&os.home.join("pwd")).trim(),
        os.home.display().to_string()
    );
    for f in ["hosts", "resolv.conf"] {
        let target = out(&format!("readlink /etc/{f}"));
        assert!(target.starts_with("/run/host/"), "/etc/{f} -> {target}");
    }
    assert_eq!(out("echo $STRATA_TOOLBOX"), format!("{name}\n"));
    let r = os.toolbox(["run", &name, "--", "sh", "-c", "exit 7"]);
    assert_eq!(r.status.code(), Some(7), "the command's status: {r:#?}");
    // enter: a login shell, here reading its commands from a pipe.
    let mut enter = strata_cmd(["toolbox", "enter", &name]);
    enter
        .env("HOME", &os.home)
        .env("SHELL", "/bin/bash")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = enter.spawn().expect("strata toolbox enter");
    std::io::Write::write_all(
        child.stdin.as_mut().expect("stdin"),
        b"echo \"shell=$0 user=$(id -un)\"; exit 3\n",
    )
    .expect("write to the shell");
    drop(child.stdin.take());
    let entered = child.wait_with_output().expect("wait");
    assert_eq!(entered.status.code(), Some(3), "{entered:?}");
    assert_eq!(
        String::from_utf8_lossy(&entered.stdout),
        "shell=/bin/bash user=root\n"
    );

    // apt-get installs in the toolbox; the host's /usr is untouched.
    let stamp = os.path("stamp");
    fs::write(&stamp, "").expect("stamp");
    let hello =
        out("apt-get update -q >/dev/null && apt-get install -y -q hello >/dev/null && hello");
    assert_eq!(hello, "Hello, world!\n");
    assert!(
        !Path::new("/usr/bin/hello").exists(),
        "hello is not on the host"
    );
    let changed = run(Command::new("find")
        .args(["/usr", "-newer"])
        .arg(&stamp)
        .args(["-print", "-quit"]))
    .ok();
    assert_eq!(changed.stdout, "", "the host's /usr changed");

    let list = json(&os.toolbox(["list", "--json"]).ok());
    let me = list
        .as_array()
        .expect("array")
        .iter()
        .find(|t| t["name"] == name.as_str())
        .expect("listed");
    assert_eq!(me["commit"], booted.as_str());
    assert_eq!(me["state"], "running");
    assert!(os.toolbox(["list"]).ok().stdout.contains(&name));

    // A stopped toolbox starts again for the next command.
    run(Command::new("podman").args(["stop", "--time", "1", &name])).ok();
    assert_eq!(out("echo again"), "again\n");

    let r = os.toolbox(["rm", &name]).failed();
    assert!(r.stderr.contains("is running"), "{r:#?}");
    os.toolbox(["rm", "--force", &name]).ok();
    let r = os.toolbox(["enter", &name]).failed();
    assert!(r.stderr.contains("no toolbox named"), "{r:#?}");

    // The errors a user meets.
    let r = os.toolbox(["create", "no good"]).failed();
    assert!(r.stderr.contains("not a valid toolbox name"), "{r:#?}");
    let r = os
        .toolbox([
            "--sysroot".as_ref(),
            os.path("no-sysroot").as_os_str(),
            "create".as_ref(),
        ])
        .failed();
    assert!(
        r.stderr.contains("not booted into a strata deployment"),
        "{r:#?}"
    );
    let r =
        run(strata_cmd(["toolbox", "list"]).env("STRATA_PODMAN", "/nonexistent/podman")).failed();
    assert!(r.stderr.contains("podman is not installed"), "{r:#?}");
    let plain = os.name("plain");
    run(Command::new("podman")
        .args(["create", "--name", &plain])
        .args(ulimits())
        .args([&format!("localhost/strata:{booted}"), "true"]))
    .ok();
    let r = os.toolbox(["run", &plain, "--", "true"]).failed();
    assert!(r.stderr.contains("not a strata toolbox"), "{r:#?}");
}

/// The test user, with subordinate ids and a runtime directory, and its uid.
fn test_user() -> u32 {
    run(Command::new("bash")
        .arg(fixture("toolbox-user.sh"))
        .arg(TEST_USER))
    .ok()
    .line()
    .parse()
    .expect("uid")
}

/// `strata ARGS` as the test user, in a login-like environment.
fn as_user(uid: u32, args: &[&str]) -> Run {
    let home = format!("/home/{TEST_USER}");
    run(Command::new("runuser")
        .args(["-u", TEST_USER, "--", "env", "-i"])
        .arg(format!("HOME={home}"))
        .arg(format!("USER={TEST_USER}"))
        .arg(format!("XDG_RUNTIME_DIR=/run/user/{uid}"))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin")
        .arg(STRATA)
        .args(args)
        .current_dir("/"))
}

/// Rootless podman for a user: the toolbox has the user's name, uid and
/// home; root inside is the user's namespace's. The booted commit's own
/// export needs root (its repository keeps root-only files), and says so.
#[test]
fn a_rootless_toolbox_keeps_the_users_name_and_uid() {
    let Some(os) = Os::new("rootless") else {
        return;
    };
    if !Path::new("/usr/bin/newuidmap").exists() {
        skip("newuidmap is not installed (Debian: uidmap)");
        return;
    }
    let uid = test_user();
    let repo = os.repo.display().to_string();
    let r = as_user(uid, &["toolbox", "create", "--repo", &repo, "--from", "os"]).failed();
    assert!(r.stderr.contains("only root may read"), "{r:#?}");

    let archive = os.path("os.tar");
    strata([
        "export".as_ref(),
        "--repo".as_ref(),
        os.repo.as_os_str(),
        "os".as_ref(),
        "--compression".as_ref(),
        "none".as_ref(),
        "--oci-archive".as_ref(),
        archive.as_os_str(),
    ])
    .ok();
    // The export is root's alone (the commit has /etc/shadow): handed over
    // as the error message says.
    run(Command::new("chown").arg(TEST_USER).arg(&archive)).ok();
    let name = format!("it-user-{}", std::process::id());
    let image = format!("oci-archive:{}", archive.display());
    let cleanup = || {
        as_user(uid, &["toolbox", "rm", "--force", &name]);
        run(Command::new("runuser")
            .args(["-u", TEST_USER, "--", "env"])
            .arg(format!("XDG_RUNTIME_DIR=/run/user/{uid}"))
            .args(["podman", "rmi", "--force", &os.image()])
            .current_dir("/"));
    };
    let r = as_user(uid, &["toolbox", "create", &name, "--image", &image]);
    if !r.status.success() {
        cleanup();
        panic!("rootless create failed: {r:#?}");
    }
    let out = |root: bool, cmd: &str| {
        let mut args = vec!["toolbox", "run"];
        if root {
            args.push("--root");
        }
        args.extend([name.as_str(), "--", "sh", "-c", cmd]);
        as_user(uid, &args)
    };
    let me = out(
        false,
        "id -un; id -u; echo \"$HOME\"; echo mine > \"$HOME/from-toolbox\"",
    );
    let root = out(true, "id -u");
    cleanup();
    let me = me.ok();
    assert_eq!(
        me.stdout,
        format!("{TEST_USER}\n{uid}\n/home/{TEST_USER}\n")
    );
    let file = PathBuf::from(format!("/home/{TEST_USER}/from-toolbox"));
    assert_eq!(
        fs::metadata(&file).expect("the file on the host").uid(),
        uid
    );
    fs::remove_file(&file).expect("rm");
    assert_eq!(root.ok().stdout, "0\n", "root in the user's namespace");
}
