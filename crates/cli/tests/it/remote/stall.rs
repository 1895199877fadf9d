//! A server that stalls: it answers every request of a pull but dribbles
//! one object's body a byte at a time. The pull gives up within its stall
//! window (retries included) naming the URL, keeps what it verified, and a
//! rerun against a healthy server fetches only the rest.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::dev_server::DevServer;
use crate::common::publish::*;
use crate::common::*;

/// How often the hostile server sends one byte of the slow object.
const DRIBBLE: Duration = Duration::from_millis(300);

/// Serves the files under `root` over HTTP/1.1 (keep-alive, requests read
/// one after another, so pipelining works), except that the body of
/// `slow` (a path under `root`) goes out a byte every [`DRIBBLE`] until
/// the client hangs up. Returns the URL; the server lives as long as the
/// test process.
fn dribbling_server(root: &Path, slow: &Path) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (root, slow) = (root.to_owned(), slow.to_owned());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let (root, slow) = (root.clone(), slow.clone());
            std::thread::spawn(move || serve_connection(conn, &root, &slow));
        }
    });
    url
}

fn serve_connection(conn: TcpStream, root: &Path, slow: &Path) {
    let mut reader = BufReader::new(&conn);
    let mut out = &conn;
    loop {
        let mut request = String::new();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line.trim().is_empty() => break,
                Ok(_) => request.push_str(&line),
            }
        }
        let path = request.split_whitespace().nth(1).unwrap_or("/");
        let file: PathBuf = root.join(path.trim_start_matches('/'));
        let Ok(body) = std::fs::read(&file) else {
            let missing = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            if out.write_all(missing.as_bytes()).is_err() {
                return;
            }
            continue;
        };
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        if out.write_all(head.as_bytes()).is_err() {
            return;
        }
        if file != slow {
            if out.write_all(&body).is_err() {
                return;
            }
            continue;
        }
        for b in body {
            std::thread::sleep(DRIBBLE);
            if out.write_all(&[b]).and_then(|()| out.flush()).is_err() {
                return;
            }
        }
    }
}

#[test]
fn a_stalled_transfer_fails_naming_the_url_and_the_rerun_resumes() {
    let p = Publish::with_files();
    let big: String = (0..4000).map(|i| format!("line {i}\n")).collect();
    write_files(&p.tree, &[("usr/lib/big", &big)]);
    let commit = p.publish(TIMESTAMP);
    let all = pulled_kinds(&objects(&p.server));
    let slow = all
        .iter()
        .filter(|o| o.extension().is_some_and(|e| e == "filez"))
        .max_by_key(|o| std::fs::metadata(o).map(|m| m.len()).unwrap_or(0))
        .expect("a content object")
        .clone();
    let rel = slow.strip_prefix(&p.server).expect("under the server");

    let hostile = dribbling_server(&p.server, &slow);
    p.add_trusting_remote(&hostile);
    let start = Instant::now();
    let r = p.pull(&["--stall-timeout", "1"]).failed();
    let took = start.elapsed();
    let url = format!("{hostile}/{}", rel.display());
    assert!(
        r.stderr.contains(&url),
        "the error should name {url}: {r:#?}"
    );
    assert!(
        r.stderr.contains("stalled"),
        "the error should say why: {r:#?}"
    );
    // Five attempts of about a second each, and their backoff.
    assert!(
        took < Duration::from_secs(30),
        "a 1 s stall window took {took:?} to give up"
    );
    assert_eq!(p.client_ref(), None, "a failed pull must not move the ref");
    p.fsck_client();
    let stored = pulled_kinds(&objects(&p.client)).len();
    assert!(
        stored > 0,
        "the failed pull should keep the objects it verified"
    );

    on(&p.client, ["remote", "delete", REMOTE]).ok();
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    let r = p.pull(&[]).ok();
    assert_eq!(
        fetched_objects(&r) as usize,
        all.len() - stored,
        "the rerun should fetch only what the stalled pull did not keep: {r:#?}"
    );
    assert_eq!(p.client_ref().as_deref(), Some(commit.as_str()));
    p.fsck_client();
}
