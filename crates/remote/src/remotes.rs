//! Remotes, kept in the repository config with ostree's keys:
//!
//! ```text
//! [remote "NAME"]
//! url=https://example.com/repo
//! gpg-verify=false
//! sign-verify=true
//! verification-ed25519-key=BASE64        (inline public key)
//! verification-ed25519-file=/path/keys   (one base64 public key per line)
//! verification-ed25519-revoked-file=/path   (strata's own: keys no longer trusted)
//! stall-timeout=30          (strata's own: seconds; see below)
//! stall-min-speed=1000      (strata's own: bytes per second)
//! summary-expiry=ignore     (strata's own: accept an expired summary)
//! ```
//!
//! Verification is on by default: a remote without a key refuses to pull
//! unless it was added with `sign-verify=false`. With it on, refs resolve
//! only through a summary signed by a trusted key, and a summary past the
//! expiry its publisher gave it is refused unless `summary-expiry=ignore`
//! (for an air-gapped mirror that is refreshed by hand). A transfer that
//! brings fewer than `stall-min-speed` bytes per second over
//! `stall-timeout` seconds fails (see [`crate::stall`]); the keys are
//! written only when they differ from the defaults, and ostree ignores them.

use std::path::PathBuf;
use std::time::Duration;

use strata_store::Repo;
use strata_store::refs::validate_remote_name;

use crate::error::{Error, Result};
use crate::keys::{self, TrustedKeys};
use crate::stall::StallLimit;

/// One `[remote "NAME"]` section of the repository config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// The section name, also the prefix of its refs (`NAME:ref`).
    pub name: String,
    /// Where the repository is served: `http://`, `https://` or `file://`.
    pub url: String,
    /// Require an ed25519 signature on every pulled commit.
    pub sign_verify: bool,
    /// An inline trusted public key, base64.
    pub key: Option<String>,
    /// A file of trusted public keys, one base64 key per line.
    pub key_file: Option<PathBuf>,
    /// A file of revoked public keys, same format.
    pub revoked_file: Option<PathBuf>,
    /// When a transfer from it counts as stalled.
    pub stall: StallLimit,
    /// Accept a summary past its expiry (an air-gapped mirror).
    pub ignore_summary_expiry: bool,
    /// With `sign_verify`: also require a signed summary, and resolve refs
    /// only through it (ostree's `sign-verify-summary`). Off, refs may
    /// come from an unsigned summary or `refs/heads`, and only the
    /// commit's own signature is checked.
    pub sign_verify_summary: bool,
}

/// The config keys of [`Remote::stall`] and [`Remote::ignore_summary_expiry`].
const STALL_TIMEOUT: &str = "stall-timeout";
const STALL_MIN_SPEED: &str = "stall-min-speed";
const SUMMARY_EXPIRY: &str = "summary-expiry";
const SIGN_VERIFY_SUMMARY: &str = "sign-verify-summary";

fn section(name: &str) -> String {
    format!("remote \"{name}\"")
}

impl Remote {
    /// The trusted and the revoked keys, read now (files may change).
    pub fn keys(&self) -> Result<TrustedKeys> {
        let mut trusted = Vec::new();
        if let Some(k) = &self.key {
            trusted.push(keys::parse_public(
                k,
                &format!("verification-ed25519-key of remote {}", self.name),
            )?);
        }
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p)
                .map_err(|source| Error::Io {
                    action: "read key file",
                    path: p.clone(),
                    source,
                })
                .and_then(|t| keys::parse_public_file(&t, &p.display().to_string()))
        };
        if let Some(p) = &self.key_file {
            trusted.extend(read(p)?);
        }
        let revoked = match &self.revoked_file {
            Some(p) => read(p)?,
            None => Vec::new(),
        };
        Ok(TrustedKeys { trusted, revoked })
    }
}

/// Checks a URL's scheme; pulls support http, https and file.
pub fn validate_url(url: &str) -> Result<()> {
    if ["http://", "https://", "file://"]
        .iter()
        .any(|s| url.starts_with(s))
    {
        Ok(())
    } else {
        Err(Error::UnsupportedUrl {
            url: url.to_owned(),
        })
    }
}

/// Adds `remote` to the config; refuses a name already taken, a bad URL,
/// and verification without a key.
pub fn add(repo: &mut Repo, remote: &Remote) -> Result<()> {
    validate_remote_name(&remote.name)?;
    validate_url(&remote.url)?;
    let mut config = repo.config().clone();
    let s = section(&remote.name);
    if config.section_names().any(|n| n == s) {
        return Err(Error::RemoteExists {
            name: remote.name.clone(),
        });
    }
    if remote.sign_verify && remote.key.is_none() && remote.key_file.is_none() {
        return Err(Error::Refused(format!(
            "remote {:?} needs a public key to verify what it serves: pass --sign-pubkey or --sign-pubkey-file, or --no-sign-verify to trust it unsigned",
            remote.name
        )));
    }
    if let Some(k) = &remote.key {
        keys::parse_public(k, "--sign-pubkey")?;
    }
    config.set(&s, "url", &remote.url);
    config.set(&s, "gpg-verify", "false");
    config.set(
        &s,
        "sign-verify",
        if remote.sign_verify { "true" } else { "false" },
    );
    if let Some(k) = &remote.key {
        config.set(&s, "verification-ed25519-key", k);
    }
    if let Some(p) = &remote.key_file {
        config.set(&s, "verification-ed25519-file", &p.display().to_string());
    }
    if let Some(p) = &remote.revoked_file {
        config.set(
            &s,
            "verification-ed25519-revoked-file",
            &p.display().to_string(),
        );
    }
    if remote.stall.window.is_zero() {
        return Err(Error::Refused(format!(
            "remote {:?}: the stall timeout must be at least a second",
            remote.name
        )));
    }
    let default = StallLimit::default();
    if remote.stall.window != default.window {
        let secs = remote.stall.window.as_secs().to_string();
        config.set(&s, STALL_TIMEOUT, &secs);
    }
    if remote.stall.min_speed != default.min_speed {
        config.set(&s, STALL_MIN_SPEED, &remote.stall.min_speed.to_string());
    }
    if remote.ignore_summary_expiry {
        config.set(&s, SUMMARY_EXPIRY, "ignore");
    }
    if !remote.sign_verify_summary {
        config.set(&s, SIGN_VERIFY_SUMMARY, "false");
    }
    repo.write_config(config)?;
    Ok(())
}

/// Removes the remote `name` from the config.
pub fn delete(repo: &mut Repo, name: &str) -> Result<()> {
    let mut config = repo.config().clone();
    if !config.remove_section(&section(name)) {
        return Err(Error::NoSuchRemote(name.to_owned()));
    }
    repo.write_config(config)?;
    Ok(())
}

/// Every configured remote that parses; the others are skipped.
pub fn list(repo: &Repo) -> Result<Vec<Remote>> {
    repo.config()
        .section_names()
        .filter_map(|s| {
            s.strip_prefix("remote \"")
                .and_then(|s| s.strip_suffix('"'))
        })
        .map(|n| get(repo, n))
        .collect()
}

/// The configured remote `name`.
pub fn get(repo: &Repo, name: &str) -> Result<Remote> {
    let c = repo.config();
    let s = section(name);
    let url = c
        .get(&s, "url")
        .ok_or_else(|| Error::NoSuchRemote(name.to_owned()))?;
    let number = |key: &str, min: u64| -> Result<Option<u64>> {
        c.get(&s, key)
            .map(|v| match v.trim().parse::<u64>() {
                Ok(n) if n >= min => Ok(n),
                _ => Err(Error::Refused(format!(
                    "remote {name:?}: {key}={v:?} in the repository config is not a whole number of at least {min}"
                ))),
            })
            .transpose()
    };
    let default = StallLimit::default();
    let stall = StallLimit {
        window: number(STALL_TIMEOUT, 1)?.map_or(default.window, Duration::from_secs),
        min_speed: number(STALL_MIN_SPEED, 0)?.unwrap_or(default.min_speed),
    };
    let ignore_summary_expiry = match c.get(&s, SUMMARY_EXPIRY) {
        None | Some("enforce") => false,
        Some("ignore") => true,
        Some(v) => {
            return Err(Error::Refused(format!(
                "remote {name:?}: {SUMMARY_EXPIRY}={v:?} in the repository config: expected enforce or ignore"
            )));
        }
    };
    Ok(Remote {
        name: name.to_owned(),
        url: url.to_owned(),
        // Anything but an explicit "false" keeps verification on.
        sign_verify: c.get(&s, "sign-verify") != Some("false"),
        key: c.get(&s, "verification-ed25519-key").map(str::to_owned),
        key_file: c.get(&s, "verification-ed25519-file").map(PathBuf::from),
        revoked_file: c
            .get(&s, "verification-ed25519-revoked-file")
            .map(PathBuf::from),
        stall,
        ignore_summary_expiry,
        // As sign-verify: anything but an explicit "false" keeps it on.
        sign_verify_summary: c.get(&s, SIGN_VERIFY_SUMMARY) != Some("false"),
    })
}

#[cfg(test)]
mod tests {
    use strata_store::RepoMode;

    use super::*;

    fn remote(stall: StallLimit, ignore_summary_expiry: bool) -> Remote {
        Remote {
            name: "origin".into(),
            url: "http://example.org/repo".into(),
            sign_verify: false,
            key: None,
            key_file: None,
            revoked_file: None,
            stall,
            ignore_summary_expiry,
            sign_verify_summary: true,
        }
    }

    /// strata's own keys round-trip, and defaults leave no trace in the
    /// config an ostree client reads too.
    #[test]
    fn strata_keys_round_trip() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut repo = Repo::init(&tmp.path().join("r"), RepoMode::Archive).expect("init");
        add(&mut repo, &remote(StallLimit::default(), false)).expect("add");
        let s = section("origin");
        assert_eq!(repo.config().get(&s, STALL_TIMEOUT), None);
        assert_eq!(
            get(&repo, "origin").expect("get"),
            remote(StallLimit::default(), false)
        );
        delete(&mut repo, "origin").expect("delete");

        let custom = StallLimit {
            window: Duration::from_secs(90),
            min_speed: 0,
        };
        add(&mut repo, &remote(custom, true)).expect("add");
        assert_eq!(repo.config().get(&s, STALL_TIMEOUT), Some("90"));
        assert_eq!(repo.config().get(&s, SUMMARY_EXPIRY), Some("ignore"));
        assert_eq!(get(&repo, "origin").expect("get"), remote(custom, true));
        delete(&mut repo, "origin").expect("delete");
        let commits_only = Remote {
            sign_verify_summary: false,
            ..remote(custom, true)
        };
        add(&mut repo, &commits_only).expect("add");
        assert_eq!(repo.config().get(&s, SIGN_VERIFY_SUMMARY), Some("false"));
        assert_eq!(get(&repo, "origin").expect("get"), commits_only);

        let good = repo.config().clone();
        for (key, bad) in [
            (STALL_TIMEOUT, "0"),
            (STALL_TIMEOUT, "1m"),
            (SUMMARY_EXPIRY, "off"),
        ] {
            let mut config = good.clone();
            config.set(&s, key, bad);
            repo.write_config(config).expect("write config");
            let e = get(&repo, "origin").expect_err(bad);
            assert!(e.to_string().contains(key), "{e}");
            // A listing names the bad remote rather than leaving it out.
            let e = list(&repo).expect_err(bad);
            assert!(e.to_string().contains(key), "{e}");
        }
    }
}
