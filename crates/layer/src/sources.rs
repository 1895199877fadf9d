//! The machine's apt configuration as the sandbox sees it. The sandbox's
//! `/` is the tree being built, so two kinds of paths in the machine's
//! sources would point at the wrong place or nowhere:
//!
//! - `file:` repositories (a mounted disk, a local mirror): each is bound
//!   read-only at `/run/strata/src/<n>` and the URI rewritten to it;
//! - files under `/etc/apt/` (`signed-by=/etc/apt/keyrings/…`): the
//!   machine's `/etc/apt` is copied to `/run/strata/apt`, and the paths
//!   rewritten there.
//!
//! Both formats are plain text with URIs as tokens (`deb [opts] URI suite`
//! lines and deb822 `URIs:` fields), so a token rewrite serves both. Pure.

use std::path::PathBuf;

/// Where the machine's `/etc/apt` is inside the sandbox.
pub const APT_ETC: &str = "/run/strata/apt";
/// Where `file:` repositories are bound inside the sandbox.
const SRC: &str = "/run/strata/src";

/// `file:` repositories found while rewriting, in order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FileSources {
    /// Host paths; the n-th is bound at `/run/strata/src/<n>`.
    pub paths: Vec<PathBuf>,
    /// Whether any other URI (`http://`, `https://`, …) was seen, even in
    /// a comment: without one nothing needs the network.
    pub remote: bool,
}

impl FileSources {
    /// The sandbox path for host path `p`, remembering it.
    fn inside(&mut self, p: &str) -> String {
        let p = PathBuf::from(p);
        let n = match self.paths.iter().position(|q| *q == p) {
            Some(n) => n,
            None => {
                self.paths.push(p);
                self.paths.len() - 1
            }
        };
        format!("{SRC}/{n}")
    }

    /// The sandbox path of the n-th repository.
    pub fn target(n: usize) -> String {
        format!("{SRC}/{n}")
    }
}

/// The host path of a `file:` or `copy:` URI (`file:/p`, `file:///p`).
fn file_uri(token: &str) -> Option<(&str, &str)> {
    for scheme in ["file:", "copy:"] {
        if let Some(rest) = token.strip_prefix(scheme) {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.starts_with('/') {
                return Some((scheme, path));
            }
        }
    }
    None
}

/// Whether `token` is a URI (`scheme:rest`; not a deb822 field name such
/// as `URIs:`, nor an option such as `signed-by=/p`).
fn is_uri(token: &str) -> bool {
    token.split_once(':').is_some_and(|(scheme, rest)| {
        !rest.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
    })
}

/// Rewrites one sources file's text for the sandbox.
pub fn rewrite(text: &str, found: &mut FileSources) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let mut rewritten = String::with_capacity(line.len());
        let mut token = String::new();
        let flush = |token: &mut String, rewritten: &mut String, found: &mut FileSources| {
            if let Some((scheme, path)) = file_uri(token) {
                let trimmed = path.trim_end_matches('/');
                rewritten.push_str(scheme);
                rewritten.push_str(&found.inside(if trimmed.is_empty() { "/" } else { trimmed }));
                if path.ends_with('/') && !trimmed.is_empty() {
                    rewritten.push('/');
                }
            } else {
                found.remote |= is_uri(token);
                rewritten.push_str(&token.replace("/etc/apt/", &format!("{APT_ETC}/")));
            }
            token.clear();
        };
        for c in line.chars() {
            if c.is_whitespace() || c == '[' || c == ']' {
                flush(&mut token, &mut rewritten, found);
                rewritten.push(c);
            } else {
                token.push(c);
            }
        }
        flush(&mut token, &mut rewritten, found);
        out.push_str(&rewritten);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_and_etc_paths_are_rewritten() {
        let mut f = FileSources::default();
        let one = rewrite(
            "deb [trusted=yes] file:/mnt/updates/debs ./\n# file:/x\ndeb [signed-by=/etc/apt/keyrings/k.gpg] http://deb.debian.org/debian bookworm main\n",
            &mut f,
        );
        assert_eq!(
            one,
            "deb [trusted=yes] file:/run/strata/src/0 ./\n# file:/run/strata/src/1\ndeb [signed-by=/run/strata/apt/keyrings/k.gpg] http://deb.debian.org/debian bookworm main\n"
        );
        let two = rewrite(
            "Types: deb\nURIs: file:///mnt/updates/debs/ copy:/srv/m\nSigned-By: /etc/apt/keyrings/k.gpg\n",
            &mut f,
        );
        assert_eq!(
            two,
            "Types: deb\nURIs: file:/run/strata/src/0/ copy:/run/strata/src/2\nSigned-By: /run/strata/apt/keyrings/k.gpg\n"
        );
        assert_eq!(
            f.paths,
            [
                PathBuf::from("/mnt/updates/debs"),
                PathBuf::from("/x"),
                PathBuf::from("/srv/m")
            ]
        );
        let http = "deb http://example.org/debian ./\n";
        assert_eq!(rewrite(http, &mut f), http);
        assert!(f.remote);
    }

    #[test]
    fn any_other_scheme_counts_as_remote() {
        for (text, remote) in [
            (
                "Types: deb\nURIs: file:/m\nSuites: ./\nSigned-By: /etc/apt/k.gpg\n",
                false,
            ),
            (
                "deb [arch=amd64 signed-by=/etc/apt/k.gpg] copy:/m ./\n",
                false,
            ),
            ("deb mirror+file:/etc/apt/mirrors.txt bookworm main\n", true),
            ("URIs: https://deb.debian.org/debian\n", true),
        ] {
            let mut f = FileSources::default();
            rewrite(text, &mut f);
            assert_eq!(f.remote, remote, "{text}");
        }
    }
}
