//! Helm chart directories packaged as `NAME-VERSION.tgz`, the form `helm install` takes,
//! written deterministically in Rust (`helm package` stamps the current time, so two
//! runs differ, and it is not installed on every build host).
//!
//! The archive holds every file under the chart directory below a top-level `NAME/`,
//! minus what `.helmignore` excludes. Supported `.helmignore` lines: comments, exact
//! names (`.git`), `*.ext` suffixes and `dir/` directory names; other glob forms are
//! refused with a message so a chart never silently ships files its author excluded.

use crate::archive::{self, Entry};
use crate::{Error, Result};
use serde::Deserialize;
use std::path::Path;

/// A packaged chart.
#[derive(Debug, Clone)]
pub struct PackagedChart {
    /// `name` from Chart.yaml.
    pub name: String,
    /// `version` from Chart.yaml.
    pub version: String,
    /// `NAME-VERSION.tgz`.
    pub file_name: String,
    /// The .tgz bytes.
    pub data: Vec<u8>,
}

#[derive(Deserialize)]
struct ChartYaml {
    name: Option<String>,
    version: Option<String>,
}

enum Ignore {
    Exact(String),
    Suffix(String),
    Dir(String),
}

impl Ignore {
    fn matches(&self, name: &str, is_dir: bool) -> bool {
        match self {
            Ignore::Exact(n) => n == name,
            Ignore::Suffix(s) => name.ends_with(s.as_str()),
            Ignore::Dir(d) => is_dir && d == name,
        }
    }
}

fn read_helmignore(dir: &Path) -> Result<Vec<Ignore>> {
    let path = dir.join(".helmignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rule = if let Some(d) = line.strip_suffix('/').filter(|d| !d.contains(['*', '?', '[', '/', '!'])) {
            Ignore::Dir(d.to_string())
        } else if let Some(s) = line.strip_prefix('*').filter(|s| !s.contains(['*', '?', '[', '/', '!'])) {
            Ignore::Suffix(s.to_string())
        } else if !line.contains(['*', '?', '[', '/', '!']) {
            Ignore::Exact(line.to_string())
        } else {
            return Err(Error::Invalid(format!(
                "{}:{}: pattern {line:?} is not supported by the chart packager (use a name, *.ext or dir/)",
                path.display(),
                n + 1
            )));
        };
        rules.push(rule);
    }
    Ok(rules)
}

/// Packages the chart in `dir`, every file time `epoch`.
///
/// # Errors
/// [`Error::Invalid`] when Chart.yaml is missing a name or version, the name is not a
/// valid chart name, the chart contains a symlink, or `.helmignore` has an unsupported
/// pattern; [`Error::Io`] when a file cannot be read.
pub fn package(dir: &Path, epoch: u64) -> Result<PackagedChart> {
    let chart_yaml = dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).map_err(|e| Error::io(&chart_yaml, e))?;
    let meta: ChartYaml = serde_norway::from_str(&text)
        .map_err(|e| Error::Invalid(format!("{}: not valid YAML: {e}", chart_yaml.display())))?;
    let field = |v: Option<String>, name: &str| {
        v.filter(|s| !s.trim().is_empty())
            .ok_or_else(|| Error::Invalid(format!("{}: `{name}` is missing or empty", chart_yaml.display())))
    };
    let name = field(meta.name, "name")?;
    let version = field(meta.version, "version")?;
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(Error::Invalid(format!("{}: chart name {name:?} must be [a-z0-9-]", chart_yaml.display())));
    }
    if version.contains(['/', ' ']) {
        return Err(Error::Invalid(format!("{}: chart version {version:?} is not a version", chart_yaml.display())));
    }
    let ignore = read_helmignore(dir)?;
    let mut entries = Vec::new();
    collect(dir, &name, &ignore, &mut entries)?;
    let data = archive::tar_gz(&entries, epoch)?;
    Ok(PackagedChart { file_name: format!("{name}-{version}.tgz"), name, version, data })
}

fn collect(dir: &Path, prefix: &str, ignore: &[Ignore], out: &mut Vec<Entry>) -> Result<()> {
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .collect::<std::io::Result<_>>()
        .map_err(|e| Error::io(dir, e))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let path = child.path();
        let name = child.file_name().to_string_lossy().into_owned();
        let kind = child.file_type().map_err(|e| Error::io(&path, e))?;
        if kind.is_symlink() {
            return Err(Error::Invalid(format!(
                "{}: symlinks are not packaged; copy the file into the chart",
                path.display()
            )));
        }
        if ignore.iter().any(|rule| rule.matches(&name, kind.is_dir())) {
            continue;
        }
        let inner = format!("{prefix}/{name}");
        if kind.is_dir() {
            collect(&path, &inner, ignore, out)?;
        } else {
            let data = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
            out.push(Entry::file(inner, 0o644, data));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(dir: &Path) {
        std::fs::create_dir_all(dir.join("templates")).unwrap();
        std::fs::create_dir_all(dir.join(".git")).unwrap();
        std::fs::write(dir.join("Chart.yaml"), "apiVersion: v2\nname: rune\nversion: 0.1.0\n").unwrap();
        std::fs::write(dir.join("values.yaml"), "replicaCount: 1\n").unwrap();
        std::fs::write(dir.join("templates/deployment.yaml"), "kind: Deployment\n").unwrap();
        std::fs::write(dir.join("notes.orig"), "x").unwrap();
        std::fs::write(dir.join(".git/HEAD"), "x").unwrap();
        std::fs::write(dir.join(".helmignore"), "# comment\n.git/\n*.orig\n").unwrap();
    }

    #[test]
    fn packages_under_the_chart_name_without_ignored_files() {
        let tmp = tempfile::tempdir().unwrap();
        chart(tmp.path());
        let packaged = package(tmp.path(), 0).unwrap();
        assert_eq!(packaged.file_name, "rune-0.1.0.tgz");
        let names: Vec<String> =
            archive::read_tar_gz(&packaged.data, "chart").unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["rune/.helmignore", "rune/Chart.yaml", "rune/templates/deployment.yaml", "rune/values.yaml"]
        );
        assert_eq!(packaged.data, package(tmp.path(), 0).unwrap().data, "deterministic");
    }

    #[test]
    fn bad_chart_metadata_and_patterns_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let err = package(tmp.path(), 0).unwrap_err().to_string();
        assert!(err.contains("Chart.yaml"), "{err}");
        std::fs::write(tmp.path().join("Chart.yaml"), "name: rune\n").unwrap();
        let err = package(tmp.path(), 0).unwrap_err().to_string();
        assert!(err.contains("`version` is missing"), "{err}");
        std::fs::write(tmp.path().join("Chart.yaml"), "name: Rune_X\nversion: 1.0.0\n").unwrap();
        assert!(package(tmp.path(), 0).unwrap_err().to_string().contains("must be [a-z0-9-]"));
        std::fs::write(tmp.path().join("Chart.yaml"), "name: [unclosed\n").unwrap();
        assert!(package(tmp.path(), 0).unwrap_err().to_string().contains("not valid YAML"));
        std::fs::write(tmp.path().join("Chart.yaml"), "name: rune\nversion: 1.0.0\n").unwrap();
        std::fs::write(tmp.path().join(".helmignore"), "templates/*.bak\n").unwrap();
        let err = package(tmp.path(), 0).unwrap_err().to_string();
        assert!(err.contains(".helmignore:1") && err.contains("not supported"), "{err}");
    }
}
