//! apt and dpkg run inside the tree being built, confined by bubblewrap
//! (the real tool, as rpm-ostree confines its scriptlets): the tree is
//! `/`, its `/usr/etc` is `/etc`, a scratch `/var` (an overlay on the
//! image's factory `/var`) is `/var`; own PID, IPC and UTS namespaces; no
//! network while dpkg and the maintainer scripts run; the machine's apt
//! sources read-only; apt's lists and downloads kept in the machine's
//! `/var` between builds.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::Progress;
use crate::error::{Error, Result};

use crate::sources::{APT_ETC, FileSources};
/// Where local `.deb` files appear inside the sandbox.
pub const DEBS: &str = "/run/strata/debs";

/// The directories one sandboxed run binds.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The tree being built (the merged overlay).
    pub root: PathBuf,
    /// Its scratch `/var` (the merged `/var` overlay).
    pub var: PathBuf,
    /// A copy of the machine's `/etc/apt` (sources and keys), rewritten
    /// for the sandbox (see [`crate::sources`]).
    pub apt_etc: PathBuf,
    /// The `file:` repositories its sources name, bound read-only.
    pub file_sources: FileSources,
    /// apt's package lists, kept between builds.
    pub apt_lists: PathBuf,
    /// apt's downloaded packages, kept between builds.
    pub apt_archives: PathBuf,
    /// Local `.deb` files, if the request has any.
    pub debs: Option<PathBuf>,
    /// Files bound read-only over paths of the tree (`policy-rc.d`,
    /// `resolv.conf`); the caller removes the mount points they leave.
    pub files: Vec<(PathBuf, String)>,
}

/// Where [`apt_config`]'s file is bound; `APT_CONFIG` names it.
pub const APT_CONFIG: &str = "/run/strata/apt.conf";

/// apt's configuration in the sandbox, given by `APT_CONFIG`: everything
/// the machine's `/etc/apt` says (proxies, credentials, pinning, sources,
/// keys), from the copy at [`APT_ETC`]. dpkg is told not to fsync what
/// it unpacks (`--force-unsafe-io`, as mmdebstrap builds): the tree is
/// scratch until strata commits it, and the commit is made durable whole.
pub fn apt_config() -> String {
    let mut conf = String::from("DPkg::Options:: \"--force-unsafe-io\";\n");
    conf.extend(
        [
            ("main", "apt.conf"),
            ("parts", "apt.conf.d"),
            ("sourcelist", "sources.list"),
            ("sourceparts", "sources.list.d"),
            ("trusted", "trusted.gpg"),
            ("trustedparts", "trusted.gpg.d"),
            ("preferences", "preferences"),
            ("preferencesparts", "preferences.d"),
            ("netrc", "auth.conf"),
            ("netrcparts", "auth.conf.d"),
        ]
        .iter()
        .map(|(k, v)| format!("Dir::Etc::{k} \"{APT_ETC}/{v}\";\n")),
    );
    conf
}

/// Proxy settings passed through to apt, as the machine's user set them.
const PROXY_VARS: &[&str] = &[
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

fn arg(s: &str) -> OsString {
    s.into()
}

impl Sandbox {
    /// bwrap's arguments up to the command.
    fn bwrap_args(&self, network: bool) -> Vec<OsString> {
        let bind = |flag: &str, from: &Path, to: &str| {
            vec![arg(flag), from.as_os_str().to_owned(), arg(to)]
        };
        let mut a: Vec<OsString> = Vec::new();
        a.extend(bind("--bind", &self.root, "/"));
        a.extend(bind("--bind", &self.root.join("usr/etc"), "/etc"));
        a.extend(bind("--bind", &self.var, "/var"));
        a.extend(bind("--bind", &self.apt_lists, "/var/lib/apt/lists"));
        a.extend(bind(
            "--bind",
            &self.apt_archives,
            "/var/cache/apt/archives",
        ));
        for (flag, to) in [
            ("--dev", "/dev"),
            ("--proc", "/proc"),
            ("--tmpfs", "/tmp"),
            ("--tmpfs", "/run"),
        ] {
            a.push(arg(flag));
            a.push(arg(to));
        }
        a.extend(bind("--ro-bind", &self.apt_etc, APT_ETC));
        for (n, p) in self.file_sources.paths.iter().enumerate() {
            // -try: a source whose disk is not mounted fails in apt, by URI.
            a.extend(bind("--ro-bind-try", p, &FileSources::target(n)));
        }
        if let Some(d) = &self.debs {
            a.extend(bind("--ro-bind", d, DEBS));
        }
        for (from, to) in &self.files {
            a.extend(bind("--ro-bind", from, to));
        }
        for u in [
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--die-with-parent",
            "--new-session",
        ] {
            a.push(arg(u));
        }
        if !network {
            a.push(arg("--unshare-net"));
        }
        a.push(arg("--clearenv"));
        for (k, v) in [
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            ("DEBIAN_FRONTEND", "noninteractive"),
            ("DEBCONF_NONINTERACTIVE_SEEN", "true"),
            ("LC_ALL", "C.UTF-8"),
            ("HOME", "/root"),
            ("APT_CONFIG", APT_CONFIG),
        ] {
            a.extend([arg("--setenv"), arg(k), arg(v)]);
        }
        for k in PROXY_VARS {
            if let Ok(v) = std::env::var(k) {
                a.extend([arg("--setenv"), arg(k), OsString::from(v)]);
            }
        }
        a.extend([arg("--chdir"), arg("/")]);
        a
    }

    /// Runs `apt-get ARGS` in the sandbox, with the network when `network`;
    /// each line of its output goes to `progress`.
    pub fn apt_get(&self, args: &[String], network: bool, progress: &dyn Progress) -> Result<()> {
        let mut cmd = Command::new("bwrap");
        cmd.args(self.bwrap_args(network)).arg("apt-get");
        let apt_opts = [
            // Layers stay small; rpm-ostree likewise adds only what is asked.
            "APT::Install-Recommends=false".to_owned(),
            "Dpkg::Use-Pty=false".to_owned(),
            // Downloads as root: the lists and archives are the machine's.
            "APT::Sandbox::User=root".to_owned(),
        ];
        cmd.args(["-q", "-y"]);
        for o in &apt_opts {
            cmd.arg("-o").arg(o);
        }
        cmd.args(args);
        let what = format!("apt-get {}", args.join(" "));
        run_streaming(cmd, &what, progress)
    }
}

/// Runs `cmd` with stdout and stderr on one pipe, each line to
/// `progress`; on failure the error holds apt's error lines and the end
/// of the output.
fn run_streaming(mut cmd: Command, what: &str, progress: &dyn Progress) -> Result<()> {
    let tool = |why: String| Error::Tool {
        what: format!("run {what} in bwrap"),
        why,
    };
    let (reader, writer) = std::io::pipe().map_err(|e| tool(e.to_string()))?;
    let w2 = writer.try_clone().map_err(|e| tool(e.to_string()))?;
    cmd.stdin(Stdio::null()).stdout(writer).stderr(w2);
    let mut child = cmd.spawn().map_err(|e| {
        tool(if e.kind() == std::io::ErrorKind::NotFound {
            "bwrap not found: install bubblewrap".to_owned()
        } else {
            e.to_string()
        })
    })?;
    // The parent's copies of the write end must close, or the read below
    // never ends.
    drop(cmd);
    let mut tail: VecDeque<String> = VecDeque::new();
    let mut errors: Vec<String> = Vec::new();
    let mut reader = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        // Bytes, not lines of UTF-8: a package's non-UTF-8 output must not
        // end the reading (and the child with SIGPIPE).
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let line = String::from_utf8_lossy(&buf)
            .trim_end_matches(['\n', '\r'])
            .to_owned();
        progress.output(&line);
        if line.starts_with("E: ") || line.starts_with("dpkg: error") || line.starts_with("bwrap: ")
        {
            errors.push(line.clone());
        }
        tail.push_back(line);
        if tail.len() > 15 {
            tail.pop_front();
        }
    }
    let status = child.wait().map_err(|e| tool(e.to_string()))?;
    if status.success() {
        return Ok(());
    }
    let mut output: Vec<String> = errors;
    for l in tail {
        if !output.contains(&l) {
            output.push(l);
        }
    }
    Err(Error::Apt {
        what: what.to_owned(),
        status: status.to_string(),
        output: output.join("\n"),
    })
}
