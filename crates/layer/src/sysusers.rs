//! Users and groups that layered packages create (`useradd --system` in a
//! postinst) written as sysusers.d lines. The scripts edit the image's
//! `/etc/passwd` and `/etc/group`, but a machine whose own `passwd` was
//! ever changed keeps its own in the `/etc` merge, and the new users
//! would be missing after the deploy; `systemd-sysusers` adds them at boot
//! (prepare-tree makes it run on every boot). Pure.

use std::collections::BTreeSet;

fn names(text: &str) -> BTreeSet<&str> {
    text.lines()
        .filter_map(|l| l.split(':').next())
        .filter(|n| !n.is_empty())
        .collect()
}

fn quoted(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        format!("\"{}\"", s.replace('"', "'"))
    }
}

/// sysusers.d lines for the groups and users in `new_*` that `old_*`
/// (the base image's files) lack: `g NAME GID`, then `u NAME UID:GID
/// "GECOS" HOME SHELL`.
pub fn lines(old_passwd: &str, new_passwd: &str, old_group: &str, new_group: &str) -> Vec<String> {
    let mut out = Vec::new();
    let old_groups = names(old_group);
    for l in new_group.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if let [name, _, gid, ..] = f.as_slice()
            && !old_groups.contains(name)
        {
            out.push(format!("g {name} {gid}"));
        }
    }
    let old_users = names(old_passwd);
    for l in new_passwd.lines() {
        let f: Vec<&str> = l.split(':').collect();
        if let [name, _, uid, gid, gecos, home, shell] = f.as_slice()
            && !old_users.contains(name)
        {
            out.push(format!(
                "u {name} {uid}:{gid} {} {} {}",
                quoted(gecos),
                if home.is_empty() { "-" } else { home },
                if shell.is_empty() { "-" } else { shell }
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_users_and_groups_only() {
        let old_p = "root:x:0:0:root:/root:/bin/bash\n";
        let new_p = "root:x:0:0:root:/root:/bin/bash\nsvc:x:999:998:My \"svc\":/nonexistent:/usr/sbin/nologin\n";
        let old_g = "root:x:0:\n";
        let new_g = "root:x:0:\nsvc:x:998:\n";
        assert_eq!(
            lines(old_p, new_p, old_g, new_g),
            [
                "g svc 998",
                "u svc 999:998 \"My 'svc'\" /nonexistent /usr/sbin/nologin"
            ]
        );
        assert!(lines(old_p, old_p, old_g, old_g).is_empty());
    }
}
