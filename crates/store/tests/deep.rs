//! Issue 15: a tree thousands of levels deep, which `ostree commit`
//! accepts and any server can send. Every walk keeps its own stack and
//! works on directory handles, so each step runs on a thread with a
//! 256 KiB stack, and the tree's paths are longer than PATH_MAX (4096).
//! Before, `checkout` overflowed the stack and aborted, and a commit of
//! such a directory failed with "File name too long"; a union checkout
//! replacing it overflowed in std's `remove_dir_all`.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::Path;

use rustix::fs::{Mode, OFlags};
use strata_store::checkout::CheckoutOptions;
use strata_store::diff::{Change, diff_commits};
use strata_store::prune::PruneOptions;
use strata_store::test_util::commit_dir;
use strata_store::tree::Listed;
use strata_store::{Repo, RepoMode};

/// Levels below the root: 2 bytes each, so the leaf's path is 10 KB.
const DEPTH: usize = 5000;

const DIR: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// Opens `root/d/d/…` (`depth` levels) one level at a time.
fn open_chain(root: &Path, depth: usize) -> OwnedFd {
    let mut fd = rustix::fs::open(root, DIR, Mode::empty()).expect("open root");
    for _ in 0..depth {
        fd = rustix::fs::openat(&fd, "d", DIR, Mode::empty()).expect("open a level");
    }
    fd
}

/// A chain of `DEPTH` directories `d` under `root`, `leaf` holding
/// `content` at the bottom.
fn deep_tree(root: &Path, content: &[u8]) {
    fs::create_dir(root).expect("create root");
    let mut fd = rustix::fs::open(root, DIR, Mode::empty()).expect("open root");
    for _ in 0..DEPTH {
        rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).expect("mkdir");
        fd = rustix::fs::openat(&fd, "d", DIR, Mode::empty()).expect("open a level");
    }
    let leaf = rustix::fs::openat(
        &fd,
        "leaf",
        OFlags::CREATE | OFlags::WRONLY | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )
    .expect("create leaf");
    fs::File::from(leaf).write_all(content).expect("write leaf");
}

fn read_leaf(root: &Path) -> Vec<u8> {
    let dir = open_chain(root, DEPTH);
    let f = rustix::fs::openat(&dir, "leaf", OFlags::RDONLY, Mode::empty()).expect("open leaf");
    let mut out = Vec::new();
    fs::File::from(f).read_to_end(&mut out).expect("read leaf");
    out
}

/// Runs `f` on a thread with a 256 KiB stack, its parallel work (rayon's
/// jobs of checkout and commit) on workers with stacks as small.
fn on_small_stack(f: impl FnOnce() + Send + 'static) {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .stack_size(256 << 10)
        .build()
        .expect("a thread pool");
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || pool.install(f))
        .expect("spawn")
        .join()
        .expect("the step finished on a small stack");
}

#[test]
fn a_tree_deeper_than_path_max_commits_checks_out_and_walks_on_a_small_stack() {
    for mode in [RepoMode::Archive, RepoMode::BareUser] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let base = tmp.path().to_owned();
        deep_tree(&base.join("v1"), b"one\n");
        deep_tree(&base.join("v2"), b"two\n");
        let repo = Repo::init(&base.join("repo"), mode).expect("init");

        let (b, r) = (base.clone(), repo.path().to_owned());
        on_small_stack(move || {
            let repo = Repo::open(&r).expect("open");
            let c1 = commit_dir(&repo, "main", &b.join("v1"));
            let c2 = commit_dir(&repo, "main", &b.join("v2"));

            repo.checkout(&c1, &b.join("out"), &CheckoutOptions::default())
                .expect("checkout");

            // A union checkout where the deep directory became a file
            // removes the directory (std's remove_dir_all overflowed).
            repo.checkout(&c1, &b.join("union"), &CheckoutOptions::default())
                .expect("checkout");
            fs::create_dir(b.join("flat")).expect("mkdir");
            fs::write(b.join("flat/d"), "flat\n").expect("a file");
            let flat = commit_dir(&repo, "flat", &b.join("flat"));
            let union = CheckoutOptions {
                union: true,
                ..CheckoutOptions::default()
            };
            repo.checkout(&flat, &b.join("union"), &union)
                .expect("the union checkout replaces the deep directory");
            assert_eq!(fs::read(b.join("union/d")).expect("d is a file"), b"flat\n");

            let changes = diff_commits(&repo, &c1, &c2).expect("diff");
            assert_eq!(changes.len(), 1, "only the leaf changed");
            assert_eq!(changes[0].0, Change::Modified);
            assert_eq!(changes[0].1.len(), DEPTH * 2 + "/leaf".len());

            let listed = repo.list(&c2, "/", true).expect("ls -R");
            assert_eq!(listed.len(), 1 + DEPTH + 1, "root, every level, the leaf");
            assert!(matches!(listed.last(), Some(Listed::File { .. })));

            let report = repo.fsck(false).expect("fsck");
            assert!(report.corrupt.is_empty() && report.missing.is_empty());
            let pruned = repo.prune(&PruneOptions::default()).expect("prune");
            assert_eq!(pruned.objects_deleted, 0, "every level is reachable");
        });
        assert_eq!(read_leaf(&base.join("out")), b"one\n", "{mode:?}");
    }
}
