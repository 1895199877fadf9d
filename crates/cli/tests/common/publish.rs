//! Publishing and pulling through the strata binary: keys, signed commits,
//! summaries, remotes, and a server/client pair of repositories.

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// The branch every publishing test serves.
pub const BRANCH: &str = "os/stable";
/// The remote every client adds.
pub const REMOTE: &str = "origin";
/// A commit time after [`TIMESTAMP`], for a second release.
pub const LATER: &str = "2024-02-01T00:00:00Z";

/// A small tree: files at the root's children and two levels down.
pub const FILES: &[(&str, &str)] = &[
    ("etc/hostname", "box\n"),
    ("etc/os-release", "NAME=strata\nVERSION_ID=1\n"),
    ("usr/bin/tool", "#!/bin/sh\necho tool\n"),
    ("usr/lib/libfoo.so", "not really a library\n"),
    ("usr/share/doc/readme", "read me\n"),
];

/// A key pair from `strata keygen`.
#[derive(Debug, Clone)]
pub struct Key {
    pub secret: PathBuf,
    /// Base64, as keygen printed it.
    pub public: String,
}

pub fn keygen(secret: &Path) -> Key {
    let r = strata(["keygen".as_ref(), "--output".as_ref(), secret.as_os_str()]).ok();
    Key {
        secret: secret.to_owned(),
        public: r.line(),
    }
}

/// `strata commit` of `tree` to `branch` at `timestamp`, signed by `key`
/// when given; returns the checksum.
pub fn commit_at(
    repo: &Path,
    branch: &str,
    tree: &Path,
    timestamp: &str,
    key: Option<&Key>,
) -> String {
    let mut c = strata_cmd(["commit".as_ref(), "--repo".as_ref(), repo.as_os_str()]);
    c.args(["-b", branch, "-s", SUBJECT, "--timestamp", timestamp])
        .arg("--tree")
        .arg(tree);
    if let Some(k) = key {
        c.arg("--sign-key").arg(&k.secret);
    }
    run(&mut c).ok().line()
}

/// `strata summary --update`, signed by `key` when given.
pub fn update_summary(repo: &Path, key: Option<&Key>) {
    let mut c = strata_cmd(["summary".as_ref(), "--repo".as_ref(), repo.as_os_str()]);
    c.arg("--update");
    if let Some(k) = key {
        c.arg("--sign-key").arg(&k.secret);
    }
    run(&mut c).ok();
}

/// `strata sign REV --key KEY` on `repo`.
pub fn sign(repo: &Path, rev: &str, key: &Key) {
    on(
        repo,
        [
            "sign".as_ref(),
            rev.as_ref(),
            "--key".as_ref(),
            key.secret.as_os_str(),
        ],
    )
    .ok();
}

/// `strata app publish` of app or runtime directory `dir` into `repo` at
/// `branch`, signed by `key`; returns the commit.
pub fn publish_app(repo: &Path, dir: &Path, branch: &str, key: &Key) -> String {
    let out = strata([
        "app".as_ref(),
        "publish".as_ref(),
        "--repo".as_ref(),
        repo.as_os_str(),
        dir.as_os_str(),
        "--branch".as_ref(),
        branch.as_ref(),
    ])
    .ok()
    .stdout;
    let commit = out
        .split("as commit ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no commit in: {out}"))
        .to_owned();
    sign(repo, &commit, key);
    commit
}

/// Points `refs/heads/<branch>` of `repo` at `commit` by writing the file,
/// as an administrator (or an attacker) on the server would.
pub fn write_head(repo: &Path, branch: &str, commit: &str) {
    let path = repo.join("refs/heads").join(branch);
    fs::create_dir_all(path.parent().expect("a ref has a parent")).expect("create refs dirs");
    fs::write(&path, format!("{commit}\n"))
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// The object count in pull's summary line
/// (`origin:os/stable (new) -> C: N objects, ...`).
pub fn fetched_objects(r: &Run) -> u64 {
    r.stdout
        .split_once(": ")
        .and_then(|(_, rest)| rest.split_once(" objects"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no object count in pull's output: {r:#?}"))
}

/// The objects a pull has to fetch: all but commits and their detached
/// metadata, which pull does not count.
pub fn pulled_kinds(objects: &[PathBuf]) -> Vec<PathBuf> {
    objects
        .iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e != "commit" && e != "commitmeta")
        })
        .cloned()
        .collect()
}

/// An archive repository to publish from and a bare one to pull into,
/// with a signing key, all in one temporary directory.
pub struct Publish {
    tmp: tempfile::TempDir,
    pub server: PathBuf,
    pub client: PathBuf,
    /// Where the published tree is built (empty at first).
    pub tree: PathBuf,
    pub key: Key,
}

impl Publish {
    pub fn new() -> Publish {
        let tmp = tempdir();
        let server = tmp.path().join("srv");
        let client = tmp.path().join("cli");
        let tree = tmp.path().join("tree");
        init(&server, "archive");
        init(&client, "bare");
        fs::create_dir(&tree).expect("create tree dir");
        let key = keygen(&tmp.path().join("key.sec"));
        Publish {
            tmp,
            server,
            client,
            tree,
            key,
        }
    }

    /// A setup whose tree holds [`FILES`].
    pub fn with_files() -> Publish {
        let p = Publish::new();
        write_files(&p.tree, FILES);
        p
    }

    /// A path in the temporary directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.tmp.path().join(name)
    }

    /// Commits the tree to [`BRANCH`] at `timestamp`, signed, and
    /// regenerates the signed summary; returns the commit.
    pub fn publish(&self, timestamp: &str) -> String {
        let c = commit_at(&self.server, BRANCH, &self.tree, timestamp, Some(&self.key));
        update_summary(&self.server, Some(&self.key));
        c
    }

    /// `strata remote add origin URL` with `verify` (key options) on the client.
    pub fn add_remote(&self, url: &str, verify: &[&str]) -> Run {
        on(
            &self.client,
            ["remote", "add", REMOTE, url].iter().chain(verify),
        )
    }

    /// Adds the remote trusting [`Publish::key`].
    pub fn add_trusting_remote(&self, url: &str) {
        self.add_remote(url, &["--sign-pubkey", &self.key.public])
            .ok();
    }

    /// `strata pull origin os/stable` with `extra` options, on the client.
    pub fn pull(&self, extra: &[&str]) -> Run {
        on(&self.client, ["pull", REMOTE, BRANCH].iter().chain(extra))
    }

    /// The commit `refs/remotes/origin/os/stable` of the client holds.
    pub fn client_ref(&self) -> Option<String> {
        let path = self.client.join("refs/remotes").join(REMOTE).join(BRANCH);
        fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
    }

    /// Asserts the client passes fsck.
    pub fn fsck_client(&self) {
        on(&self.client, ["fsck"]).ok();
    }

    /// Pulls with `extra` options, expecting a refusal whose message holds
    /// every one of `needles`; the client gets no ref and stays consistent.
    pub fn pull_refused(&self, extra: &[&str], needles: &[&str]) -> Run {
        let r = self.pull(extra).failed();
        for n in needles {
            assert!(
                r.stderr.contains(n),
                "the refusal should mention {n:?}: {r:#?}"
            );
        }
        assert_eq!(
            self.client_ref(),
            None,
            "a refused pull must not write the ref"
        );
        self.fsck_client();
        r
    }
}
