//! Starting an installed app in its sandbox: the facts [`crate::sandbox`]
//! decides from are gathered here (who runs it, what the host has), the
//! generated files and seccomp programs are put in memory files that
//! bwrap inherits, and bwrap is started.

use std::fs::File;
use std::io::{Seek, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use rustix::fs::MemfdFlags;
use rustix::io::FdFlags;

use crate::error::{Error, IoContext, Result};
use crate::installation::{Installation, Installed};
use crate::metadata::Metadata;
use crate::sandbox::{self, Decided, Fds, Grant, Launch};
use crate::seccomp;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Instead of the metadata's `command=`.
    pub command: Option<String>,
    /// Arguments for the command.
    pub args: Vec<String>,
}

/// A sandbox ready to start.
pub struct Prepared {
    /// `bwrap` with its arguments.
    pub command: Command,
    /// The grants, as decided (those ignored say why).
    pub grants: Vec<Grant>,
    /// The app.
    pub app: Installed,
    /// Kept open until bwrap has started: it reads them.
    _files: Vec<File>,
    /// The data directories bwrap binds.
    _dirs: Vec<OwnedFd>,
}

/// Variables of the caller's environment an app sees.
const PASSED_ENV: &[&str] = &[
    "TERM",
    "COLORTERM",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "TZ",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "XDG_RUNTIME_DIR",
    "XDG_SESSION_TYPE",
];

/// A memory file holding `data`, inherited across exec (no close-on-exec).
fn inherited(name: &str, data: &[u8]) -> Result<File> {
    let fd: OwnedFd =
        rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC).map_err(|e| Error::Bwrap(e.into()))?;
    let mut f = File::from(fd);
    let path = PathBuf::from(format!("memfd:{name}"));
    f.write_all(data).ctx("write", &path)?;
    f.rewind().ctx("seek", &path)?;
    rustix::io::fcntl_setfd(&f, FdFlags::empty()).map_err(|e| Error::Bwrap(e.into()))?;
    Ok(f)
}

/// The app's data directory `data` and its `data`, `config` and
/// `cache`, created when missing and opened (`O_PATH`, inherited) without
/// following symlinks: the app writes there, and a link it planted would
/// otherwise bind whatever it points to.
fn data_dirs(data: &Path) -> Result<Vec<OwnedFd>> {
    use rustix::fs::{CWD, Mode, OFlags, mkdirat, openat};
    std::fs::create_dir_all(data).ctx("create", data)?;
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let refused = |p: &Path| {
        Error::Refused(format!(
            "{} is not a directory (a symlink?): the app's data must be its own; move it away",
            p.display()
        ))
    };
    let top = openat(CWD, data, flags, Mode::empty()).map_err(|_| refused(data))?;
    let mut fds = Vec::new();
    for sub in ["data", "config", "cache"] {
        let p = data.join(sub);
        match mkdirat(&top, sub, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(Error::Io {
                    action: "create",
                    path: p,
                    source: e.into(),
                });
            }
        }
        fds.push(openat(&top, sub, flags, Mode::empty()).map_err(|_| refused(&p))?);
    }
    fds.insert(0, top);
    for fd in &fds {
        rustix::io::fcntl_setfd(fd, FdFlags::empty()).map_err(|e| Error::Bwrap(e.into()))?;
    }
    Ok(fds)
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|l| {
            l.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Prepares app `id` of `inst` to run as the calling user.
pub fn prepare(inst: &Installation, id: &str, opts: &RunOptions) -> Result<Prepared> {
    let app = inst.app(id)?;
    let meta: Metadata = app.metadata()?;
    let runtime_ref = meta
        .runtime
        .clone()
        .ok_or_else(|| Error::Refused(format!("app {id} names no runtime")))?;
    let runtime = inst.get(&runtime_ref)?.ok_or_else(|| {
        Error::NotFound(format!(
            "runtime {} of app {id} is not installed",
            runtime_ref.triple()
        ))
    })?;
    let command = opts
        .command
        .clone()
        .or_else(|| meta.command.clone())
        .ok_or_else(|| {
            Error::Refused(format!(
                "app {id} names no command in its metadata: give one with --command"
            ))
        })?;

    let uid = rustix::process::getuid().as_raw();
    let gid = rustix::process::getgid().as_raw();
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|h| h.is_absolute())
        .unwrap_or_else(|| PathBuf::from("/"));
    let user = std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && !u.contains([':', '\n']))
        .unwrap_or_else(|| if uid == 0 { "root" } else { "user" }.to_owned());
    let env: Vec<(String, String)> = PASSED_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect();

    let data_fds = data_dirs(&sandbox::data_dir(&home, id))?;
    let mut candidates: Vec<PathBuf> = sandbox::NETWORK_FILES
        .iter()
        .chain(sandbox::ALWAYS_FILES)
        .chain(&["/dev/dri", "/tmp/.X11-unix"])
        .map(PathBuf::from)
        .collect();
    if let Some(r) = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        let wayland = std::env::var("WAYLAND_DISPLAY").unwrap_or_else(|_| "wayland-0".into());
        candidates.push(r.join(wayland));
        candidates.push(r.join("pulse"));
    }
    for spec in &meta.context.filesystems {
        if let Grant::Path { path, create, .. } = sandbox::resolve_grant(spec, &home) {
            if create && path.starts_with(&home) && !path.exists() {
                std::fs::create_dir_all(&path).ctx("create", &path)?;
            }
            candidates.push(path);
        }
    }
    let host_has: Vec<PathBuf> = candidates.into_iter().filter(|p| p.exists()).collect();

    let app_path = app.path.clone();
    let runtime_files = runtime.path.join("files");
    let mut files = vec![
        inherited("passwd", sandbox::passwd(&user, uid, gid, &home).as_bytes())?,
        inherited("group", sandbox::group(&user, gid).as_bytes())?,
        inherited(
            "flatpak-info",
            sandbox::flatpak_info(&meta, &app_path, &runtime.path).as_bytes(),
        )?,
    ];
    let mut seccomp_fds = Vec::new();
    for (n, prog) in seccomp::programs()?.iter().enumerate() {
        let f = inherited(&format!("seccomp-{n}"), prog)?;
        seccomp_fds.push(f.as_raw_fd());
        files.push(f);
    }
    let launch = Launch {
        app_id: id.to_owned(),
        app_files: app_path.join("files"),
        runtime_etc: names(&runtime_files.join("etc")),
        runtime_top: names(&runtime_files),
        runtime_files,
        home,
        uid,
        gid,
        host_has,
        env,
        argv: std::iter::once(command)
            .chain(opts.args.iter().cloned())
            .collect(),
        fds: Fds {
            passwd: files[0].as_raw_fd(),
            group: files[1].as_raw_fd(),
            info: files[2].as_raw_fd(),
            seccomp: seccomp_fds,
            data: [
                data_fds[0].as_raw_fd(),
                data_fds[1].as_raw_fd(),
                data_fds[2].as_raw_fd(),
                data_fds[3].as_raw_fd(),
            ],
        },
    };
    let Decided { args, grants } = sandbox::args(&meta, &launch);
    let mut command = Command::new("bwrap");
    command.args(args);
    Ok(Prepared {
        command,
        grants,
        app,
        _files: files,
        _dirs: data_fds,
    })
}

impl Prepared {
    /// Runs the app and waits; its exit status.
    pub fn status(mut self) -> Result<std::process::ExitStatus> {
        self.command.status().map_err(Error::Bwrap)
    }

    /// Replaces this process with the sandbox; returns only on failure.
    pub fn exec(mut self) -> Error {
        use std::os::unix::process::CommandExt;
        Error::Bwrap(self.command.exec())
    }
}
