//! Helpers for tests of strata-store and of the crates built on it, behind
//! the `test-util` feature (on in this crate's own unit tests).
//!
//! Other crates enable it from their `[dev-dependencies]`
//! (`strata-store = { workspace = true, features = ["test-util"] }`), and
//! so do this crate's own integration tests (a dev-dependency on itself),
//! so it never reaches a release build.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::write::{CommitOptions, Parent, Source, commit};
use crate::{Checksum, FileHeader, RefName, Repo, RepoMode};

/// The timestamp of every commit these helpers make, so checksums are stable.
pub const TIMESTAMP: u64 = 1_704_067_200; // 2024-01-01T00:00:00Z

/// A small tree: two files, one in a subdirectory.
pub const SMALL_TREE: &[(&str, &str)] = &[("hello.txt", "hello\n"), ("sub/data", "data\n")];

/// Writes `files` (path, content) under `root`, creating parents. Modes
/// are pinned (directories 0755, files 0644) so the caller's umask
/// cannot change checksums.
pub fn write_files(root: &Path, files: &[(&str, &str)]) {
    let chmod = |p: &Path, mode: u32| {
        fs::set_permissions(p, fs::Permissions::from_mode(mode))
            .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
    };
    fs::create_dir_all(root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
    chmod(root, 0o755);
    for (rel, content) in files {
        let path = root.join(rel);
        let mut dir = path.parent();
        while let Some(d) = dir.filter(|d| *d != root) {
            fs::create_dir_all(d).unwrap_or_else(|e| panic!("mkdir {}: {e}", d.display()));
            chmod(d, 0o755);
            dir = d.parent();
        }
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        chmod(&path, 0o644);
    }
}

/// Commits the directory `tree` to `branch` (parent: the branch's head)
/// at [`TIMESTAMP`].
pub fn commit_dir(repo: &Repo, branch: &str, tree: &Path) -> Checksum {
    let branch = RefName::parse(branch).expect("a valid branch name");
    let opts = CommitOptions {
        subject: "test".into(),
        timestamp: Some(TIMESTAMP),
        parent: Parent::BranchHead,
        ..CommitOptions::default()
    };
    commit(
        repo,
        &branch,
        &Source::Dir(tree.to_owned(), Default::default()),
        &opts,
    )
    .unwrap_or_else(|e| panic!("commit {} to {branch:?}: {e}", tree.display()))
    .checksum
}

/// A repository at `dir/repo` with `files` written to `dir/tree` and
/// committed to `main`.
pub fn repo_with_tree(dir: &Path, mode: RepoMode, files: &[(&str, &str)]) -> (Repo, Checksum) {
    let repo = Repo::init(&dir.join("repo"), mode).expect("init a repository");
    let tree = dir.join("tree");
    write_files(&tree, files);
    let commit = commit_dir(&repo, "main", &tree);
    (repo, commit)
}

/// The header of a regular file owned by root, mode 0644, without xattrs.
pub fn regular_file_header() -> FileHeader {
    FileHeader {
        uid: 0,
        gid: 0,
        mode: 0o100644,
        symlink_target: String::new(),
        xattrs: Default::default(),
    }
}

/// Whether a test must run rather than skip: `CI` is set to a true value
/// (as CI services set it) or `STRATA_TEST_REQUIRE_ALL=1`. A green CI then
/// means every test ran, not that some found a tool missing and returned.
pub fn require_all() -> bool {
    require_all_given(|name| std::env::var(name).ok())
}

/// [`require_all`] over an environment given as a lookup: the decision
/// alone, so it can be tested without touching the process environment.
pub fn require_all_given(var: impl Fn(&str) -> Option<String>) -> bool {
    truthy(var("CI").as_deref()) || truthy(var("STRATA_TEST_REQUIRE_ALL").as_deref())
}

/// `1`, `true`, `yes` or `on` in any case; unset, empty, `0`, `false` and
/// anything else are false.
fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// A test that cannot run here says so: it prints `skipped: {why}`, and the
/// caller returns. When every test must run ([`require_all`]) it panics
/// naming what is missing instead.
#[track_caller]
pub fn skip(why: &str) {
    if require_all() {
        panic!("{why}: this test cannot be skipped when CI or STRATA_TEST_REQUIRE_ALL is set");
    }
    eprintln!("skipped: {why}");
}

/// Whether we are root; when not, skips (see [`skip`]) saying the test
/// needs root for `why`.
#[track_caller]
pub fn have_root(why: &str) -> bool {
    let root = rustix::process::geteuid().is_root();
    if !root {
        skip(&format!("needs root ({why})"));
    }
    root
}

/// A tmpfs mounted at a directory, unmounted on drop. Mounting needs root
/// (see [`have_root`]).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as mount(8) takes it: `64k`, `8m`) at
    /// `dir`, creating it; panics if that fails.
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount a tmpfs at {}: {out:?}",
            dir.display()
        );
        Tmpfs(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Every path under `dir`, relative to it and sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("list {}: {e}", d.display()))
            .flatten()
        {
            let p = e.path();
            out.push(
                p.strip_prefix(dir)
                    .expect("under dir")
                    .display()
                    .to_string(),
            );
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                todo.push(p);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_are_refused_under_ci_or_require_all() {
        let given = |ci: Option<&str>, all: Option<&str>| {
            require_all_given(|name| match name {
                "CI" => ci.map(str::to_owned),
                "STRATA_TEST_REQUIRE_ALL" => all.map(str::to_owned),
                _ => None,
            })
        };
        let table = [
            (None, None, false),
            (Some("true"), None, true),
            (Some("TRUE"), None, true),
            (Some("1"), None, true),
            (Some("yes"), None, true),
            (Some(""), None, false),
            (Some("0"), None, false),
            (Some("false"), None, false),
            (None, Some("1"), true),
            (None, Some("0"), false),
            (Some("false"), Some("1"), true),
        ];
        for (ci, all, want) in table {
            assert_eq!(
                given(ci, all),
                want,
                "CI={ci:?} STRATA_TEST_REQUIRE_ALL={all:?}"
            );
        }
    }
}
