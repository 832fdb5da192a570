//! Subprocess plumbing for the CLI agents (holmes, k8sgpt) and the stdio driver: finding
//! programs on a PATH, spawning them in their own process group, forwarding stderr line by
//! line as [`AgentEvent`]s, bounded reads, and killing the whole group on timeout, cancel
//! or drop.
//!
//! Rule kept here: a process RUNE started never outlives the call (or agent) that owns
//! it; its grandchildren die with it because they share its process group.

use std::collections::VecDeque;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use super::{AgentContext, AgentError, AgentEvent, EventSink};

/// Shortest subprocess timeout: less cannot even start a Python CLI reliably.
pub const MIN_SUBPROCESS_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest subprocess timeout: 30 minutes, the bound the original enforced (SR-Q-011).
pub const MAX_SUBPROCESS_TIMEOUT: Duration = Duration::from_secs(1800);

/// Clamps a requested subprocess timeout to [`MIN_SUBPROCESS_TIMEOUT`, `MAX_SUBPROCESS_TIMEOUT`].
pub fn clamp_subprocess_timeout(requested: Duration) -> Duration {
    requested.clamp(MIN_SUBPROCESS_TIMEOUT, MAX_SUBPROCESS_TIMEOUT)
}

/// How long a process group gets between SIGTERM and SIGKILL.
pub(crate) const TERMINATE_GRACE: Duration = Duration::from_secs(2);
/// How many stderr lines are kept for error messages.
pub(crate) const STDERR_TAIL_LINES: usize = 20;
/// Longest stderr line forwarded; the rest of the line is dropped.
pub(crate) const MAX_STDERR_LINE: usize = 8 << 10;
/// Most stdout kept from a CLI agent; the rest is read and discarded so it never blocks.
pub(crate) const MAX_CLI_STDOUT: usize = 16 << 20;

/// Finds `program` the way a shell would: a name containing `/` is taken as a path,
/// anything else is searched in `path` (the `PATH` value to use). Only executable files count.
pub(crate) fn resolve_program(program: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    if program.is_empty() {
        return None;
    }
    if program.contains('/') {
        let p = PathBuf::from(program);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path?).map(|dir| dir.join(program)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Kills a process group when dropped, unless disarmed: the last line of defence when a
/// call's future is dropped mid-flight (the caller gave up, a `select!` lost).
#[derive(Debug)]
pub(crate) struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    /// Guards the group led by `pid` (a child spawned with `process_group(0)`).
    pub(crate) fn new(pid: Option<u32>) -> Self {
        GroupGuard { pgid: pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0).map(Pid::from_raw) }
    }

    /// Sends `sig` to the whole group; a group that is already gone is fine.
    pub(crate) fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            if let Err(e) = killpg(pgid, sig) {
                if e != nix::errno::Errno::ESRCH {
                    tracing::warn!(pgid = pgid.as_raw(), signal = ?sig, error = %e, "cannot signal process group");
                }
            }
        }
    }

    /// The group is dead and reaped; nothing left to kill.
    pub(crate) fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
    }
}

/// Stops `child` and its group: SIGTERM, up to [`TERMINATE_GRACE`] to exit, then SIGKILL;
/// reaps the child and kills any straggler in the group.
pub(crate) async fn terminate(child: &mut Child, guard: &mut GroupGuard) {
    guard.signal(Signal::SIGTERM);
    if tokio::time::timeout(TERMINATE_GRACE, child.wait()).await.is_err() {
        guard.signal(Signal::SIGKILL);
        if let Err(e) = child.wait().await {
            tracing::warn!(error = %e, "cannot reap killed child");
        }
    }
    guard.signal(Signal::SIGKILL);
    guard.disarm();
}

/// Configures `cmd` the way every agent subprocess runs: own process group, piped
/// stdout/stderr, killed if its handle is dropped.
pub(crate) fn prepare(cmd: &mut Command, stdin: Stdio) {
    cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true).process_group(0);
}

/// Maps a spawn failure: a missing program gets the install hint.
pub(crate) fn spawn_error(program: &Path, hint: &str, e: std::io::Error) -> AgentError {
    if e.kind() == std::io::ErrorKind::NotFound {
        AgentError::BinaryNotFound { program: program.display().to_string(), hint: hint.to_owned() }
    } else {
        AgentError::Spawn { program: program.display().to_string(), source: e }
    }
}

/// One line read under a bound.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BoundedLine {
    /// End of stream with nothing pending.
    Eof,
    /// A line (the final one may lack its newline) is in the buffer.
    Line,
    /// The line was longer than the bound; the buffer holds its first bytes and the rest
    /// was consumed.
    Truncated {
        /// Full length of the line.
        len: usize,
    },
}

/// Reads one `\n`-terminated line into `buf` (without the newline), keeping at most `max`
/// bytes; the remainder of an oversized line is consumed, never buffered.
pub(crate) async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<BoundedLine> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(match total {
                0 => BoundedLine::Eof,
                t if t > max => BoundedLine::Truncated { len: t },
                _ => BoundedLine::Line,
            });
        }
        let (take, used, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i, i + 1, true),
            None => (avail.len(), avail.len(), false),
        };
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&avail[..take.min(room)]);
        total += take;
        r.consume(used);
        if done {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(if total > max { BoundedLine::Truncated { len: total } } else { BoundedLine::Line });
        }
    }
}

/// The last [`STDERR_TAIL_LINES`] stderr lines, for error messages.
#[derive(Debug, Default)]
pub(crate) struct StderrTail(VecDeque<String>);

impl StderrTail {
    pub(crate) fn push(&mut self, line: String) {
        if self.0.len() == STDERR_TAIL_LINES {
            self.0.pop_front();
        }
        self.0.push_back(line);
    }

    pub(crate) fn render(&self) -> String {
        self.0.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }
}

/// Removes ANSI escape sequences (colours, cursor moves) that CLIs print for terminals.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' {
                        break;
                    }
                    if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                        chars.next();
                        break;
                    }
                }
            }
            _ => {
                chars.next();
            }
        }
    }
    out
}

fn decode_line(buf: &[u8], truncated: bool) -> String {
    let mut s = strip_ansi(&String::from_utf8_lossy(buf));
    if truncated {
        s.push_str(" …[line truncated]");
    }
    s
}

/// Forwards each stderr line to `sink` and keeps the tail; returns at end of stream.
pub(crate) async fn forward_stderr(stderr: ChildStderr, sink: &EventSink, tail: &mut StderrTail) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::with_capacity(256);
    loop {
        let line = match read_line_bounded(&mut r, &mut buf, MAX_STDERR_LINE).await {
            Ok(BoundedLine::Eof) | Err(_) => return,
            Ok(BoundedLine::Line) => decode_line(&buf, false),
            Ok(BoundedLine::Truncated { .. }) => decode_line(&buf, true),
        };
        tail.push(line.clone());
        sink(AgentEvent::Stderr { line });
    }
}

/// Stderr state of a long-lived driver, shared between its pump task and the call in
/// flight. A std mutex: it is held only to swap or clone a field, never across an await.
#[derive(Default)]
pub(crate) struct StderrShared {
    /// The current call's event sink; `None` between calls (lines then only go to the tail).
    pub(crate) sink: Option<EventSink>,
    pub(crate) tail: StderrTail,
}

/// Handle to [`StderrShared`]; owned by the driver process and its pump task.
pub(crate) type SharedStderr = Arc<Mutex<StderrShared>>;

pub(crate) fn lock_stderr(s: &SharedStderr) -> std::sync::MutexGuard<'_, StderrShared> {
    s.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Pumps a long-lived driver's stderr into `shared` until the stream ends.
pub(crate) async fn pump_stderr(stderr: ChildStderr, shared: SharedStderr) {
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::with_capacity(256);
    loop {
        let line = match read_line_bounded(&mut r, &mut buf, MAX_STDERR_LINE).await {
            Ok(BoundedLine::Eof) | Err(_) => return,
            Ok(BoundedLine::Line) => decode_line(&buf, false),
            Ok(BoundedLine::Truncated { .. }) => decode_line(&buf, true),
        };
        let sink = {
            let mut s = lock_stderr(&shared);
            s.tail.push(line.clone());
            s.sink.clone()
        };
        if let Some(sink) = sink {
            sink(AgentEvent::Stderr { line });
        }
    }
}

/// Reads a whole stream, keeping at most `max` bytes and discarding the rest.
async fn read_capped<R: AsyncRead + Unpin>(mut r: R, max: usize) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 16 << 10];
    let mut truncated = false;
    loop {
        match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return (out, truncated),
            Ok(n) => {
                let room = max.saturating_sub(out.len());
                if n > room {
                    truncated = true;
                }
                out.extend_from_slice(&chunk[..n.min(room)]);
            }
        }
    }
}

/// A CLI agent run that ended by itself.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stdout_truncated: bool,
    pub(crate) stderr_tail: String,
}

/// Runs a prepared CLI command to completion under `timeout` and `ctx.cancel`, forwarding
/// stderr. On timeout or cancel the whole process group is terminated before returning;
/// when the program exits, any straggler left in its group is killed.
pub(crate) async fn run_to_completion(
    agent: &str,
    program: &Path,
    install_hint: &str,
    mut cmd: Command,
    ctx: &AgentContext,
    timeout: Duration,
) -> Result<Finished, AgentError> {
    prepare(&mut cmd, Stdio::null());
    let deadline = tokio::time::Instant::now() + timeout;
    let mut child = cmd.spawn().map_err(|e| spawn_error(program, install_hint, e))?;
    let mut guard = GroupGuard::new(child.id());
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        terminate(&mut child, &mut guard).await;
        return Err(AgentError::Io {
            agent: agent.to_owned(),
            context: format!("{} started without piped stdout/stderr", program.display()),
            source: std::io::Error::other("missing pipe"),
        });
    };
    let mut tail = StderrTail::default();
    let sink = ctx.on_event.clone();
    let (status, out) = {
        let mut out_fut = std::pin::pin!(read_capped(stdout, MAX_CLI_STDOUT));
        let mut err_fut = std::pin::pin!(forward_stderr(stderr, &sink, &mut tail));
        let mut status = None;
        let mut out = None;
        let mut err_done = false;
        while status.is_none() || out.is_none() || !err_done {
            tokio::select! {
                biased;
                _ = ctx.cancel.cancelled() => {
                    terminate(&mut child, &mut guard).await;
                    return Err(AgentError::Cancelled { agent: agent.to_owned() });
                }
                _ = tokio::time::sleep_until(deadline) => {
                    terminate(&mut child, &mut guard).await;
                    return Err(AgentError::Timeout { agent: agent.to_owned(), after: timeout });
                }
                s = child.wait(), if status.is_none() => {
                    let s = s.map_err(|e| AgentError::Io {
                        agent: agent.to_owned(),
                        context: format!("waiting for {}", program.display()),
                        source: e,
                    })?;
                    status = Some(s);
                    // The leader is gone: stragglers in its group would hold the pipes open.
                    guard.signal(nix::sys::signal::Signal::SIGKILL);
                    guard.disarm();
                }
                o = &mut out_fut, if out.is_none() => out = Some(o),
                _ = &mut err_fut, if !err_done => err_done = true,
            }
        }
        (status, out)
    };
    let (stdout, stdout_truncated) = out.unwrap_or_default();
    let status = status.ok_or_else(|| AgentError::Io {
        agent: agent.to_owned(),
        context: format!("{} ended without an exit status", program.display()),
        source: std::io::Error::other("no exit status"),
    })?;
    Ok(Finished { status, stdout, stdout_truncated, stderr_tail: tail.render() })
}

/// Describes how a process ended, for messages.
pub(crate) fn describe_exit(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => "ended abnormally".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Timeouts are clamped to [10 s, 1800 s].
    #[test]
    fn clamps() {
        assert_eq!(clamp_subprocess_timeout(Duration::from_secs(1)), MIN_SUBPROCESS_TIMEOUT);
        assert_eq!(clamp_subprocess_timeout(Duration::from_secs(60)), Duration::from_secs(60));
        assert_eq!(clamp_subprocess_timeout(Duration::from_secs(99_999)), MAX_SUBPROCESS_TIMEOUT);
    }

    /// ANSI colours and OSC sequences are removed; plain text is untouched.
    #[test]
    fn strips_ansi() {
        assert_eq!(strip_ansi("\u{1b}[1;32mAI:\u{1b}[0m fine"), "AI: fine");
        assert_eq!(strip_ansi("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\"), "link");
        assert_eq!(strip_ansi("plain"), "plain");
    }

    /// Bounded line reads: long lines are cut and fully consumed, CRLF is handled, and a
    /// final line without newline still counts.
    #[tokio::test]
    async fn bounded_lines() {
        let data: &[u8] = b"short\r\nthis line is long\nlast";
        let mut r = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert_eq!(read_line_bounded(&mut r, &mut buf, 8).await.unwrap(), BoundedLine::Line);
        assert_eq!(buf, b"short");
        assert_eq!(read_line_bounded(&mut r, &mut buf, 8).await.unwrap(), BoundedLine::Truncated { len: 17 });
        assert_eq!(buf, b"this lin");
        assert_eq!(read_line_bounded(&mut r, &mut buf, 8).await.unwrap(), BoundedLine::Line);
        assert_eq!(buf, b"last");
        assert_eq!(read_line_bounded(&mut r, &mut buf, 8).await.unwrap(), BoundedLine::Eof);
    }

    /// Programs resolve through the given PATH only, and only when executable.
    #[test]
    fn resolves_programs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "x").unwrap();
        let path = std::env::join_paths([Path::new("/nonexistent"), dir.path()]).unwrap();
        assert_eq!(resolve_program("tool", Some(&path)), Some(exe.clone()));
        assert_eq!(resolve_program("data", Some(&path)), None);
        assert_eq!(resolve_program("tool", None), None);
        assert_eq!(resolve_program(exe.to_str().unwrap(), None), Some(exe));
        assert_eq!(resolve_program("", Some(&path)), None);
    }

    /// The stderr tail keeps only the last lines.
    #[test]
    fn tail_is_bounded() {
        let mut t = StderrTail::default();
        for i in 0..50 {
            t.push(format!("l{i}"));
        }
        let r = t.render();
        assert!(r.starts_with("l30\n"));
        assert!(r.ends_with("l49"));
    }
}
