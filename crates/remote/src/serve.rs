//! A small static file server for development: serves a repository
//! directory over HTTP with keep-alive and single-range requests. For
//! production, serve the directory with nginx or any static server (see
//! the README).

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Serves `root` on `listen` (e.g. `127.0.0.1:8080`) until the process ends.
/// `on_ready` receives the bound address (useful with port 0). One thread
/// per connection; connections are kept alive between requests.
pub fn run(root: &Path, listen: &str, on_ready: impl FnOnce(std::net::SocketAddr)) -> Result<()> {
    let listener = TcpListener::bind(listen).map_err(|source| Error::Io {
        action: "listen on",
        path: listen.into(),
        source,
    })?;
    if let Ok(addr) = listener.local_addr() {
        on_ready(addr);
    }
    for stream in listener.incoming().flatten() {
        let root = root.to_owned();
        std::thread::spawn(move || {
            let _ = serve_connection(&root, stream);
        });
    }
    Ok(())
}

/// Largest request head accepted.
const MAX_HEAD: usize = 16 << 10;

fn serve_connection(root: &Path, stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    loop {
        // Reading the head stays ours (httparse parses a buffer): lines up
        // to the empty one, capped at MAX_HEAD.
        let mut head = Vec::new();
        let mut lines = 0;
        while !head.ends_with(b"\r\n\r\n") {
            let mut line = Vec::new();
            if reader
                .by_ref()
                .take((MAX_HEAD - head.len()) as u64)
                .read_until(b'\n', &mut line)?
                == 0
            {
                return Ok(()); // client closed
            }
            head.extend_from_slice(&line);
            lines += 1;
            if head.len() >= MAX_HEAD {
                return write_status(&mut out, 431, "request head too large\n", true);
            }
            if head == b"\r\n" {
                head.clear(); // tolerate blank lines between requests
                lines = 0;
            }
        }
        let mut headers = vec![httparse::EMPTY_HEADER; lines];
        let mut request = httparse::Request::new(&mut headers);
        let (Ok(httparse::Status::Complete(_)), Some(method), Some(target)) =
            (request.parse(&head), request.method, request.path)
        else {
            return write_status(&mut out, 400, "bad request\n", true);
        };
        let mut range = None;
        let mut close = false;
        for header in request.headers.iter() {
            if header.name.eq_ignore_ascii_case("range") {
                range = Some(String::from_utf8_lossy(header.value));
            } else if header.name.eq_ignore_ascii_case("connection")
                && header.value.eq_ignore_ascii_case(b"close")
            {
                close = true;
            }
        }
        respond(root, method, target, range.as_deref(), close, &mut out)?;
        if close {
            return Ok(());
        }
    }
}

fn write_status(out: &mut TcpStream, code: u16, text: &str, close: bool) -> std::io::Result<()> {
    let conn = if close { "close" } else { "keep-alive" };
    write!(
        out,
        "HTTP/1.1 {code} {}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\nConnection: {conn}\r\n\r\n{text}",
        reason(code),
        text.len()
    )?;
    out.flush()
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        206 => "Partial Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    }
}

fn respond(
    root: &Path,
    method: &str,
    target: &str,
    range: Option<&str>,
    close: bool,
    out: &mut TcpStream,
) -> std::io::Result<()> {
    if method != "GET" && method != "HEAD" {
        return write_status(out, 405, "method not allowed\n", close);
    }
    let Some(path) = resolve(root, target) else {
        return write_status(out, 404, "not found\n", close);
    };
    let Ok(mut file) = File::open(&path) else {
        return write_status(out, 404, "not found\n", close);
    };
    let len = match file.metadata() {
        Ok(m) if m.is_file() => m.len(),
        _ => return write_status(out, 404, "not found\n", close),
    };
    let conn = if close { "close" } else { "keep-alive" };
    let (code, start, n, extra) = match range {
        None => (200, 0, len, String::new()),
        Some(r) => match parse_range(r, len) {
            Some((s, e)) => (
                206,
                s,
                e - s + 1,
                format!("Content-Range: bytes {s}-{e}/{len}\r\n"),
            ),
            None => {
                let text = "range not satisfiable\n";
                write!(
                    out,
                    "HTTP/1.1 416 {}\r\nContent-Range: bytes */{len}\r\nContent-Length: {}\r\nConnection: {conn}\r\n\r\n{text}",
                    reason(416),
                    text.len()
                )?;
                return out.flush();
            }
        },
    };
    write!(
        out,
        "HTTP/1.1 {code} {}\r\nContent-Length: {n}\r\nAccept-Ranges: bytes\r\n{extra}Connection: {conn}\r\n\r\n",
        reason(code)
    )?;
    if method == "GET" {
        file.seek(SeekFrom::Start(start))?;
        std::io::copy(&mut file.take(n), out)?;
    }
    out.flush()
}

/// Maps a URL path to a file under `root`, refusing anything that is not a
/// plain relative path (no `..`, no absolute components).
pub fn resolve(root: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("");
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(root.join(rel))
}

/// Parses `bytes=START-END` / `bytes=START-` / `bytes=-SUFFIX` for a file of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        (len.checked_sub(n.min(len))?, len.checked_sub(1)?)
    } else {
        let s: u64 = a.parse().ok()?;
        let e = if b.is_empty() {
            len.checked_sub(1)?
        } else {
            b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
        };
        (s, e)
    };
    (start <= end && end < len).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-200", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    /// Pipelined requests with a range and a final `Connection: close`,
    /// then a request that is not HTTP, each on its own connection.
    #[test]
    fn requests_are_parsed() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("f"), "0123456789").expect("write f");
        let root = dir.path().to_owned();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = run(&root, "127.0.0.1:0", |addr| {
                let _ = tx.send(addr);
            });
        });
        let addr = rx.recv().expect("the server's address");
        let exchange = |request: &str| {
            let mut conn = TcpStream::connect(addr).expect("connect");
            conn.write_all(request.as_bytes()).expect("send");
            let mut answer = String::new();
            conn.read_to_string(&mut answer).expect("read until close");
            answer
        };
        let answer = exchange(
            "\r\nGET /f HTTP/1.1\r\nHost: x\r\nRange:  bytes=2-4 \r\n\r\n\
             GET /missing HTTP/1.1\r\n\r\n\
             HEAD /f HTTP/1.1\r\nConnection: close\r\n\r\n",
        );
        let statuses: Vec<&str> = answer
            .split("HTTP/1.1 ")
            .skip(1)
            .map(|a| a.lines().next().unwrap_or(""))
            .collect();
        assert_eq!(
            statuses,
            ["206 Partial Content", "404 Not Found", "200 OK"],
            "{answer}"
        );
        assert!(
            answer.contains("Content-Range: bytes 2-4/10\r\n"),
            "{answer}"
        );
        assert!(answer.contains("\r\n\r\n234HTTP/1.1 404"), "{answer}");
        assert!(answer.ends_with("Connection: close\r\n\r\n"), "{answer}");
        let answer = exchange("SSH-2.0-OpenSSH\r\n\r\n");
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
    }

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/srv/repo");
        assert_eq!(
            resolve(root, "/objects/ab/cd.filez"),
            Some(root.join("objects/ab/cd.filez"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/objects/../../x"), None);
    }
}
