//! A machine under test: an archive repository publishing signed, bootable
//! trees and a directory sysroot deploying from it through the strata
//! binary; readers for what the sysroot holds on disk (deployments, boot
//! entries, kernels on the ESP) and the invariants every state must keep.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::publish::{BRANCH, Key, keygen, update_summary};
use super::*;

/// The stateroot the CLI deploys to when none is given.
pub const STATEROOT: &str = "default";
/// The kernel a tree boots unless a test says otherwise.
pub const KVER: &str = "6.1.0-1";
/// What the machine follows: the server's branch through remote `origin`.
pub const REFSPEC: &str = "origin:os/stable";

/// Commit time of release 0; release N is N days later, so every release
/// is newer than the one before (pull refuses downgrades).
const EPOCH: u64 = 1_704_067_200;
const DAY: u64 = 86_400;

/// Writes kernel `kver` into `tree`: a vmlinuz and an initramfs.img whose
/// content names the version, so the ESP copy shows which kernel boots.
pub fn add_kernel(tree: &Path, kver: &str) {
    let files = [
        (
            format!("usr/lib/modules/{kver}/vmlinuz"),
            format!("vmlinuz {kver}\n"),
        ),
        (
            format!("usr/lib/modules/{kver}/initramfs.img"),
            format!("initramfs {kver}\n"),
        ),
    ];
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_files(tree, &refs);
}

/// A bootable tree at `dir`: kernel `kver`, an os-release naming
/// `version`, and `etc` (path under /etc, content) as the /usr/etc defaults.
pub fn bootable_tree(dir: &Path, version: u32, kver: &str, etc: &[(&str, &str)]) -> PathBuf {
    add_kernel(dir, kver);
    let os_release = format!("PRETTY_NAME=\"Test OS {version}\"\nVERSION_ID={version}\n");
    let mut files = vec![("usr/lib/os-release".to_owned(), os_release)];
    files.extend(
        etc.iter()
            .map(|(p, c)| (format!("usr/etc/{p}"), (*c).to_owned())),
    );
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    write_files(dir, &refs);
    dir.to_owned()
}

/// One boot entry file of the ESP, as its lines say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootEntry {
    pub file_name: String,
    pub title: String,
    /// The `version` line, verbatim.
    pub version: String,
    pub linux: String,
    pub initrd: String,
    pub options: String,
}

impl BootEntry {
    fn parse(file_name: &str, text: &str) -> BootEntry {
        let mut e = BootEntry {
            file_name: file_name.to_owned(),
            title: String::new(),
            version: String::new(),
            linux: String::new(),
            initrd: String::new(),
            options: String::new(),
        };
        for line in text.lines() {
            let (k, v) = line.split_once(' ').unwrap_or((line, ""));
            let field = match k {
                "title" => &mut e.title,
                "version" => &mut e.version,
                "linux" => &mut e.linux,
                "initrd" => &mut e.initrd,
                "options" => &mut e.options,
                _ => continue,
            };
            *field = v.trim().to_owned();
        }
        e
    }

    /// The generation: the number in the `version` line.
    pub fn generation(&self) -> u64 {
        self.version.parse().unwrap_or_else(|e| {
            panic!(
                "{}: version {:?} is not a number: {e}",
                self.file_name, self.version
            )
        })
    }

    /// The value of `key=` on the kernel command line.
    pub fn karg(&self, key: &str) -> Option<&str> {
        self.options
            .split_whitespace()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }

    /// The deployment the entry boots: `/strata/deploy/<stateroot>/<commit>.<serial>`.
    pub fn deployment(&self) -> &str {
        self.karg("strata")
            .unwrap_or_else(|| panic!("{} has no strata= argument: {self:#?}", self.file_name))
    }

    /// The kernel directory on the ESP: `<dir>` of `/strata/<dir>/vmlinuz`.
    pub fn kernel_dir(&self) -> &str {
        self.linux
            .strip_prefix("/strata/")
            .and_then(|r| r.split('/').next())
            .unwrap_or_else(|| panic!("{}: unexpected linux path {:?}", self.file_name, self.linux))
    }
}

/// Reads a file that must exist.
pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Names in `dir`, sorted; empty when it does not exist.
pub fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .map(|l| {
            l.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A server repository and a directory sysroot following it.
pub struct Machine {
    tmp: tempfile::TempDir,
    /// The archive repository releases are committed to.
    pub server: PathBuf,
    pub sysroot: PathBuf,
    pub esp: PathBuf,
    /// The key releases are signed with; the sysroot's remote trusts it.
    pub key: Key,
}

impl Machine {
    /// A machine whose ESP is the plain directory `<sysroot>/efi`; `None`
    /// (after saying why) when not root.
    pub fn new() -> Option<Machine> {
        Self::build(None)
    }

    /// A machine whose ESP is `esp` (given to `sysroot init --esp`).
    pub fn with_esp(esp: &Path) -> Option<Machine> {
        Self::build(Some(esp))
    }

    fn build(esp: Option<&Path>) -> Option<Machine> {
        // The sysroot's repository is bare: it keeps the trees' owners.
        if !have_root("a sysroot's bare repository keeps file owners") {
            return None;
        }
        let tmp = tempdir();
        let server = tmp.path().join("srv");
        let sysroot = tmp.path().join("sys");
        init(&server, "archive");
        let key = keygen(&tmp.path().join("key.sec"));
        let mut c = strata_cmd(["sysroot", "init", "--sysroot"]);
        c.arg(&sysroot);
        if let Some(esp) = esp {
            c.arg("--esp").arg(esp);
        }
        run(&mut c).ok();
        let m = Machine {
            esp: esp.map_or_else(|| sysroot.join("efi"), Path::to_owned),
            tmp,
            server,
            sysroot,
            key,
        };
        let url = format!("file://{}", m.server.display());
        on(
            &m.repo(),
            [
                "remote",
                "add",
                "origin",
                &url,
                "--sign-pubkey",
                &m.key.public,
            ],
        )
        .ok();
        Some(m)
    }

    /// A path in the machine's temporary directory (for trees).
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// The sysroot's repository.
    pub fn repo(&self) -> PathBuf {
        self.sysroot.join("strata/repo")
    }

    /// Commits `tree` to the server's branch as release `version` (metadata
    /// `version=N`, subject `vN`), signed, with a fresh summary; returns the commit.
    pub fn release(&self, tree: &Path, version: u32) -> String {
        let mut c = strata_cmd([
            "commit".as_ref(),
            "--repo".as_ref(),
            self.server.as_os_str(),
        ]);
        c.args(["-b", BRANCH, "-s", &format!("v{version}")])
            .args([
                "--timestamp",
                &format!("@{}", EPOCH + u64::from(version) * DAY),
            ])
            .args(["--add-metadata-string", &format!("version={version}")])
            .arg("--sign-key")
            .arg(&self.key.secret)
            .arg("--tree")
            .arg(tree);
        let commit = run(&mut c).ok().line();
        update_summary(&self.server, Some(&self.key));
        commit
    }

    /// Builds [`bootable_tree`] `v<version>` with `etc` and releases it.
    pub fn release_tree(&self, version: u32, kver: &str, etc: &[(&str, &str)]) -> String {
        let tree = bootable_tree(&self.path(&format!("v{version}")), version, kver, etc);
        self.release(&tree, version)
    }

    /// `strata --sysroot SYS args…`, not yet run.
    pub fn cmd<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Command {
        let mut c = strata_cmd(["--sysroot".as_ref(), self.sysroot.as_os_str()]);
        c.args(args);
        c
    }

    /// `strata --sysroot SYS args…`.
    pub fn sys<S: AsRef<std::ffi::OsStr>>(&self, args: impl IntoIterator<Item = S>) -> Run {
        run(&mut self.cmd(args))
    }

    /// Runs `args` with `STRATA_FAULT=point` and asserts the process died
    /// there (killed by the abort, no exit code).
    pub fn crash<S: AsRef<std::ffi::OsStr>>(
        &self,
        point: &str,
        args: impl IntoIterator<Item = S>,
    ) -> Run {
        let r = run(self.cmd(args).env("STRATA_FAULT", point));
        assert!(
            r.status.code().is_none(),
            "{} should have aborted at fault point {point}: {r:#?}",
            r.what
        );
        r
    }

    /// `strata status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let r = self.sys(["status", "--json"]).ok();
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("status --json: {e}: {r:#?}"))
    }

    /// `deploy/<stateroot>/` of the sysroot.
    pub fn deploy_dir(&self) -> PathBuf {
        self.sysroot.join("strata/deploy").join(STATEROOT)
    }

    /// Deployment directory names (`<commit>.<serial>`), sorted.
    pub fn deployments(&self) -> Vec<String> {
        names(&self.deploy_dir())
            .into_iter()
            .filter(|n| !n.starts_with('.') && !n.ends_with(".origin"))
            .collect()
    }

    /// Leftovers of interrupted deploys (`.staging-*`).
    pub fn staging(&self) -> Vec<String> {
        names(&self.deploy_dir())
            .into_iter()
            .filter(|n| n.starts_with(".staging-"))
            .collect()
    }

    /// The one deployment directory of `commit`.
    pub fn deployment_of(&self, commit: &str) -> PathBuf {
        let found: Vec<String> = self
            .deployments()
            .into_iter()
            .filter(|n| n.strip_prefix(commit).is_some_and(|s| s.starts_with('.')))
            .collect();
        assert_eq!(found.len(), 1, "one deployment of {commit}: {found:?}");
        self.deploy_dir().join(&found[0])
    }

    /// A sysroot-relative path (`/strata/deploy/…`) on disk.
    pub fn on_disk(&self, rel: &str) -> PathBuf {
        self.sysroot.join(rel.trim_start_matches('/'))
    }

    /// An ESP-relative path (`/strata/…/vmlinuz`) on disk.
    pub fn on_esp(&self, rel: &str) -> PathBuf {
        self.esp.join(rel.trim_start_matches('/'))
    }

    /// Our boot entries, sorted by file name.
    pub fn entries(&self) -> Vec<BootEntry> {
        let dir = self.esp.join("loader/entries");
        names(&dir)
            .into_iter()
            .filter(|n| n.starts_with("strata-") && n.ends_with(".conf"))
            .map(|n| BootEntry::parse(&n, &read(&dir.join(&n))))
            .collect()
    }

    /// The entry with the highest generation: what boots.
    pub fn default_entry(&self) -> BootEntry {
        self.entries()
            .into_iter()
            .max_by_key(BootEntry::generation)
            .unwrap_or_else(|| panic!("no boot entry in {}", self.esp.display()))
    }

    /// The deployment directory the default entry boots.
    pub fn default_deployment(&self) -> PathBuf {
        self.on_disk(self.default_entry().deployment())
    }

    /// The commit the default entry boots.
    pub fn default_commit(&self) -> String {
        commit_of(self.default_entry().deployment())
    }

    /// Kernel directories (and leftovers) under the ESP's `strata/`.
    pub fn kernel_dirs(&self) -> Vec<String> {
        names(&self.esp.join("strata"))
    }

    /// Writes `<sysroot>/run/strata-booted`, as strata-prepare-root does.
    pub fn mark_booted(&self, rel: &str) {
        write_files(&self.sysroot, &[("run/strata-booted", &format!("{rel}\n"))]);
    }

    /// The state a crash may leave must still boot and be understood: every
    /// entry names a complete deployment whose kernel is on the ESP, and
    /// `status` agrees with the entries about what is default.
    pub fn assert_sound(&self, when: &str) {
        let entries = self.entries();
        assert!(!entries.is_empty(), "{when}: no boot entry left");
        for e in &entries {
            let dir = self.on_disk(e.deployment());
            self.assert_complete(&dir, &commit_of(e.deployment()), when);
            let (linux, initrd) = (self.on_esp(&e.linux), self.on_esp(&e.initrd));
            let (Ok(l), Ok(i)) = (fs::read(&linux), fs::read(&initrd)) else {
                panic!(
                    "{when}: {} names a kernel missing on the ESP: {e:#?}",
                    e.file_name
                );
            };
            let boots_own_kernel = names(&dir.join("usr/lib/modules")).iter().any(|k| {
                let m = dir.join("usr/lib/modules").join(k);
                fs::read(m.join("vmlinuz")).ok() == Some(l.clone())
                    && fs::read(m.join("initramfs.img")).ok() == Some(i.clone())
            });
            assert!(
                boots_own_kernel,
                "{when}: {}'s kernel on the ESP is none of its deployment's kernels",
                e.file_name
            );
        }
        let status = self.status();
        let listed: Vec<&serde_json::Value> = status["deployments"]
            .as_array()
            .unwrap_or_else(|| panic!("{when}: status has no deployments: {status:#}"))
            .iter()
            .filter(|d| !d["generation"].is_null())
            .collect();
        let first = listed
            .first()
            .unwrap_or_else(|| panic!("{when}: status lists no entry: {status:#}"));
        let default = self.default_entry();
        assert_eq!(first["default"], true, "{when}: {status:#}");
        assert_eq!(
            first["path"],
            default.deployment(),
            "{when}: status and the default entry disagree"
        );
        let distinct: BTreeSet<&str> = entries.iter().map(BootEntry::deployment).collect();
        let paths: BTreeSet<&str> = listed.iter().filter_map(|d| d["path"].as_str()).collect();
        assert_eq!(
            paths, distinct,
            "{when}: status lists each entry's deployment once"
        );
        assert_eq!(
            paths.len(),
            listed.len(),
            "{when}: duplicates in {status:#}"
        );
    }

    /// `dir` holds every path of `commit`, and an `/etc`.
    pub fn assert_complete(&self, dir: &Path, commit: &str, when: &str) {
        assert!(
            dir.is_dir(),
            "{when}: deployment {} is missing",
            dir.display()
        );
        assert!(
            dir.join("etc").is_dir(),
            "{when}: {} has no etc/",
            dir.display()
        );
        let origin = PathBuf::from(format!("{}.origin", dir.display()));
        assert!(origin.is_file(), "{when}: {} is missing", origin.display());
        let ls = on(&self.repo(), ["ls", "-R", commit]).ok();
        let mut beneath = Beneath::new(dir);
        for line in ls.stdout.lines() {
            let path = line
                .split_whitespace()
                .skip(4)
                .collect::<Vec<_>>()
                .join(" ");
            let path = path.split(" -> ").next().unwrap_or_default();
            assert!(
                beneath.exists(Path::new(path.trim_start_matches('/'))),
                "{when}: {} lacks {path} of its commit",
                dir.display()
            );
        }
    }

    /// After `cleanup`: sound, and nothing is left that no entry needs: no
    /// staging leftovers, no deployment, origin or deploy ref without an
    /// entry, no kernel directory no entry names; the repository verifies.
    pub fn assert_clean(&self, when: &str) {
        self.assert_sound(when);
        let entries = self.entries();
        assert_eq!(
            self.staging(),
            Vec::<String>::new(),
            "{when}: staging leftovers"
        );
        let named: BTreeSet<String> = entries
            .iter()
            .map(|e| {
                e.deployment()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
        let on_disk: BTreeSet<String> = self.deployments().into_iter().collect();
        assert_eq!(
            on_disk, named,
            "{when}: deployments on disk vs named by entries"
        );
        let origins: BTreeSet<String> = names(&self.deploy_dir())
            .into_iter()
            .filter_map(|n| n.strip_suffix(".origin").map(str::to_owned))
            .collect();
        assert_eq!(origins, named, "{when}: origin files vs deployments");
        let refs: BTreeSet<String> = on(&self.repo(), ["refs"])
            .ok()
            .stdout
            .lines()
            .filter_map(|r| {
                r.strip_prefix(&format!("deploy/{STATEROOT}/"))
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(refs, named, "{when}: deploy refs vs deployments");
        let kernels: BTreeSet<String> = entries.iter().map(|e| e.kernel_dir().to_owned()).collect();
        let on_esp: BTreeSet<String> = self.kernel_dirs().into_iter().collect();
        assert_eq!(
            on_esp, kernels,
            "{when}: kernel dirs on the ESP vs named by entries"
        );
        on(&self.repo(), ["fsck"]).ok();
    }
}

/// Looks paths up under a directory, by handles where a path is too long
/// for the kernel (a deployment deeper than PATH_MAX); `ls -R` order
/// reuses the last directory opened.
struct Beneath {
    root: PathBuf,
    last: Option<(PathBuf, std::os::fd::OwnedFd)>,
}

impl Beneath {
    fn new(root: &Path) -> Self {
        Beneath {
            root: root.to_owned(),
            last: None,
        }
    }

    /// Whether `rel` exists (not following a final symlink).
    fn exists(&mut self, rel: &Path) -> bool {
        use rustix::fs::{AtFlags, CWD, Mode, OFlags};
        let full = self.root.join(rel);
        if full.as_os_str().len() < 4000 {
            return fs::symlink_metadata(&full).is_ok();
        }
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name()) else {
            return false;
        };
        let dir = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let start = match &self.last {
            Some((p, fd)) if parent.starts_with(p) => rustix::io::dup(fd)
                .ok()
                .map(|fd| (fd, parent.strip_prefix(p).unwrap_or(parent))),
            _ => None,
        };
        let (mut fd, rest) = match start {
            Some(s) => s,
            None => match rustix::fs::openat(CWD, &self.root, dir, Mode::empty()) {
                Ok(fd) => (fd, parent),
                Err(_) => return false,
            },
        };
        for c in rest.components() {
            match rustix::fs::openat(&fd, c.as_os_str(), dir, Mode::empty()) {
                Ok(next) => fd = next,
                Err(_) => return false,
            }
        }
        let found = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW).is_ok();
        self.last = Some((parent.to_owned(), fd));
        found
    }
}

/// The commit of a deployment path `/strata/deploy/<stateroot>/<commit>.<serial>`.
pub fn commit_of(rel: &str) -> String {
    let name = rel.rsplit('/').next().unwrap_or_default();
    name.split('.').next().unwrap_or_default().to_owned()
}
