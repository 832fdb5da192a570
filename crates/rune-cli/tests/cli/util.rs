//! Running the `rune` binary against a private RUNE_HOME.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A private RUNE_HOME with its default SQLite database.
pub struct Home {
    pub dir: tempfile::TempDir,
}

impl Home {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("tempdir") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("jobs.db")
    }

    /// `rune ARGS` with this home, no inherited database URL, stdin closed.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rune"));
        c.args(args)
            .env("RUNE_HOME", self.path())
            .env_remove("RUNE_DATABASE_URL")
            .env_remove("RUNE_BACKUP_DIR")
            .env_remove("RUNE_TEST_PAUSE_AT")
            .env_remove("RUNE_BACKEND")
            .env_remove("RUNE_API_BASE_URL")
            .env_remove("RUNE_API_TOKEN")
            .env_remove("RUNE_API_TENANT")
            .env_remove("RUNE_INSECURE")
            .stdin(Stdio::null());
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run(self.cmd(args).output().expect("run rune"))
    }

    /// `rune ARGS` run in `dir` (where `./rune.yaml` is looked for; `$RUNE_HOME/config.yaml`
    /// is this home's), inheriting no configurable variable (`rune_core::config::KEYS`)
    /// and no `RUNE_PROFILE` from the test's environment.
    pub fn cmd_in(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = self.cmd(args);
        c.current_dir(dir).env_remove("RUNE_PROFILE").env_remove("RUNE_API_TOKENS");
        for key in rune_core::config::KEYS {
            c.env_remove(key.env);
        }
        c
    }
}

/// A finished command.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    /// Asserts the exit code, showing both streams on failure.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code(), code, "exit code\n--- stdout\n{}\n--- stderr\n{}", self.stdout(), self.stderr());
        self
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout()))
    }
}

/// SHA-256 of a file's bytes, to prove a command changed nothing.
pub fn file_hash(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).expect("read")))
}

/// A child process killed on drop, with the address it announced on stderr.
pub struct Proc {
    pub child: std::process::Child,
    pub addr: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd` and waits (up to 30 s) for the `http://ADDR` it announces on stderr.
pub fn spawn(mut cmd: Command) -> Proc {
    use std::io::{BufRead, BufReader};
    let mut child = cmd.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().expect("spawn");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(i) = line.find("http://") {
                let addr: String = line[i + 7..].chars().take_while(|c| !c.is_whitespace() && *c != ')').collect();
                let _ = tx.send(addr);
            }
        }
    });
    let addr = rx.recv_timeout(std::time::Duration::from_secs(30)).expect("process announced its address");
    Proc { child, addr }
}
