//! Deterministic tar and tar.gz: the same entries always give the same bytes.
//!
//! `tar` and `gzip` as shipped take times, owners and order from the machine; a layer or
//! bundle written with them never hashes the same twice. Here every entry gets the one
//! `epoch` as its mtime, numeric owners and no user or group names, entries are sorted by
//! path, headers are POSIX ustar, and the gzip header carries no file name and mtime 0.

use crate::{Error, Result};
use flate2::{Compression, GzBuilder};
use std::io::{Read, Write};

/// What one archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory (its path is written with a trailing `/`).
    Dir,
    /// A regular file and its content.
    File(Vec<u8>),
}

/// One archive member. Paths are relative, `/`-separated, without a leading `./`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the archive.
    pub path: String,
    /// Directory or file content.
    pub kind: EntryKind,
    /// Permission bits (e.g. `0o644`).
    pub mode: u32,
    /// Numeric owner (no name is written, so the reader's passwd does not matter).
    pub uid: u64,
    /// Numeric group.
    pub gid: u64,
}

impl Entry {
    /// A root-owned file.
    pub fn file(path: impl Into<String>, mode: u32, data: Vec<u8>) -> Self {
        Entry { path: path.into(), kind: EntryKind::File(data), mode, uid: 0, gid: 0 }
    }

    /// A root-owned directory.
    pub fn dir(path: impl Into<String>, mode: u32) -> Self {
        Entry { path: path.into(), kind: EntryKind::Dir, mode, uid: 0, gid: 0 }
    }

    /// The same entry owned by `uid:gid`.
    pub fn owned_by(mut self, uid: u64, gid: u64) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// Writes `entries` as an uncompressed ustar archive, sorted by path, every mtime `epoch`.
///
/// # Errors
/// [`Error::Invalid`] for an absolute path, a `..` component, a duplicate path, or a path
/// too long for ustar (255 bytes split as 155 + 100).
pub fn tar(entries: &[Entry], epoch: u64) -> Result<Vec<u8>> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for pair in sorted.windows(2) {
        if pair[0].path == pair[1].path {
            return Err(Error::Invalid(format!("archive: duplicate entry {:?}", pair[0].path)));
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    for entry in sorted {
        check_path(&entry.path)?;
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        header.set_uid(entry.uid);
        header.set_gid(entry.gid);
        header.set_mode(entry.mode);
        let (path, data): (String, &[u8]) = match &entry.kind {
            EntryKind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                (format!("{}/", entry.path.trim_end_matches('/')), &[])
            }
            EntryKind::File(data) => {
                header.set_entry_type(tar::EntryType::Regular);
                (entry.path.clone(), data)
            }
        };
        header.set_size(data.len() as u64);
        header
            .set_path(&path)
            .map_err(|e| Error::Invalid(format!("archive: cannot store path {path:?} in a ustar header: {e}")))?;
        header.set_cksum();
        builder.append(&header, data).map_err(|e| Error::io(&path, e))?;
    }
    builder.into_inner().map_err(|e| Error::io("<tar>", e))
}

/// Gzips `data` with a fixed header (no name, mtime 0) and a fixed level, so the output
/// depends on `data` alone.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzBuilder::new().mtime(0).operating_system(255).write(Vec::new(), Compression::new(6));
    // Writing into a Vec cannot fail.
    encoder.write_all(data).expect("write to Vec");
    encoder.finish().expect("finish to Vec")
}

/// [`tar`] then [`gzip`].
///
/// # Errors
/// As [`tar`].
pub fn tar_gz(entries: &[Entry], epoch: u64) -> Result<Vec<u8>> {
    Ok(gzip(&tar(entries, epoch)?))
}

/// Reads the regular files of a tar.gz (directories are skipped), refusing anything a
/// bundle never contains: absolute paths, `..`, links and devices. `name` is used in
/// error messages.
///
/// # Errors
/// [`Error::Invalid`] when the data is not a tar.gz or holds a refused member.
pub fn read_tar_gz(data: &[u8], name: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    let bad = |e: std::io::Error| Error::Invalid(format!("{name}: not a readable tar.gz ({e})"));
    let mut files = Vec::new();
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(Error::Invalid(format!("{name}: member {path:?} is not a regular file or directory")));
        }
        check_path(&path).map_err(|e| Error::Invalid(format!("{name}: {e}")))?;
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(bad)?;
        files.push((path, content));
    }
    Ok(files)
}

fn check_path(path: &str) -> Result<()> {
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(Error::Invalid(format!("archive: unsafe member path {path:?} (must be relative, without ..)")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Entry> {
        vec![
            Entry::file("b/file.txt", 0o644, b"hello".to_vec()),
            Entry::dir("b", 0o755),
            Entry::file("a.bin", 0o755, vec![0, 1, 2]).owned_by(65532, 65532),
        ]
    }

    #[test]
    fn same_entries_in_any_order_give_the_same_bytes() {
        let one = tar_gz(&sample(), 1_700_000_000).unwrap();
        let mut reversed = sample();
        reversed.reverse();
        assert_eq!(one, tar_gz(&reversed, 1_700_000_000).unwrap());
        assert_ne!(one, tar_gz(&sample(), 1_700_000_001).unwrap(), "the epoch is part of the content");
    }

    #[test]
    fn headers_carry_the_fixed_metadata() {
        let data = tar(&sample(), 42).unwrap();
        let mut archive = tar::Archive::new(&data[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let h = entry.header();
            seen.push((entry.path().unwrap().display().to_string(), h.mtime().unwrap(), h.uid().unwrap()));
            assert_eq!(h.username().unwrap(), Some(""));
        }
        assert_eq!(seen, vec![("a.bin".into(), 42, 65532), ("b/".into(), 42, 0), ("b/file.txt".into(), 42, 0)]);
    }

    #[test]
    fn gzip_header_has_no_time_and_no_name() {
        let gz = gzip(b"x");
        assert_eq!(&gz[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(gz[3], 0, "no FNAME/FEXTRA flags");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "mtime 0");
    }

    #[test]
    fn round_trip_reads_files_only() {
        let files = read_tar_gz(&tar_gz(&sample(), 0).unwrap(), "t").unwrap();
        assert_eq!(files, vec![("a.bin".into(), vec![0, 1, 2]), ("b/file.txt".into(), b"hello".to_vec())]);
    }

    #[test]
    fn refuses_unsafe_and_duplicate_paths() {
        for bad in ["/etc/passwd", "a/../../x", ""] {
            let err = tar(&[Entry::file(bad, 0o644, vec![])], 0).unwrap_err();
            assert!(err.to_string().contains("unsafe member path"), "{bad}: {err}");
        }
        let dup = tar(&[Entry::file("x", 0o644, vec![]), Entry::file("x", 0o644, vec![1])], 0).unwrap_err();
        assert!(dup.to_string().contains("duplicate entry"), "{dup}");
    }

    #[test]
    fn reading_garbage_or_links_is_refused() {
        let err = read_tar_gz(b"not gzip at all", "junk.tar.gz").unwrap_err();
        assert!(err.to_string().contains("junk.tar.gz: not a readable tar.gz"), "{err}");
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        builder.append_link(&mut h, "evil", "/etc/shadow").unwrap();
        let gz = gzip(&builder.into_inner().unwrap());
        let err = read_tar_gz(&gz, "links.tar.gz").unwrap_err();
        assert!(err.to_string().contains("not a regular file"), "{err}");
    }
}
