//! Running podman: finding it, its commands, and what they print.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::spec::LABEL;

/// The podman binary.
#[derive(Debug, Clone)]
pub struct Podman {
    bin: PathBuf,
}

/// A toolbox as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Toolbox {
    /// Its name.
    pub name: String,
    /// The container's ID.
    pub id: String,
    /// The image it was made from.
    pub image: String,
    /// The strata commit of the image, when it was made by strata.
    pub commit: Option<String>,
    /// podman's state: `running`, `exited`, `created`.
    pub state: String,
    /// When it was made, in seconds since the epoch.
    pub created: i64,
}

/// One container of `podman ps --format json`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PsEntry {
    id: String,
    names: Vec<String>,
    image: String,
    state: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
}

/// Parses `podman ps -a --format json`.
pub fn parse_ps(json: &str) -> std::result::Result<Vec<Toolbox>, String> {
    let entries: Vec<PsEntry> = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut out: Vec<Toolbox> = entries
        .into_iter()
        .map(|e| Toolbox {
            name: e.names.into_iter().next().unwrap_or_default(),
            id: e.id,
            image: e.image,
            commit: e.labels.and_then(|mut l| l.remove(strata_commit_label())),
            state: e.state,
            created: e.created,
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The image label strata export writes (kept here as text: this crate
/// does not depend on the exporter).
fn strata_commit_label() -> &'static str {
    "dev.strata.commit"
}

/// What `inspect` tells of a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// Whether it runs.
    pub running: bool,
    /// Whether it carries [`LABEL`].
    pub toolbox: bool,
}

impl Podman {
    /// podman from `$STRATA_PODMAN`, else from `$PATH`.
    pub fn find() -> Result<Podman> {
        if let Some(p) = std::env::var_os("STRATA_PODMAN") {
            let bin = PathBuf::from(p);
            return if bin.is_file() {
                Ok(Podman { bin })
            } else {
                Err(Error::NoPodman(format!(
                    "$STRATA_PODMAN is {}",
                    bin.display()
                )))
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join("podman"))
            .find(|p| p.is_file())
            .map(|bin| Podman { bin })
            .ok_or_else(|| Error::NoPodman("no podman in $PATH".into()))
    }

    /// The binary.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// The error for podman that did not start.
    fn spawn_error(&self, e: std::io::Error) -> Error {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::NoPodman(format!("{}: {e}", self.bin.display()))
        } else {
            Error::Spawn {
                bin: self.bin.display().to_string(),
                source: e,
            }
        }
    }

    fn command(&self, args: &[String]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args);
        c
    }

    /// Runs podman with `args`; its standard output, or an error with
    /// what it said.
    pub fn output(&self, args: &[String]) -> Result<String> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            return Err(failure(args, &out.status, &out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Runs podman with `args` on the caller's standard streams; its exit code.
    pub fn interactive(&self, args: &[String]) -> Result<i32> {
        let status = self
            .command(args)
            .status()
            .map_err(|e| self.spawn_error(e))?;
        Ok(status.code().unwrap_or(128 + status_signal(&status)))
    }

    /// The state of container `name`, `None` when there is none.
    pub fn state(&self, name: &str) -> Result<Option<State>> {
        let args = strings(&[
            "container",
            "inspect",
            "--format",
            &format!("{{{{.State.Running}}}} {{{{index .Config.Labels \"{LABEL}\"}}}}"),
            name,
        ]);
        let out = self
            .command(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("no such container") {
                return Ok(None);
            }
            return Err(failure(&args, &out.status, &out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut words = text.split_whitespace();
        Ok(Some(State {
            running: words.next() == Some("true"),
            toolbox: words.next() == Some("true"),
        }))
    }

    /// Whether podman has an image of that name.
    pub fn image_exists(&self, image: &str) -> Result<bool> {
        let status = self
            .command(&strings(&["image", "exists", image]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| self.spawn_error(e))?;
        Ok(status.success())
    }

    /// Loads the OCI image layout at `dir` and names it `name` instead of
    /// what a pull from a directory names it (`localhost` and the path).
    pub fn load_oci_dir(&self, dir: &Path, name: &str) -> Result<String> {
        let pulled = format!("oci:{}", dir.display());
        let id = self.output(&strings(&["pull", "--quiet", &pulled]))?;
        let id = id.trim().to_owned();
        if id.is_empty() {
            return Err(Error::BadOutput {
                args: format!("pull {pulled}"),
                what: "no image ID".into(),
            });
        }
        self.output(&strings(&["tag", &id, name]))?;
        // Only the name the pull gave: the image may have others (the same
        // commit loaded before under a tag of the user's).
        let derived = format!("localhost{}:latest", dir.display());
        let _ = self.output(&strings(&["untag", &id, &derived]));
        Ok(id)
    }

    /// The strata toolboxes, by name.
    pub fn list(&self) -> Result<Vec<Toolbox>> {
        let args = strings(&[
            "ps",
            "--all",
            "--filter",
            &format!("label={LABEL}"),
            "--format",
            "json",
        ]);
        let json = self.output(&args)?;
        parse_ps(&json).map_err(|what| Error::BadOutput {
            args: args.join(" "),
            what,
        })
    }
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| (*s).to_owned()).collect()
}

fn status_signal(status: &std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.signal().unwrap_or(0)
}

/// An error for a podman command that failed: its first arguments, how it
/// ended, the last lines it printed.
fn failure(args: &[String], status: &std::process::ExitStatus, stderr: &[u8]) -> Error {
    let stderr = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = stderr.trim().lines().collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    let shown: Vec<&str> = args
        .iter()
        .take(3)
        .map(|a| if a.len() > 60 { "…" } else { a.as_str() })
        .collect();
    Error::Podman {
        args: shown.join(" "),
        status: status.to_string(),
        stderr: tail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podman_ps_json_is_read() {
        let json = r#"[
          {"Id": "b2", "Names": ["zeta"], "Image": "localhost/strata:ab", "State": "running",
           "Created": 1796174174, "Labels": {"dev.strata.toolbox": "true", "dev.strata.commit": "ab"}},
          {"Id": "a1", "Names": ["alpha"], "Image": "docker.io/library/debian:12", "State": "exited",
           "Created": 1796174000, "Labels": null, "Extra": 1}
        ]"#;
        let list = parse_ps(json).expect("parse");
        assert_eq!(
            list,
            [
                Toolbox {
                    name: "alpha".into(),
                    id: "a1".into(),
                    image: "docker.io/library/debian:12".into(),
                    commit: None,
                    state: "exited".into(),
                    created: 1796174000,
                },
                Toolbox {
                    name: "zeta".into(),
                    id: "b2".into(),
                    image: "localhost/strata:ab".into(),
                    commit: Some("ab".into()),
                    state: "running".into(),
                    created: 1796174174,
                },
            ]
        );
        assert!(parse_ps("not json").is_err());
    }
}
