//! Issue 15: a release whose trees are deeper than PATH_MAX, as any
//! server can send. It deploys (checkout and the /etc merge work on
//! directory handles), a local file at the bottom of /etc survives the
//! upgrade, and cleanup removes the old deployment (std's recursive
//! `remove_dir_all` holds a descriptor and a stack frame per level).

use crate::common::machine::*;
use crate::common::*;

/// /usr/share/deep: 3000 levels `d` (a 6 KB path).
const USR_DEPTH: usize = 3000;
/// /etc/deep: 500 levels of a 10-byte name (a 5.5 KB path); fewer, as the
/// merge compares every level with the previous deployment's.
const ETC_DEPTH: usize = 500;
const ETC_NAME: &str = "dddddddddd";

fn deep_release(m: &Machine, version: u32) -> String {
    let tree = bootable_tree(&m.path(&format!("v{version}")), version, KVER, &[]);
    let content = format!("v{version}\n");
    deep_chain(
        &tree.join("usr/share/deep"),
        "d",
        USR_DEPTH,
        content.as_bytes(),
    );
    deep_chain(
        &tree.join("usr/etc/deep"),
        ETC_NAME,
        ETC_DEPTH,
        content.as_bytes(),
    );
    m.release(&tree, version)
}

fn assert_deep(m: &Machine, commit: &str, version: u32) {
    let d = m.deployment_of(commit);
    let want = format!("v{version}\n");
    assert_eq!(
        read_deep(&d.join("usr/share/deep"), "d", USR_DEPTH, "leaf"),
        want
    );
    assert_eq!(
        read_deep(&d.join("etc/deep"), ETC_NAME, ETC_DEPTH, "leaf"),
        want
    );
}

#[test]
fn a_deployment_deeper_than_path_max_deploys_upgrades_and_is_cleaned_up() {
    let Some(m) = Machine::new() else { return };
    let c1 = deep_release(&m, 1);
    m.sys(["deploy", REFSPEC]).ok();
    assert_deep(&m, &c1, 1);

    // The machine's own file at the bottom of /etc.
    let d1 = m.deployment_of(&c1);
    let bottom = deep_bottom(&d1.join("etc/deep"), ETC_NAME, ETC_DEPTH);
    write_at(&bottom, "local.conf", b"mine\n");

    let c2 = deep_release(&m, 2);
    m.sys(["upgrade"]).ok();
    assert_deep(&m, &c2, 2);
    let d2 = m.deployment_of(&c2);
    assert_eq!(
        read_deep(&d2.join("etc/deep"), ETC_NAME, ETC_DEPTH, "local.conf"),
        "mine\n",
        "the local file is merged into the new /etc"
    );

    // A third release pushes the first out; cleanup removes it.
    let c3 = deep_release(&m, 3);
    m.sys(["upgrade"]).ok();
    assert_deep(&m, &c3, 3);
    m.sys(["cleanup"]).ok();
    assert!(!d1.exists(), "{} is still there", d1.display());
    m.assert_clean("after cleaning up a deep deployment");
}
