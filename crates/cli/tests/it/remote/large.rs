//! Objects larger than a fetch thread keeps in memory: their bodies go to
//! a file and are inflated in pieces, so a pull's memory stays bounded
//! whatever the size of an object (or what a hostile server claims), and a
//! damaged or cut large object is refused like a small one.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::common::dev_server::DevServer;
use crate::common::nginx::{Nginx, have_nginx};
use crate::common::publish::*;
use crate::common::*;

/// The large file: incompressible, so its `.filez` is as large.
const BIG: usize = 100 << 20;
/// What a pull of it may take at its peak. Holding the object whole (as
/// pulls did before) takes twice its size: the body and the content.
const PEAK_LIMIT_KIB: u64 = 64 << 10;

/// A published tree with [`FILES`] and a [`BIG`] file; returns the commit
/// and the large object's path on the server.
fn publish_big() -> (Publish, String, PathBuf) {
    let p = Publish::with_files();
    // xorshift64: fixed, incompressible bytes, made in a moment.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let data: Vec<u8> = (0..BIG / 8)
        .flat_map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()
        })
        .collect();
    fs::write(p.tree.join("usr/lib/big"), data).expect("write the large file");
    let commit = p.publish(TIMESTAMP);
    let big = objects(&p.server)
        .into_iter()
        .filter(|o| o.extension().is_some_and(|e| e == "filez"))
        .max_by_key(|o| fs::metadata(o).map(|m| m.len()).unwrap_or(0))
        .expect("a content object");
    assert!(
        fs::metadata(&big).expect("stat").len() > BIG as u64,
        "the large object is stored uncompressed-size or more"
    );
    (p, commit, big)
}

/// A new client repository in `mode` of `url`, trusting `p`'s key.
fn client(p: &Publish, name: &str, mode: &str, url: &str) -> PathBuf {
    let repo = p.path(name);
    init(&repo, mode);
    on(
        &repo,
        ["remote", "add", REMOTE, url, "--sign-pubkey", &p.key.public],
    )
    .ok();
    repo
}

/// Pulls into `repo`; returns the run and its peak resident memory (KiB).
fn pull_measured(repo: &Path) -> (Run, u64) {
    let mut args: Vec<OsString> = vec!["--repo".into(), repo.into()];
    args.extend(["pull", REMOTE, BRANCH].map(OsString::from));
    strata_measured(args)
}

fn client_ref(repo: &Path) -> Option<String> {
    let path = repo.join("refs/remotes").join(REMOTE).join(BRANCH);
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// Nothing left behind in the client's `tmp/` but its `cache/` (large
/// bodies' files are anonymous; staging directories go with their
/// transaction).
fn assert_tmp_empty(repo: &Path) {
    let left: Vec<_> = fs::read_dir(repo.join("tmp"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n != "cache")
        .collect();
    assert!(left.is_empty(), "left in tmp/: {left:?}");
}

/// Whether python3 is here to measure a pull's peak memory.
#[track_caller]
fn can_measure() -> bool {
    have_tool("python3")
}

#[test]
fn large_object_pulls_in_bounded_memory() {
    if !can_measure() {
        return;
    }
    let (p, commit, _) = publish_big();
    let dev = DevServer::start(&p.server);
    let nginx = have_nginx().then(|| Nginx::start(&p.server));
    // An archive client keeps the object compressed: it deflates it again
    // as it comes, in pieces too.
    let mut clients = vec![
        ("dev", "bare", dev.url().to_owned()),
        ("file", "bare", format!("file://{}", p.server.display())),
        ("archive", "archive", dev.url().to_owned()),
    ];
    if let Some(n) = &nginx {
        clients.push(("nginx", "bare", n.url()));
    }
    for (name, mode, url) in clients {
        let repo = client(&p, name, mode, &url);
        let (r, peak) = pull_measured(&repo);
        let r = r.ok();
        assert_eq!(
            client_ref(&repo).as_deref(),
            Some(commit.as_str()),
            "{name}"
        );
        assert!(
            peak < PEAK_LIMIT_KIB,
            "{name}: the pull peaked at {peak} KiB for a {BIG}-byte object: {r:#?}"
        );
        on(&repo, ["fsck"]).ok();
        assert_tmp_empty(&repo);
    }
}

/// The large object altered, then cut: each pull fails naming it, the ref
/// does not move, fsck passes; repaired, the pull completes.
#[test]
fn damaged_large_object_refused() {
    if !can_measure() {
        return;
    }
    let (p, commit, big) = publish_big();
    let dev = DevServer::start(&p.server);
    let repo = client(&p, "client", "bare", dev.url());
    let rel = big.strip_prefix(&p.server).expect("a server object");
    let url = format!("{}/{}", dev.url(), rel.display());
    let original = fs::read(&big).expect("read the large object");
    let mut altered = original.clone();
    altered[original.len() / 2] ^= 0x40;
    let cut = &original[..original.len() * 3 / 4];
    for (what, data) in [("altered", &altered[..]), ("cut", cut)] {
        fs::write(&big, data).expect("damage the large object");
        let (r, peak) = pull_measured(&repo);
        let r = r.failed();
        assert!(peak < PEAK_LIMIT_KIB, "{what}: peaked at {peak} KiB");
        for needle in [object_checksum(&big).as_str(), url.as_str()] {
            assert!(r.stderr.contains(needle), "{what}: no {needle:?} in {r:#?}");
        }
        assert_eq!(client_ref(&repo), None, "{what}: the ref moved");
        on(&repo, ["fsck"]).ok();
        assert_tmp_empty(&repo);
    }
    fs::write(&big, &original).expect("repair the large object");
    let (r, peak) = pull_measured(&repo);
    r.ok();
    assert!(peak < PEAK_LIMIT_KIB, "repaired: peaked at {peak} KiB");
    assert_eq!(client_ref(&repo).as_deref(), Some(commit.as_str()));
    on(&repo, ["fsck"]).ok();
}
