#![no_main]
use libfuzzer_sys::fuzz_target;
// A tar archive (plain, gzip or zstd) as `strata commit --tar` imports it:
// headers, pax records, names, links, into a repository, then aborted.
use std::sync::LazyLock;
use strata_store::write::Transaction;
use strata_store::write::tar::{TarImportOptions, import_tar};
use strata_store::{Repo, RepoMode};

static REPO: LazyLock<(tempfile::TempDir, Repo)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let repo = Repo::init(&dir.path().join("repo"), RepoMode::Archive).expect("init");
    (dir, repo)
});

/// zstd's frame magic. A zstd frame of a few KiB can declare gigabytes of
/// zeros, which the import then writes (bounded in memory, not in time):
/// a timeout, not a bug. gzip stays in (its ratio is at most ~1000:1).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

fuzz_target!(|data: &[u8]| {
    if data.starts_with(&ZSTD_MAGIC) {
        return;
    }
    let (dir, repo) = &*REPO;
    let input = dir.path().join("input.tar");
    std::fs::write(&input, data).expect("write the input");
    let tx = Transaction::begin(repo).expect("begin");
    let _ = import_tar(&tx, &input, &TarImportOptions::default());
});
