//! The podman command lines of a toolbox, and the script that sets one up.
//! Pure: a [`Host`] in, arguments out.
//!
//! The container is made as Toolbx and distrobox make theirs (their
//! `podman create` arguments are the reference): the host's network, PID
//! and IPC namespaces, privileged (so `sudo`, `mount`, and devices work as
//! on the host), no SELinux label, the user's uid kept in a rootless
//! user namespace; the host's `/` at `/run/host`, `/dev`, `/tmp`, the home
//! and `$XDG_RUNTIME_DIR` shared. Isolation is not the point: a toolbox is
//! the host's user with a mutable Debian.

use crate::host::Host;

/// The label that marks a podman container as a strata toolbox.
pub const LABEL: &str = "dev.strata.toolbox";

/// PID 1's stand-in: waits until stopped. The toolbox's commands run
/// through `podman exec`; a `TERM` from `podman stop` ends it at once.
const KEEP_ALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 1000 & wait $!; done";

/// Run once as root in a new toolbox, with the user's name, uid, gid and
/// home: makes the user exist with passwordless `sudo` (when the image has
/// sudo), points the files that describe the host at the host's own
/// (`/run/host/etc/…`, so they follow it), and lets apt install (a strata
/// image's apt refuses to, as `/usr` is read-only on the host).
pub const INIT_SCRIPT: &str = r#"set -eu
user=$1 uid=$2 gid=$3 home=$4 shell=$5
if [ "$uid" != 0 ]; then
  if ! getent group "$gid" >/dev/null 2>&1; then
    printf '%s:x:%s:\n' "$user" "$gid" >>/etc/group
  fi
  # The image's own user at this uid (ubuntu's uid 1000) gives way, as in Toolbx.
  other=$(getent passwd "$uid" | cut -d: -f1 || true)
  if [ -n "$other" ] && [ "$other" != "$user" ]; then
    sed -i "/^$other:/d" /etc/passwd
    [ -f /etc/shadow ] && sed -i "/^$other:/d" /etc/shadow
  fi
  [ -x "$shell" ] || shell=/bin/sh
  if ! getent passwd "$uid" >/dev/null 2>&1; then
    printf '%s:x:%s:%s::%s:%s\n' "$user" "$uid" "$gid" "$home" "$shell" >>/etc/passwd
  fi
  if [ -d /etc/sudoers.d ]; then
    printf '%s ALL=(ALL:ALL) NOPASSWD: ALL\n' "$user" >/etc/sudoers.d/strata-toolbox
    chmod 0440 /etc/sudoers.d/strata-toolbox
  fi
fi
for f in host.conf hosts localtime resolv.conf timezone machine-id; do
  src=/run/host/etc/$f
  [ -e "$src" ] || [ -L "$src" ] || continue
  # An absolute link on the host points into the host, not the toolbox.
  target=$(readlink "$src" || true)
  case $target in /*) src=/run/host$target ;; esac
  rm -f "/etc/$f" 2>/dev/null || continue
  ln -s "$src" "/etc/$f"
done
rm -f /etc/apt/apt.conf.d/50strata-read-only
"#;

/// `SOFT:HARD` for `--ulimit`; no limit is -1 (podman parses an int64).
fn limit(l: crate::host::Limit) -> String {
    let n = |v: u64| i64::try_from(v).map_or("-1".to_owned(), |v| v.to_string());
    format!("{}:{}", n(l.soft), n(l.hard))
}

fn env_pairs(host: &Host) -> impl Iterator<Item = String> + '_ {
    host.env
        .iter()
        .flat_map(|(k, v)| ["--env".to_owned(), format!("{k}={v}")])
}

/// `podman create …` for toolbox `name` from `image`.
pub fn create_args(name: &str, image: &str, host: &Host) -> Vec<String> {
    let home = host.home.display().to_string();
    let mut a: Vec<String> = [
        "create",
        "--name",
        name,
        "--label",
        &format!("{LABEL}=true"),
        "--hostname",
        "toolbox",
        "--network",
        "host",
        "--pid",
        "host",
        "--privileged",
        "--security-opt",
        "label=disable",
        "--dns",
        "none",
        "--no-hosts",
        "--user",
        "root:root",
        "--ulimit",
        &format!("nofile={}", limit(host.nofile)),
        "--ulimit",
        &format!("nproc={}", limit(host.nproc)),
        "--volume",
        "/:/run/host:rslave",
        "--volume",
        "/dev:/dev:rslave",
        "--volume",
        "/tmp:/tmp:rslave",
        "--mount",
        &format!("type=bind,source={home},destination={home},bind-propagation=rslave"),
    ]
    .map(str::to_owned)
    .into();
    if host.uid != 0 {
        a.extend(["--userns".to_owned(), "keep-id".to_owned()]);
    }
    if host.mqueue {
        a.extend(["--ipc".to_owned(), "host".to_owned()]);
    }
    if let Some(run) = &host.runtime_dir {
        let run = run.display();
        a.extend(["--volume".to_owned(), format!("{run}:{run}")]);
    }
    if host.system_bus {
        let bus = crate::host::SYSTEM_BUS;
        a.extend(["--volume".to_owned(), format!("{bus}:{bus}")]);
    }
    a.extend(
        ["--entrypoint", "sh", image, "-c", KEEP_ALIVE]
            .iter()
            .map(|s| (*s).to_owned()),
    );
    a
}

/// `podman exec …` that sets up toolbox `name` with [`INIT_SCRIPT`].
pub fn init_args(name: &str, host: &Host) -> Vec<String> {
    vec![
        "exec".into(),
        "--user".into(),
        "root".into(),
        name.into(),
        "sh".into(),
        "-c".into(),
        INIT_SCRIPT.into(),
        "strata-toolbox-init".into(),
        host.user.clone(),
        host.uid.to_string(),
        host.gid.to_string(),
        host.home.display().to_string(),
        host.shell.clone(),
    ]
}

/// How a command runs in a toolbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// As root rather than as the user.
    pub root: bool,
    /// With a terminal (when the caller has one).
    pub tty: bool,
}

/// The command `enter` runs: the user's shell if the image has it, else
/// bash, else sh; a login shell.
pub fn shell_command() -> Vec<String> {
    [
        "sh",
        "-c",
        r#"for s in "${SHELL:-}" /bin/bash /bin/sh; do [ -n "$s" ] && [ -x "$s" ] && exec "$s" -l; done"#,
    ]
    .map(str::to_owned)
    .into()
}

/// `podman exec …` running `cmd` in toolbox `name` as the user (or root),
/// in [`Host::workdir`], with the variables of [`crate::host::PASSED_ENV`].
pub fn exec_args(name: &str, host: &Host, opts: ExecOptions, cmd: &[String]) -> Vec<String> {
    let mut a: Vec<String> = vec!["exec".into(), "--interactive".into()];
    if opts.tty {
        // No detach keys: ctrl-p is the shell's, not podman's.
        a.extend(["--tty".into(), "--detach-keys".into(), String::new()]);
    }
    // By number: the name is the container's passwd's business.
    let user = if opts.root {
        "root".to_owned()
    } else {
        format!("{}:{}", host.uid, host.gid)
    };
    a.extend([
        "--user".into(),
        user,
        "--workdir".into(),
        if opts.root && host.uid != 0 {
            "/root".to_owned()
        } else {
            host.workdir().display().to_string()
        },
    ]);
    a.extend(env_pairs(host));
    if !(opts.root && host.uid != 0) {
        // The caller's, which podman would take from the passwd file.
        a.extend([
            "--env".into(),
            format!("HOME={}", host.home.display()),
            "--env".into(),
            format!("USER={}", host.user),
            "--env".into(),
            format!("LOGNAME={}", host.user),
            "--env".into(),
            format!("SHELL={}", host.shell),
        ]);
    }
    a.extend(["--env".into(), format!("STRATA_TOOLBOX={name}")]);
    a.push(name.into());
    a.extend(cmd.iter().cloned());
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::Limit;

    fn host(uid: u32) -> Host {
        Host {
            user: if uid == 0 { "root" } else { "ada" }.into(),
            uid,
            gid: uid,
            home: if uid == 0 { "/root" } else { "/home/ada" }.into(),
            shell: "/bin/bash".into(),
            runtime_dir: Some("/run/user/1000".into()),
            cwd: Some("/home/ada/src".into()),
            nofile: Limit {
                soft: 1024,
                hard: 20000,
            },
            nproc: Limit {
                soft: 32768,
                hard: 32768,
            },
            env: vec![("TERM".into(), "xterm".into())],
            system_bus: false,
            mqueue: true,
        }
    }

    fn has_pair(a: &[String], flag: &str, value: &str) -> bool {
        a.windows(2).any(|w| w[0] == flag && w[1] == value)
    }

    #[test]
    fn create_shares_what_toolbx_shares() {
        let a = create_args("dev", "localhost/strata:abc", &host(1000));
        assert_eq!(a[..3], ["create", "--name", "dev"]);
        for (flag, value) in [
            ("--label", "dev.strata.toolbox=true"),
            ("--network", "host"),
            ("--pid", "host"),
            ("--ipc", "host"),
            ("--userns", "keep-id"),
            ("--volume", "/:/run/host:rslave"),
            (
                "--mount",
                "type=bind,source=/home/ada,destination=/home/ada,bind-propagation=rslave",
            ),
            ("--volume", "/run/user/1000:/run/user/1000"),
            ("--ulimit", "nofile=1024:20000"),
            ("--ulimit", "nproc=32768:32768"),
            ("--entrypoint", "sh"),
        ] {
            assert!(has_pair(&a, flag, value), "{flag} {value} missing: {a:?}");
        }
        // The image comes right after the entry point's options.
        let image = a
            .iter()
            .position(|x| x == "localhost/strata:abc")
            .expect("image");
        assert_eq!(a[image + 1..image + 2], ["-c"]);
        // Root's toolbox runs rootful: no user namespace.
        assert!(!create_args("dev", "i", &host(0)).contains(&"keep-id".to_owned()));
    }

    #[test]
    fn exec_runs_as_the_user_in_the_current_directory() {
        let cmd = vec!["id".to_owned()];
        let a = exec_args("dev", &host(1000), ExecOptions::default(), &cmd);
        assert!(has_pair(&a, "--user", "1000:1000"));
        assert!(has_pair(&a, "--env", "USER=ada"));
        assert!(has_pair(&a, "--env", "SHELL=/bin/bash"));
        assert!(has_pair(&a, "--workdir", "/home/ada/src"));
        assert!(has_pair(&a, "--env", "TERM=xterm"));
        assert!(has_pair(&a, "--env", "HOME=/home/ada"));
        assert!(has_pair(&a, "--env", "STRATA_TOOLBOX=dev"));
        assert!(!a.contains(&"--tty".to_owned()));
        assert_eq!(a[a.len() - 2..], ["dev", "id"]);
        let root = exec_args(
            "dev",
            &host(1000),
            ExecOptions {
                root: true,
                tty: true,
            },
            &cmd,
        );
        assert!(has_pair(&root, "--user", "root"));
        assert!(has_pair(&root, "--detach-keys", ""));
    }

    #[test]
    fn the_init_script_is_valid_sh() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", INIT_SCRIPT])
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", KEEP_ALIVE])
            .output()
            .expect("sh");
        assert!(out.status.success());
    }
}
