//! What a toolbox takes from the host and the calling user: who they are,
//! their home and shell, the variables their programs need, and the
//! resource limits the container may have.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Environment variables a toolbox's commands get from the caller's, as
/// Toolbx passes them: the terminal, the locale, the desktop's sockets.
pub const PASSED_ENV: &[&str] = &[
    "COLORTERM",
    "DBUS_SESSION_BUS_ADDRESS",
    "DESKTOP_SESSION",
    "DISPLAY",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "SSH_AUTH_SOCK",
    "TERM",
    "VTE_VERSION",
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "XDG_CURRENT_DESKTOP",
    "XDG_DATA_DIRS",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_DESKTOP",
    "XDG_SESSION_TYPE",
];

/// A soft and hard resource limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// What a process gets.
    pub soft: u64,
    /// What it may raise itself to.
    pub hard: u64,
}

/// The calling user and what of the host a toolbox shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The user's name.
    pub user: String,
    /// Their uid (0: podman runs rootful, and the toolbox's user is root).
    pub uid: u32,
    /// Their primary gid.
    pub gid: u32,
    /// Their home directory, shared read-write.
    pub home: PathBuf,
    /// Their login shell on the host (used inside when the image has it).
    pub shell: String,
    /// `$XDG_RUNTIME_DIR`, shared when it exists (Wayland, PulseAudio, D-Bus).
    pub runtime_dir: Option<PathBuf>,
    /// The current directory, where commands start when it is in the home.
    pub cwd: Option<PathBuf>,
    /// Open files, for `--ulimit nofile`.
    pub nofile: Limit,
    /// Processes, for `--ulimit nproc`.
    pub nproc: Limit,
    /// The variables of [`PASSED_ENV`] that are set, and their values.
    pub env: Vec<(String, String)>,
    /// Whether the system D-Bus socket exists (then it is shared).
    pub system_bus: bool,
    /// Whether `/dev/mqueue` exists: podman shares the host's IPC namespace
    /// only with it (systemd mounts it; a host without it gets a toolbox
    /// with IPC of its own rather than none).
    pub mqueue: bool,
}

/// The system D-Bus socket.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

impl Host {
    /// The calling process's user and host. `nofile_soft` is the soft
    /// open-files limit the caller started with, when it has raised its own.
    pub fn current(nofile_soft: Option<u64>) -> Result<Host> {
        use rustix::process::{Resource, getegid, geteuid, getrlimit};
        let uid = geteuid().as_raw();
        let gid = getegid().as_raw();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        let entry = passwd_entry(&passwd, uid);
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user = entry
            .as_ref()
            .map(|e| e.0.clone())
            .or_else(|| var("USER"))
            .ok_or_else(|| {
                Error::Host(format!(
                    "uid {uid} has no name in /etc/passwd and $USER is not set"
                ))
            })?;
        if !valid_user_name(&user) {
            return Err(Error::Host(format!(
                "the user name {user:?} cannot be written to a passwd file: \
                 letters, digits, '_', '.', '-' only"
            )));
        }
        let home = var("HOME")
            .map(PathBuf::from)
            .or_else(|| entry.as_ref().map(|e| e.1.clone()))
            .ok_or_else(|| Error::Host(format!("{user} has no home: $HOME is not set")))?;
        if let Some(bad) = [":", ",", "\n", "="]
            .iter()
            .find(|c| home.to_string_lossy().contains(**c))
        {
            return Err(Error::Host(format!(
                "the home {} has {bad:?} in it, which a passwd file or a podman mount cannot hold",
                home.display()
            )));
        }
        let shell = var("SHELL")
            .or_else(|| entry.as_ref().map(|e| e.2.clone()))
            .filter(|s| s.starts_with('/') && !s.contains([':', '\n']))
            .unwrap_or_else(|| "/bin/bash".to_owned());
        let limit = |r| {
            let l = getrlimit(r);
            Limit {
                soft: l.current.unwrap_or(u64::MAX),
                hard: l.maximum.unwrap_or(u64::MAX),
            }
        };
        let mut nofile = limit(Resource::Nofile);
        if let Some(soft) = nofile_soft {
            nofile.soft = soft.min(nofile.hard);
        }
        let pid_max = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let nproc = clamp_nproc(limit(Resource::Nproc), pid_max);
        let env = PASSED_ENV
            .iter()
            .filter_map(|k| var(k).map(|v| ((*k).to_owned(), v)))
            .collect();
        Ok(Host {
            user,
            uid,
            gid,
            home,
            shell,
            runtime_dir: var("XDG_RUNTIME_DIR")
                .map(PathBuf::from)
                .filter(|p| p.is_dir()),
            cwd: std::env::current_dir().ok(),
            nofile,
            nproc,
            env,
            system_bus: Path::new(SYSTEM_BUS).exists(),
            mqueue: Path::new("/dev/mqueue").is_dir(),
        })
    }

    /// Where commands start: the current directory when it is in the home
    /// (the home is shared, so it exists inside), else the home.
    pub fn workdir(&self) -> &Path {
        match &self.cwd {
            Some(c) if c.starts_with(&self.home) => c,
            _ => &self.home,
        }
    }
}

/// The process limit a container may be given: the caller's, at most
/// `pid_max`. podman (containers/common) lowers its own limit to
/// `pid_max` and cannot give a container more without `CAP_SYS_RESOURCE`,
/// which some hosts' root lacks: podman 4.3 then fails to start any
/// container ("error setting rlimit type 6"), newer podman clamps the same way.
pub fn clamp_nproc(l: Limit, pid_max: Option<u64>) -> Limit {
    let max = pid_max.unwrap_or(u64::MAX);
    Limit {
        soft: l.soft.min(max),
        hard: l.hard.min(max),
    }
}

/// A name a passwd file and sudoers hold as it is.
fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-$".contains(c))
}

/// Name, home and shell of `uid` in a passwd file.
fn passwd_entry(passwd: &str, uid: u32) -> Option<(String, PathBuf, String)> {
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 7 && f[2].parse() == Ok(uid))
            .then(|| (f[0].to_owned(), PathBuf::from(f[5]), f[6].to_owned()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_entries_are_found_by_uid() {
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      broken line\n\
                      ada:x:1000:1000:Ada,,,:/home/ada:/usr/bin/zsh\n";
        assert_eq!(
            passwd_entry(passwd, 1000),
            Some(("ada".into(), "/home/ada".into(), "/usr/bin/zsh".into()))
        );
        assert_eq!(passwd_entry(passwd, 7), None);
    }

    #[test]
    fn user_names_that_would_break_passwd_are_refused() {
        for good in ["ada", "ada.lovelace", "a_b-c", "machine$"] {
            assert!(valid_user_name(good), "{good}");
        }
        for bad in ["", "-x", "a:b", "a\nroot", "DOMAIN\\user", "a b"] {
            assert!(!valid_user_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn nproc_is_clamped_to_pid_max() {
        let l = Limit {
            soft: 96364,
            hard: u64::MAX,
        };
        assert_eq!(
            clamp_nproc(l, Some(32768)),
            Limit {
                soft: 32768,
                hard: 32768
            }
        );
        assert_eq!(clamp_nproc(l, None), l);
    }

    #[test]
    fn commands_start_in_the_current_directory_only_inside_the_home() {
        let mut h = Host {
            user: "ada".into(),
            uid: 1000,
            gid: 1000,
            home: "/home/ada".into(),
            shell: "/bin/bash".into(),
            runtime_dir: None,
            cwd: Some("/home/ada/src".into()),
            nofile: Limit { soft: 1, hard: 1 },
            nproc: Limit { soft: 1, hard: 1 },
            env: Vec::new(),
            system_bus: false,
            mqueue: true,
        };
        assert_eq!(h.workdir(), Path::new("/home/ada/src"));
        h.cwd = Some("/etc".into());
        assert_eq!(h.workdir(), Path::new("/home/ada"));
    }
}
