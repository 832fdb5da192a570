//! The server lock: how `rune db restore` knows a server is using an SQLite database.
//!
//! Every RUNE process that opens an SQLite database for writing (server or CLI) holds a
//! shared advisory lock (`flock`) on `<db>.lock`; `rune db restore` needs it
//! exclusively, so it refuses to swap the file under anyone. The kernel releases the
//! lock when a process dies, even by `SIGKILL`, so a stale file never blocks a restore.

use crate::error::{Result, StoreError};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The lock file that guards `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn unwritable(lock: &Path, e: std::io::Error) -> StoreError {
    let dir = lock.parent().unwrap_or(lock).to_owned();
    StoreError::Path {
        reason: format!(
            "cannot create {} ({e}); RUNE writes the database, its -wal/-shm files and this lock file here: \
             make the directory writable for this user, or choose another RUNE_HOME / --database-url",
            lock.display()
        ),
        path: dir,
    }
}

/// An exclusive lock on a database, released on drop or process exit.
#[derive(Debug)]
pub struct DbLock {
    // Held open for its lifetime: closing the file releases the flock.
    _file: File,
    path: PathBuf,
}

impl DbLock {
    /// Takes a shared lock without waiting (writers of the database). Fails only while
    /// a restore holds it exclusively.
    pub fn shared(db: &Path) -> Result<Self> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| unwritable(&path, e))?;
        match file.try_lock_shared() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => {
                Err(StoreError::InUse { holder: format!("a restore is replacing it; lock file {}", path.display()) })
            }
            Err(TryLockError::Error(e)) => Err(StoreError::io(format!("locking {}", path.display()), e)),
        }
    }

    /// Takes the lock exclusively without waiting, recording `holder` in the file.
    /// Fails with [`StoreError::InUse`] when any other process has the database open.
    pub fn acquire(db: &Path, holder: &str) -> Result<Self> {
        let path = lock_path(db);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| unwritable(&path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut who = String::new();
                let _ = file.read_to_string(&mut who);
                let who = if who.trim().is_empty() { "a RUNE server or CLI".to_owned() } else { who.trim().to_owned() };
                return Err(StoreError::InUse { holder: format!("{who}; lock file {}", path.display()) });
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::io(format!("locking {}", path.display()), e));
            }
        }
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{holder} (pid {})", std::process::id());
        let _ = file.flush();
        Ok(Self { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second taker is refused with the first holder's name; dropping releases.
    #[test]
    fn exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("jobs.db");
        let first = DbLock::acquire(&db, "rune serve").unwrap();
        let err = DbLock::acquire(&db, "rune db restore").unwrap_err().to_string();
        assert!(err.contains("rune serve"), "{err}");
        drop(first);
        let server = DbLock::shared(&db).unwrap();
        let _cli = DbLock::shared(&db).unwrap();
        assert!(DbLock::acquire(&db, "rune db restore").is_err(), "shared holders block a restore");
        drop(server);
        drop(_cli);
        let restore = DbLock::acquire(&db, "rune db restore").unwrap();
        assert!(DbLock::shared(&db).unwrap_err().to_string().contains("restore"));
        drop(restore);
    }
}
