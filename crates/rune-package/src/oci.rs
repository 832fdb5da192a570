//! An OCI image layout holding one static binary per platform, without a container
//! daemon: the layer is a deterministic tar.gz, the config runs the binary as the
//! non-root user 65532, and a multi-arch image index ties the platforms to one tag.
//!
//! The layout is what `skopeo copy oci-archive:FILE:TAG docker://…` and
//! `skopeo inspect` read; the same inputs always give the same index digest.

use crate::archive::{self, Entry};
use crate::{sha256_hex, Error, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// The user (and group) the image runs as: distroless's `nonroot`, so the chart's
/// `runAsNonRoot: true` holds without a numeric override.
pub const NONROOT_UID: u64 = 65532;
/// Where the binary sits in the image (and the entrypoint).
pub const BINARY_PATH: &str = "usr/local/bin/rune";

const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// An OS/architecture pair, written `linux/amd64` as in `--platform`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    /// Always `linux` (the only OS RUNE ships images for).
    pub os: String,
    /// OCI architecture name: `amd64` or `arm64`.
    pub architecture: String,
}

impl Platform {
    /// The ELF `e_machine` a binary for this platform carries (x86-64 62, AArch64 183).
    fn elf_machine(&self) -> u16 {
        match self.architecture.as_str() {
            "amd64" => 62,
            _ => 183,
        }
    }

    /// `linux-amd64`: the platform as a file-name component.
    pub fn slug(&self) -> String {
        format!("{}-{}", self.os, self.architecture)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)
    }
}

impl FromStr for Platform {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "linux/amd64" => Ok(Platform { os: "linux".into(), architecture: "amd64".into() }),
            "linux/arm64" | "linux/arm64/v8" => Ok(Platform { os: "linux".into(), architecture: "arm64".into() }),
            other => {
                Err(Error::Invalid(format!("platform {other:?} is not supported; use linux/amd64 or linux/arm64")))
            }
        }
    }
}

/// Parses `--platform linux/amd64,linux/arm64` (deduplicated, sorted).
///
/// # Errors
/// [`Error::Invalid`] naming the unsupported entry, or for an empty list.
pub fn parse_platforms(list: &str) -> Result<Vec<Platform>> {
    let mut out: Vec<Platform> =
        list.split(',').filter(|s| !s.trim().is_empty()).map(str::parse).collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(Error::Invalid("--platform is empty; use e.g. linux/amd64,linux/arm64".into()));
    }
    Ok(out)
}

/// What goes into the image: identity, the OCI labels, and one binary per platform.
#[derive(Debug, Clone)]
pub struct ImageSpec {
    /// Repository path, e.g. `ghcr.io/rune-bench/rune` (kept when loading into a registry).
    pub repository: String,
    /// Tag, e.g. `0.1.0`.
    pub tag: String,
    /// `org.opencontainers.image.version`.
    pub version: String,
    /// `org.opencontainers.image.revision` (the git commit).
    pub revision: String,
    /// `org.opencontainers.image.source` (the repository URL).
    pub source: String,
    /// `org.opencontainers.image.licenses` (SPDX expression).
    pub licenses: String,
    /// Unix seconds used for `created` and every file time.
    pub epoch: u64,
    /// The static `rune` binary for each platform.
    pub binaries: BTreeMap<Platform, Vec<u8>>,
}

/// A built image layout: content-addressed blobs plus the top-level `index.json`.
#[derive(Debug, Clone)]
pub struct ImageLayout {
    /// Blobs by hex sha256.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// The layout's `index.json` (one entry: the image index, named by the tag).
    pub index_json: Vec<u8>,
    /// `sha256:…` of the multi-arch image index (what a registry shows for the tag).
    pub index_digest: String,
    /// Each platform's manifest digest.
    pub manifests: Vec<(Platform, String)>,
    /// Unix seconds for the archive entries.
    epoch: u64,
}

impl ImageLayout {
    /// Builds the layout for `spec`.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a bad repository or tag, no binaries, or a binary that is
    /// not an ELF executable for its platform.
    pub fn build(spec: &ImageSpec) -> Result<Self> {
        validate_repository(&spec.repository)?;
        validate_tag(&spec.tag)?;
        if spec.binaries.is_empty() {
            return Err(Error::Invalid("image: no binary given; pass --binary linux/amd64=PATH".into()));
        }
        let created = crate::rfc3339(spec.epoch);
        let labels = json!({
            "org.opencontainers.image.created": created,
            "org.opencontainers.image.licenses": spec.licenses,
            "org.opencontainers.image.revision": spec.revision,
            "org.opencontainers.image.source": spec.source,
            "org.opencontainers.image.title": "rune",
            "org.opencontainers.image.version": spec.version,
        });
        let mut blobs = BTreeMap::new();
        let mut manifests = Vec::new();
        let mut index_entries = Vec::new();
        for (platform, binary) in &spec.binaries {
            check_elf(platform, binary)?;
            let layer_tar = archive::tar(&layer_entries(binary), spec.epoch)?;
            let diff_id = sha256_hex(&layer_tar);
            let layer = archive::gzip(&layer_tar);
            let layer_desc = add_blob(&mut blobs, MEDIA_LAYER, layer);
            let config = json!({
                "created": created,
                "architecture": platform.architecture,
                "os": platform.os,
                "config": {
                    "User": format!("{NONROOT_UID}:{NONROOT_UID}"),
                    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/home/nonroot", "RUNE_HOME=/home/nonroot/.rune"],
                    "Entrypoint": [format!("/{BINARY_PATH}")],
                    "WorkingDir": "/home/nonroot",
                    "ExposedPorts": {"8080/tcp": {}},
                    "Labels": labels,
                },
                "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{diff_id}")]},
                "history": [{"created": created, "created_by": "rune image build"}],
            });
            let config_desc = add_blob(&mut blobs, MEDIA_CONFIG, to_json(&config));
            let manifest = json!({
                "schemaVersion": 2,
                "mediaType": MEDIA_MANIFEST,
                "config": config_desc,
                "layers": [layer_desc],
                "annotations": labels,
            });
            let mut desc = add_blob(&mut blobs, MEDIA_MANIFEST, to_json(&manifest));
            manifests.push((platform.clone(), desc["digest"].as_str().unwrap_or_default().to_string()));
            desc["platform"] = json!({"architecture": platform.architecture, "os": platform.os});
            index_entries.push(desc);
        }
        let image_index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": index_entries,
            "annotations": labels,
        });
        let mut index_desc = add_blob(&mut blobs, MEDIA_INDEX, to_json(&image_index));
        let index_digest = index_desc["digest"].as_str().unwrap_or_default().to_string();
        index_desc["annotations"] = json!({
            "org.opencontainers.image.ref.name": spec.tag,
            "io.containerd.image.name": format!("{}:{}", spec.repository, spec.tag),
        });
        let layout_index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": [index_desc]});
        Ok(ImageLayout { blobs, index_json: to_json(&layout_index), index_digest, manifests, epoch: spec.epoch })
    }

    /// The layout's files (`oci-layout`, `index.json`, `blobs/sha256/*`).
    pub fn entries(&self) -> Vec<Entry> {
        let mut entries = vec![
            Entry::file("oci-layout", 0o644, br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
            Entry::file("index.json", 0o644, self.index_json.clone()),
            Entry::dir("blobs", 0o755),
            Entry::dir("blobs/sha256", 0o755),
        ];
        for (digest, data) in &self.blobs {
            entries.push(Entry::file(format!("blobs/sha256/{digest}"), 0o644, data.clone()));
        }
        entries
    }

    /// The layout as an `oci-archive` tar (what `skopeo inspect oci-archive:FILE` reads).
    ///
    /// # Errors
    /// As [`archive::tar`].
    pub fn to_archive(&self) -> Result<Vec<u8>> {
        archive::tar(&self.entries(), self.epoch)
    }

    /// Writes the layout as a directory (created if missing; must not hold another layout).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that could not be written.
    pub fn write_dir(&self, dir: &Path) -> Result<()> {
        for entry in self.entries() {
            let path = dir.join(&entry.path);
            match entry.kind {
                archive::EntryKind::Dir => std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?,
                archive::EntryKind::File(data) => {
                    if let Some(parent) = path.parent() {
                        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
                    }
                    std::fs::write(&path, data).map_err(|e| Error::io(&path, e))?;
                }
            }
        }
        Ok(())
    }
}

/// The root filesystem: the binary, a passwd/group naming the non-root user, its home
/// and a world-writable /tmp (the API writes its SQLite database under RUNE_HOME).
fn layer_entries(binary: &[u8]) -> Vec<Entry> {
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NONROOT_UID}:{NONROOT_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{NONROOT_UID}:\n");
    vec![
        Entry::dir("etc", 0o755),
        Entry::file("etc/passwd", 0o644, passwd.into_bytes()),
        Entry::file("etc/group", 0o644, group.into_bytes()),
        Entry::dir("home", 0o755),
        Entry::dir("home/nonroot", 0o750).owned_by(NONROOT_UID, NONROOT_UID),
        Entry::dir("tmp", 0o1777),
        Entry::dir("usr", 0o755),
        Entry::dir("usr/local", 0o755),
        Entry::dir("usr/local/bin", 0o755),
        Entry::file(BINARY_PATH, 0o755, binary.to_vec()),
    ]
}

fn add_blob(blobs: &mut BTreeMap<String, Vec<u8>>, media_type: &str, data: Vec<u8>) -> Value {
    let digest = sha256_hex(&data);
    let desc = json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": data.len()});
    blobs.insert(digest, data);
    desc
}

fn to_json(v: &Value) -> Vec<u8> {
    // Serialising a Value cannot fail.
    serde_json::to_vec(v).expect("JSON value")
}

fn check_elf(platform: &Platform, binary: &[u8]) -> Result<()> {
    if binary.len() < 20 || &binary[..4] != b"\x7fELF" {
        return Err(Error::Invalid(format!("image: the {platform} binary is not an ELF executable")));
    }
    let machine = match binary[5] {
        2 => u16::from_be_bytes([binary[18], binary[19]]),
        _ => u16::from_le_bytes([binary[18], binary[19]]),
    };
    if machine != platform.elf_machine() {
        return Err(Error::Invalid(format!(
            "image: the {platform} binary is built for another architecture (ELF machine {machine}); \
             build it with scripts/build-static.sh or scripts/build-cross.sh"
        )));
    }
    Ok(())
}

/// Checks a repository path: lower-case name components separated by `/`, optionally
/// after a `host[:port]`.
///
/// # Errors
/// [`Error::Invalid`] naming the repository and the rule.
pub fn validate_repository(repo: &str) -> Result<()> {
    let ok_component = |c: &str| {
        !c.is_empty()
            && c.chars().all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || "._-".contains(ch))
            && c.chars().next().is_some_and(|ch| ch.is_ascii_alphanumeric())
    };
    let mut parts = repo.split('/');
    let first = parts.next().unwrap_or_default();
    let host_ok = first.contains(['.', ':']) || first == "localhost";
    let first_ok = if host_ok {
        let (host, port) = first.split_once(':').unwrap_or((first, "0"));
        ok_component(host) && port.chars().all(|c| c.is_ascii_digit())
    } else {
        ok_component(first)
    };
    if repo.is_empty() || !first_ok || !parts.all(ok_component) {
        return Err(Error::Invalid(format!(
            "repository {repo:?} is not valid: use lower-case [a-z0-9._-] components separated by '/', \
             e.g. ghcr.io/rune-bench/rune"
        )));
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}` (no `+`, so a semver build suffix
/// must be dropped or replaced).
///
/// # Errors
/// [`Error::Invalid`] naming the tag.
pub fn validate_tag(tag: &str) -> Result<()> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && !tag.starts_with(['.', '-'])
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        return Err(Error::Invalid(format!(
            "tag {tag:?} is not valid: use up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )));
    }
    Ok(())
}

/// A minimal ELF header for `platform`: lets tests build images without real binaries.
pub fn fake_elf(platform: &Platform, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 64];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 2;
    v[5] = 1;
    v[18..20].copy_from_slice(&platform.elf_machine().to_le_bytes());
    v.extend_from_slice(payload);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ImageSpec {
        let mut binaries = BTreeMap::new();
        for p in parse_platforms("linux/arm64,linux/amd64").unwrap() {
            binaries.insert(p.clone(), fake_elf(&p, b"payload"));
        }
        ImageSpec {
            repository: "ghcr.io/rune-bench/rune".into(),
            tag: "0.1.0".into(),
            version: "0.1.0".into(),
            revision: "abc123".into(),
            source: "https://github.com/rune-bench/rune".into(),
            licenses: "Apache-2.0".into(),
            epoch: 1_700_000_000,
            binaries,
        }
    }

    fn blob_json(layout: &ImageLayout, digest: &str) -> Value {
        serde_json::from_slice(&layout.blobs[digest.trim_start_matches("sha256:")]).unwrap()
    }

    #[test]
    fn same_inputs_same_digest_and_any_change_moves_it() {
        let a = ImageLayout::build(&spec()).unwrap();
        assert_eq!(a.index_digest, ImageLayout::build(&spec()).unwrap().index_digest);
        assert_eq!(a.to_archive().unwrap(), ImageLayout::build(&spec()).unwrap().to_archive().unwrap());
        let mut other = spec();
        other.revision = "def456".into();
        assert_ne!(a.index_digest, ImageLayout::build(&other).unwrap().index_digest);
    }

    #[test]
    fn index_config_and_layer_are_consistent() {
        let layout = ImageLayout::build(&spec()).unwrap();
        let top: Value = serde_json::from_slice(&layout.index_json).unwrap();
        assert_eq!(top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"], "0.1.0");
        let index = blob_json(&layout, &layout.index_digest);
        let archs: Vec<_> =
            index["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].clone()).collect();
        assert_eq!(archs, vec!["amd64", "arm64"]);
        for m in index["manifests"].as_array().unwrap() {
            let manifest = blob_json(&layout, m["digest"].as_str().unwrap());
            let config = blob_json(&layout, manifest["config"]["digest"].as_str().unwrap());
            assert_eq!(config["config"]["User"], "65532:65532");
            assert_eq!(config["architecture"], m["platform"]["architecture"]);
            for key in ["version", "revision", "source", "licenses"] {
                assert!(config["config"]["Labels"][format!("org.opencontainers.image.{key}")].is_string(), "{key}");
            }
            let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
            let layer = &layout.blobs[layer_digest.trim_start_matches("sha256:")];
            assert_eq!(manifest["layers"][0]["size"], layer.len());
            let mut tar_bytes = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&layer[..]), &mut tar_bytes).unwrap();
            assert_eq!(config["rootfs"]["diff_ids"][0], format!("sha256:{}", sha256_hex(&tar_bytes)));
            let mut archive = tar::Archive::new(&tar_bytes[..]);
            let home = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap())
                .find(|e| e.path().unwrap().to_str() == Some("home/nonroot/"))
                .unwrap();
            assert_eq!(home.header().uid().unwrap(), NONROOT_UID);
        }
    }

    #[test]
    fn wrong_architecture_or_non_elf_binary_is_refused() {
        let mut s = spec();
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let arm64: Platform = "linux/arm64".parse().unwrap();
        s.binaries.insert(arm64, fake_elf(&amd64, b""));
        let err = ImageLayout::build(&s).unwrap_err().to_string();
        assert!(err.contains("linux/arm64 binary is built for another architecture"), "{err}");
        s.binaries.insert(amd64.clone(), b"#!/bin/sh\necho hi\n".to_vec());
        let err = ImageLayout::build(&s).unwrap_err().to_string();
        assert!(err.contains("linux/amd64 binary is not an ELF"), "{err}");
    }

    #[test]
    fn bad_platforms_repositories_and_tags_are_refused() {
        assert!(parse_platforms("linux/s390x").unwrap_err().to_string().contains("linux/s390x"));
        assert!(parse_platforms(" , ").is_err());
        assert_eq!(parse_platforms("linux/amd64,linux/amd64").unwrap().len(), 1);
        for bad in ["", "GHCR.io/x", "ghcr.io//x", "ghcr.io/x/-y", "host:port/x"] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
        for good in ["rune", "localhost:5000/rune-bench/rune", "ghcr.io/rune-bench/rune"] {
            validate_repository(good).unwrap();
        }
        for bad in ["", "0.1.0+git", ".x", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        validate_tag("0.1.0-rc.1").unwrap();
    }
}
