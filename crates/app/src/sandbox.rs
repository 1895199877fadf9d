//! bubblewrap's arguments for running an app: what the sandbox holds and
//! what it shares, decided from the app's metadata and facts about the
//! host gathered by the caller. Pure, so every decision is testable
//! without starting anything (see [`crate::run`] for the I/O).
//!
//! The sandbox is Flatpak's (`flatpak-run.c`): the runtime's files at
//! `/usr` and the app's at `/app`, both read-only; `/bin`, `/lib*` and
//! `/sbin` links into `/usr`; a fresh `/proc`, a minimal `/dev`, a
//! private `/tmp`; `/etc` made of links into the runtime's `/usr/etc`
//! and a generated `passwd` and `group`; new PID and IPC namespaces,
//! and a network namespace with only `lo` unless `shared=network`; the
//! app's own data in `~/.var/app/ID`; a seccomp filter; no capabilities.
//! Nothing of the host's `$HOME` or `/` is there unless
//! `filesystems=` grants it.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::metadata::Metadata;

/// Facts about the host and the run, gathered by the caller.
#[derive(Debug, Clone)]
pub struct Launch {
    /// The app's ID.
    pub app_id: String,
    /// The app's `files` directory (mounted at `/app`).
    pub app_files: PathBuf,
    /// The runtime's `files` directory (mounted at `/usr`).
    pub runtime_files: PathBuf,
    /// Names in the runtime's `files/etc`, linked into `/etc`.
    pub runtime_etc: Vec<String>,
    /// Top-level names in the runtime's `files` (for `/lib64` and such).
    pub runtime_top: Vec<String>,
    /// The caller's home directory.
    pub home: PathBuf,
    /// The caller's uid and gid.
    pub uid: u32,
    /// The caller's gid.
    pub gid: u32,
    /// Host files that exist, of those the sandbox may share
    /// (`/etc/resolv.conf`, the Wayland socket, …).
    pub host_has: Vec<PathBuf>,
    /// Variables of the caller's environment passed through (`TERM`,
    /// `LANG`, `DISPLAY`, …).
    pub env: Vec<(String, String)>,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// File descriptors the caller opened for bwrap: the generated files
    /// and the seccomp programs.
    pub fds: Fds,
}

/// Descriptors inherited by bwrap.
#[derive(Debug, Clone, Default)]
pub struct Fds {
    /// The generated `/etc/passwd`.
    pub passwd: i32,
    /// The generated `/etc/group`.
    pub group: i32,
    /// The `/.flatpak-info` key file.
    pub info: i32,
    /// The seccomp programs.
    pub seccomp: Vec<i32>,
    /// The app's data directory and its `data`, `config` and `cache`,
    /// opened without following symlinks (the app can write there, so a
    /// path could be a link it planted).
    pub data: [i32; 4],
}

/// The per-app data directory, as Flatpak names it.
pub fn data_dir(home: &Path, app_id: &str) -> PathBuf {
    home.join(".var/app").join(app_id)
}

/// Host files the sandbox shares when they exist: name service files
/// with the network, the machine ID and time zone always.
pub const NETWORK_FILES: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/gai.conf",
];
/// Shared in every sandbox when present.
pub const ALWAYS_FILES: &[&str] = &["/etc/machine-id", "/etc/localtime"];

/// `/etc` entries the sandbox makes itself, never linked from the runtime.
const GENERATED_ETC: &[&str] = &[
    "passwd",
    "group",
    "shadow",
    "gshadow",
    "machine-id",
    "localtime",
    "resolv.conf",
    "hosts",
    "host.conf",
    "gai.conf",
];

/// Trees a `filesystems=` grant may not reach: the sandbox's own.
const RESERVED_TREES: &[&str] = &[
    "/app", "/usr", "/etc", "/proc", "/dev", "/sys", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
];
/// Directories a grant may reach below but not replace (homes live in
/// `/var/home` on some systems, and in `/tmp` in tests).
const RESERVED_DIRS: &[&str] = &["/", "/run", "/tmp", "/var", "/var/tmp"];

/// A `filesystems=` entry made concrete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// Bound at the same path.
    Path {
        /// The host path.
        path: PathBuf,
        /// Read-only (`:ro`).
        read_only: bool,
        /// Created when missing (`:create`).
        create: bool,
    },
    /// Not honoured, with the reason.
    Ignored(String),
}

/// Resolves one `filesystems=` entry for a user whose home is `home`.
pub fn resolve_grant(spec: &str, home: &Path) -> Grant {
    let (path, mode) = match spec.rsplit_once(':') {
        Some((p, m @ ("ro" | "rw" | "create"))) => (p, m),
        _ => (spec, "rw"),
    };
    let xdg = |dir: &str| -> Option<&str> {
        Some(match dir {
            "xdg-desktop" => "Desktop",
            "xdg-documents" => "Documents",
            "xdg-download" => "Downloads",
            "xdg-music" => "Music",
            "xdg-pictures" => "Pictures",
            "xdg-public-share" => "Public",
            "xdg-templates" => "Templates",
            "xdg-videos" => "Videos",
            "xdg-config" => ".config",
            "xdg-data" => ".local/share",
            "xdg-cache" => ".cache",
            _ => return None,
        })
    };
    let (head, rest) = path.split_once('/').unwrap_or((path, ""));
    let host = if path == "home" || path == "~" {
        home.to_owned()
    } else if let Some(sub) = path.strip_prefix("~/") {
        home.join(sub)
    } else if path.starts_with('/') {
        PathBuf::from(path)
    } else if let Some(dir) = xdg(head) {
        home.join(dir).join(rest)
    } else {
        return Grant::Ignored(format!("{spec}: not supported by strata yet"));
    };
    if host.components().any(|c| matches!(c, Component::ParentDir)) {
        return Grant::Ignored(format!("{spec}: '..' is not allowed"));
    }
    let normal: PathBuf = host.components().collect();
    if RESERVED_TREES.iter().any(|r| normal.starts_with(r))
        || RESERVED_DIRS.iter().any(|r| normal == Path::new(r))
    {
        return Grant::Ignored(format!(
            "{spec}: {} belongs to the sandbox itself",
            normal.display()
        ));
    }
    Grant::Path {
        path: normal,
        read_only: mode == "ro",
        create: mode == "create",
    }
}

/// What [`args`] decided: bwrap's arguments, and the grants not honoured.
#[derive(Debug, Clone)]
pub struct Decided {
    /// bwrap's arguments, the command last.
    pub args: Vec<OsString>,
    /// The grants made concrete, in metadata order.
    pub grants: Vec<Grant>,
}

/// bwrap's arguments for running `launch` with the permissions `meta`
/// grants.
pub fn args(meta: &Metadata, launch: &Launch) -> Decided {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&dyn AsRefOs]| {
        for i in items {
            a.push(i.as_os());
        }
    };
    push(&[&"--ro-bind", &launch.runtime_files, &"/usr"]);
    push(&[&"--ro-bind", &launch.app_files, &"/app"]);
    for dir in ["bin", "sbin", "lib", "lib32", "lib64"] {
        if launch.runtime_top.iter().any(|n| n == dir) {
            push(&[&"--symlink", &format!("usr/{dir}"), &format!("/{dir}")]);
        }
    }
    push(&[&"--proc", &"/proc"]);
    let ctx = &meta.context;
    if ctx.devices.iter().any(|d| d == "all") {
        push(&[&"--dev-bind", &"/dev", &"/dev"]);
    } else {
        push(&[&"--dev", &"/dev"]);
        if ctx.devices.iter().any(|d| d == "dri") && launch.host_has(Path::new("/dev/dri")) {
            push(&[&"--dev-bind", &"/dev/dri", &"/dev/dri"]);
        }
    }
    push(&[
        &"--tmpfs",
        &"/tmp",
        &"--dir",
        &"/var/tmp",
        &"--dir",
        &"/etc",
    ]);
    for name in &launch.runtime_etc {
        if !GENERATED_ETC.contains(&name.as_str()) {
            push(&[
                &"--symlink",
                &format!("/usr/etc/{name}"),
                &format!("/etc/{name}"),
            ]);
        }
    }
    let fd = |n: i32| n.to_string();
    push(&[&"--ro-bind-data", &fd(launch.fds.passwd), &"/etc/passwd"]);
    push(&[&"--ro-bind-data", &fd(launch.fds.group), &"/etc/group"]);
    push(&[&"--ro-bind-data", &fd(launch.fds.info), &"/.flatpak-info"]);
    let network = ctx.shares("network");
    let mut shared: Vec<&str> = ALWAYS_FILES.to_vec();
    if network {
        shared.extend(NETWORK_FILES);
    }
    for f in shared {
        if launch.host_has(Path::new(f)) {
            push(&[&"--ro-bind", &f, &f]);
        }
    }

    let data = data_dir(&launch.home, &launch.app_id);
    let mut grants = Vec::new();
    for spec in &ctx.filesystems {
        let g = resolve_grant(spec, &launch.home);
        if let Grant::Path {
            path, read_only, ..
        } = &g
        {
            if launch.host_has(path) {
                let flag = if *read_only { "--ro-bind" } else { "--bind" };
                push(&[&flag, path, path]);
            } else {
                grants.push(Grant::Ignored(format!(
                    "{spec}: {} does not exist",
                    path.display()
                )));
                continue;
            }
        }
        grants.push(g);
    }
    // The app's own data, where Flatpak keeps it, over the grants (so
    // `home:ro` leaves it writable), and no other app's.
    let apps_data = launch.home.join(".var/app");
    push(&[&"--tmpfs", &apps_data]);
    push(&[&"--bind-fd", &fd(launch.fds.data[0]), &data]);
    for (n, d) in ["data", "config", "cache"].iter().enumerate() {
        push(&[
            &"--bind-fd",
            &fd(launch.fds.data[n + 1]),
            &format!("/var/{d}"),
        ]);
    }
    let runtime_dir = PathBuf::from(format!("/run/user/{}", launch.uid));
    push(&[&"--dir", &runtime_dir]);
    let sockets: &[(&str, &str)] = &[
        ("wayland", "WAYLAND_DISPLAY"),
        ("pulseaudio", "pulse"),
        ("x11", "/tmp/.X11-unix"),
    ];
    for (socket, what) in sockets {
        if !ctx.sockets.iter().any(|s| s == socket) {
            continue;
        }
        let host_runtime = launch.env_var("XDG_RUNTIME_DIR").map(PathBuf::from);
        let path = match (*what, &host_runtime) {
            ("WAYLAND_DISPLAY", Some(r)) => {
                r.join(launch.env_var("WAYLAND_DISPLAY").unwrap_or("wayland-0"))
            }
            ("pulse", Some(r)) => r.join("pulse"),
            (p, _) if p.starts_with('/') => PathBuf::from(p),
            _ => continue,
        };
        if launch.host_has(&path) {
            let inside = match &host_runtime {
                Some(r) if path.starts_with(r) => {
                    runtime_dir.join(path.strip_prefix(r).unwrap_or(&path))
                }
                _ => path.clone(),
            };
            push(&[&"--bind", &path, &inside]);
        }
    }

    push(&[&"--unshare-pid"]);
    if !ctx.shares("ipc") {
        push(&[&"--unshare-ipc"]);
    }
    if !network {
        push(&[&"--unshare-net"]);
    }
    push(&[&"--die-with-parent", &"--cap-drop", &"ALL"]);
    for n in &launch.fds.seccomp {
        push(&[&"--add-seccomp-fd", &fd(*n)]);
    }

    push(&[&"--clearenv"]);
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), "/app/bin:/usr/bin:/bin".into()),
        ("HOME".into(), launch.home.display().to_string()),
        (
            "XDG_DATA_HOME".into(),
            data.join("data").display().to_string(),
        ),
        (
            "XDG_CONFIG_HOME".into(),
            data.join("config").display().to_string(),
        ),
        (
            "XDG_CACHE_HOME".into(),
            data.join("cache").display().to_string(),
        ),
        ("XDG_RUNTIME_DIR".into(), runtime_dir.display().to_string()),
        ("FLATPAK_ID".into(), launch.app_id.clone()),
        ("container".into(), "strata".into()),
    ];
    for (k, v) in &launch.env {
        if !env.iter().any(|(e, _)| e == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    for (k, v) in &meta.environment {
        env.retain(|(e, _)| e != k);
        env.push((k.clone(), v.clone()));
    }
    for (k, v) in &env {
        push(&[&"--setenv", k, v]);
    }
    push(&[&"--chdir", &launch.home, &"--"]);
    for arg in &launch.argv {
        push(&[arg]);
    }
    Decided { args: a, grants }
}

impl Launch {
    fn host_has(&self, p: &Path) -> bool {
        self.host_has.iter().any(|h| h == p)
    }

    fn env_var(&self, k: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(e, _)| e == k)
            .map(|(_, v)| v.as_str())
    }
}

/// The generated `/etc/passwd`: the caller, and nobody.
pub fn passwd(name: &str, uid: u32, gid: u32, home: &Path) -> String {
    format!(
        "{name}:x:{uid}:{gid}:{name}:{}:/bin/sh\nnobody:x:65534:65534:Unmapped user:/nonexistent:/usr/sbin/nologin\n",
        home.display()
    )
}

/// The generated `/etc/group`.
pub fn group(name: &str, gid: u32) -> String {
    format!("{name}:x:{gid}:\nnogroup:x:65534:\n")
}

/// The `/.flatpak-info` key file apps use to learn they are sandboxed.
pub fn flatpak_info(meta: &Metadata, app_path: &Path, runtime_path: &Path) -> String {
    let runtime = meta
        .runtime
        .as_ref()
        .map(|r| r.to_string())
        .unwrap_or_default();
    format!(
        "[Application]\nname={}\nruntime={runtime}\n\n[Instance]\napp-path={}\nruntime-path={}\nsandbox=strata\n\n[Context]\nshared={}\n",
        meta.name,
        app_path.display(),
        runtime_path.display(),
        meta.context.shared.join(";"),
    )
}

/// Things that become one bwrap argument.
trait AsRefOs {
    fn as_os(&self) -> OsString;
}

impl AsRefOs for &str {
    fn as_os(&self) -> OsString {
        (*self).into()
    }
}

impl AsRefOs for String {
    fn as_os(&self) -> OsString {
        self.into()
    }
}

impl AsRefOs for PathBuf {
    fn as_os(&self) -> OsString {
        self.as_os_str().to_owned()
    }
}

impl AsRefOs for &Path {
    fn as_os(&self) -> OsString {
        self.as_os_str().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::parse;

    fn launch() -> Launch {
        Launch {
            app_id: "org.example.Hello".into(),
            app_files: "/apps/app/files".into(),
            runtime_files: "/apps/rt/files".into(),
            runtime_etc: vec!["ld.so.cache".into(), "passwd".into()],
            runtime_top: vec!["bin".into(), "lib".into(), "lib64".into(), "etc".into()],
            home: "/home/u".into(),
            uid: 1000,
            gid: 1000,
            host_has: vec![
                "/etc/resolv.conf".into(),
                "/etc/machine-id".into(),
                "/home/u/Downloads".into(),
            ],
            env: vec![
                ("TERM".into(), "xterm".into()),
                ("HOME".into(), "/x".into()),
            ],
            argv: vec!["hello".into(), "--greeting=hi".into()],
            fds: Fds {
                passwd: 3,
                group: 4,
                info: 5,
                seccomp: vec![6, 7],
                data: [8, 9, 10, 11],
            },
        }
    }

    fn joined(d: &Decided) -> String {
        d.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    const BASE: &str =
        "[Application]\nname=org.example.Hello\nruntime=org.example.Platform/x86_64/1\n";

    #[test]
    fn the_default_sandbox_shares_nothing() {
        let d = args(&parse(BASE, "t").expect("test input"), &launch());
        let a = joined(&d);
        for want in [
            "--ro-bind /apps/rt/files /usr --ro-bind /apps/app/files /app",
            "--symlink usr/lib64 /lib64",
            "--symlink /usr/etc/ld.so.cache /etc/ld.so.cache",
            "--ro-bind-data 3 /etc/passwd",
            "--ro-bind /etc/machine-id /etc/machine-id",
            "--tmpfs /home/u/.var/app --bind-fd 8 /home/u/.var/app/org.example.Hello --bind-fd 9 /var/data",
            "--unshare-pid --unshare-ipc --unshare-net --die-with-parent --cap-drop ALL",
            "--add-seccomp-fd 6 --add-seccomp-fd 7",
            "--clearenv",
            "--setenv HOME /home/u",
            "--setenv TERM xterm",
            "--chdir /home/u -- hello --greeting=hi",
        ] {
            assert!(a.contains(want), "missing {want:?} in {a}");
        }
        for never in [
            "/etc/passwd /etc/passwd",
            "resolv.conf",
            "/usr/etc/passwd",
            "/home/u /home/u",
            "--setenv HOME /x",
        ] {
            assert!(!a.contains(never), "{never:?} in {a}");
        }
        assert!(d.grants.is_empty());
    }

    #[test]
    fn grants_open_what_they_name() {
        let meta = parse(
            &format!(
                "{BASE}[Context]\nshared=network;ipc;\nfilesystems=xdg-download:ro;~/Missing;/usr/lib;host-os;~/../etc;/var;\n[Environment]\nHOME=/override\n"
            ),
            "t",
        )
        .expect("test input");
        let d = args(&meta, &launch());
        let a = joined(&d);
        assert!(
            a.contains("--ro-bind /etc/resolv.conf /etc/resolv.conf"),
            "{a}"
        );
        assert!(
            !a.contains("--unshare-net") && !a.contains("--unshare-ipc"),
            "{a}"
        );
        assert!(
            a.contains("--ro-bind /home/u/Downloads /home/u/Downloads"),
            "{a}"
        );
        assert!(a.contains("--setenv HOME /override"), "{a}");
        let ignored: Vec<String> = d
            .grants
            .iter()
            .filter_map(|g| match g {
                Grant::Ignored(why) => Some(why.clone()),
                Grant::Path { .. } => None,
            })
            .collect();
        assert_eq!(ignored.len(), 5, "{ignored:?}");
        assert!(ignored[0].contains("does not exist"));
        assert!(ignored[1].contains("belongs to the sandbox"));
        assert!(ignored[2].contains("not supported"));
        assert!(ignored[3].contains("'..'"));
        assert!(ignored[4].contains("belongs to the sandbox"));
        // Homes under /var or /tmp are not the sandbox's.
        assert_eq!(
            resolve_grant("home", Path::new("/var/home/u")),
            Grant::Path {
                path: "/var/home/u".into(),
                read_only: false,
                create: false
            }
        );
    }
}
