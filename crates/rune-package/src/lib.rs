//! Reproducible delivery artifacts for RUNE: everything a site needs to run RUNE without
//! a network, written byte-for-byte identically from the same inputs.
//!
//! Reproducibility is the point of this crate: an operator who rebuilds a bundle from the
//! same commit must get the same sha256, so a signature or a checksum published once
//! stays meaningful. Every writer therefore fixes what tools normally take from the
//! machine: file order (sorted), times (one `epoch` for everything), owners (numeric, no
//! names), permissions, and the gzip header (no name, mtime 0, fixed level).
//!
//! # Layout
//!
//! - [`archive`]: deterministic tar and tar.gz writing, and reading a tar.gz back.
//! - [`oci`]: an OCI image layout (multi-arch index) holding one static binary, run as
//!   the non-root user 65532, as a directory or an `oci-archive` tar.
//! - [`chart`]: Helm chart directories packaged as Helm-loadable `.tgz` files.
//! - [`sbom`]: a CycloneDX 1.5 SBOM of the Rust dependencies in `Cargo.lock`.
//! - [`signing`]: ed25519 keys (PEM, readable by OpenSSL) and detached signatures.
//! - [`bundle`]: the air-gapped bundle (images, charts, CRDs, scripts, SBOM,
//!   `manifest.json`, `SHA256SUMS`, optional signature) and its verification.

pub mod archive;
pub mod bundle;
pub mod chart;
pub mod oci;
pub mod sbom;
pub mod signing;

use std::path::PathBuf;

/// Errors from building or verifying artifacts. Each names the file or field at fault so
/// the message alone tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// An input (flag value, file content) is malformed.
    #[error("{0}")]
    Invalid(String),
    /// A bundle or signature did not verify: the content is not what was signed or summed.
    #[error("verification failed: {0}")]
    Verification(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Lower-case hex sha256 of `data` (the form `SHA256SUMS` and OCI digests use).
pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

/// Formats Unix seconds as RFC 3339 UTC (`1970-01-01T00:00:00Z`), the form OCI
/// `created` fields and CycloneDX timestamps take. Days-to-civil after H. Hinnant.
pub fn rfc3339(epoch: u64) -> String {
    let days = (epoch / 86_400) as i64;
    let secs = epoch % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs % 3600 / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_767_225_599), "2025-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_798_761_600), "2027-01-01T00:00:00Z");
    }

    #[test]
    fn sha256_of_empty_input() {
        assert_eq!(sha256_hex(b""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }
}
