//! Database URLs: `sqlite:///abs/path.db`, `sqlite://relative.db`, `postgres://…`.
//!
//! Parsing is strict and every rejection says how a correct URL looks. Passwords are
//! masked whenever a URL is displayed.

use crate::error::{Result, StoreError};
use std::fmt;
use std::path::{Path, PathBuf};

/// A parsed database location.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite file.
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// `synchronous` pragma: `FULL` (default, survives power loss) or `NORMAL`.
        synchronous_full: bool,
    },
    /// A PostgreSQL server (the URL as given, passed to tokio-postgres).
    Postgres {
        /// Connection string.
        url: String,
    },
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Sqlite { path, .. } => write!(f, "sqlite://{}", path.display()),
            DatabaseUrl::Postgres { url } => f.write_str(&mask_password(url)),
        }
    }
}

/// Replaces the password in `scheme://user:password@host` with `***`.
pub fn mask_password(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else { return url.to_owned() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => {
            format!("{}{}:***{}", &url[..scheme_end + 3], &authority[..colon], &rest[at..])
        }
        _ => url.to_owned(),
    }
}

impl DatabaseUrl {
    /// Parses a URL; relative SQLite paths are resolved against `base_dir`.
    pub fn parse(raw: &str, base_dir: &Path) -> Result<Self> {
        let bad = |reason: &str| StoreError::InvalidUrl { url: mask_password(raw), reason: reason.to_owned() };
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(bad("it is empty; use sqlite:///path/to/jobs.db or postgres://user@host:5432/rune"));
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            raw.parse::<tokio_postgres::Config>()
                .map_err(|e| bad(&format!("{e}; expected postgres://user:password@host:5432/database")))?;
            return Ok(DatabaseUrl::Postgres { url: raw.to_owned() });
        }
        let Some(rest) = raw.strip_prefix("sqlite://") else {
            let scheme = raw.split("://").next().unwrap_or(raw);
            return Err(bad(&format!(
                "unsupported scheme `{scheme}`; use sqlite:///absolute/path/jobs.db, sqlite://relative/jobs.db or postgres://…"
            )));
        };
        let (path_part, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if path_part.is_empty() || path_part == "/" {
            return Err(bad("no file path; use sqlite:///absolute/path/jobs.db"));
        }
        if path_part.contains(":memory:") {
            return Err(bad("in-memory databases lose every job on exit; give a file path"));
        }
        let mut synchronous_full = true;
        for pair in query.unwrap_or("").split('&').filter(|s| !s.is_empty()) {
            match pair {
                "synchronous=full" | "synchronous=FULL" => synchronous_full = true,
                "synchronous=normal" | "synchronous=NORMAL" => synchronous_full = false,
                other => {
                    return Err(bad(&format!("unknown option `{other}`; the only option is synchronous=full|normal")))
                }
            }
        }
        let path = if let Some(home_rel) = path_part.strip_prefix("~/") {
            match std::env::var_os("HOME") {
                Some(home) => PathBuf::from(home).join(home_rel),
                None => return Err(bad("`~` used but HOME is not set; give an absolute path")),
            }
        } else if path_part.starts_with('/') {
            PathBuf::from(path_part)
        } else {
            base_dir.join(path_part)
        };
        Ok(DatabaseUrl::Sqlite { path, synchronous_full })
    }

    /// The SQLite file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            DatabaseUrl::Sqlite { path, .. } => Some(path),
            DatabaseUrl::Postgres { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<DatabaseUrl> {
        DatabaseUrl::parse(s, Path::new("/base"))
    }

    /// Absolute, relative and tilde paths resolve as documented.
    #[test]
    fn sqlite_paths() {
        assert_eq!(parse("sqlite:///data/jobs.db").unwrap().sqlite_path(), Some(Path::new("/data/jobs.db")));
        assert_eq!(parse("sqlite://x/jobs.db").unwrap().sqlite_path(), Some(Path::new("/base/x/jobs.db")));
        let DatabaseUrl::Sqlite { synchronous_full, .. } = parse("sqlite:///a.db?synchronous=normal").unwrap() else {
            panic!()
        };
        assert!(!synchronous_full);
    }

    /// Each malformed URL is refused with a message that shows a correct one.
    #[test]
    fn malformed_urls() {
        for (url, needle) in [
            ("", "empty"),
            ("mysql://x", "unsupported scheme `mysql`"),
            ("sqlite://", "no file path"),
            ("sqlite:///:memory:", "in-memory"),
            ("sqlite:///a.db?journal=off", "unknown option"),
            ("postgres://u:p@h:notaport/db", "expected postgres://"),
            ("/data/jobs.db", "unsupported scheme"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }

    /// Passwords never appear when a URL is shown.
    #[test]
    fn passwords_masked() {
        assert_eq!(mask_password("postgres://rune:s3cret@db:5432/rune"), "postgres://rune:***@db:5432/rune");
        assert_eq!(mask_password("postgres://rune@db/rune"), "postgres://rune@db/rune");
        let err = parse("postgres://u:s3cret@h:bad/db").unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
        let shown = parse("postgres://u:s3cret@h/db").unwrap().to_string();
        assert!(!shown.contains("s3cret"));
    }
}
