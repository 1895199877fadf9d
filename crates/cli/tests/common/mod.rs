//! Shared by the integration tests: run strata and ostree, build fixture
//! trees, compare manifests, look at a repository's objects. Serving
//! repositories (`nginx`, `dev_server`), publishing to them (`publish`) and
//! a sysroot deploying from them (`machine`) have modules of their own.
//!
//! Every command runs with STRATA_REPO, STRATA_FAULT and RUST_LOG removed from its
//! environment, so a developer's shell cannot change what a test sees.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

pub mod dev_server;
pub mod machine;
pub mod nginx;
pub mod publish;
pub mod vm;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};

/// The one place a test decides to skip: it prints "skipped: why", or
/// panics naming what is missing when CI or STRATA_TEST_REQUIRE_ALL is set.
pub use strata_store::test_util::skip;

pub const STRATA: &str = env!("CARGO_BIN_EXE_strata");

/// The commit options every conformance comparison uses.
pub const SUBJECT: &str = "subj";
pub const TIMESTAMP: &str = "2024-01-01T00:00:00Z";

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from_output(what: String, o: Output) -> Run {
        Run {
            what,
            status: o.status,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// Panics, showing everything, unless the command succeeded.
    pub fn ok(self) -> Run {
        assert!(self.status.success(), "{} failed: {self:#?}", self.what);
        self
    }

    /// Panics unless the command exited non-zero (not killed by a signal).
    pub fn failed(self) -> Run {
        assert!(
            matches!(self.status.code(), Some(c) if c != 0),
            "{} should have failed with an exit code: {self:#?}",
            self.what
        );
        self
    }

    /// The first line of stdout: a checksum, for commit and rev-parse.
    pub fn line(&self) -> String {
        self.stdout.lines().next().unwrap_or_default().to_owned()
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs `cmd` to completion.
pub fn run(cmd: &mut Command) -> Run {
    let what = describe(cmd);
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    Run::from_output(what, out)
}

/// A strata command with a clean environment, not yet run.
pub fn strata_cmd<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Command {
    let mut c = Command::new(STRATA);
    c.args(args)
        .env_remove("STRATA_REPO")
        .env_remove("STRATA_FAULT")
        .env_remove("RUST_LOG");
    c
}

pub fn strata<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    run(&mut strata_cmd(args))
}

/// Runs strata with `args` under python3, which reports the peak resident
/// memory (KiB) of the strata process alone once it exited (its
/// `RUSAGE_CHILDREN`: this test process has other children). Check
/// [`have_tool`]`("python3")` first.
pub fn strata_measured<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> (Run, u64) {
    const MEASURE: &str = "import resource, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(r.stdout)
sys.stderr.write(r.stderr)
sys.stderr.write('peak_kib=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(r.returncode)";
    let mut c = Command::new("python3");
    c.args(["-c", MEASURE, STRATA])
        .args(args)
        .env_remove("STRATA_REPO")
        .env_remove("STRATA_FAULT")
        .env_remove("RUST_LOG");
    let r = run(&mut c);
    let peak = r
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak_kib="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak memory reported: {r:#?}"));
    (r, peak)
}

pub fn ostree<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    run(Command::new("ostree").args(args))
}

/// Whether `tool` runs; [`skip`]s when it does not.
#[track_caller]
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(&format!("{tool} is not installed"));
    }
    found
}

#[track_caller]
pub fn have_ostree() -> bool {
    have_tool("ostree")
}

/// Whether we run as root (the owner of /proc/self is the effective uid);
/// [`skip`]s when not.
#[track_caller]
pub fn have_root(why: &str) -> bool {
    let root = fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        skip(&format!("needs root ({why})"));
    }
    root
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("strata-test-")
        .tempdir()
        .expect("create a temporary directory")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

/// Builds the special fixture tree (odd modes, a 65 MiB file, symlinks,
/// hardlinks, xattrs, foreign owners) at `dest`.
pub fn special_tree(dest: &Path) -> PathBuf {
    run(Command::new("bash")
        .arg(fixture("special-tree.sh"))
        .arg(dest))
    .ok();
    dest.to_owned()
}

/// The cached Debian minbase tree, or `None` (after printing why) when it
/// cannot be had here. Building it needs root; as root a failure is a
/// test failure, not a skip.
pub fn debian_tree() -> Option<PathBuf> {
    let r = run(Command::new("bash").arg(fixture("debian-tree.sh")));
    if r.status.success() {
        return Some(PathBuf::from(r.stdout.trim_end()));
    }
    if have_root("debootstrap builds the Debian tree") {
        panic!("debian-tree.sh failed: {r:#?}");
    }
    None
}

/// The manifest of a tree: equal manifests mean equal trees for OSTree.
pub fn manifest(dir: &Path) -> String {
    run(Command::new("python3").arg(fixture("manifest.py")).arg(dir))
        .ok()
        .stdout
}

/// Asserts two manifests are equal, showing only the lines that differ.
pub fn assert_same_tree(expected: &str, actual: &str, what: &str) {
    if expected == actual {
        return;
    }
    let exp: std::collections::BTreeSet<&str> = expected.lines().collect();
    let act: std::collections::BTreeSet<&str> = actual.lines().collect();
    let mut diff = String::new();
    for l in exp.difference(&act).take(20) {
        diff.push_str(&format!("- {l}\n"));
    }
    for l in act.difference(&exp).take(20) {
        diff.push_str(&format!("+ {l}\n"));
    }
    panic!("{what}: the tree differs from the expected one (- expected, + actual):\n{diff}");
}

/// Makes `depth` nested directories `name` under `root` (created), with a
/// file `leaf` holding `content` at the bottom: each level is made
/// relative to the one above, so the tree may be deeper than PATH_MAX.
pub fn deep_chain(root: &Path, name: &str, depth: usize, content: &[u8]) {
    use rustix::fs::{Mode, OFlags};
    let dir = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    fs::create_dir_all(root).expect("create the chain's root");
    let mut fd = rustix::fs::open(root, dir, Mode::empty()).expect("open the chain's root");
    for _ in 0..depth {
        rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)).expect("mkdir a level");
        fd = rustix::fs::openat(&fd, name, dir, Mode::empty()).expect("open a level");
    }
    write_at(&fd, "leaf", content);
}

/// Creates file `name` (0644) holding `content` in directory `dir`.
pub fn write_at(dir: &std::os::fd::OwnedFd, name: &str, content: &[u8]) {
    use rustix::fs::{Mode, OFlags};
    use std::io::Write;
    let f = rustix::fs::openat(
        dir,
        name,
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .unwrap_or_else(|e| panic!("create {name}: {e}"));
    fs::File::from(f)
        .write_all(content)
        .unwrap_or_else(|e| panic!("write {name}: {e}"));
}

/// The bottom of a [`deep_chain`]: its directory, opened level by level.
pub fn deep_bottom(root: &Path, name: &str, depth: usize) -> std::os::fd::OwnedFd {
    use rustix::fs::{Mode, OFlags};
    let dir = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC;
    let mut fd = rustix::fs::open(root, dir, Mode::empty())
        .unwrap_or_else(|e| panic!("open {}: {e}", root.display()));
    for level in 0..depth {
        fd = rustix::fs::openat(&fd, name, dir, Mode::empty())
            .unwrap_or_else(|e| panic!("open level {level} under {}: {e}", root.display()));
    }
    fd
}

/// What file `file` at the bottom of a [`deep_chain`] holds.
pub fn read_deep(root: &Path, name: &str, depth: usize, file: &str) -> String {
    use rustix::fs::{Mode, OFlags};
    use std::io::Read;
    let bottom = deep_bottom(root, name, depth);
    let f = rustix::fs::openat(
        &bottom,
        file,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap_or_else(|e| panic!("open {file} at the bottom of {}: {e}", root.display()));
    let mut content = String::new();
    fs::File::from(f)
        .read_to_string(&mut content)
        .expect("read the file");
    content
}

/// Writes `files` (path, content) under `root`, creating parent dirs.
/// Modes are pinned (dirs 0755, files 0644), as special-tree.sh pins its
/// umask, so the caller's umask cannot change checksums or listings.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    use std::os::unix::fs::PermissionsExt;
    let chmod = |p: &Path, mode: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
    };
    for (path, content) in files {
        let p = root.join(path);
        let parent = p.parent().expect("a file has a parent");
        fs::create_dir_all(parent).expect("create dirs");
        for d in parent.ancestors().take_while(|d| d.starts_with(root)) {
            chmod(d, 0o755);
        }
        fs::write(&p, content).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        chmod(&p, 0o644);
    }
}

/// How `ostree init` spells a mode: `archive` is `archive-z2` there.
pub fn ostree_mode(mode: &str) -> &str {
    if mode == "archive" {
        "archive-z2"
    } else {
        mode
    }
}

pub fn init(repo: &Path, mode: &str) {
    strata([
        "init".as_ref(),
        "--repo".as_ref(),
        repo.as_os_str(),
        "--mode".as_ref(),
        mode.as_ref(),
    ])
    .ok();
}

pub fn ostree_init(repo: &Path, mode: &str) {
    ostree([
        format!("--repo={}", repo.display()),
        "init".into(),
        format!("--mode={}", ostree_mode(mode)),
    ])
    .ok();
}

/// `strata commit` of `tree` to `branch` with the standard subject and
/// timestamp plus `extra`; returns the checksum.
pub fn commit(repo: &Path, branch: &str, tree: &Path, extra: &[&str]) -> String {
    strata(commit_args(repo, branch, "--tree", tree, extra))
        .ok()
        .line()
}

pub fn commit_args(
    repo: &Path,
    branch: &str,
    source_flag: &str,
    source: &Path,
    extra: &[&str],
) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec![
        "commit".into(),
        "--repo".into(),
        repo.into(),
        format!("--branch={branch}").into(),
        "-s".into(),
        SUBJECT.into(),
        "--timestamp".into(),
        TIMESTAMP.into(),
        source_flag.into(),
        source.into(),
    ];
    args.extend(extra.iter().map(Into::into));
    args
}

/// `ostree commit` with the same standard options; returns the checksum.
pub fn ostree_commit(repo: &Path, branch: &str, tree: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        format!("--repo={}", repo.display()),
        "commit".into(),
        "-b".into(),
        branch.into(),
        "-s".into(),
        SUBJECT.into(),
        format!("--timestamp={TIMESTAMP}"),
        format!("--tree=dir={}", tree.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ostree(args).ok().line()
}

/// Runs a strata command on `repo`: `strata --repo REPO args...`.
pub fn on<S: AsRef<OsStr>>(repo: &Path, args: impl IntoIterator<Item = S>) -> Run {
    let mut c = strata_cmd(["--repo".as_ref(), repo.as_os_str()]);
    c.args(args);
    run(&mut c)
}

/// Runs an ostree command on `repo`: `ostree --repo=REPO args...`.
pub fn ostree_on<S: AsRef<OsStr>>(repo: &Path, args: impl IntoIterator<Item = S>) -> Run {
    let mut c = Command::new("ostree");
    c.arg(format!("--repo={}", repo.display())).args(args);
    run(&mut c)
}

/// `strata show --json REV`, parsed.
pub fn show_json(repo: &Path, rev: &str) -> serde_json::Value {
    let r = on(repo, ["show", "--json", rev]).ok();
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("show --json: {e}: {r:#?}"))
}

/// Every loose object file of `repo`.
pub fn objects(repo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let dir = repo.join("objects");
    for sub in fs::read_dir(&dir).expect("list objects/").flatten() {
        for e in fs::read_dir(sub.path()).expect("list objects/XX").flatten() {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// The path of the loose object `checksum` with extension `ext`.
pub fn object_path(repo: &Path, checksum: &str, ext: &str) -> PathBuf {
    repo.join("objects")
        .join(&checksum[..2])
        .join(format!("{}.{ext}", &checksum[2..]))
}

/// The checksum a loose object's path names.
pub fn object_checksum(path: &Path) -> String {
    let dir = path
        .parent()
        .and_then(Path::file_name)
        .expect("objects/XX")
        .to_string_lossy();
    let stem = path.file_stem().expect("a file name").to_string_lossy();
    format!("{dir}{stem}")
}

/// Flips every bit of the byte at `offset` (negative: from the end).
pub fn flip_byte(path: &Path, offset: i64) {
    let mut data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert!(!data.is_empty(), "{} is empty", path.display());
    let len = data.len() as i64;
    let i = if offset < 0 { len + offset } else { offset };
    let i = usize::try_from(i.clamp(0, len - 1)).expect("an index");
    data[i] ^= 0xff;
    // Objects are often read-only; root writes them anyway, others chmod.
    let mut perms = fs::metadata(path).expect("stat").permissions();
    let mode = std::os::unix::fs::PermissionsExt::mode(&perms);
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, mode | 0o200);
    fs::set_permissions(path, perms).expect("chmod u+w");
    fs::write(path, data).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Every path under `root`, relative, sorted: to see that nothing appeared.
pub fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            out.push(
                p.strip_prefix(root)
                    .expect("under root")
                    .to_string_lossy()
                    .into_owned(),
            );
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// Builds a tarball with python3's tarfile, which writes any member name
/// as given (GNU tar would refuse the hostile ones). Each member is
/// `f:NAME` (a file holding "member NAME\n"), `d:NAME`, `l:NAME:TARGET`
/// (symlink), `h:NAME:TARGET` (hard link), `p:NAME` (fifo) or `c:NAME`
/// (character device 1,3).
pub fn make_tar(dest: &Path, members: &[&str]) {
    const SCRIPT: &str = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for spec in sys.argv[2:]:
        kind, name, *rest = spec.split(":", 2)
        ti = tarfile.TarInfo(name)
        ti.mode = 0o755 if kind == "d" else 0o644
        data = None
        if kind == "f":
            data = f"member {name}\n".encode()
            ti.size = len(data)
        elif kind == "d":
            ti.type = tarfile.DIRTYPE
        elif kind == "l":
            ti.type, ti.linkname = tarfile.SYMTYPE, rest[0]
        elif kind == "h":
            ti.type, ti.linkname = tarfile.LNKTYPE, rest[0]
        elif kind == "p":
            ti.type = tarfile.FIFOTYPE
        elif kind == "c":
            ti.type, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 1, 3
        t.addfile(ti, io.BytesIO(data) if data is not None else None)
"#;
    run(Command::new("python3")
        .args(["-c", SCRIPT])
        .arg(dest)
        .args(members))
    .ok();
}

/// A tmpfs mounted at a directory, unmounted when dropped (needs root).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// `size` as mount(8) takes it: `64k`, `8m`.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir))
        .ok();
        Tmpfs {
            dir: dir.to_owned(),
        }
    }

    pub fn resize(&self, size: &str) {
        run(Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir))
        .ok();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let r = run(Command::new("umount").arg(&self.dir));
        if !r.status.success() {
            eprintln!("could not unmount the test tmpfs: {r:#?}");
        }
    }
}
