//! A CycloneDX 1.5 JSON SBOM of the Rust dependencies, read from `Cargo.lock`.
//!
//! `Cargo.lock` is the exact record of what a `--locked` build compiles, so the SBOM is
//! made from it rather than from a scan of the binary. Registry packages carry their
//! crates.io checksum as a SHA-256 hash; workspace crates appear without one. The
//! document has no random serial number and takes its timestamp from the build epoch,
//! so it is as reproducible as the rest of the bundle. The lockfile covers the whole
//! workspace (development dependencies too): it over-reports rather than under-reports.

use crate::{Error, Result};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;

#[derive(Deserialize)]
struct Lock {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

fn purl(name: &str, version: &str) -> String {
    format!("pkg:cargo/{name}@{version}")
}

/// Builds the SBOM for the application `app_name` `app_version` from the text of
/// `Cargo.lock`, with `timestamp` (RFC 3339) as its creation time.
///
/// # Errors
/// [`Error::Invalid`] when the lockfile is not TOML, has no packages, or a dependency
/// names a package the lockfile does not list.
pub fn cyclonedx(lock_text: &str, app_name: &str, app_version: &str, timestamp: &str) -> Result<Value> {
    let lock: Lock =
        toml::from_str(lock_text).map_err(|e| Error::Invalid(format!("Cargo.lock: not a valid lockfile: {e}")))?;
    if lock.package.is_empty() {
        return Err(Error::Invalid("Cargo.lock: no [[package]] entries".into()));
    }
    // A dependency is written `name`, `name version` or `name version (source)`; the
    // short forms are used only when they are unambiguous.
    let mut by_name: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for p in &lock.package {
        by_name.entry(&p.name).or_default().push(&p.version);
    }
    let resolve = |dep: &str| -> Result<String> {
        let mut parts = dep.split_whitespace();
        let name = parts.next().unwrap_or_default();
        let version = match parts.next() {
            Some(v) => v.to_string(),
            None => match by_name.get(name).map(Vec::as_slice) {
                Some([only]) => (*only).to_string(),
                _ => return Err(Error::Invalid(format!("Cargo.lock: dependency {dep:?} is not a listed package"))),
            },
        };
        if !by_name.get(name).is_some_and(|vs| vs.contains(&version.as_str())) {
            return Err(Error::Invalid(format!("Cargo.lock: dependency {dep:?} is not a listed package")));
        }
        Ok(purl(name, &version))
    };
    let mut components = Vec::new();
    let mut dependencies = Vec::new();
    let mut sorted: Vec<&LockPackage> = lock.package.iter().collect();
    sorted.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    for p in sorted {
        let reference = purl(&p.name, &p.version);
        let mut component = json!({
            "type": "library",
            "bom-ref": reference,
            "name": p.name,
            "version": p.version,
            "purl": reference,
        });
        if let Some(sum) = &p.checksum {
            component["hashes"] = json!([{"alg": "SHA-256", "content": sum}]);
        }
        if let Some(source) = &p.source {
            component["externalReferences"] = json!([{"type": "distribution", "url": source}]);
        }
        components.push(component);
        let mut depends: Vec<String> = p.dependencies.iter().map(|d| resolve(d)).collect::<Result<_>>()?;
        depends.sort();
        dependencies.push(json!({"ref": reference, "dependsOn": depends}));
    }
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "rune airgap bundle", "version": app_version}]},
            "component": {"type": "application", "bom-ref": purl(app_name, app_version), "name": app_name, "version": app_version},
        },
        "components": components,
        "dependencies": dependencies,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "rune-cli"
version = "0.1.0"
dependencies = ["serde", "itoa 1.0.1"]

[[package]]
name = "serde"
version = "1.0.200"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "abcd"

[[package]]
name = "itoa"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ef01"
"#;

    #[test]
    fn lists_packages_with_hashes_and_the_dependency_graph() {
        let bom = cyclonedx(LOCK, "rune", "0.1.0", "1970-01-01T00:00:00Z").unwrap();
        assert_eq!(bom["bomFormat"], "CycloneDX");
        let names: Vec<_> = bom["components"].as_array().unwrap().iter().map(|c| c["name"].clone()).collect();
        assert_eq!(names, ["itoa", "rune-cli", "serde"]);
        assert_eq!(bom["components"][2]["hashes"][0]["content"], "abcd");
        assert_eq!(bom["components"][2]["purl"], "pkg:cargo/serde@1.0.200");
        assert!(bom["components"][1].get("hashes").is_none(), "workspace crates have no registry checksum");
        assert_eq!(bom["dependencies"][1]["dependsOn"], json!(["pkg:cargo/itoa@1.0.1", "pkg:cargo/serde@1.0.200"]));
    }

    #[test]
    fn the_real_lockfile_is_readable() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
        let bom = cyclonedx(&text, "rune", "0.1.0", "1970-01-01T00:00:00Z").unwrap();
        assert!(bom["components"].as_array().unwrap().iter().any(|c| c["name"] == "tokio"));
    }

    #[test]
    fn broken_lockfiles_are_refused() {
        assert!(cyclonedx("[[package", "rune", "1", "t").unwrap_err().to_string().contains("not a valid lockfile"));
        assert!(cyclonedx("version = 4\n", "rune", "1", "t").unwrap_err().to_string().contains("no [[package]]"));
        let dangling = "[[package]]\nname = \"a\"\nversion = \"1\"\ndependencies = [\"ghost\"]\n";
        let err = cyclonedx(dangling, "rune", "1", "t").unwrap_err().to_string();
        assert!(err.contains("\"ghost\" is not a listed package"), "{err}");
    }
}
