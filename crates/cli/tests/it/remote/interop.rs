//! strata and ostree pull from each other's archive repositories served by
//! nginx; strata also pulls from its dev server and from file:// URLs, and
//! a second pull fetches only what changed.

use std::path::Path;

use crate::common::dev_server::DevServer;
use crate::common::nginx::{Nginx, have_nginx};
use crate::common::publish::*;
use crate::common::*;

/// The remote ref a pull of [`BRANCH`] from [`REMOTE`] writes.
const PULLED: &str = "origin:os/stable";

/// A publishing setup whose tree is the special fixture (foreign owners,
/// xattrs, a 65 MiB file), with its manifest.
fn special_publish() -> (Publish, String) {
    let p = Publish::new();
    special_tree(&p.tree);
    let expected = manifest(&p.tree);
    (p, expected)
}

/// Checks `rev` out of `repo` with strata into `dest` and compares it with `expected`.
fn assert_checkout(repo: &Path, rev: &str, dest: &Path, expected: &str, what: &str) {
    on(repo, ["checkout".as_ref(), rev.as_ref(), dest.as_os_str()]).ok();
    assert_same_tree(expected, &manifest(dest), what);
}

#[test]
fn ostree_pulls_from_strata_over_nginx() {
    if !have_ostree() || !have_nginx() || !have_root("the special tree has foreign owners") {
        return;
    }
    let (p, expected) = special_publish();
    let commit = p.publish(TIMESTAMP);
    let nginx = Nginx::start(&p.server);
    for mode in ["bare", "archive"] {
        let repo = p.path(&format!("ostree-{mode}"));
        ostree_init(&repo, mode);
        ostree_on(
            &repo,
            ["remote", "add", "--no-gpg-verify", REMOTE, &nginx.url()],
        )
        .ok();
        ostree_on(&repo, ["pull", REMOTE, BRANCH]).ok();
        ostree_on(&repo, ["fsck"]).ok();
        let pulled = ostree_on(&repo, ["rev-parse", PULLED]).ok().line();
        assert_eq!(pulled, commit, "{mode}: ostree pulled another commit");
        let dest = p.path(&format!("checkout-{mode}"));
        ostree_on(
            &repo,
            ["checkout".as_ref(), PULLED.as_ref(), dest.as_os_str()],
        )
        .ok();
        assert_same_tree(
            &expected,
            &manifest(&dest),
            &format!("{mode}: ostree's checkout of what it pulled from strata"),
        );
    }
}

#[test]
fn strata_pulls_from_ostree_over_nginx() {
    if !have_ostree() || !have_nginx() || !have_root("the special tree has foreign owners") {
        return;
    }
    let (p, expected) = special_publish();
    let server = p.path("ostree-srv");
    ostree_init(&server, "archive");
    let commit = ostree_commit(&server, BRANCH, &p.tree, &[]);
    ostree_on(&server, ["summary", "-u"]).ok();
    let nginx = Nginx::start(&server);
    // ostree 2022.7 cannot sign with ed25519 here.
    p.add_remote(&nginx.url(), &["--no-sign-verify"]).ok();
    p.pull(&[]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(commit.as_str()));
    p.fsck_client();
    ostree_on(&p.client, ["fsck"]).ok();
    assert_checkout(
        &p.client,
        PULLED,
        &p.path("checkout"),
        &expected,
        "strata's checkout of what it pulled from ostree",
    );
}

#[test]
fn strata_pulls_over_dev_server_and_file_url() {
    if !have_root("the special tree has foreign owners") {
        return;
    }
    let (p, expected) = special_publish();
    let commit = p.publish(TIMESTAMP);
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    let r = p.pull(&[]).ok();
    assert!(
        r.stdout.contains(&format!("signed by {}", p.key.public)),
        "{r:#?}"
    );
    assert_eq!(p.client_ref().as_deref(), Some(commit.as_str()));
    p.fsck_client();
    assert_checkout(
        &p.client,
        PULLED,
        &p.path("checkout-http"),
        &expected,
        "pulled from strata serve",
    );

    let client = p.path("cli-file");
    init(&client, "bare");
    let url = format!("file://{}", p.server.display());
    on(
        &client,
        [
            "remote",
            "add",
            REMOTE,
            &url,
            "--sign-pubkey",
            &p.key.public,
        ],
    )
    .ok();
    on(&client, ["pull", REMOTE, BRANCH]).ok();
    on(&client, ["fsck"]).ok();
    assert_eq!(on(&client, ["rev-parse", PULLED]).ok().line(), commit);
    assert_checkout(
        &client,
        PULLED,
        &p.path("checkout-file"),
        &expected,
        "pulled from a file:// URL",
    );
}

/// The second pull fetches exactly the objects the second commit added:
/// the pull's own count and nginx's access log agree.
#[test]
fn second_pull_fetches_only_changes() {
    if !have_nginx() {
        return;
    }
    let p = Publish::with_files();
    let many: Vec<(String, String)> = (0..100)
        .map(|i| (format!("usr/lib/many/f{i:03}"), format!("file {i}\n")))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    write_files(&p.tree, &many);
    p.publish(TIMESTAMP);
    let nginx = Nginx::start(&p.server);
    p.add_trusting_remote(&nginx.url());
    let first = fetched_objects(&p.pull(&["--concurrency", "1"]).ok());
    let all = pulled_kinds(&objects(&p.server));
    assert_eq!(first, all.len() as u64, "the first pull fetches everything");

    let before = objects(&p.server);
    write_files(
        &p.tree,
        &[
            ("etc/hostname", "another box\n"),
            ("usr/share/doc/new", "new in v2\n"),
        ],
    );
    let v2 = p.publish(LATER);
    let added: Vec<_> = pulled_kinds(&objects(&p.server))
        .into_iter()
        .filter(|o| !before.contains(o))
        .collect();
    let filez = added
        .iter()
        .filter(|o| o.extension().is_some_and(|e| e == "filez"))
        .count();
    assert_eq!(filez, 2, "one file changed, one added: {added:?}");

    let log_lines = nginx.access_log().lines().count();
    let r = p.pull(&[]).ok();
    assert_eq!(
        fetched_objects(&r),
        added.len() as u64,
        "the second pull should fetch exactly {added:?}: {r:#?}"
    );
    assert!(added.len() * 10 < all.len(), "{added:?} vs {}", all.len());
    let log = nginx.access_log();
    let content_gets = log
        .lines()
        .skip(log_lines)
        .filter(|l| l.contains(".filez"))
        .count();
    assert_eq!(
        content_gets, 2,
        "content requests of the second pull:\n{log}"
    );
    assert_eq!(p.client_ref().as_deref(), Some(v2.as_str()));
    p.fsck_client();

    let r = p.pull(&[]).ok();
    assert!(r.stdout.contains("is up to date"), "{r:#?}");
    let staging: Vec<_> = listing(&p.client.join("tmp"))
        .into_iter()
        .filter(|f| f.starts_with("staging-"))
        .collect();
    assert!(staging.is_empty(), "pulls leave no staging: {staging:?}");
}
