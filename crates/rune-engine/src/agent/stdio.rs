//! The `stdio` agent: a long-lived driver process speaking the RUNE driver protocol v1,
//! one JSON line per request on its stdin and one per response on its stdout; its stderr
//! lines become [`AgentEvent::Stderr`] events.
//!
//! One request is in flight at a time per driver. Any protocol violation, timeout,
//! cancellation or abandoned call stops the process group; the next call starts a fresh
//! driver. A `status: "error"` response is the driver's answer, not a fault, and keeps it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::Instant as Deadline;
use tokio_util::task::AbortOnDropHandle;

use super::process::{
    clamp_subprocess_timeout, describe_exit, lock_stderr, prepare, pump_stderr, read_line_bounded, resolve_program,
    spawn_error, terminate, BoundedLine, GroupGuard, SharedStderr, StderrShared, TERMINATE_GRACE,
};
use super::protocol::{
    check_id, encode_request, parse_ask_result, parse_info_result, parse_response_line_with_limit, DriverInfo,
    DriverOutcome, ProtocolError, PROTOCOL_VERSION,
};
use super::{Agent, AgentAnswer, AgentConfig, AgentContext, AgentError, AgentEvent, AgentQuestion};

const INSTALL_HINT: &str = "install the driver or fix RUNE_STDIO_DRIVER_CMD (it is split like a shell command line)";
/// How long to wait for the exit status of a driver that closed its stdout.
const EXIT_STATUS_WAIT: Duration = Duration::from_secs(2);
/// How long to wait for the last stderr lines of a driver that exited.
const STDERR_DRAIN_WAIT: Duration = Duration::from_millis(500);

/// A running driver and its pipes.
struct DriverProcess {
    child: Child,
    guard: GroupGuard,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr: SharedStderr,
    /// Stderr pump task: ends by itself at EOF (the process died); aborted if the process
    /// record is dropped first. Owned here so it never outlives its driver.
    pump: AbortOnDropHandle<()>,
    info: Option<DriverInfo>,
    /// False while a request is unanswered: a driver found in that state was abandoned
    /// mid-call (the caller's future was dropped) and is restarted.
    clean: bool,
    line: Vec<u8>,
}

impl DriverProcess {
    fn stderr_tail(&self) -> String {
        lock_stderr(&self.stderr).tail.render()
    }
}

/// Points the driver's stderr at the current call for as long as it lives.
struct SinkScope(SharedStderr);

impl Drop for SinkScope {
    fn drop(&mut self) {
        lock_stderr(&self.0).sink = None;
    }
}

/// The `stdio` agent (see the module documentation).
pub struct StdioAgent {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    path: Option<OsString>,
    max_line: usize,
    /// The driver process, if started. A Tokio mutex because it is held across the whole
    /// request/response exchange: it is what serialises calls to the one driver.
    driver: tokio::sync::Mutex<Option<DriverProcess>>,
    next_id: AtomicU64,
}

impl StdioAgent {
    /// A stdio agent running `config.stdio.command` (`RUNE_STDIO_DRIVER_CMD`).
    pub fn new(name: &str, config: &AgentConfig) -> Result<Self, AgentError> {
        Self::with_command(name, &config.stdio.command, config)
    }

    /// A stdio agent running `command` (program and arguments); the program is looked up
    /// on the PATH now ([`AgentConfig::search_path`]), so a missing driver is reported before any question.
    pub fn with_command(name: &str, command: &[String], config: &AgentConfig) -> Result<Self, AgentError> {
        let (program, args) = command.split_first().ok_or_else(|| AgentError::NotConfigured {
            agent: name.to_owned(),
            what: "a driver command".to_owned(),
            var: "RUNE_STDIO_DRIVER_CMD".to_owned(),
        })?;
        let resolved = resolve_program(program, config.search_path().as_deref())
            .ok_or_else(|| AgentError::BinaryNotFound { program: program.clone(), hint: INSTALL_HINT.to_owned() })?;
        Ok(StdioAgent {
            name: name.to_owned(),
            program: resolved,
            args: args.to_vec(),
            path: config.path.clone(),
            max_line: config.stdio.max_line_bytes,
            driver: tokio::sync::Mutex::new(None),
            next_id: AtomicU64::new(1),
        })
    }

    /// What the driver said about itself at start-up (starting it if needed).
    pub async fn info(&self, ctx: &AgentContext) -> Result<Option<DriverInfo>, AgentError> {
        let deadline = Deadline::now() + clamp_subprocess_timeout(ctx.timeout);
        let mut slot = self.lock(ctx, deadline).await?;
        let p = self.ready(&mut slot, ctx, deadline).await?;
        Ok(p.info.clone())
    }

    /// Stops the driver gracefully: closes its stdin, gives it two seconds to exit,
    /// then terminates its process group. The next call starts a new one.
    pub async fn shutdown(&self) {
        let mut slot = self.driver.lock().await;
        if let Some(mut p) = slot.take() {
            drop(p.stdin);
            if tokio::time::timeout(TERMINATE_GRACE, p.child.wait()).await.is_err() {
                tracing::debug!(agent = %self.name, "driver did not exit on EOF; terminating");
            }
            terminate(&mut p.child, &mut p.guard).await;
        }
    }

    async fn lock(
        &self,
        ctx: &AgentContext,
        deadline: Deadline,
    ) -> Result<tokio::sync::MutexGuard<'_, Option<DriverProcess>>, AgentError> {
        tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => Err(AgentError::Cancelled { agent: self.name.clone() }),
            _ = tokio::time::sleep_until(deadline) => Err(self.timeout(ctx)),
            g = self.driver.lock() => Ok(g),
        }
    }

    fn timeout(&self, ctx: &AgentContext) -> AgentError {
        AgentError::Timeout { agent: self.name.clone(), after: clamp_subprocess_timeout(ctx.timeout) }
    }

    /// Returns a usable driver in `slot`, restarting an abandoned one and starting one if
    /// there is none (with the `info` handshake).
    async fn ready<'s>(
        &self,
        slot: &'s mut Option<DriverProcess>,
        ctx: &AgentContext,
        deadline: Deadline,
    ) -> Result<&'s mut DriverProcess, AgentError> {
        if let Some(p) = slot.as_mut() {
            if !p.clean {
                ctx.emit(AgentEvent::Warning {
                    message: "restarting a driver whose previous call was abandoned".into(),
                });
                if let Some(mut old) = slot.take() {
                    terminate(&mut old.child, &mut old.guard).await;
                }
            }
        }
        if slot.is_none() {
            let mut p = self.spawn(ctx)?;
            let sink_scope = self.scope(&p, ctx);
            match self.exchange(&mut p, "info", &json!({}), ctx, deadline).await {
                Ok(DriverOutcome::Ok(v)) => {
                    let info = parse_info_result(&v)
                        .map_err(|source| AgentError::Protocol { agent: self.name.clone(), source });
                    match info {
                        Ok(info) => {
                            if info.version != PROTOCOL_VERSION {
                                ctx.emit(AgentEvent::Warning {
                                    message: format!(
                                        "driver {} reports protocol version {}; RUNE speaks {PROTOCOL_VERSION}",
                                        info.name, info.version
                                    ),
                                });
                            }
                            p.info = Some(info);
                        }
                        Err(e) => {
                            drop(sink_scope);
                            terminate(&mut p.child, &mut p.guard).await;
                            return Err(e);
                        }
                    }
                }
                Ok(DriverOutcome::Error(msg)) => {
                    ctx.emit(AgentEvent::Warning { message: format!("driver does not answer `info`: {msg}") });
                }
                Err(e) => {
                    drop(sink_scope);
                    terminate(&mut p.child, &mut p.guard).await;
                    return Err(e);
                }
            }
            drop(sink_scope);
            *slot = Some(p);
        }
        slot.as_mut().ok_or_else(|| AgentError::Io {
            agent: self.name.clone(),
            context: "driver slot empty after start".into(),
            source: std::io::Error::other("invariant broken: driver just started"),
        })
    }

    fn scope(&self, p: &DriverProcess, ctx: &AgentContext) -> SinkScope {
        lock_stderr(&p.stderr).sink = Some(ctx.on_event.clone());
        SinkScope(p.stderr.clone())
    }

    fn spawn(&self, ctx: &AgentContext) -> Result<DriverProcess, AgentError> {
        ctx.emit(AgentEvent::Progress { message: format!("starting driver {}", self.program.display()) });
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        if let Some(p) = &self.path {
            cmd.env("PATH", p);
        }
        prepare(&mut cmd, Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| spawn_error(&self.program, INSTALL_HINT, e))?;
        let guard = GroupGuard::new(child.id());
        let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(AgentError::Io {
                agent: self.name.clone(),
                context: "driver started without its pipes".into(),
                source: std::io::Error::other("missing pipe"),
            });
        };
        let shared: SharedStderr = Arc::new(std::sync::Mutex::new(StderrShared::default()));
        let pump = AbortOnDropHandle::new(tokio::spawn(pump_stderr(stderr, shared.clone())));
        Ok(DriverProcess {
            child,
            guard,
            stdin,
            stdout: BufReader::new(stdout),
            stderr: shared,
            pump,
            info: None,
            clean: true,
            line: Vec::with_capacity(4096),
        })
    }

    /// Sends one request and reads its response line.
    async fn exchange(
        &self,
        p: &mut DriverProcess,
        action: &str,
        params: &Value,
        ctx: &AgentContext,
        deadline: Deadline,
    ) -> Result<DriverOutcome, AgentError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        let request = encode_request(action, params, &id);
        p.clean = false;
        let write = async {
            p.stdin.write_all(request.as_bytes()).await?;
            p.stdin.flush().await
        };
        let written = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(AgentError::Cancelled { agent: self.name.clone() }),
            _ = tokio::time::sleep_until(deadline) => return Err(self.timeout(ctx)),
            w = write => w,
        };
        if written.is_err() {
            return Err(self.exited(p, "closed its stdin before reading the request").await);
        }
        let read = tokio::select! {
            biased;
            _ = ctx.cancel.cancelled() => return Err(AgentError::Cancelled { agent: self.name.clone() }),
            _ = tokio::time::sleep_until(deadline) => return Err(self.timeout(ctx)),
            r = read_line_bounded(&mut p.stdout, &mut p.line, self.max_line) => r,
        };
        let protocol = |source: ProtocolError| AgentError::Protocol { agent: self.name.clone(), source };
        match read {
            Err(e) => Err(AgentError::Io {
                agent: self.name.clone(),
                context: "reading the driver's stdout".into(),
                source: e,
            }),
            Ok(BoundedLine::Eof) => Err(self.exited(p, "exited before answering").await),
            Ok(BoundedLine::Truncated { len }) => Err(protocol(ProtocolError::TooLong {
                len,
                max: self.max_line,
                line: super::protocol::excerpt_line(&String::from_utf8_lossy(&p.line)),
            })),
            Ok(BoundedLine::Line) => {
                let line = String::from_utf8_lossy(&p.line).into_owned();
                let resp = parse_response_line_with_limit(&line, self.max_line).map_err(protocol)?;
                check_id(&resp, &id, &line).map_err(protocol)?;
                p.clean = true;
                Ok(resp.outcome)
            }
        }
    }

    /// Describes a driver that went away, with its exit status and stderr tail.
    async fn exited(&self, p: &mut DriverProcess, what: &str) -> AgentError {
        let status = match tokio::time::timeout(EXIT_STATUS_WAIT, p.child.wait()).await {
            Ok(Ok(s)) => format!("{what} ({})", describe_exit(&s)),
            _ => what.to_owned(),
        };
        // The pump ends at stderr EOF, which follows the exit; let it collect the last lines.
        if tokio::time::timeout(STDERR_DRAIN_WAIT, &mut p.pump).await.is_err() {
            tracing::debug!(agent = %self.name, "driver stderr still open after exit");
        }
        AgentError::ProcessFailed {
            agent: self.name.clone(),
            program: self.program.display().to_string(),
            status,
            stderr_tail: p.stderr_tail(),
        }
    }
}

#[async_trait]
impl Agent for StdioAgent {
    fn name(&self) -> &str {
        &self.name
    }

    async fn ask(&self, q: &AgentQuestion, ctx: &AgentContext) -> Result<AgentAnswer, AgentError> {
        let deadline = Deadline::now() + clamp_subprocess_timeout(ctx.timeout);
        let mut slot = self.lock(ctx, deadline).await?;
        let p = self.ready(&mut slot, ctx, deadline).await?;
        let scope = self.scope(p, ctx);
        let outcome = self.exchange(p, "ask", &q.to_params(), ctx, deadline).await;
        drop(scope);
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                if let Some(mut dead) = slot.take() {
                    terminate(&mut dead.child, &mut dead.guard).await;
                }
                return Err(e);
            }
        };
        let result = match outcome {
            DriverOutcome::Error(message) => return Err(AgentError::Driver { agent: self.name.clone(), message }),
            DriverOutcome::Ok(v) => v,
        };
        // A well-framed response with a bad result leaves the driver in sync: keep it.
        let parsed =
            parse_ask_result(&result).map_err(|source| AgentError::Protocol { agent: self.name.clone(), source })?;
        for w in parsed.warnings {
            ctx.emit(AgentEvent::Warning { message: w });
        }
        Ok(AgentAnswer {
            text: parsed.answer,
            usage: parsed.usage,
            timing: None,
            raw: result,
            artifacts: parsed.artifacts,
        })
    }
}
