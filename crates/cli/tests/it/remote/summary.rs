//! The summary a verifying client trusts: signed by a trusted key, listing
//! the ref, and not past the expiry its publisher gave it (a frozen
//! mirror replaying an old signed summary is detected). An air-gapped
//! mirror can be accepted past its expiry on purpose; ostree still pulls
//! from a repository whose summary carries strata's expiry.

use crate::common::dev_server::DevServer;
use crate::common::nginx::{Nginx, have_nginx};
use crate::common::publish::*;
use crate::common::*;

/// `strata summary --update --sign-key KEY` with `extra` options.
fn signed_summary(p: &Publish, key: &Key, extra: &[&str]) -> Run {
    let mut c = strata_cmd(["summary".as_ref(), "--repo".as_ref(), p.server.as_os_str()]);
    c.arg("--update")
        .arg("--sign-key")
        .arg(&key.secret)
        .args(extra);
    run(&mut c)
}

/// A signed commit on [`BRANCH`], served, and a client trusting the key.
fn served() -> (Publish, DevServer) {
    let p = Publish::with_files();
    commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, Some(&p.key));
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    (p, server)
}

#[test]
fn unsigned_or_missing_summary_refused_with_a_key() {
    let (p, server) = served();
    // No summary at all: the ref would come from refs/heads, unsigned.
    p.pull_refused(&[], &["summary", "signed", server.url()]);
    update_summary(&p.server, None);
    p.pull_refused(&[], &["summary", "not signed", "summary.sig"]);
    // Signed by a key the client does not trust.
    let other = keygen(&p.path("other.sec"));
    signed_summary(&p, &other, &[]).ok();
    p.pull_refused(&[], &["summary", "trusted key"]);
    // A signed summary that does not list the ref, which refs/heads names.
    let c = std::fs::read_to_string(p.server.join("refs/heads").join(BRANCH)).expect("the head");
    on(&p.server, ["refs", "--delete", BRANCH]).ok();
    signed_summary(&p, &p.key, &[]).ok();
    write_head(&p.server, BRANCH, c.trim());
    p.pull_refused(&[], &["summary", BRANCH]);
}

#[test]
fn unsigned_summary_accepted_without_verification() {
    let p = Publish::with_files();
    let c = commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, None);
    update_summary(&p.server, None);
    let server = DevServer::start(&p.server);
    p.add_remote(server.url(), &["--no-sign-verify"]).ok();
    p.pull(&[]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(c.as_str()));
}

/// ostree's `sign-verify-summary=false`: a publisher who signs commits but
/// not the summary. The unsigned summary is accepted, the commit's
/// signature is still required.
#[test]
fn signed_commits_with_an_unsigned_summary_when_asked() {
    let p = Publish::with_files();
    let c = commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, Some(&p.key));
    update_summary(&p.server, None);
    let server = DevServer::start(&p.server);
    p.add_remote(
        server.url(),
        &["--sign-pubkey", &p.key.public, "--no-sign-verify-summary"],
    )
    .ok();
    let config = std::fs::read_to_string(p.client.join("config")).expect("the config");
    assert!(
        config.contains("sign-verify-summary=false"),
        "the choice is kept in the remote's config: {config}"
    );
    let list = on(&p.client, ["remote", "list", "--json"]).ok();
    let list: serde_json::Value = serde_json::from_str(&list.stdout).expect("JSON");
    assert_eq!(list[0]["sign_verify"], true, "{list}");
    assert_eq!(list[0]["sign_verify_summary"], false, "{list}");
    let list = on(&p.client, ["remote", "list"]).ok();
    assert!(list.stdout.contains("(summary unverified)"), "{list:#?}");
    p.pull(&[]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(c.as_str()));
    // The commit itself must still be signed by the trusted key.
    let unsigned = p.path("unsigned");
    std::fs::create_dir_all(unsigned.join("usr")).expect("a tree");
    std::fs::write(unsigned.join("usr/new"), "new").expect("a file");
    commit_at(&p.server, BRANCH, &unsigned, "2024-01-02T00:00:00Z", None);
    update_summary(&p.server, None);
    let r = p.pull(&[]).failed();
    assert!(r.stderr.contains("signature"), "{r:#?}");
    assert_eq!(p.client_ref().as_deref(), Some(c.as_str()));
    p.fsck_client();
}

#[test]
fn expired_summary_refused_unless_allowed() {
    let (p, server) = served();
    signed_summary(&p, &p.key, &["--expires-in", "1s"]).ok();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = p.pull_refused(
        &[],
        &[
            "summary of remote \"origin\"",
            "expired",
            "UTC",
            "--allow-expired-summary",
            "--ignore-summary-expiry",
        ],
    );
    assert!(
        r.stderr.contains(&format!("{}/summary", server.url())),
        "the refusal should name the URL: {r:#?}"
    );
    p.pull(&["--allow-expired-summary"]).ok();

    // An air-gapped mirror: the remote is told to ignore the expiry.
    let client2 = p.path("cli2");
    init(&client2, "bare");
    let url = server.url();
    on(
        &client2,
        [
            "remote",
            "add",
            REMOTE,
            url,
            "--sign-pubkey",
            &p.key.public,
            "--ignore-summary-expiry",
        ],
    )
    .ok();
    on(&client2, ["pull", REMOTE, BRANCH]).ok();

    // A fresh summary is accepted.
    let client3 = p.path("cli3");
    init(&client3, "bare");
    on(
        &client3,
        ["remote", "add", REMOTE, url, "--sign-pubkey", &p.key.public],
    )
    .ok();
    signed_summary(&p, &p.key, &["--expires-in", "7d"]).ok();
    on(&client3, ["pull", REMOTE, BRANCH]).ok();
}

#[test]
fn expiry_needs_a_signature() {
    let p = Publish::with_files();
    let r = on(&p.server, ["summary", "--update", "--expires-in", "7d"]).failed();
    assert!(r.stderr.contains("--sign-key"), "{r:#?}");
}

/// ostree ignores summary metadata it does not know: it pulls from a
/// strata repository whose signed summary carries an expiry.
#[test]
fn ostree_pulls_despite_the_expiry_key() {
    if !have_ostree() || !have_nginx() {
        return;
    }
    let p = Publish::with_files();
    let c = commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, Some(&p.key));
    signed_summary(&p, &p.key, &["--expires-in", "7d"]).ok();
    let nginx = Nginx::start(&p.server);
    let repo = p.path("ostree");
    ostree_init(&repo, "bare");
    ostree_on(
        &repo,
        ["remote", "add", "--no-gpg-verify", REMOTE, &nginx.url()],
    )
    .ok();
    ostree_on(&repo, ["pull", REMOTE, BRANCH]).ok();
    let pulled = ostree_on(&repo, ["rev-parse", &format!("{REMOTE}:{BRANCH}")])
        .ok()
        .line();
    assert_eq!(pulled, c);
    let refs = ostree_on(&repo, ["remote", "refs", REMOTE]).ok();
    assert!(refs.stdout.contains(BRANCH), "{refs:#?}");
}
