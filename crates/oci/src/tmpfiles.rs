//! The part of tmpfiles.d(5) that says what a first boot puts in `/var`:
//! directories (`d`, `D`, `v`, `q`, `Q`), symlinks (`L`, `L+`) and copies
//! (`C`). A strata commit keeps `/var` empty and these lines in
//! `usr/lib/tmpfiles.d` (`strata prepare-tree`, `strata layer`); an image
//! has no boot to run them, so the export applies them. Pure.
//!
//! Lines this cannot apply faithfully are left out, not guessed at:
//! other types, paths with globs or `%` specifiers, `..` in a path.

/// Who owns a directory a line makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// `-`: root.
    Default,
    /// A number.
    Id(u32),
    /// A name, to look up in the image's `passwd` or `group`.
    Name(String),
}

/// What a line does at its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Makes a directory.
    Dir {
        /// Permission bits; `None` for the default, 0755.
        mode: Option<u32>,
        /// The owner.
        user: Owner,
        /// The group.
        group: Owner,
    },
    /// Makes a symlink (`L+` too: an image has nothing there to replace,
    /// and what the tree has wins).
    Symlink {
        /// What it points to, as written.
        target: String,
    },
    /// Copies a file or tree from the image (`C`).
    Copy {
        /// The absolute path copied from.
        source: String,
    },
}

/// One line: an absolute path without `.`, `..` or a trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Where it acts, starting with `/`.
    pub path: String,
    /// What it does there.
    pub action: Action,
}

/// The lines of one tmpfiles.d file that [`Action`] covers, in order.
pub fn parse(text: &str) -> Vec<Line> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Line> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_whitespace();
    let kind = fields.next()?;
    let path = normalize(&unescape(fields.next()?)?)?;
    let mut rest: Vec<&str> = fields.collect();
    // The argument is the rest of the line (it may hold spaces, escaped or not).
    let argument = if rest.len() > 4 {
        Some(unescape(&rest.split_off(4).join(" "))?)
    } else {
        None
    };
    let field = |i: usize| rest.get(i).copied().filter(|f| *f != "-");
    let (letter, modifiers) =
        kind.split_at(kind.char_indices().nth(1).map_or(kind.len(), |(i, _)| i));
    if !modifiers.chars().all(|c| "+!-=~^".contains(c)) {
        return None;
    }
    let action = match letter {
        "d" | "D" | "v" | "q" | "Q" => Action::Dir {
            mode: match field(0) {
                None => None,
                Some(m) => {
                    Some(u32::from_str_radix(m.trim_start_matches(['~', ':']), 8).ok()? & 0o7777)
                }
            },
            user: owner(field(1))?,
            group: owner(field(2))?,
        },
        "L" => Action::Symlink {
            target: argument.filter(|a| !a.is_empty() && !a.contains('%'))?,
        },
        "C" => Action::Copy {
            source: match argument {
                Some(a) => normalize(&a)?,
                None => normalize(&format!("/usr/share/factory{path}"))?,
            },
        },
        _ => return None,
    };
    Some(Line { path, action })
}

fn owner(field: Option<&str>) -> Option<Owner> {
    Some(match field {
        None => Owner::Default,
        Some(f) if f.contains('%') => return None,
        Some(f) => f
            .parse()
            .map(Owner::Id)
            .unwrap_or_else(|_| Owner::Name(f.to_owned())),
    })
}

/// `/a//b/./c/` → `/a/b/c`; `None` for a relative path, `..`, a glob or a
/// `%` specifier.
fn normalize(path: &str) -> Option<String> {
    if !path.starts_with('/') || path.contains(['*', '?', '[', '%']) {
        return None;
    }
    let mut out = String::new();
    for part in path.split('/').filter(|p| !p.is_empty() && *p != ".") {
        if part == ".." {
            return None;
        }
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
}

/// tmpfiles.d's C escapes: `\xNN`, `\\`, `\"`, `\'`, `\t`, `\n`, and
/// surrounding double quotes. `None` for a byte sequence that is not UTF-8.
fn unescape(s: &str) -> Option<String> {
    let s = s
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .unwrap_or(s);
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            match b[i + 1] {
                b'x' if i + 3 < b.len() => {
                    let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok()?;
                    out.push(u8::from_str_radix(hex, 16).ok()?);
                    i += 4;
                    continue;
                }
                b't' => out.push(b'\t'),
                b'n' => out.push(b'\n'),
                c @ (b'\\' | b'"' | b'\'') => out.push(c),
                _ => return None,
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_prepare_tree_lines_parse() {
        let text = "# Made by strata prepare-tree\n\
                    d /var/lib/apt 0755 0 0 -\n\
                    d /var/tmp 1777 0 0 -\n\
                    L /var/run - - - - /run\n\
                    C /var/lib/a\\x20b - - - - /usr/share/factory/var/lib/a\\x20b\n\
                    L+ /var/lib/dpkg - - - - ../../usr/share/dpkg/database\n";
        assert_eq!(
            parse(text),
            [
                Line {
                    path: "/var/lib/apt".into(),
                    action: Action::Dir {
                        mode: Some(0o755),
                        user: Owner::Id(0),
                        group: Owner::Id(0)
                    }
                },
                Line {
                    path: "/var/tmp".into(),
                    action: Action::Dir {
                        mode: Some(0o1777),
                        user: Owner::Id(0),
                        group: Owner::Id(0)
                    }
                },
                Line {
                    path: "/var/run".into(),
                    action: Action::Symlink {
                        target: "/run".into(),
                    }
                },
                Line {
                    path: "/var/lib/a b".into(),
                    action: Action::Copy {
                        source: "/usr/share/factory/var/lib/a b".into()
                    }
                },
                Line {
                    path: "/var/lib/dpkg".into(),
                    action: Action::Symlink {
                        target: "../../usr/share/dpkg/database".into(),
                    }
                },
            ]
        );
    }

    #[test]
    fn systemd_style_lines_parse_or_are_left_out() {
        let text = "d /var/log/journal 2755 root systemd-journal - -\n\
                    q /var/tmp 1777 - - 30d\n\
                    C /var/lib/x\n\
                    d- /var/cache/man 0755 man man 1w\n\
                    z /var/log/journal 2755 root systemd-journal - -\n\
                    d /run/user 0755 root root -\n\
                    d /var/lib/%U 0700 - - -\n\
                    d /var/log/*.d 0700 - - -\n\
                    d /var/../etc 0700 - - -\n\
                    L /var/lib/y\n\
                    d var/relative - - - -\n\
                    X /var/tmp/systemd-private-%b-*\n";
        let lines = parse(text);
        let paths: Vec<_> = lines.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "/var/log/journal",
                "/var/tmp",
                "/var/lib/x",
                "/var/cache/man",
                "/run/user"
            ]
        );
        assert_eq!(
            lines[0].action,
            Action::Dir {
                mode: Some(0o2755),
                user: Owner::Name("root".into()),
                group: Owner::Name("systemd-journal".into())
            }
        );
        assert_eq!(
            lines[1].action,
            Action::Dir {
                mode: Some(0o1777),
                user: Owner::Default,
                group: Owner::Default
            }
        );
        assert_eq!(
            lines[2].action,
            Action::Copy {
                source: "/usr/share/factory/var/lib/x".into()
            }
        );
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize("/var//lib/./dpkg/"), Some("/var/lib/dpkg".into()));
        assert_eq!(normalize("/"), Some("/".into()));
        assert_eq!(normalize("/var/../etc"), None);
        assert_eq!(unescape("a\\x2fb"), Some("a/b".into()));
        assert_eq!(unescape("\"quoted\""), Some("quoted".into()));
        assert_eq!(unescape("bad\\q"), None);
    }
}
