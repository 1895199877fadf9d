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
//! ```
//!
//! Verification is on by default: a remote without a key refuses to pull
//! unless it was added with `sign-verify=false`.

use std::path::PathBuf;

use strata_store::Repo;
use strata_store::refs::validate_remote_name;

use crate::error::{Error, Result};
use crate::keys::{self, TrustedKeys};

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
}

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
pub fn list(repo: &Repo) -> Vec<Remote> {
    repo.config()
        .section_names()
        .filter_map(|s| {
            s.strip_prefix("remote \"")
                .and_then(|s| s.strip_suffix('"'))
        })
        .filter_map(|n| get(repo, n).ok())
        .collect()
}

/// The configured remote `name`.
pub fn get(repo: &Repo, name: &str) -> Result<Remote> {
    let c = repo.config();
    let s = section(name);
    let url = c
        .get(&s, "url")
        .ok_or_else(|| Error::NoSuchRemote(name.to_owned()))?;
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
    })
}
