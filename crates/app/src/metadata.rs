//! The `metadata` key file of an app or runtime (Flatpak's format,
//! `flatpak-metadata(5)`): what it is, what it runs, and what it may
//! reach outside its sandbox. Pure.

use strata_store::config::Config;

use crate::error::{Error, Result};
use crate::flatpak_ref::{FlatpakRef, Kind, validate_id};

/// What an app or runtime's `metadata` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// App or runtime (`[Application]` or `[Runtime]`).
    pub kind: Kind,
    /// Its ID (`name=`).
    pub name: String,
    /// An app's runtime (`runtime=ID/ARCH/BRANCH`); `None` for runtimes.
    pub runtime: Option<FlatpakRef>,
    /// What `run` starts when no command is given (`command=`).
    pub command: Option<String>,
    /// What it may reach (`[Context]`).
    pub context: Context,
    /// Variables set in the sandbox (`[Environment]`), in file order.
    pub environment: Vec<(String, String)>,
}

/// The `[Context]` group: the permissions granted. Entries negated with
/// `!` are dropped: nothing is granted unless named.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Context {
    /// `shared=`: `network`, `ipc`.
    pub shared: Vec<String>,
    /// `sockets=`: `x11`, `wayland`, `pulseaudio`, ….
    pub sockets: Vec<String>,
    /// `devices=`: `dri`, `all`, ….
    pub devices: Vec<String>,
    /// `filesystems=`: `home`, `~/Dir`, `/path`, `xdg-download`, with
    /// `:ro`, `:rw` or `:create`.
    pub filesystems: Vec<String>,
    /// `persistent=`: directories of `$HOME` kept in the app's data.
    pub persistent: Vec<String>,
}

impl Context {
    /// Whether `shared=` grants `what` (`network`, `ipc`).
    pub fn shares(&self, what: &str) -> bool {
        self.shared.iter().any(|s| s == what)
    }
}

/// Reads the text of a `metadata` file; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<Metadata> {
    let bad = |what: String| Error::BadMetadata {
        source_name: source.to_owned(),
        what,
    };
    let kf = Config::parse(text).map_err(bad)?;
    let app = kf.section_names().any(|s| s == "Application");
    let runtime = kf.section_names().any(|s| s == "Runtime");
    let (kind, group) = match (app, runtime) {
        (true, false) => (Kind::App, "Application"),
        (false, true) => (Kind::Runtime, "Runtime"),
        (true, true) => return Err(bad("has both [Application] and [Runtime]".into())),
        (false, false) => {
            return Err(bad(
                "has neither [Application] nor [Runtime]: not an app or runtime".into(),
            ));
        }
    };
    // GLib takes the last of a key set twice, this parser the first: a
    // file read differently by strata and by Flatpak's tools is refused.
    for g in [group, "Context", "Environment"] {
        let mut seen = std::collections::BTreeSet::new();
        for (k, _) in kf.entries(g) {
            if !seen.insert(k) {
                return Err(bad(format!("[{g}] sets {k} more than once")));
            }
        }
    }
    let name = kf
        .get(group, "name")
        .ok_or_else(|| bad(format!("[{group}] has no name=")))?
        .to_owned();
    validate_id(&name).map_err(|e| bad(e.to_string()))?;
    let runtime = match (kind, kf.get(group, "runtime")) {
        (Kind::App, None) => return Err(bad("[Application] has no runtime=".into())),
        (Kind::App, Some(r)) => {
            Some(FlatpakRef::parse_runtime(r).map_err(|e| bad(format!("runtime=: {e}")))?)
        }
        (Kind::Runtime, _) => None,
    };
    let command = kf.get(group, "command").map(str::to_owned);
    if let Some(c) = &command
        && (c.is_empty() || c.contains('\0'))
    {
        return Err(bad("command= is empty".into()));
    }
    let list = |key: &str| granted(kf.get("Context", key).unwrap_or(""));
    let context = Context {
        shared: list("shared"),
        sockets: list("sockets"),
        devices: list("devices"),
        filesystems: list("filesystems"),
        persistent: list("persistent"),
    };
    let environment = kf
        .entries("Environment")
        .map(|(k, v)| (k.to_owned(), unescape(v)))
        .collect();
    Ok(Metadata {
        kind,
        name,
        runtime,
        command,
        context,
        environment,
    })
}

/// A key-file list (`a;b;c;`), its entries unescaped, negated ones (`!a`)
/// and those they negate dropped.
fn granted(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in split_list(value) {
        if let Some(denied) = item.strip_prefix('!') {
            out.retain(|g| g != denied);
        } else if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Splits a GLib key-file list at unescaped `;`.
fn split_list(value: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut cur = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(';') => cur.push(';'),
                Some(other) => {
                    cur.push('\\');
                    cur.push(other);
                }
                None => cur.push('\\'),
            },
            ';' => items.push(unescape(&std::mem::take(&mut cur))),
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        items.push(unescape(&cur));
    }
    items.retain(|i| !i.is_empty());
    items
}

/// GLib key-file escapes: `\s \n \t \r \\`.
fn unescape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(o) => out.push(o),
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "[Application]
name=org.example.Hello
runtime=org.example.Platform/x86_64/1
sdk=org.example.Sdk/x86_64/1
command=hello

[Context]
shared=network;ipc;!ipc;
sockets=wayland;
filesystems=xdg-download;~/Music:ro;/srv/data\\;x;

[Environment]
GREETING=hi\\sthere
";

    #[test]
    fn an_app() {
        let m = parse(APP, "test").expect("test input");
        assert_eq!(m.kind, Kind::App);
        assert_eq!(m.name, "org.example.Hello");
        assert_eq!(
            m.runtime.expect("test input").to_string(),
            "runtime/org.example.Platform/x86_64/1"
        );
        assert_eq!(m.command.as_deref(), Some("hello"));
        assert_eq!(m.context.shared, ["network"]);
        assert!(m.context.shares("network") && !m.context.shares("ipc"));
        assert_eq!(
            m.context.filesystems,
            ["xdg-download", "~/Music:ro", "/srv/data;x"]
        );
        assert_eq!(m.environment, [("GREETING".into(), "hi there".into())]);
    }

    #[test]
    fn a_runtime() {
        let m = parse("[Runtime]\nname=org.example.Platform\n", "t").expect("test input");
        assert_eq!(m.kind, Kind::Runtime);
        assert!(m.runtime.is_none() && m.context == Context::default());
    }

    #[test]
    fn malformed_ones_name_the_problem() {
        for (text, says) in [
            ("", "neither"),
            ("name=x\n", "outside of a section"),
            ("[Application]\nruntime=org.a.B/x86_64/1\n", "no name="),
            ("[Application]\nname=org.a.App\n", "no runtime="),
            (
                "[Application]\nname=bad\nruntime=org.a.B/x86_64/1\n",
                "three elements",
            ),
            (
                "[Application]\nname=org.a.App\nruntime=org.a.B\n",
                "ID/ARCH/BRANCH",
            ),
            (
                "[Application]\nname=org.a.App\nruntime=../../x/1\n",
                "runtime=",
            ),
            (
                "[Runtime]\nname=org.a.B\n[Context]\nfilesystems=home;\nfilesystems=\n",
                "[Context] sets filesystems more than once",
            ),
            (
                "[Runtime]\nname=org.a.B\n[Application]\nname=org.a.C\n",
                "both",
            ),
        ] {
            let e = parse(text, "commit abc")
                .expect_err("must fail")
                .to_string();
            assert!(
                e.starts_with("commit abc: ") && e.contains(says),
                "{text:?}: {e}"
            );
        }
    }
}
