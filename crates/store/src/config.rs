//! The repository `config` file: an ini file in GLib key-file syntax.
//!
//! Sections and keys keep their order, so rewriting a file that ostree made
//! changes only what we set, apart from comments and blank lines, which
//! are not kept.

use std::fmt::Write as _;

/// A parsed key file: sections of `key=value`, in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Config {
    /// Parses key-file text; comments and blank lines are dropped.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut config = Config::default();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                config.sections.push((name.to_owned(), Vec::new()));
            } else if let Some((k, v)) = line.split_once('=') {
                let Some((_, entries)) = config.sections.last_mut() else {
                    return Err(format!("line {}: key outside of a section", n + 1));
                };
                entries.push((k.trim().to_owned(), v.trim().to_owned()));
            } else {
                return Err(format!("line {}: expected [section] or key=value", n + 1));
            }
        }
        Ok(config)
    }

    /// The value of `key` in `section`, if set.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .filter(|(s, _)| s == section)
            .flat_map(|(_, e)| e.iter())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` in `section`, in place if it exists, else appended (and the
    /// section with it).
    pub fn set(&mut self, section: &str, key: &str, value: &str) {
        let idx = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_owned(), Vec::new()));
                self.sections.len() - 1
            }
        };
        let entries = &mut self.sections[idx].1;
        match entries.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_owned(),
            None => entries.push((key.to_owned(), value.to_owned())),
        }
    }

    /// Removes `section` with its keys; `false` if there was none.
    pub fn remove_section(&mut self, section: &str) -> bool {
        let before = self.sections.len();
        self.sections.retain(|(s, _)| s != section);
        before != self.sections.len()
    }

    /// The section names, in file order.
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(s, _)| s.as_str())
    }

    /// The keys and values of `section` (of every section of that name),
    /// in file order.
    pub fn entries<'a>(&'a self, section: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.sections
            .iter()
            .filter(move |(s, _)| s == section)
            .flat_map(|(_, e)| e.iter())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

impl std::fmt::Display for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = String::new();
        for (i, (name, entries)) in self.sections.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = writeln!(out, "[{name}]");
            for (k, v) in entries {
                let _ = writeln!(out, "{k}={v}");
            }
        }
        f.write_str(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_ostree_config() {
        let text = "[core]\nrepo_version=1\nmode=archive-z2\n\n[remote \"origin\"]\nurl=http://x\n";
        let c = Config::parse(text).expect("parses");
        assert_eq!(c.get("core", "mode"), Some("archive-z2"));
        assert_eq!(c.get("remote \"origin\"", "url"), Some("http://x"));
        assert_eq!(c.to_string(), text);
        assert!(Config::parse("mode=bare\n").is_err());
    }
}
