//! `rune airgap bundle | keygen | verify`: the reproducible, optionally signed bundle a
//! disconnected site installs from (deploy/airgap/bootstrap.sh).

use super::image::{epoch, image_spec, package_error};
use crate::cli::{AirgapBundleArgs, AirgapCommand};
use crate::exit;
use anyhow::{Context, Result};
use rune_package::{bundle, signing};
use std::path::{Path, PathBuf};

/// Runs `rune airgap …`.
pub fn run(cmd: AirgapCommand) -> Result<u8> {
    match cmd {
        AirgapCommand::Bundle(args) => build(*args),
        AirgapCommand::Keygen { output } => keygen(&output),
        AirgapCommand::Verify { bundle, public_key, json } => verify(&bundle, public_key.as_deref(), json),
    }
}

fn build(args: AirgapBundleArgs) -> Result<u8> {
    let version = args.version.clone().unwrap_or_else(|| env!("CARGO_PKG_VERSION").to_string());
    let image = image_spec(&args.source, &version, &version)?;
    let signing_key = args.sign_key.as_deref().map(signing::read_signing_key).transpose().map_err(package_error)?;
    let crds_dir = match args.crds_dir.clone() {
        Some(dir) if !dir.is_dir() => {
            return Err(exit::coded(exit::BAD_INPUT, format!("--crds-dir {}: not a directory", dir.display())));
        }
        Some(dir) => Some(dir),
        None => {
            let default = args.charts_dir.join("rune-operator/crds");
            if default.is_dir() {
                Some(default)
            } else {
                eprintln!("rune: warning: {} does not exist; the bundle has no CRDs", default.display());
                None
            }
        }
    };
    if !args.charts_dir.is_dir() {
        return Err(exit::coded(
            exit::BAD_INPUT,
            format!("--charts-dir {}: not a directory (run from the repository root)", args.charts_dir.display()),
        ));
    }
    let inputs = bundle::BundleInputs {
        version: version.clone(),
        image,
        charts_dir: Some(args.charts_dir.clone()),
        crds_dir,
        scripts_dir: args.scripts_dir.clone(),
        cargo_lock: args.cargo_lock.clone(),
        epoch: epoch(args.source.source_date_epoch),
        signing_key,
    };
    let built = bundle::build(&inputs).map_err(package_error)?;
    let output = args.output.clone().unwrap_or_else(|| PathBuf::from(format!("rune-bundle-{version}.tar.gz")));
    write_atomically(&output, &built.data)?;
    if args.json {
        let out = serde_json::json!({"output": output, "sha256": built.sha256, "bytes": built.data.len(), "manifest": built.manifest});
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{}  {}", built.sha256, output.display());
        eprintln!(
            "bundle {} written ({} bytes, {})",
            output.display(),
            built.data.len(),
            if inputs.signing_key.is_some() { "signed" } else { "unsigned" }
        );
    }
    Ok(exit::SUCCESS)
}

/// Writes next to the target and renames, so an interrupted build never leaves a
/// truncated bundle under the final name.
fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, data).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

fn keygen(prefix: &Path) -> Result<u8> {
    let private_path = PathBuf::from(format!("{}.key", prefix.display()));
    let public_path = PathBuf::from(format!("{}.pub", prefix.display()));
    for p in [&private_path, &public_path] {
        if p.exists() {
            return Err(exit::coded(exit::BAD_INPUT, format!("{} exists; refusing to overwrite a key", p.display())));
        }
    }
    let (private, public) = signing::generate().map_err(package_error)?;
    signing::write_private(&private_path, &private).map_err(package_error)?;
    std::fs::write(&public_path, public).with_context(|| format!("writing {}", public_path.display()))?;
    println!("private key: {} (mode 0600; keep it off the air-gapped site)", private_path.display());
    println!("public key:  {} (give it to the site: bootstrap.sh --public-key)", public_path.display());
    Ok(exit::SUCCESS)
}

fn verify(path: &Path, public_key: Option<&Path>, json: bool) -> Result<u8> {
    let key = public_key.map(signing::read_verifying_key).transpose().map_err(package_error)?;
    let data = std::fs::read(path)
        .map_err(|e| exit::coded(exit::BAD_INPUT, format!("--bundle {}: cannot read: {e}", path.display())))?;
    let name = path.display().to_string();
    let report = bundle::verify(&data, &name, key.as_ref()).map_err(package_error)?;
    let signature = match (report.signed, report.signature_checked) {
        (_, true) => "valid",
        (true, false) => "present, not checked (no --public-key)",
        (false, false) => "none",
    };
    if json {
        let out = serde_json::json!({
            "bundle": path, "valid": true, "version": report.version, "files": report.files,
            "signed": report.signed, "signature_checked": report.signature_checked,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{name}: OK ({}, version {}, {} files match SHA256SUMS, signature {signature})",
            report.top, report.version, report.files
        );
    }
    Ok(exit::SUCCESS)
}
