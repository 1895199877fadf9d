//! `strata serve` as a guard: started on a port the kernel picks, its
//! address read from the line it prints, killed on drop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};

use super::strata_cmd;

pub struct DevServer {
    child: Child,
    url: String,
}

impl DevServer {
    /// Serves `repo` on 127.0.0.1 and returns once it listens.
    pub fn start(repo: &Path) -> DevServer {
        let mut child = strata_cmd(["serve".as_ref(), "--repo".as_ref(), repo.as_os_str()])
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn strata serve");
        let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        // "serving REPO on http://ADDR/ (development server; ...)": the
        // listener is bound before this line is printed.
        let mut line = String::new();
        stderr
            .read_line(&mut line)
            .expect("read strata serve's stderr");
        let url = line
            .find("http://")
            .and_then(|i| line[i..].split_whitespace().next())
            .map(|u| u.trim_end_matches('/').to_owned());
        let Some(url) = url else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("strata serve did not say where it listens: {line:?}");
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
        });
        DevServer { child, url }
    }

    /// `http://127.0.0.1:PORT`, the repository's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for DevServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
