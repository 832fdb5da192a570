//! The RUNE driver protocol v1, as pure functions: encoding requests and parsing
//! responses and results. Shared by the stdio driver (one JSON line each way) and the HTTP
//! sidecar (same `params` and `result` shapes).
//!
//! Request line: `{"action": "info"|"ask", "params": {...}, "id": "<n>"}`.
//! Response line: `{"status": "ok"|"error", "result": ..., "error": "...", "id": "<n>"}`.
//! `ask` results: `{"answer": "...", "usage"?: {"prompt_tokens", "completion_tokens"},
//! "artifacts"?: [{"name", "kind", "content" | "content_base64"}], ...extra}`.
//! `info` results: `{"name", "version", "actions"?: [...]}`.
//!
//! Nothing here does I/O, so every function can be fuzzed. Artifacts carry their bytes
//! inline: a driver can never make RUNE read a file by naming its path.

use base64::Engine as _;
use rune_core::records::ArtifactKind;
use serde_json::{json, Value};

use super::AgentArtifact;
use crate::backend::Usage;

/// The protocol version RUNE speaks (drivers report it in `info`).
pub const PROTOCOL_VERSION: &str = "1";

/// Default bound on one response line (8 MiB): room for inline artifacts, not for OOM.
pub const DEFAULT_MAX_LINE_BYTES: usize = 8 << 20;

/// How much of an offending line an error message quotes.
const LINE_EXCERPT_CHARS: usize = 200;

/// One parsed response line.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverResponse {
    /// The request id it answers.
    pub id: String,
    /// Success with a result, or the driver's error message.
    pub outcome: DriverOutcome,
}

/// What the driver said about the request.
#[derive(Debug, Clone, PartialEq)]
pub enum DriverOutcome {
    /// `status: "ok"` with its `result`.
    Ok(Value),
    /// `status: "error"` with its `error` message.
    Error(String),
}

/// A line or result that breaks protocol v1. Each variant quotes the offending line
/// (truncated, control characters escaped).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A blank line where a response was expected.
    #[error("empty line where a JSON response was expected")]
    Empty,
    /// The line exceeds the configured bound.
    #[error("response line is {len} bytes, over the {max}-byte limit: {line}")]
    TooLong {
        /// Bytes received.
        len: usize,
        /// The bound.
        max: usize,
        /// The start of the line.
        line: String,
    },
    /// The line is not JSON.
    #[error("response is not JSON ({detail}); stdout is reserved for protocol lines (log to stderr): {line}")]
    NotJson {
        /// The JSON parser's complaint.
        detail: String,
        /// The line.
        line: String,
    },
    /// The line is JSON but not an object.
    #[error("response is not a JSON object: {line}")]
    NotObject {
        /// The line.
        line: String,
    },
    /// A required field is absent.
    #[error("response lacks `{field}`: {line}")]
    MissingField {
        /// Field name.
        field: &'static str,
        /// The line.
        line: String,
    },
    /// A field has the wrong JSON type.
    #[error("`{field}` must be {expected}: {line}")]
    WrongType {
        /// Field name.
        field: &'static str,
        /// The expected type.
        expected: &'static str,
        /// The line.
        line: String,
    },
    /// `status` is neither `ok` nor `error`.
    #[error("`status` is `{status}`, expected \"ok\" or \"error\": {line}")]
    BadStatus {
        /// The status given.
        status: String,
        /// The line.
        line: String,
    },
    /// The response answers another request.
    #[error("response id `{got}` does not match the request id `{expected}`: {line}")]
    IdMismatch {
        /// The id RUNE sent.
        expected: String,
        /// The id the driver sent back.
        got: String,
        /// The line.
        line: String,
    },
    /// A result lacks what its action requires.
    #[error("`{action}` result {problem}: {result}")]
    BadResult {
        /// The action (`ask`, `info`).
        action: &'static str,
        /// What is wrong.
        problem: String,
        /// The result (truncated).
        result: String,
    },
}

/// Quotes the start of `line` for an error message, escaping control characters.
pub fn excerpt_line(line: &str) -> String {
    let mut out: String = line.chars().take(LINE_EXCERPT_CHARS).flat_map(char::escape_debug).collect();
    if line.chars().count() > LINE_EXCERPT_CHARS {
        out.push_str(&format!("… ({} bytes)", line.len()));
    }
    format!("`{out}`")
}

/// Encodes one request as a single line ending in `\n`.
pub fn encode_request(action: &str, params: &Value, id: &str) -> String {
    let mut line = json!({ "action": action, "params": params, "id": id }).to_string();
    line.push('\n');
    line
}

/// Parses one response line with the default bound ([`DEFAULT_MAX_LINE_BYTES`]).
pub fn parse_response_line(line: &str) -> Result<DriverResponse, ProtocolError> {
    parse_response_line_with_limit(line, DEFAULT_MAX_LINE_BYTES)
}

/// Parses one response line, rejecting lines over `max` bytes.
///
/// `id` must be a string; `status: "ok"` requires `result`; `status: "error"` takes
/// `error` as a string (an absent message is reported as such). Unknown fields are ignored.
pub fn parse_response_line_with_limit(line: &str, max: usize) -> Result<DriverResponse, ProtocolError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.len() > max {
        return Err(ProtocolError::TooLong { len: line.len(), max, line: excerpt_line(line) });
    }
    if line.trim().is_empty() {
        return Err(ProtocolError::Empty);
    }
    let quoted = || excerpt_line(line);
    let v: Value =
        serde_json::from_str(line).map_err(|e| ProtocolError::NotJson { detail: e.to_string(), line: quoted() })?;
    let obj = v.as_object().ok_or_else(|| ProtocolError::NotObject { line: quoted() })?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => return Err(ProtocolError::MissingField { field: "id", line: quoted() }),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(ProtocolError::WrongType { field: "id", expected: "a string", line: quoted() }),
    };
    let status = match obj.get("status") {
        None | Some(Value::Null) => return Err(ProtocolError::MissingField { field: "status", line: quoted() }),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ProtocolError::WrongType { field: "status", expected: "a string", line: quoted() }),
    };
    let outcome = match status {
        "ok" => match obj.get("result") {
            Some(r) => DriverOutcome::Ok(r.clone()),
            None => return Err(ProtocolError::MissingField { field: "result", line: quoted() }),
        },
        "error" => match obj.get("error") {
            Some(Value::String(s)) if !s.trim().is_empty() => DriverOutcome::Error(s.clone()),
            None | Some(Value::Null) | Some(Value::String(_)) => {
                DriverOutcome::Error("the driver reported status \"error\" without a message".to_owned())
            }
            Some(_) => return Err(ProtocolError::WrongType { field: "error", expected: "a string", line: quoted() }),
        },
        other => return Err(ProtocolError::BadStatus { status: other.to_owned(), line: quoted() }),
    };
    Ok(DriverResponse { id, outcome })
}

/// Checks that a response answers request `expected`.
pub fn check_id(resp: &DriverResponse, expected: &str, line: &str) -> Result<(), ProtocolError> {
    if resp.id == expected {
        Ok(())
    } else {
        Err(ProtocolError::IdMismatch { expected: expected.to_owned(), got: resp.id.clone(), line: excerpt_line(line) })
    }
}

/// What a driver says about itself (`info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriverInfo {
    /// Driver name.
    pub name: String,
    /// Protocol version it speaks.
    pub version: String,
    /// Actions it supports (empty when not reported).
    pub actions: Vec<String>,
}

/// Parses an `info` result.
pub fn parse_info_result(v: &Value) -> Result<DriverInfo, ProtocolError> {
    let bad = |problem: &str| ProtocolError::BadResult {
        action: "info",
        problem: problem.to_owned(),
        result: excerpt_line(&v.to_string()),
    };
    let obj = v.as_object().ok_or_else(|| bad("is not a JSON object"))?;
    let name = obj.get("name").and_then(Value::as_str).ok_or_else(|| bad("lacks a string `name`"))?.to_owned();
    let version = match obj.get("version") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None => return Err(bad("lacks `version`")),
        Some(_) => return Err(bad("has a `version` that is neither a string nor a number")),
    };
    let actions = match obj.get("actions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("has non-string entries in `actions`"))?,
        Some(_) => return Err(bad("has an `actions` that is not an array")),
    };
    Ok(DriverInfo { name, version, actions })
}

/// A parsed `ask` result.
#[derive(Debug, Clone, PartialEq)]
pub struct AskResult {
    /// The answer text.
    pub answer: String,
    /// Token counts the driver reported.
    pub usage: Usage,
    /// Inline artifacts that were valid.
    pub artifacts: Vec<AgentArtifact>,
    /// Problems with optional parts (skipped artifacts, malformed usage); not fatal.
    pub warnings: Vec<String>,
}

/// Parses an `ask` result. Only `answer` is required; a malformed optional part becomes a
/// warning and is skipped, so one bad artifact does not lose the answer.
pub fn parse_ask_result(v: &Value) -> Result<AskResult, ProtocolError> {
    let bad = |problem: &str| ProtocolError::BadResult {
        action: "ask",
        problem: problem.to_owned(),
        result: excerpt_line(&v.to_string()),
    };
    let obj = v.as_object().ok_or_else(|| bad("is not a JSON object"))?;
    let answer = match obj.get("answer") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => return Err(bad("lacks `answer`")),
        Some(_) => return Err(bad("has an `answer` that is not a string")),
    };
    let mut warnings = Vec::new();
    let mut usage = Usage::default();
    match obj.get("usage") {
        None | Some(Value::Null) => {}
        Some(Value::Object(u)) => {
            let count = |k: &str, warnings: &mut Vec<String>| match u.get(k) {
                None | Some(Value::Null) => None,
                Some(x) => {
                    let n = x.as_u64();
                    if n.is_none() {
                        warnings.push(format!("usage.{k} is not a non-negative integer ({x}); ignored"));
                    }
                    n
                }
            };
            usage.prompt_tokens = count("prompt_tokens", &mut warnings);
            usage.completion_tokens = count("completion_tokens", &mut warnings);
        }
        Some(other) => warnings.push(format!("usage is not an object ({}); ignored", excerpt_line(&other.to_string()))),
    }
    let mut artifacts = Vec::new();
    match obj.get("artifacts") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match parse_artifact(item) {
                    Ok(a) => artifacts.push(a),
                    Err(why) => warnings.push(format!("artifact #{i} skipped: {why}")),
                }
            }
        }
        Some(_) => warnings.push("artifacts is not an array; ignored".to_owned()),
    }
    Ok(AskResult { answer, usage, artifacts, warnings })
}

fn parse_artifact(item: &Value) -> Result<AgentArtifact, String> {
    let obj = item.as_object().ok_or("not a JSON object")?;
    let name = obj.get("name").and_then(Value::as_str).filter(|n| !n.trim().is_empty()).ok_or("lacks a `name`")?;
    let kind_str = obj.get("kind").and_then(Value::as_str).ok_or("lacks a `kind`")?;
    let kind: ArtifactKind = kind_str.parse().map_err(|e: rune_core::records::UnknownArtifactKind| e.to_string())?;
    let bytes = match (obj.get("content"), obj.get("content_base64")) {
        (Some(Value::String(s)), None) => s.clone().into_bytes(),
        (None, Some(Value::String(b))) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .map_err(|e| format!("`content_base64` is not valid base64: {e}"))?,
        (Some(_), Some(_)) => return Err("has both `content` and `content_base64`".to_owned()),
        _ => {
            return Err("needs inline `content` (text) or `content_base64`; file paths are never read".to_owned());
        }
    };
    Ok(AgentArtifact { name: name.to_owned(), kind, bytes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A well-formed ok line and error line parse; unknown fields are ignored.
    #[test]
    fn parses_valid_lines() {
        let r = parse_response_line("{\"status\":\"ok\",\"result\":{\"answer\":\"x\"},\"id\":\"7\",\"extra\":1}\n")
            .unwrap();
        assert_eq!(r.id, "7");
        assert_eq!(r.outcome, DriverOutcome::Ok(json!({"answer": "x"})));
        let r = parse_response_line(r#"{"status":"error","error":"kubeconfig missing","id":"8"}"#).unwrap();
        assert_eq!(r.outcome, DriverOutcome::Error("kubeconfig missing".into()));
        let r = parse_response_line(r#"{"status":"error","id":"9"}"#).unwrap();
        assert!(matches!(r.outcome, DriverOutcome::Error(m) if m.contains("without a message")));
        let r = parse_response_line(r#"{"status":"ok","result":null,"id":"1"}"#).unwrap();
        assert_eq!(r.outcome, DriverOutcome::Ok(Value::Null));
    }

    /// Every malformed line is rejected with the variant that names its problem, and the
    /// message quotes the line.
    #[test]
    fn rejects_malformed_lines() {
        type Check = fn(&ProtocolError) -> bool;
        let cases: Vec<(&str, Check)> = vec![
            ("", |e| matches!(e, ProtocolError::Empty)),
            ("   ", |e| matches!(e, ProtocolError::Empty)),
            ("hello from the driver", |e| matches!(e, ProtocolError::NotJson { .. })),
            ("{\"status\":\"ok\"", |e| matches!(e, ProtocolError::NotJson { .. })),
            ("[1,2]", |e| matches!(e, ProtocolError::NotObject { .. })),
            ("\"ok\"", |e| matches!(e, ProtocolError::NotObject { .. })),
            (r#"{"status":"ok","result":1}"#, |e| matches!(e, ProtocolError::MissingField { field: "id", .. })),
            (r#"{"status":"ok","result":1,"id":3}"#, |e| matches!(e, ProtocolError::WrongType { field: "id", .. })),
            (r#"{"result":1,"id":"3"}"#, |e| matches!(e, ProtocolError::MissingField { field: "status", .. })),
            (r#"{"status":true,"id":"3"}"#, |e| matches!(e, ProtocolError::WrongType { field: "status", .. })),
            (r#"{"status":"done","id":"3"}"#, |e| matches!(e, ProtocolError::BadStatus { .. })),
            (r#"{"status":"ok","id":"3"}"#, |e| matches!(e, ProtocolError::MissingField { field: "result", .. })),
            (r#"{"status":"error","error":{"m":1},"id":"3"}"#, |e| {
                matches!(e, ProtocolError::WrongType { field: "error", .. })
            }),
        ];
        for (line, check) in cases {
            let e = parse_response_line(line).unwrap_err();
            assert!(check(&e), "{line:?} gave {e:?}");
            if !line.trim().is_empty() {
                assert!(e.to_string().contains(&line[..line.len().min(10)].replace('"', "\\\"")), "{e}");
            }
        }
    }

    /// Oversized lines are rejected before parsing; the quote is truncated and escaped.
    #[test]
    fn too_long_and_excerpts() {
        let long = format!("{{\"status\":\"ok\",\"result\":\"{}\",\"id\":\"1\"}}", "x".repeat(100));
        let e = parse_response_line_with_limit(&long, 50).unwrap_err();
        assert!(matches!(e, ProtocolError::TooLong { max: 50, .. }));
        let q = excerpt_line(&"\u{1b}[31m".repeat(100));
        assert!(q.contains("\\u{1b}"));
        assert!(q.contains("bytes)"));
    }

    /// Id checking names both ids.
    #[test]
    fn id_mismatch() {
        let line = r#"{"status":"ok","result":1,"id":"2"}"#;
        let r = parse_response_line(line).unwrap();
        assert!(check_id(&r, "2", line).is_ok());
        let e = check_id(&r, "1", line).unwrap_err().to_string();
        assert!(e.contains("`2`") && e.contains("`1`"), "{e}");
    }

    /// Requests are one line of JSON with the three fields.
    #[test]
    fn encodes_requests() {
        let line = encode_request("ask", &json!({"question": "a\nb"}), "4");
        assert!(line.ends_with('\n'));
        assert_eq!(line.matches('\n').count(), 1);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v, json!({"action": "ask", "params": {"question": "a\nb"}, "id": "4"}));
    }

    /// `ask` results: answer required; usage and artifacts optional; bad optional parts
    /// become warnings; paths are never accepted as artifact content.
    #[test]
    fn ask_results() {
        let r = parse_ask_result(&json!({
            "answer": "OOMKilled",
            "usage": {"prompt_tokens": 10, "completion_tokens": -1},
            "artifacts": [
                {"name": "log.txt", "kind": "log", "content": "hi"},
                {"name": "shot", "kind": "screenshot", "content_base64": "iVBORw=="},
                {"name": "p", "kind": "log", "path": "/etc/passwd"},
                {"name": "k", "kind": "weird", "content": "x"},
                {"name": "b", "kind": "log", "content_base64": "***"}
            ]
        }))
        .unwrap();
        assert_eq!(r.answer, "OOMKilled");
        assert_eq!(r.usage.prompt_tokens, Some(10));
        assert_eq!(r.usage.completion_tokens, None);
        assert_eq!(r.artifacts.len(), 2);
        assert_eq!(r.artifacts[0].bytes, b"hi");
        assert_eq!(r.artifacts[1].bytes, vec![0x89, b'P', b'N', b'G']);
        assert_eq!(r.warnings.len(), 4, "{:?}", r.warnings);
        assert!(r.warnings.iter().any(|w| w.contains("never read")));
        for bad in [json!("x"), json!({}), json!({"answer": 3})] {
            assert!(matches!(parse_ask_result(&bad), Err(ProtocolError::BadResult { action: "ask", .. })));
        }
    }

    proptest::proptest! {
        /// The line parser never panics, whatever it is fed, and its errors stay short
        /// enough to log (the quoted line is truncated).
        #[test]
        fn parser_is_total(line in "\\PC{0,400}") {
            match parse_response_line_with_limit(&line, 256) {
                Ok(_) => {}
                Err(e) => proptest::prop_assert!(e.to_string().len() < 1200),
            }
        }

        /// Any well-formed response survives encoding and parsing unchanged.
        #[test]
        fn well_formed_lines_round_trip(id in "[a-z0-9-]{1,12}", answer in "\\PC{0,80}", ok in proptest::bool::ANY) {
            let line = if ok {
                json!({"status": "ok", "result": {"answer": answer}, "id": id}).to_string()
            } else {
                json!({"status": "error", "error": format!("e{answer}"), "id": id}).to_string()
            };
            let r = parse_response_line(&line).unwrap();
            proptest::prop_assert_eq!(&r.id, &id);
            let expected = if ok {
                DriverOutcome::Ok(json!({"answer": answer}))
            } else {
                DriverOutcome::Error(format!("e{answer}"))
            };
            proptest::prop_assert_eq!(r.outcome, expected);
        }
    }

    /// `info` results need a name and version; actions are optional strings.
    #[test]
    fn info_results() {
        let i = parse_info_result(&json!({"name": "holmes", "version": 1, "actions": ["ask", "info"]})).unwrap();
        assert_eq!(i.version, "1");
        assert_eq!(i.actions, vec!["ask", "info"]);
        assert!(parse_info_result(&json!({"version": "1"})).is_err());
        assert!(parse_info_result(&json!({"name": "x"})).is_err());
        assert!(parse_info_result(&json!({"name": "x", "version": "1", "actions": [1]})).is_err());
    }
}
