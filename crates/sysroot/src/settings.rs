//! The machine's strata settings, `/etc/strata/strata.conf`: boot
//! counting and health checks. Pure: [`Settings::parse`]
//! takes the text; [`crate::Sysroot::settings`] reads the file.
//!
//! ```text
//! [boot]
//! tries=3                  # boot counting: tries of a new deployment (0: off)
//!
//! [health]
//! timeout=120              # seconds a check may run; a check that hangs fails
//! reboot=true              # reboot when a required check fails on a trial boot
//! require-multi-user=true  # multi-user.target must have been reached
//! units=                   # units that must not have failed (space-separated)
//! ```
//!
//! Unknown sections and keys are errors (a typo must not silently turn a
//! feature off); every error names the file and the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;

/// Where the settings live, relative to a deployment's root.
pub const PATH: &str = "etc/strata/strata.conf";

/// The whole file; [`Settings::default`] is what an absent file means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `[boot] tries`: how many times systemd-boot tries a new deployment
    /// before falling back; 0 turns boot counting off.
    pub tries: u32,
    /// `[health] timeout`: how long one check may run.
    pub check_timeout: Duration,
    /// `[health] reboot`: reboot at once when a required check fails on a
    /// trial boot, instead of waiting for the next reboot.
    pub reboot_on_failure: bool,
    /// `[health] require-multi-user`: fail the boot if multi-user.target
    /// was not reached.
    pub require_multi_user: bool,
    /// `[health] units`: units that must not have failed.
    pub units: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tries: 3,
            check_timeout: Duration::from_secs(120),
            reboot_on_failure: true,
            require_multi_user: true,
            units: Vec::new(),
        }
    }
}

/// Tries above this are refused: each failed try costs a boot.
const MAX_TRIES: u32 = 10;

impl Settings {
    /// Parses the file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Settings, Error> {
        let bad = |line: usize, why: String| Error::BadSettings {
            path: path.to_owned(),
            line,
            why,
        };
        let mut s = Settings::default();
        let mut section = String::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if !["boot", "health"].contains(&name) {
                    return Err(bad(
                        n,
                        format!("unknown section [{name}]; known: [boot], [health]"),
                    ));
                }
                section = name.to_owned();
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(bad(n, format!("expected key=value, found {line:?}")));
            };
            let (key, value) = (key.trim(), value.trim());
            let number = |max: u64| -> Result<u64, Error> {
                value
                    .parse::<u64>()
                    .ok()
                    .filter(|v| *v <= max)
                    .ok_or_else(|| bad(n, format!("{key}={value:?}: expected a number 0 to {max}")))
            };
            let boolean = || -> Result<bool, Error> {
                match value {
                    "true" | "yes" | "1" => Ok(true),
                    "false" | "no" | "0" => Ok(false),
                    _ => Err(bad(n, format!("{key}={value:?}: expected true or false"))),
                }
            };
            match (section.as_str(), key) {
                ("", _) => return Err(bad(n, format!("{key}= is outside of a [section]"))),
                ("boot", "tries") => s.tries = number(MAX_TRIES.into())? as u32,
                ("health", "timeout") => {
                    s.check_timeout = Duration::from_secs(number(24 * 3600)?.max(1))
                }
                ("health", "reboot") => s.reboot_on_failure = boolean()?,
                ("health", "require-multi-user") => s.require_multi_user = boolean()?,
                ("health", "units") => {
                    s.units = value.split_whitespace().map(str::to_owned).collect()
                }
                (sec, _) => return Err(bad(n, format!("unknown key {key:?} in [{sec}]"))),
            }
        }
        Ok(s)
    }

    /// Reads `<root>/etc/strata/strata.conf`; an absent file gives the defaults.
    pub fn load(root: &Path) -> Result<Settings, Error> {
        let path: PathBuf = root.join(PATH);
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(strata_store::Error::Io {
                action: "read",
                path,
                source: e,
            }
            .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        Settings::parse(text, Path::new("/etc/strata/strata.conf")).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse(""), Ok(Settings::default()));
        let s = parse(
            "# comment\n[boot]\ntries = 2\n[health]\ntimeout=5\nreboot=no\nunits=a.service b.service\n",
        )
        .expect("parses");
        assert_eq!(s.tries, 2);
        assert_eq!(s.check_timeout, Duration::from_secs(5));
        assert!(!s.reboot_on_failure);
        assert_eq!(s.units, ["a.service", "b.service"]);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("[boot]\ntries=many\n", "strata.conf:2:", "tries"),
            ("[boot]\ntries=11\n", ":2:", "0 to 10"),
            ("[boot]\ntires=3\n", ":2:", "unknown key \"tires\""),
            ("[bot]\n", ":1:", "unknown section [bot]"),
            ("tries=3\n", ":1:", "outside of a [section]"),
            ("[boot]\n\ntries=-1\n", ":3:", "tries"),
            ("[health]\nreboot=maybe\n", ":2:", "true or false"),
            ("[health]\nnot a key\n", ":2:", "key=value"),
        ];
        for (text, place, why) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with("/etc/strata/strata.conf"), "{e}");
            assert!(e.contains(place) && e.contains(why), "{text:?}: {e}");
        }
    }
}
