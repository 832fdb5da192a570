//! `rune image build` and `rune --version`: the OCI layout is deterministic, carries the
//! labels and the non-root user, and a real OCI tool (skopeo) reads it for every platform.

use crate::util::Home;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether an external tool is installed. Missing: a loud skip locally, a failure in CI
/// (`CI=true`), where .ci/run installs it.
pub fn have_tool(name: &str) -> bool {
    let found =
        Command::new("sh").args(["-c", &format!("command -v {name}")]).output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{name} is required in CI (.ci/run installs it)");
        eprintln!("\n*** SKIPPED: {name} is not installed (apt-get install {name}); CI runs this check ***\n");
    }
    found
}

/// A file that passes for a static `rune` of `arch` (ELF header with the right machine):
/// the image's content does not matter to these tests, its layout and determinism do.
pub fn fake_binary(dir: &Path, arch: &str) -> PathBuf {
    let machine: u16 = if arch == "amd64" { 62 } else { 183 };
    let mut bytes = vec![0u8; 64];
    bytes[..4].copy_from_slice(b"\x7fELF");
    bytes[4] = 2;
    bytes[5] = 1;
    bytes[18..20].copy_from_slice(&machine.to_le_bytes());
    bytes.extend_from_slice(format!("stand-in rune for {arch}").as_bytes());
    let path = dir.join(format!("rune-{arch}"));
    std::fs::write(&path, bytes).unwrap();
    path
}

fn build_args(dir: &Path, output: &Path) -> Vec<String> {
    vec![
        "image".into(),
        "build".into(),
        "--output".into(),
        output.display().to_string(),
        "--platform".into(),
        "linux/amd64,linux/arm64".into(),
        "--binary".into(),
        format!("linux/amd64={}", fake_binary(dir, "amd64").display()),
        "--binary".into(),
        format!("linux/arm64={}", fake_binary(dir, "arm64").display()),
        "--source-date-epoch".into(),
        "1700000000".into(),
        "--json".into(),
    ]
}

fn skopeo(args: &[&str]) -> serde_json::Value {
    let out = Command::new("skopeo").args(args).output().expect("run skopeo");
    assert!(out.status.success(), "skopeo {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("skopeo prints JSON")
}

/// Two builds give the same bytes; skopeo reads both platforms with the labels and user.
#[test]
fn image_archive_is_reproducible_and_readable_by_skopeo() {
    let home = Home::new();
    let a = home.path().join("a.tar");
    let b = home.path().join("b.tar");
    let args_a = build_args(home.path(), &a);
    let first = home.run(&args_a.iter().map(String::as_str).collect::<Vec<_>>()).expect_code(0).json();
    let args_b = build_args(home.path(), &b);
    let second = home.run(&args_b.iter().map(String::as_str).collect::<Vec<_>>()).expect_code(0).json();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap(), "two builds differ");
    assert_eq!(first["digest"], second["digest"]);
    assert_eq!(first["platforms"].as_array().unwrap().len(), 2);
    assert_eq!(first["reference"], "ghcr.io/rune-bench/rune:0.1.0");

    if !have_tool("skopeo") {
        return;
    }
    let reference = format!("oci-archive:{}:0.1.0", a.display());
    let raw = skopeo(&["inspect", "--raw", &reference]);
    assert_eq!(raw["mediaType"], "application/vnd.oci.image.index.v1+json");
    let archs: Vec<_> =
        raw["manifests"].as_array().unwrap().iter().map(|m| m["platform"]["architecture"].clone()).collect();
    assert_eq!(archs, ["amd64", "arm64"]);
    for arch in ["amd64", "arm64"] {
        let inspect = skopeo(&["--override-os", "linux", "--override-arch", arch, "inspect", &reference]);
        assert_eq!(inspect["Architecture"], arch);
        let labels = &inspect["Labels"];
        assert_eq!(labels["org.opencontainers.image.version"], "0.1.0");
        assert_eq!(labels["org.opencontainers.image.licenses"], "Apache-2.0");
        assert_eq!(labels["org.opencontainers.image.source"], "https://github.com/rune-bench/rune");
        assert!(labels["org.opencontainers.image.revision"].as_str().is_some_and(|r| !r.is_empty()));
        let config = skopeo(&["--override-os", "linux", "--override-arch", arch, "inspect", "--config", &reference]);
        assert_eq!(config["config"]["User"], "65532:65532");
        assert_eq!(config["config"]["Entrypoint"][0], "/usr/local/bin/rune");
    }
}

/// A directory output is an OCI layout skopeo reads; a second build refuses to mix into it.
#[test]
fn image_directory_layout() {
    let home = Home::new();
    let dir = home.path().join("layout");
    let binary = fake_binary(home.path(), "amd64");
    let binary_arg = format!("linux/amd64={}", binary.display());
    let out = dir.display().to_string();
    let args = ["image", "build", "--output", &out, "--binary", &binary_arg, "--tag", "v1"];
    let run = home.run(&args).expect_code(0);
    assert!(run.stdout().contains("ghcr.io/rune-bench/rune:v1 sha256:"), "{}", run.stdout());
    assert!(dir.join("oci-layout").is_file() && dir.join("index.json").is_file());
    let err = home.run(&args).expect_code(2).stderr();
    assert!(err.contains("already holds an OCI layout"), "{err}");
    if have_tool("skopeo") {
        let inspect = skopeo(&["inspect", &format!("oci:{}:v1", dir.display())]);
        assert_eq!(inspect["Architecture"], "amd64");
    }
}

/// Bad flags are refused with exit 2 and a message naming the flag.
#[test]
fn image_build_rejects_bad_input() {
    let home = Home::new();
    let amd64 = fake_binary(home.path(), "amd64");
    let out = home.path().join("x.tar").display().to_string();
    let good = format!("linux/amd64={}", amd64.display());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--binary".into(), amd64.display().to_string()], "expected PLATFORM=PATH"),
        (vec!["--binary".into(), format!("linux/s390x={}", amd64.display())], "linux/s390x"),
        (vec!["--binary".into(), "linux/amd64=/nonexistent/rune".into()], "cannot read"),
        (vec!["--binary".into(), format!("linux/arm64={}", amd64.display())], "another architecture"),
        (
            vec!["--binary".into(), good.clone(), "--platform".into(), "linux/amd64,linux/arm64".into()],
            "no --binary linux/arm64",
        ),
        (vec!["--binary".into(), good.clone(), "--binary".into(), good.clone()], "given twice"),
        (vec!["--binary".into(), good.clone(), "--tag".into(), "1.0+build".into()], "tag \"1.0+build\""),
        (vec!["--binary".into(), good, "--repository".into(), "Bad/Repo".into()], "repository \"Bad/Repo\""),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["image".to_string(), "build".into(), "--output".into(), out.clone()];
        args.extend(extra);
        let run = home.run(&args.iter().map(String::as_str).collect::<Vec<_>>()).expect_code(2);
        assert!(run.stderr().contains(expected), "{args:?}: {}", run.stderr());
    }
    let script = home.path().join("script");
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let arg = format!("linux/amd64={}", script.display());
    let err = home.run(&["image", "build", "--output", &out, "--binary", &arg]).expect_code(2).stderr();
    assert!(err.contains("not an ELF executable"), "{err}");
}

/// `--version` names the version, the commit and the build date; `-V` stays one line.
#[test]
fn long_version_names_commit_and_build_date() {
    let home = Home::new();
    let out = home.run(&["--version"]).expect_code(0).stdout();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with(&format!("rune {}", env!("CARGO_PKG_VERSION"))), "{out}");
    assert!(lines[1].starts_with("commit: ") && lines[1].len() > "commit: ".len(), "{out}");
    let date = lines[2].strip_prefix("built: ").unwrap_or_else(|| panic!("{out}"));
    assert!(date.len() == 20 && date.ends_with('Z') && date.as_bytes()[10] == b'T', "{date}");
    assert_eq!(home.run(&["-V"]).expect_code(0).stdout().lines().count(), 1);
}
