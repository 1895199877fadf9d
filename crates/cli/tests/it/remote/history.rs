//! Pulling history: `--depth` fetches parents, `--commit` an older commit.

use crate::common::dev_server::DevServer;
use crate::common::publish::*;
use crate::common::*;

/// Publishes two commits on [`BRANCH`]; returns them, oldest first.
fn two_releases(p: &Publish) -> (String, String) {
    let v1 = p.publish(TIMESTAMP);
    write_files(&p.tree, &[("etc/hostname", "v2\n")]);
    let v2 = p.publish(LATER);
    (v1, v2)
}

#[test]
fn depth_fetches_the_parent() {
    let p = Publish::with_files();
    let (v1, v2) = two_releases(&p);
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    p.pull(&["--depth", "1", "--concurrency", "1"]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(v2.as_str()));
    let log = on(&p.client, ["log", "origin:os/stable"]).ok();
    assert!(
        log.stdout.contains(&v1) && log.stdout.contains(&v2),
        "{log:#?}"
    );
    assert_eq!(
        show_json(&p.client, &v1)["partial"],
        serde_json::json!(false),
        "the parent is complete"
    );
    p.fsck_client();
    // The parent is a whole commit: it checks out.
    on(
        &p.client,
        ["checkout".as_ref(), v1.as_ref(), p.path("v1").as_os_str()],
    )
    .ok();
}

#[test]
fn commit_option_pulls_an_older_commit() {
    let p = Publish::with_files();
    let (v1, _v2) = two_releases(&p);
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    p.pull(&["--commit", &v1]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(v1.as_str()));
    p.fsck_client();
}
