//! The machine's strata settings, `/etc/strata/strata.conf`: boot
//! counting, health checks and unattended updates. Pure: [`Settings::parse`]
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
//!
//! [update]
//! policy=none              # none | check | download | stage | apply
//! window-days=Mon Tue Wed Thu Fri Sat Sun   # reboot window (UTC), as zincati's
//! window-start=03:00
//! window-minutes=120
//! session-wait=60m         # how long a reboot waits for logged-in users (s, m, h;
//!                          # a plain number is minutes; 0: do not wait)
//! ```
//!
//! Unknown sections and keys are errors (a typo must not silently turn a
//! feature off); every error names the file and the line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::Error;
use crate::window::{Window, parse_days, parse_hhmm};

/// Where the settings live, relative to a deployment's root.
pub const PATH: &str = "etc/strata/strata.conf";

/// What the unattended updater does (`[update] policy`), as rpm-ostree's
/// `AutomaticUpdatePolicy` plus `download`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Nothing.
    None,
    /// Find out whether an update is available and remember it.
    Check,
    /// Also pull it.
    Download,
    /// Also deploy it as a staged deployment, finalized at the next shutdown.
    Stage,
    /// Also reboot into it, inside the reboot window.
    Apply,
}

impl Policy {
    fn parse(s: &str) -> Option<Policy> {
        Some(match s {
            "none" => Policy::None,
            "check" => Policy::Check,
            "download" => Policy::Download,
            "stage" => Policy::Stage,
            "apply" => Policy::Apply,
            _ => return None,
        })
    }
}

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
    /// `[update] policy`.
    pub policy: Policy,
    /// `[update] window-*`: when an `apply` may reboot; `None`: any time.
    pub window: Option<Window>,
    /// `[update] session-wait`: how long a reboot waits for logged-in users.
    pub session_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            tries: 3,
            check_timeout: Duration::from_secs(120),
            reboot_on_failure: true,
            require_multi_user: true,
            units: Vec::new(),
            policy: Policy::None,
            window: None,
            session_wait: Duration::from_secs(60 * 60),
        }
    }
}

/// `90s`, `30m`, `2h`, or a plain number of minutes; at most a week.
fn parse_wait(v: &str) -> Option<Duration> {
    let (digits, unit) = match v.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&v[..i], &v[i..]),
        None => (v, "m"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = n.checked_mul(match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    })?;
    (secs <= 7 * 24 * 3600).then(|| Duration::from_secs(secs))
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
        let (mut days, mut start, mut minutes) = (None, None, None);
        let mut window_line = 0;
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if !["boot", "health", "update"].contains(&name) {
                    return Err(bad(
                        n,
                        format!("unknown section [{name}]; known: [boot], [health], [update]"),
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
                ("update", "policy") => {
                    s.policy = Policy::parse(value).ok_or_else(|| {
                        bad(
                            n,
                            format!(
                                "policy={value:?}: expected none, check, download, stage or apply"
                            ),
                        )
                    })?
                }
                ("update", "window-days") => {
                    days = Some(parse_days(value).map_err(|why| bad(n, why))?);
                    window_line = n;
                }
                ("update", "window-start") => {
                    start = Some(parse_hhmm(value).map_err(|why| bad(n, why))?);
                    window_line = n;
                }
                ("update", "window-minutes") => {
                    let m = number(7 * 24 * 60)? as u32;
                    if m == 0 {
                        return Err(bad(
                            n,
                            "window-minutes=0: a window must be open at least a minute".into(),
                        ));
                    }
                    minutes = Some(m);
                    window_line = n;
                }
                ("update", "session-wait") => {
                    s.session_wait = parse_wait(value)
                        .ok_or_else(|| bad(n, format!("session-wait={value:?}: expected a duration like 90s, 30m or 2h (at most a week)")))?
                }
                (sec, _) => return Err(bad(n, format!("unknown key {key:?} in [{sec}]"))),
            }
        }
        s.window = match (days, start, minutes) {
            (None, None, None) => None,
            (days, Some(start), Some(minutes)) => Some(Window {
                days: days.unwrap_or([true; 7]),
                start_minute: start,
                minutes,
            }),
            _ => {
                return Err(bad(
                    window_line,
                    "a reboot window needs window-start and window-minutes (window-days defaults to every day)".into(),
                ));
            }
        };
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
            "# comment\n[boot]\ntries = 2\n[health]\ntimeout=5\nreboot=no\nunits=a.service b.service\n\
             [update]\npolicy=apply\nwindow-days=Sat Sun\nwindow-start=22:30\nwindow-minutes=90\nsession-wait=20s\n",
        )
        .expect("parses");
        assert_eq!(s.tries, 2);
        assert_eq!(s.check_timeout, Duration::from_secs(5));
        assert!(!s.reboot_on_failure);
        assert_eq!(s.units, ["a.service", "b.service"]);
        assert_eq!(s.policy, Policy::Apply);
        let w = s.window.expect("window");
        assert_eq!((w.start_minute, w.minutes), (22 * 60 + 30, 90));
        assert_eq!(w.days, [false, false, false, false, false, true, true]);
        assert_eq!(s.session_wait, Duration::from_secs(20));
        for (v, secs) in [
            ("0", Some(0)),
            ("5", Some(300)),
            ("2h", Some(7200)),
            ("1x", None),
            ("s", None),
            ("169h", None),
        ] {
            assert_eq!(parse_wait(v).map(|d| d.as_secs()), secs, "{v}");
        }
    }

    /// What prepare-tree ships: every key commented out, so the defaults.
    #[test]
    fn the_shipped_file_is_the_defaults() {
        assert_eq!(
            parse(strata_boot::units::DEFAULT_SETTINGS),
            Ok(Settings::default())
        );
        let uncommented: String = strata_boot::units::DEFAULT_SETTINGS
            .lines()
            .map(|l| {
                l.strip_prefix('#')
                    .filter(|r| r.starts_with(|c: char| c.is_ascii_lowercase()))
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            parse(&uncommented),
            Ok(Settings::default()),
            "the values shown are the defaults"
        );
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let cases = [
            ("[boot]\ntries=many\n", "strata.conf:2:", "tries"),
            ("[boot]\ntries=11\n", ":2:", "0 to 10"),
            ("[boot]\ntires=3\n", ":2:", "unknown key \"tires\""),
            ("[bot]\n", ":1:", "unknown section [bot]"),
            ("tries=3\n", ":1:", "outside of a [section]"),
            (
                "[update]\n\npolicy=sometimes\n",
                ":3:",
                "expected none, check",
            ),
            ("[update]\nwindow-start=25:00\n", ":2:", "25:00"),
            ("[update]\nwindow-days=Mon Funday\n", ":2:", "Funday"),
            ("[update]\nwindow-start=03:00\n", ":2:", "window-minutes"),
            ("[update]\nwindow-minutes=0\n", ":2:", "at least a minute"),
            ("[health]\nreboot=maybe\n", ":2:", "true or false"),
            ("[update]\nsession-wait=soon\n", ":2:", "session-wait"),
            ("[boot]\n\ntries=-1\n", ":3:", "tries"),
            ("[health]\nnot a key\n", ":2:", "key=value"),
        ];
        for (text, place, why) in cases {
            let e = parse(text).expect_err(text);
            assert!(e.starts_with("/etc/strata/strata.conf"), "{e}");
            assert!(e.contains(place) && e.contains(why), "{text:?}: {e}");
        }
    }
}
