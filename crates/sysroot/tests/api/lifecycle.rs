//! Deploy, a local /etc edit carried into the next deployment, status,
//! rollback, cleanup: the CLI's sysroot lifecycle, through the API.

use std::fs;

use strata_sysroot::deployment::DeploymentId;
use strata_sysroot::status::Status;

use crate::{deploy_commit, new_sysroot, release};

/// (commit, default, rollback) per deployment, in status order.
fn summary(st: &Status) -> Vec<(String, bool, bool)> {
    st.deployments
        .iter()
        .map(|d| (d.commit.clone(), d.default, d.rollback))
        .collect()
}

#[test]
fn deploy_status_rollback_cleanup() {
    let Some((tmp, s)) = new_sysroot() else {
        return;
    };
    let t = tmp.path();
    assert!(s.status().expect("status").deployments.is_empty());

    let c1 = release(&s, t, 1, "6.1.0-1", &[("hostname", "factory\n")]);
    let d1 = deploy_commit(&s, &c1, Some(&["quiet"]));
    let st = s.status().expect("status");
    assert_eq!(summary(&st), [(c1.to_string(), true, false)]);
    assert_eq!(st.deployments[0].kargs, ["quiet"]);
    let etc1 = s.deployment_path(&d1).join("etc");
    assert_eq!(
        fs::read_to_string(etc1.join("hostname")).expect("read"),
        "factory\n"
    );
    fs::write(etc1.join("hostname"), "mybox\n").expect("edit /etc/hostname");

    // v2: the local edit is merged in, kargs carry over, v1 is the rollback.
    let c2 = release(
        &s,
        t,
        2,
        "6.2.0-1",
        &[("hostname", "factory\n"), ("new.conf", "v2\n")],
    );
    let d2 = deploy_commit(&s, &c2, None);
    let st = s.status().expect("status");
    assert_eq!(
        summary(&st),
        [(c2.to_string(), true, false), (c1.to_string(), false, true)]
    );
    assert_eq!(st.deployments[0].kargs, ["quiet"], "kargs carried over");
    let etc2 = s.deployment_path(&d2).join("etc");
    assert_eq!(
        fs::read_to_string(etc2.join("hostname")).expect("read"),
        "mybox\n"
    );
    assert_eq!(
        fs::read_to_string(etc2.join("new.conf")).expect("read"),
        "v2\n"
    );

    let (new_default, old_default) = s.rollback().expect("rollback");
    assert_eq!((&new_default, &old_default), (&d1, &d2));
    let st = s.status().expect("status");
    assert_eq!(
        summary(&st),
        [(c1.to_string(), true, false), (c2.to_string(), false, true)]
    );

    // v3 on top of v1: v2, neither default nor rollback, is cleaned up.
    let c3 = release(&s, t, 3, "6.3.0-1", &[("hostname", "factory\n")]);
    let d3 = deploy_commit(&s, &c3, None);
    let report = s.cleanup().expect("cleanup");
    assert_eq!(
        report.deployments_removed,
        std::slice::from_ref(&d2),
        "{report:?}"
    );
    assert!(!s.deployment_path(&d2).exists());
    let mut on_disk = s.deployments_on_disk().expect("list deployments");
    on_disk.sort_by_key(DeploymentId::dir_name);
    let mut want = vec![d1, d3];
    want.sort_by_key(DeploymentId::dir_name);
    assert_eq!(on_disk, want);
    assert_eq!(
        summary(&s.status().expect("status")),
        [(c3.to_string(), true, false), (c1.to_string(), false, true)]
    );
    assert_eq!(s.esp().entries().expect("boot entries").len(), 2);
    assert!(s.repo().fsck(false).expect("fsck").is_clean());
}
