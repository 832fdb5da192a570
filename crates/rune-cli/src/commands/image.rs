//! `rune image build`: an OCI image of the static binary, written without a daemon.

use crate::cli::{ImageBuildArgs, ImageCommand, ImageSourceArgs};
use crate::exit;
use anyhow::{Context, Result};
use rune_package::oci::{self, ImageLayout, ImageSpec, Platform};
use std::collections::BTreeMap;

/// The licence label: the workspace licence, as Cargo knows it.
const LICENSES: &str = env!("CARGO_PKG_LICENSE");
/// The source label.
const SOURCE: &str = env!("CARGO_PKG_REPOSITORY");

/// Runs `rune image …`.
pub fn run(cmd: ImageCommand) -> Result<u8> {
    match cmd {
        ImageCommand::Build(args) => build(args),
    }
}

/// Maps a packaging error to the CLI's exit codes: bad input 2, failed verification 3.
pub(super) fn package_error(err: rune_package::Error) -> anyhow::Error {
    let code = match &err {
        rune_package::Error::Invalid(_) => exit::BAD_INPUT,
        rune_package::Error::Verification(_) => exit::CHECK_FAILED,
        rune_package::Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => exit::BAD_INPUT,
        rune_package::Error::Io { .. } => exit::FAILURE,
    };
    exit::coded(code, err.to_string())
}

/// The date every artifact carries: --source-date-epoch / SOURCE_DATE_EPOCH, else the
/// build date of this binary (so rebuilding from the same binary is reproducible).
pub(super) fn epoch(explicit: Option<u64>) -> u64 {
    explicit.unwrap_or_else(|| env!("RUNE_BUILD_EPOCH").parse().unwrap_or(0))
}

/// Turns the image flags into an [`ImageSpec`]: each platform of --platform must have
/// exactly one --binary, and no binary may be left over.
pub(super) fn image_spec(source: &ImageSourceArgs, tag: &str, version: &str) -> Result<ImageSpec> {
    let mut binaries: BTreeMap<Platform, Vec<u8>> = BTreeMap::new();
    for raw in &source.binaries {
        let (platform, path) = raw.split_once('=').ok_or_else(|| {
            exit::coded(exit::BAD_INPUT, format!("--binary {raw:?}: expected PLATFORM=PATH, e.g. linux/amd64=./rune"))
        })?;
        let platform: Platform = platform.parse().map_err(|e| package_error(e).context(format!("--binary {raw:?}")))?;
        let data = std::fs::read(path)
            .map_err(|e| exit::coded(exit::BAD_INPUT, format!("--binary {platform}={path}: cannot read: {e}")))?;
        if binaries.insert(platform.clone(), data).is_some() {
            return Err(exit::coded(exit::BAD_INPUT, format!("--binary: {platform} is given twice")));
        }
    }
    if let Some(list) = &source.platform {
        let wanted = oci::parse_platforms(list).map_err(|e| package_error(e).context("--platform"))?;
        for p in &wanted {
            if !binaries.contains_key(p) {
                return Err(exit::coded(
                    exit::BAD_INPUT,
                    format!("--platform lists {p} but no --binary {p}=PATH was given (see scripts/build-cross.sh)"),
                ));
            }
        }
        if let Some(extra) = binaries.keys().find(|p| !wanted.contains(p)) {
            return Err(exit::coded(exit::BAD_INPUT, format!("--binary {extra} is not in --platform {list}")));
        }
    }
    Ok(ImageSpec {
        repository: source.repository.clone(),
        tag: tag.to_string(),
        version: version.to_string(),
        revision: source.revision.clone().unwrap_or_else(|| env!("RUNE_GIT_COMMIT").to_string()),
        source: SOURCE.to_string(),
        licenses: LICENSES.to_string(),
        epoch: epoch(source.source_date_epoch),
        binaries,
    })
}

fn build(args: ImageBuildArgs) -> Result<u8> {
    let version = env!("CARGO_PKG_VERSION");
    let tag = args.tag.clone().unwrap_or_else(|| version.to_string());
    let spec = image_spec(&args.source, &tag, version)?;
    let layout = ImageLayout::build(&spec).map_err(package_error)?;
    let as_archive = args.output.extension().is_some_and(|e| e == "tar");
    if as_archive {
        let data = layout.to_archive().map_err(package_error)?;
        std::fs::write(&args.output, data).with_context(|| format!("writing {}", args.output.display()))?;
    } else {
        if args.output.join("index.json").exists() {
            return Err(exit::coded(
                exit::BAD_INPUT,
                format!("--output {}: already holds an OCI layout; choose an empty directory", args.output.display()),
            ));
        }
        layout.write_dir(&args.output).map_err(package_error)?;
    }
    let reference = format!("{}:{}", spec.repository, spec.tag);
    if args.json {
        let platforms: Vec<_> =
            layout.manifests.iter().map(|(p, d)| serde_json::json!({"platform": p.to_string(), "digest": d})).collect();
        let out = serde_json::json!({
            "output": args.output, "reference": reference, "digest": layout.index_digest, "platforms": platforms,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let kind = if as_archive { "oci-archive" } else { "OCI layout" };
        println!("{kind} {} written: {reference} {}", args.output.display(), layout.index_digest);
        for (p, d) in &layout.manifests {
            println!("  {p}  {d}");
        }
    }
    Ok(exit::SUCCESS)
}
