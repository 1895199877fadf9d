//! nginx serving a repository directory, as production does: a guard that
//! writes its own config into a temp dir, starts nginx, waits until the
//! port answers and kills it on drop.

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long nginx may take to answer after being started.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A port nothing listens on now (the kernel's pick for port 0).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether nginx runs (it has no `--version`); [`skip`](super::skip)s when not.
#[track_caller]
pub fn have_nginx() -> bool {
    let found = Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        super::skip("nginx is not installed");
    }
    found
}

/// A running nginx serving `root` on 127.0.0.1:`port`; killed on drop.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Nginx {
    /// Serves `root` on a free port with keep-alive.
    pub fn start(root: &Path) -> Nginx {
        // Another process may take the free port before nginx binds it.
        let mut last = String::new();
        for _ in 0..3 {
            match Nginx::try_start(root, free_port(), "") {
                Ok(n) => return n,
                Err(e) => last = e,
            }
        }
        panic!("{last}");
    }

    /// Serves `root` on `port`, with `extra` added to the `http` block
    /// (rate limits, for instance).
    pub fn start_with(root: &Path, port: u16, extra: &str) -> Nginx {
        Nginx::try_start(root, port, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(root: &Path, port: u16, extra: &str) -> Result<Nginx, String> {
        let dir = tempfile::Builder::new()
            .prefix("strata-nginx-")
            .tempdir()
            .expect("create nginx's directory");
        let d = dir.path().display();
        let root = fs::canonicalize(root).expect("canonical root");
        // One process (master_process off): a SIGKILL stops the server at
        // once, with no orphaned worker left serving, and no privilege
        // drop to `nobody`, who could not read 0700 temp dirs.
        let conf = format!(
            "daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 512; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 60s;
    keepalive_requests 100000;
    {extra}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
",
            root = root.display()
        );
        let conf_path = dir.path().join("nginx.conf");
        fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx");
        let mut nginx = Nginx { child, dir, port };
        nginx.wait_ready()?;
        Ok(nginx)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "nginx exited ({status}) before serving:\n{}",
                    self.error_log()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "nginx does not answer on {addr}:\n{}",
                    self.error_log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT`, the repository's URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn error_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// The requests served so far, one access-log line each.
    pub fn access_log(&self) -> String {
        fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
