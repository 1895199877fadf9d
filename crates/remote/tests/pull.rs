//! `pull()` through the API, against the development server
//! (`strata_remote::serve`) on 127.0.0.1 in a thread: a signed commit is
//! verified and checked out; an unsigned commit, or one signed by another
//! key, is refused before anything else is fetched; a pull that fails half
//! way leaves a partial commit and no ref, and completes when run again.

use std::fs;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use strata_remote::keys::{format_public, generate};
use strata_remote::progress::Silent;
use strata_remote::pull::{PullOptions, PullReport};
use strata_remote::remotes::{Remote, add};
use strata_remote::{Error, sign, summary};
use strata_store::test_util::{SMALL_TREE, repo_with_tree};
use strata_store::{Checksum, ObjectType, RefName, Repo, RepoMode};

/// A published repository, served over HTTP for the life of the test
/// process (the server thread is never joined).
struct Published {
    _tmp: tempfile::TempDir,
    server: Repo,
    commit: Checksum,
    url: String,
    key: SigningKey,
}

/// Publishes `SMALL_TREE` on `main`; the commit is signed when
/// `sign_commit`, the summary always.
fn publish(sign_commit: bool) -> Published {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let (server, commit) = repo_with_tree(tmp.path(), RepoMode::Archive, SMALL_TREE);
    let key = generate().expect("a signing key");
    if sign_commit {
        sign::sign_commit(&server, &commit, &key).expect("sign the commit");
    }
    summary::update(&server, Some(&key), None).expect("write the summary");
    let root = server.path().to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        strata_remote::serve::run(&root, "127.0.0.1:0", |addr| {
            let _ = tx.send(addr);
        })
    });
    let addr = rx.recv().expect("the server's address");
    Published {
        _tmp: tmp,
        server,
        commit,
        url: format!("http://{addr}"),
        key,
    }
}

/// A fresh archive repository at `dir/client` with remote `origin`
/// trusting `key`.
fn client(dir: &Path, url: &str, key: &SigningKey) -> Repo {
    let mut repo = Repo::init(&dir.join("client"), RepoMode::Archive).expect("init");
    let remote = Remote {
        name: "origin".into(),
        url: url.into(),
        sign_verify: true,
        key: Some(format_public(&key.verifying_key())),
        key_file: None,
        revoked_file: None,
        stall: Default::default(),
        ignore_summary_expiry: false,
        sign_verify_summary: true,
    };
    add(&mut repo, &remote).expect("add the remote");
    repo
}

fn pull_main(repo: &Repo) -> Result<PullReport, Error> {
    let opts = PullOptions {
        commit_only: false,
        remote: "origin".into(),
        ref_name: "main".into(),
        depth: 0,
        commit: None,
        allow_downgrade: false,
        concurrency: 2,
        stall_timeout: None,
        allow_expired_summary: false,
    };
    strata_remote::pull::run(repo, &opts, &Silent)
}

fn origin_main(repo: &Repo) -> Option<Checksum> {
    repo.read_ref(&RefName::parse("origin:main").expect("ref"))
        .expect("read the ref")
}

/// Content objects in `repo`: nothing of the tree may arrive when a pull
/// is refused.
fn content_objects(repo: &Repo) -> usize {
    repo.list_objects()
        .expect("list objects")
        .iter()
        .filter(|(_, kind)| *kind == ObjectType::File)
        .count()
}

#[test]
fn a_signed_commit_is_verified_and_pulled_whole() {
    let p = publish(true);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let repo = client(tmp.path(), &p.url, &p.key);
    let report = pull_main(&repo).expect("pull");
    assert_eq!(report.commit, p.commit);
    assert!(!report.up_to_date);
    assert_eq!(
        report.signed_by,
        Some(format_public(&p.key.verifying_key()))
    );
    assert_eq!(origin_main(&repo), Some(p.commit));
    assert!(!repo.is_partial(&p.commit));
    assert!(repo.fsck(false).expect("fsck").is_clean());
    assert_eq!(content_objects(&repo), SMALL_TREE.len());

    let again = pull_main(&repo).expect("pull again");
    assert!(again.up_to_date);
    assert_eq!(again.objects_fetched, 0);
}

#[test]
fn an_unsigned_commit_is_refused() {
    let p = publish(false);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let repo = client(tmp.path(), &p.url, &p.key);
    let e = pull_main(&repo).expect_err("an unsigned commit must be refused");
    assert!(matches!(e, Error::Signature { .. }), "{e}");
    assert_eq!(origin_main(&repo), None);
    assert_eq!(content_objects(&repo), 0, "nothing of the tree fetched");
}

#[test]
fn a_commit_signed_by_another_key_is_refused() {
    let p = publish(true);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let other = generate().expect("another key");
    let repo = client(tmp.path(), &p.url, &other);
    let e = pull_main(&repo).expect_err("another key's signature must be refused");
    assert!(matches!(e, Error::Signature { .. }), "{e}");
    assert_eq!(origin_main(&repo), None);
    assert_eq!(content_objects(&repo), 0, "nothing of the tree fetched");
}

/// An object missing on the server stops the pull after the commit was
/// stored: the commit is left marked partial and the ref unwritten. With
/// the object back, the same pull completes and clears the mark.
#[test]
fn an_interrupted_pull_completes_when_run_again() {
    let p = publish(true);
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let repo = client(tmp.path(), &p.url, &p.key);
    let (file, kind) = p
        .server
        .list_objects()
        .expect("list")
        .into_iter()
        .find(|(_, kind)| *kind == ObjectType::File)
        .expect("a content object");
    let path: PathBuf = p.server.object_path(&file, kind);
    let hidden = path.with_extension("hidden");
    fs::rename(&path, &hidden).expect("hide an object");

    let e = pull_main(&repo).expect_err("a missing object fails the pull");
    // The message names the object's URL (objects/xx/yyyy…).
    let name = file.to_string();
    assert!(e.to_string().contains(&name[2..]), "{e}");
    assert_eq!(origin_main(&repo), None);
    assert!(repo.is_partial(&p.commit), "the commit is marked partial");

    fs::rename(&hidden, &path).expect("restore the object");
    let report = pull_main(&repo).expect("the rerun completes");
    assert_eq!(report.commit, p.commit);
    assert_eq!(origin_main(&repo), Some(p.commit));
    assert!(!repo.is_partial(&p.commit));
    assert!(repo.fsck(false).expect("fsck").is_clean());
}
