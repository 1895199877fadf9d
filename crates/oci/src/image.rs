//! The JSON documents of an OCI image (image-spec 1.0): the configuration,
//! the manifest and the index, for a one-layer image. Pure: the same input
//! gives the same bytes (fields in a fixed order, maps sorted).
//!
//! Our own small types rather than the `oci-spec` crate: these three
//! documents are all an export writes, and `oci-spec` 0.10 (with
//! `derive_builder`, `getset`, `strum`, `regex`) took 32 s to build here in
//! release, for each of the workspace's builds in CI.

use std::collections::BTreeMap;

use serde::Serialize;

/// `mediaType` of an image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// `mediaType` of an image index.
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// `mediaType` of an image configuration.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// The index annotation podman and skopeo read as the image's tag.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The label (and manifest annotation) that names the commit an image was made from.
pub const COMMIT_LABEL: &str = "dev.strata.commit";

/// How the layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    /// A plain tar: the fastest to write and to load locally.
    None,
    /// gzip, what every registry and engine reads.
    #[default]
    Gzip,
}

impl Compression {
    /// The layer's `mediaType`.
    pub fn layer_media_type(self) -> &'static str {
        match self {
            Compression::None => "application/vnd.oci.image.layer.v1.tar",
            Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
}

/// A content descriptor: what a blob is, its digest and size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Descriptor {
    /// Its media type.
    #[serde(rename = "mediaType")]
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Its length in bytes.
    pub size: u64,
    /// Annotations, if any.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What the image's configuration says beyond its layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// RFC 3339 time of the commit, for `created`.
    pub created: String,
    /// OCI architecture name (`amd64`, `arm64`).
    pub architecture: String,
    /// The command a container runs when given none.
    pub cmd: Vec<String>,
    /// Labels (strata adds [`COMMIT_LABEL`] and the commit's version).
    pub labels: BTreeMap<String, String>,
    /// What made it, for the history entry.
    pub created_by: String,
}

#[derive(Serialize)]
struct Config<'a> {
    created: &'a str,
    architecture: &'a str,
    os: &'static str,
    config: ExecConfig<'a>,
    rootfs: RootFs,
    history: [History<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ExecConfig<'a> {
    env: [&'static str; 1],
    cmd: &'a [String],
    labels: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RootFs {
    #[serde(rename = "type")]
    kind: &'static str,
    diff_ids: [String; 1],
}

#[derive(Serialize)]
struct History<'a> {
    created: &'a str,
    created_by: &'a str,
}

#[derive(Serialize)]
struct Manifest<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    config: &'a Descriptor,
    layers: [&'a Descriptor; 1],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    annotations: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct Index<'a> {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType")]
    media_type: &'static str,
    manifests: [&'a Descriptor; 1],
}

/// The `PATH` every image gets: Debian's default for root.
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn to_json(v: &impl Serialize) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

/// The configuration blob of a one-layer image whose uncompressed layer
/// has digest `diff_id`.
pub fn config(info: &ImageInfo, diff_id: &str) -> Vec<u8> {
    to_json(&Config {
        created: &info.created,
        architecture: &info.architecture,
        os: "linux",
        config: ExecConfig {
            env: [PATH_ENV],
            cmd: &info.cmd,
            labels: &info.labels,
        },
        rootfs: RootFs {
            kind: "layers",
            diff_ids: [diff_id.to_owned()],
        },
        history: [History {
            created: &info.created,
            created_by: &info.created_by,
        }],
    })
}

/// The manifest of an image with `config` and one `layer`.
pub fn manifest(
    config: &Descriptor,
    layer: &Descriptor,
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    to_json(&Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE,
        config,
        layers: [layer],
        annotations,
    })
}

/// The `index.json` of a layout holding the image of `manifest`.
pub fn index(manifest: &Descriptor) -> Vec<u8> {
    to_json(&Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE,
        manifests: [manifest],
    })
}

/// The OCI name of this machine's architecture.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn descriptor(media_type: &str, digest: &str, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest: digest.into(),
            size,
            annotations: BTreeMap::new(),
        }
    }

    #[test]
    fn documents_have_the_fields_the_spec_requires() {
        let info = ImageInfo {
            created: "2026-12-01T00:00:00Z".into(),
            architecture: "amd64".into(),
            cmd: vec!["/bin/bash".into()],
            labels: BTreeMap::from([(COMMIT_LABEL.into(), "ab".into())]),
            created_by: "strata export ab".into(),
        };
        let config_bytes = config(&info, "sha256:11");
        let v: serde_json::Value = serde_json::from_slice(&config_bytes).expect("json");
        assert_eq!(v["os"], "linux");
        assert_eq!(v["architecture"], "amd64");
        assert_eq!(v["rootfs"]["type"], "layers");
        assert_eq!(v["rootfs"]["diff_ids"][0], "sha256:11");
        assert_eq!(v["config"]["Cmd"][0], "/bin/bash");
        assert_eq!(v["config"]["Labels"][COMMIT_LABEL], "ab");
        assert!(
            v["config"]["Env"][0]
                .as_str()
                .is_some_and(|e| e.starts_with("PATH="))
        );

        let c = descriptor(CONFIG_MEDIA_TYPE, "sha256:22", 5);
        let l = descriptor(Compression::Gzip.layer_media_type(), "sha256:33", 7);
        let m: serde_json::Value =
            serde_json::from_slice(&manifest(&c, &l, &BTreeMap::new())).expect("json");
        assert_eq!(m["schemaVersion"], 2);
        assert_eq!(m["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(m["config"]["digest"], "sha256:22");
        assert_eq!(m["layers"][0]["size"], 7);
        assert!(m.get("annotations").is_none(), "empty maps are left out");

        let mut md = descriptor(MANIFEST_MEDIA_TYPE, "sha256:44", 9);
        md.annotations.insert(REF_NAME.into(), "latest".into());
        let i: serde_json::Value = serde_json::from_slice(&index(&md)).expect("json");
        assert_eq!(i["manifests"][0]["annotations"][REF_NAME], "latest");
        // The same input, the same bytes.
        assert_eq!(config(&info, "sha256:11"), config_bytes);
    }
}
