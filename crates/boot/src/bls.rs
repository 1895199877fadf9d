//! BLS type 1 entries: parsing and writing the text, naming the files. Pure.

use std::fmt::Write as _;

/// Digits of the generation in file names; zero-padding keeps a plain
/// lexical sort equal to the numeric one.
const GENERATION_DIGITS: usize = 6;
/// Every strata entry's `sort-key`: systemd-boot then orders ours by version.
pub const SORT_KEY: &str = "strata";

/// One boot entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The menu title.
    pub title: String,
    /// Boot order: the highest generation boots by default.
    pub generation: u64,
    /// The kernel, as a path on the ESP.
    pub linux: String,
    /// The initramfs, as a path on the ESP.
    pub initrd: String,
    /// The kernel command line.
    pub options: String,
}

impl Entry {
    /// The entry text.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "title {}", self.title);
        // Padded as in the file name, so a lexical sort of either agrees.
        let _ = writeln!(
            s,
            "version {:0width$}",
            self.generation,
            width = GENERATION_DIGITS
        );
        let _ = writeln!(s, "sort-key {SORT_KEY}");
        let _ = writeln!(s, "linux {}", self.linux);
        let _ = writeln!(s, "initrd {}", self.initrd);
        let _ = writeln!(s, "options {}", self.options);
        s
    }

    /// Parses an entry's text; unknown keys are ignored, as the spec asks.
    pub fn parse(text: &str) -> Result<Entry, String> {
        let mut e = Entry {
            title: String::new(),
            generation: 0,
            linux: String::new(),
            initrd: String::new(),
            options: String::new(),
        };
        let mut have_version = false;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let v = v.trim();
            match k {
                "title" => e.title = v.to_owned(),
                "version" => {
                    e.generation = v
                        .parse()
                        .map_err(|_| format!("version {v:?} is not a strata generation number"))?;
                    have_version = true;
                }
                "linux" => e.linux = v.to_owned(),
                "initrd" => e.initrd = v.to_owned(),
                "options" => {
                    if !e.options.is_empty() {
                        e.options.push(' ');
                    }
                    e.options.push_str(v);
                }
                _ => {}
            }
        }
        if !have_version || e.linux.is_empty() {
            return Err("missing version or linux line".into());
        }
        Ok(e)
    }

    /// The value of kernel argument `key` in `options` (`key=value`).
    pub fn karg(&self, key: &str) -> Option<&str> {
        self.options
            .split_whitespace()
            .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }
}

/// A parsed entry file name: `strata-<stateroot>-<generation>[+LEFT[-DONE]].conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryName {
    /// The stateroot the entry boots.
    pub stateroot: String,
    /// Its [`Entry::generation`].
    pub generation: u64,
    /// Boot counting: tries left and tries done, when counting is on.
    pub counter: Option<(u32, Option<u32>)>,
}

impl EntryName {
    /// The entry's file name; [`EntryName::parse`] reads it back.
    pub fn file_name(&self) -> String {
        let counter = match self.counter {
            None => String::new(),
            Some((left, None)) => format!("+{left}"),
            Some((left, Some(done))) => format!("+{left}-{done}"),
        };
        format!(
            "strata-{}-{:0width$}{counter}.conf",
            self.stateroot,
            self.generation,
            width = GENERATION_DIGITS
        )
    }

    /// systemd-boot's "bad": counting is on and no tries are left. Such an
    /// entry sorts after every other, so the machine falls back to the
    /// next one.
    pub fn is_bad(&self) -> bool {
        matches!(self.counter, Some((0, _)))
    }

    /// On trial: counting is on and tries are left (systemd-boot's
    /// "indeterminate"); `systemd-bless-boot good` drops the counter.
    pub fn on_trial(&self) -> bool {
        matches!(self.counter, Some((left, _)) if left > 0)
    }

    /// The order systemd-boot boots our entries in, first the default:
    /// bad entries last, then the highest generation first (sort-key and
    /// version, which the generation sets).
    pub fn boot_order(&self, other: &EntryName) -> std::cmp::Ordering {
        (self.is_bad(), std::cmp::Reverse(self.generation))
            .cmp(&(other.is_bad(), std::cmp::Reverse(other.generation)))
    }

    /// Recognizes our entry names; `None` for anything else (other
    /// distributions' entries are left alone).
    pub fn parse(name: &str) -> Option<EntryName> {
        let stem = name.strip_prefix("strata-")?.strip_suffix(".conf")?;
        let (base, counter) = match stem.split_once('+') {
            Some((b, c)) => {
                let (left, done) = match c.split_once('-') {
                    Some((l, d)) => (digits(l)?, Some(digits(d)?)),
                    None => (digits(c)?, None),
                };
                (b, Some((left, done)))
            }
            None => (stem, None),
        };
        let (stateroot, gen_text) = base.rsplit_once('-')?;
        if stateroot.is_empty()
            || gen_text.is_empty()
            || !gen_text.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Some(EntryName {
            stateroot: stateroot.to_owned(),
            generation: gen_text.parse().ok()?,
            counter,
        })
    }
}

/// A counter: decimal digits only (`u32::from_str` would also take `+1`).
fn digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trip() {
        let e = Entry {
            title: "Debian GNU/Linux 12 (default, v2)".into(),
            generation: 7,
            linux: "/strata/default-ab/vmlinuz".into(),
            initrd: "/strata/default-ab/initramfs.img".into(),
            options: "root=UUID=x rw strata=/strata/deploy/default/abc.0 quiet".into(),
        };
        assert_eq!(Entry::parse(&e.to_text()), Ok(e.clone()));
        assert!(e.to_text().contains("\nversion 000007\n"));
        assert_eq!(e.karg("strata"), Some("/strata/deploy/default/abc.0"));
        assert_eq!(e.karg("root"), Some("UUID=x"));
        assert_eq!(e.karg("quie"), None);
        assert!(Entry::parse("title x\n").is_err());
    }

    #[test]
    fn counter_states() {
        let name = |c| EntryName {
            stateroot: "d".into(),
            generation: 2,
            counter: c,
        };
        // (counter, bad, on trial), through systemd-boot's series
        // +3 → +2-1 → +1-2 → +0-3, and blessed (no counter).
        let cases = [
            (None, false, false),
            (Some((3, None)), false, true),
            (Some((2, Some(1))), false, true),
            (Some((1, Some(2))), false, true),
            (Some((0, Some(3))), true, false),
            (Some((0, None)), true, false),
        ];
        for (counter, bad, trial) in cases {
            let n = name(counter);
            assert_eq!((n.is_bad(), n.on_trial()), (bad, trial), "{counter:?}");
            assert_eq!(EntryName::parse(&n.file_name()), Some(n.clone()));
        }
        // foo+2-1.conf is never foo.conf: both parse, to different names.
        assert_ne!(
            EntryName::parse("strata-d-000002+2-1.conf"),
            EntryName::parse("strata-d-000002.conf")
        );
        for bad in [
            "strata-d-000002+.conf",
            "strata-d-000002+x.conf",
            "strata-d-000002+1-.conf",
            "strata-d-000002+-1.conf",
            "strata-d-000002+1-2-3.conf",
            "strata-d-000002++1.conf",
            "strata-d-000002+1-+2.conf",
        ] {
            assert_eq!(EntryName::parse(bad), None, "{bad}");
        }
        // A bad entry boots after an older good one; otherwise newest first.
        let mut names = [
            EntryName {
                generation: 1,
                ..name(None)
            },
            EntryName {
                generation: 3,
                ..name(Some((0, Some(3))))
            },
            EntryName {
                generation: 2,
                ..name(Some((1, Some(2))))
            },
        ];
        names.sort_by(EntryName::boot_order);
        let order: Vec<u64> = names.iter().map(|n| n.generation).collect();
        assert_eq!(order, vec![2, 1, 3]);
    }

    #[test]
    fn names() {
        let cases = [
            ("strata-default-000007.conf", Some(("default", 7, None))),
            (
                "strata-os-a-000123+3.conf",
                Some(("os-a", 123, Some((3, None)))),
            ),
            (
                "strata-default-000007+2-1.conf",
                Some(("default", 7, Some((2, Some(1))))),
            ),
            ("debian-6.1.conf", None),
            ("strata-default-.conf", None),
            ("strata-000001.conf", None),
            ("strata-default-00x.conf", None),
        ];
        for (name, want) in cases {
            let got = EntryName::parse(name);
            assert_eq!(
                got.as_ref()
                    .map(|n| (n.stateroot.as_str(), n.generation, n.counter)),
                want,
                "{name}"
            );
            if let Some(n) = got {
                assert_eq!(n.file_name(), name);
            }
        }
        // Lexical order of names equals numeric order of generations.
        let mut names: Vec<String> = [9u64, 10, 100, 2]
            .iter()
            .map(|g| {
                EntryName {
                    stateroot: "d".into(),
                    generation: *g,
                    counter: None,
                }
                .file_name()
            })
            .collect();
        names.sort();
        assert_eq!(
            names
                .iter()
                .map(|n| EntryName::parse(n).map(|e| e.generation))
                .collect::<Vec<_>>(),
            vec![Some(2), Some(9), Some(10), Some(100)]
        );
    }
}
