//! Benchmark suites: YAML files of cases with ground truth, parsed and validated in full.
//!
//! A suite is what turns "ran an agent" into "measured an agent": each case is a question,
//! the captured evidence the agent may read (`kubectl` output, events, logs, manifests, so
//! the case replays without a live cluster) and the facts a correct answer must state or
//! must not claim. [`crate::scoring`] turns an answer into a score against those facts.
//!
//! This module owns the suite format, its validation and the built-in suites. It does no
//! I/O: context given as `file:` stays unresolved until the caller passes a loader to
//! [`Suite::resolve_context`] (or reads [`Suite::file_references`] and fills the content
//! itself). The built-in suites are compiled into the binary with `include_str!`.
//!
//! # Validation
//!
//! [`Suite::parse`] checks everything and reports every problem at once, each with the
//! file name and a path such as `cases[3].expected.facts[1].regex`: unknown keys, missing
//! or empty fields, ids that are not `[a-z0-9-]` or are duplicated, regexes that do not
//! compile or match the empty answer, weights that are not positive, context that is both
//! inline and a file (or neither), file paths that escape the suite's directory, and cases
//! with neither facts nor a judge rubric. The format is documented in `docs/suites.md` and
//! as a JSON Schema in `crates/rune-core/suites/suite.schema.json`.
//!
//! # Example
//!
//! ```
//! use rune_core::suite::{load_builtin, Suite};
//!
//! let suite = load_builtin("sre-basics")?;
//! assert!(suite.cases.len() >= 12);
//!
//! let err = Suite::parse("mine.yaml", "name: Mine\ndescription: d\nversion: 1\ncases: []\n").unwrap_err();
//! let text = err.to_string();
//! assert!(text.contains("mine.yaml: name: "));
//! assert!(text.contains("mine.yaml: cases: "));
//! # Ok::<(), rune_core::suite::SuiteError>(())
//! ```

use crate::scoring::normalize;
use crate::validate::FieldError;
use regex::{Regex, RegexBuilder};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt;

/// Longest id (suite name, case, fact, tag, agent), so ids stay usable as file names and
/// table cells.
pub const MAX_ID_LEN: usize = 64;
/// Longest question, in characters; a longer one is almost certainly pasted context.
pub const MAX_QUESTION_LEN: usize = 20_000;
/// Longest free text (description, rubric, reason, synonym), in characters.
pub const MAX_TEXT_LEN: usize = 20_000;
/// Longest single piece of inline or loaded context, in characters, so one case cannot
/// blow a model's context window or the job record.
pub const MAX_CONTEXT_LEN: usize = 1_000_000;
/// Most cases in one suite; a run is cases × agents × models × repetitions.
pub const MAX_CASES: usize = 10_000;
/// Compiled size limit of one regex, so a pathological pattern is rejected at parse time
/// instead of costing memory at scoring time (matching itself is linear in the `regex`
/// crate).
pub const MAX_REGEX_SIZE: usize = 1 << 20;

const SUITE_KEYS: &[&str] = &["name", "description", "version", "default_model", "cases"];
const CASE_KEYS: &[&str] = &["id", "question", "context", "expected", "tags", "scope", "agents"];
const CONTEXT_KEYS: &[&str] = &["name", "kind", "content", "file"];
const EXPECTED_KEYS: &[&str] = &["facts", "forbidden", "judge_rubric", "pass_threshold"];
const FACT_KEYS: &[&str] = &["id", "any_of", "regex", "weight"];
const FORBIDDEN_KEYS: &[&str] = &["id", "any_of", "regex", "reason"];

/// The built-in suites as `(name, yaml)`, compiled into the binary so `--suite sre-basics`
/// works offline and every copy of RUNE scores against the same ground truth.
const BUILTIN: &[(&str, &str)] = &[
    ("sre-basics", include_str!("../suites/sre-basics.yaml")),
    ("catalog-sre", include_str!("../suites/catalog-sre.yaml")),
    ("catalog-research", include_str!("../suites/catalog-research.yaml")),
    ("catalog-creative", include_str!("../suites/catalog-creative.yaml")),
    ("catalog-cybersec", include_str!("../suites/catalog-cybersec.yaml")),
    ("catalog-legal-ops", include_str!("../suites/catalog-legal-ops.yaml")),
];

/// Lists the built-in suites as `(name, yaml source)`, in a stable order, so the CLI and
/// the API can offer them by name and show their source.
pub fn builtin_suites() -> Vec<(&'static str, &'static str)> {
    BUILTIN.to_vec()
}

/// Parses and validates the built-in suite called `name`; the file name in errors is
/// `<name>.yaml` (built-in suites are tested to parse, so an error means a bad name).
pub fn load_builtin(name: &str) -> Result<Suite, SuiteError> {
    match BUILTIN.iter().find(|(n, _)| *n == name) {
        Some((n, yaml)) => Suite::parse(&format!("{n}.yaml"), yaml),
        None => Err(SuiteError::UnknownBuiltin {
            name: name.to_owned(),
            available: BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "),
        }),
    }
}

/// Why a suite could not be used; every variant names the file, and
/// [`SuiteError::Invalid`] lists every problem rather than the first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SuiteError {
    /// The text is not YAML (or has duplicate keys); the message carries the line and
    /// column from the YAML parser.
    #[error("{file}: not a valid YAML document: {message}")]
    Syntax {
        /// File name as given by the caller.
        file: String,
        /// The YAML parser's message.
        message: String,
    },
    /// The document is YAML but breaks the suite format; one line per problem, each
    /// `file: path: message`.
    #[error("{}", render_problems(file, problems))]
    Invalid {
        /// File name as given by the caller.
        file: String,
        /// Every problem found, in document order; never empty.
        problems: Vec<FieldError>,
    },
    /// `load_builtin` was asked for a name that is not built in.
    #[error("no built-in suite named `{name}`; built-in suites: {available}")]
    UnknownBuiltin {
        /// The name asked for.
        name: String,
        /// The built-in names, comma-separated.
        available: String,
    },
}

impl SuiteError {
    /// The individual problems of an [`SuiteError::Invalid`] (empty for the other
    /// variants), for callers that show them as a list or test for one path.
    pub fn problems(&self) -> &[FieldError] {
        match self {
            SuiteError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }
}

fn render_problems(file: &str, problems: &[FieldError]) -> String {
    problems.iter().map(|p| format!("{file}: {}: {}", p.field, p.message)).collect::<Vec<_>>().join("\n")
}

/// A validated suite. Built only by [`Suite::parse`] / [`Suite::from_value`], which
/// enforce the rules the scorer relies on (unique ids, positive weights, compiled
/// regexes); serialises back to the same shape (regexes as their source text).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suite {
    /// Identifier used on the command line (`--suite sre-basics`), `[a-z0-9-]`.
    pub name: String,
    /// What the suite measures, for listings and reports.
    pub description: String,
    /// Version of the ground truth; reports carry it so scores from different versions
    /// are not compared by mistake.
    pub version: String,
    /// Model a run uses when it names none (the catalog's per-scope model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_model: Option<String>,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// One question with its evidence and ground truth.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Case {
    /// Unique within the suite, `[a-z0-9-]`; results and reports refer to it.
    pub id: String,
    /// What the agent is asked.
    pub question: String,
    /// Captured evidence given to the agent with the question.
    pub context: Vec<ContextItem>,
    /// What a correct answer states and must not claim.
    pub expected: Expected,
    /// Free labels for filtering (`--tag storage`), `[a-z0-9-]`.
    pub tags: Vec<String>,
    /// Domain of the case; picks cost defaults and groups reports.
    pub scope: Scope,
    /// Registry keys of the agents the case was written for (the catalog's rows);
    /// advisory: an engine may default its agent matrix to it, empty means any agent.
    pub agents: Vec<String>,
}

/// Domain of a case. The original catalog's five scopes, with `Art/Creative` and
/// `Legal/Ops` spelled as identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Site reliability: Kubernetes and production incidents.
    Sre,
    /// Literature and knowledge search.
    Research,
    /// Image generation and creative work (the catalog's `Art/Creative`).
    Creative,
    /// Security testing of authorised targets.
    Cybersec,
    /// Legal review and operations automation (the catalog's `Legal/Ops`).
    LegalOps,
}

impl Scope {
    /// Every scope, in the catalog's order.
    pub const ALL: [Scope; 5] = [Scope::Sre, Scope::Research, Scope::Creative, Scope::Cybersec, Scope::LegalOps];

    /// The identifier used in YAML and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Sre => "sre",
            Scope::Research => "research",
            Scope::Creative => "creative",
            Scope::Cybersec => "cybersec",
            Scope::LegalOps => "legal-ops",
        }
    }

    /// Reads a scope identifier; `None` for anything else.
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a piece of context is, so an agent (and a reader) knows how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContextKind {
    /// Output of a `kubectl get`/`describe`/`top` command.
    Kubectl,
    /// Kubernetes events.
    Events,
    /// Container or system logs.
    Logs,
    /// A YAML manifest as applied.
    Manifest,
    /// Metrics or a dashboard table.
    Metrics,
    /// Anything else (notes, tool output).
    Text,
}

impl ContextKind {
    /// Every kind, for error messages and the schema.
    pub const ALL: [ContextKind; 6] = [
        ContextKind::Kubectl,
        ContextKind::Events,
        ContextKind::Logs,
        ContextKind::Manifest,
        ContextKind::Metrics,
        ContextKind::Text,
    ];

    /// The identifier used in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            ContextKind::Kubectl => "kubectl",
            ContextKind::Events => "events",
            ContextKind::Logs => "logs",
            ContextKind::Manifest => "manifest",
            ContextKind::Metrics => "metrics",
            ContextKind::Text => "text",
        }
    }

    fn parse(s: &str) -> Option<ContextKind> {
        ContextKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One piece of captured evidence, inline or in a file next to the suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContextItem {
    /// Label shown to the agent, e.g. `kubectl describe pod web-1`; unique in its case.
    pub name: String,
    /// How to read it.
    pub kind: ContextKind,
    /// Path relative to the suite file when the content lives in a file; kept after
    /// resolution so reports can say where the evidence came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The text; `None` only while a `file` is unresolved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// The ground truth of a case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expected {
    /// Facts a correct answer states; empty only for judge-only cases.
    pub facts: Vec<Fact>,
    /// Wrong claims (plausible misdiagnoses) that cost points and fail the case.
    pub forbidden: Vec<Forbidden>,
    /// Instructions for an optional LLM judge; a case without facts is scored only by it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge_rubric: Option<String>,
    /// Score needed to pass this case, overriding the run's threshold.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass_threshold: Option<f64>,
}

/// A fact a correct answer states, recognised by synonyms or a regex.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fact {
    /// Unique within the case (facts and forbidden claims share the namespace); results
    /// list matched and missed facts by it.
    pub id: String,
    /// Phrases any one of which states the fact; matched on word boundaries after
    /// normalisation (see [`crate::scoring::normalize`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
    /// Alternative recogniser, applied case-insensitively to the normalised answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<Pattern>,
    /// Share of the score, relative to the case's other facts; positive.
    pub weight: f64,
}

/// A wrong claim: stating it costs [`crate::scoring::FORBIDDEN_PENALTY`] and fails the case.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forbidden {
    /// Unique within the case; results list the claims found by it.
    pub id: String,
    /// Phrases that make the claim (word boundaries, normalised).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub any_of: Vec<String>,
    /// Alternative recogniser, case-insensitive on the normalised answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regex: Option<Pattern>,
    /// Why the claim is wrong given the evidence, for reports and the judge.
    pub reason: String,
}

/// A compiled regex that remembers its source, so a suite serialises back to what was
/// written and compares by it.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source` case-insensitively, as suites use it; the error is a one-line
    /// reason fit for a validation message.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let regex =
            RegexBuilder::new(source).case_insensitive(true).size_limit(MAX_REGEX_SIZE).build().map_err(|e| {
                let text = e.to_string();
                // The parse error is a multi-line diagram; its last `error:` line is the reason.
                text.lines()
                    .rev()
                    .find_map(|l| l.trim().strip_prefix("error:").map(|r| r.trim().to_owned()))
                    .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
            })?;
        Ok(Pattern { source: source.to_owned(), regex })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The compiled regex.
    pub fn regex(&self) -> &Regex {
        &self.regex
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for Pattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

/// A context file that still has to be read, with where it was referenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextRef {
    /// Path of the reference in the suite, e.g. `cases[2].context[0].file`.
    pub path: String,
    /// The case that uses it.
    pub case_id: String,
    /// The path as written, relative to the suite file.
    pub file: String,
}

impl Suite {
    /// Parses and validates a suite from YAML. `file` names the source in every message
    /// (a path or `sre-basics.yaml`); nothing is read from it.
    pub fn parse(file: &str, yaml: &str) -> Result<Suite, SuiteError> {
        // Decoding into the YAML crate's own value first catches duplicate keys, which a
        // JSON map would silently collapse to the last one.
        let doc: serde_norway::Value = serde_norway::from_str(yaml)
            .map_err(|e| SuiteError::Syntax { file: file.to_owned(), message: e.to_string() })?;
        let mut p = Problems::default();
        let value = yaml_to_json(&doc, "", &mut p);
        Suite::validate(file, &value, p)
    }

    /// Validates a suite already decoded into JSON values (a suite sent as JSON through
    /// the API, or YAML decoded elsewhere); the same rules as [`Suite::parse`].
    pub fn from_value(file: &str, value: &Value) -> Result<Suite, SuiteError> {
        Suite::validate(file, value, Problems::default())
    }

    fn validate(file: &str, value: &Value, mut p: Problems) -> Result<Suite, SuiteError> {
        let suite = read_suite(value, &mut p);
        match suite {
            Some(suite) if p.list.is_empty() => Ok(suite),
            _ => {
                if p.list.is_empty() {
                    p.push("$", "is not a valid suite");
                }
                Err(SuiteError::Invalid { file: file.to_owned(), problems: p.list })
            }
        }
    }

    /// Context files not yet read, for a caller that loads them itself.
    pub fn file_references(&self) -> Vec<ContextRef> {
        let mut refs = Vec::new();
        for (i, case) in self.cases.iter().enumerate() {
            for (j, item) in case.context.iter().enumerate() {
                if let (Some(file), None) = (&item.file, &item.content) {
                    refs.push(ContextRef {
                        path: format!("cases[{i}].context[{j}].file"),
                        case_id: case.id.clone(),
                        file: file.clone(),
                    });
                }
            }
        }
        refs
    }

    /// Reads every unresolved context file through `load` (given the path as written,
    /// relative to the suite file; the caller joins it with the suite's directory) and
    /// stores the content. Every failure is reported, each at its `…file` path, with
    /// `file` naming the suite; content loaded before a failure is kept.
    pub fn resolve_context(
        &mut self,
        file: &str,
        load: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<(), SuiteError> {
        let mut p = Problems::default();
        for (i, case) in self.cases.iter_mut().enumerate() {
            for (j, item) in case.context.iter_mut().enumerate() {
                let (Some(path), None) = (&item.file, &item.content) else { continue };
                let at = format!("cases[{i}].context[{j}].file");
                match load(path) {
                    Ok(text) if text.trim().is_empty() => p.push(at, format!("`{path}` is empty")),
                    Ok(text) if text.chars().count() > MAX_CONTEXT_LEN => p.push(
                        at,
                        format!("`{path}` has more than {MAX_CONTEXT_LEN} characters; trim it to the relevant part"),
                    ),
                    Ok(text) => item.content = Some(text),
                    Err(e) => p.push(at, format!("cannot read `{path}`: {e}")),
                }
            }
        }
        if p.list.is_empty() {
            Ok(())
        } else {
            Err(SuiteError::Invalid { file: file.to_owned(), problems: p.list })
        }
    }

    /// The case with this id.
    pub fn case(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.id == id)
    }
}

impl Case {
    /// True when the case has no facts, so only an LLM judge can score it and without
    /// one its score is `null`, never a made-up number.
    pub fn is_judge_only(&self) -> bool {
        self.expected.facts.is_empty()
    }

    /// The text sent to the agent: the question, then each piece of context between
    /// labelled markers. `None` while a context file is unresolved, so a case never runs
    /// with evidence silently missing.
    pub fn prompt(&self) -> Option<String> {
        let mut out = self.question.trim().to_owned();
        if self.context.is_empty() {
            return Some(out);
        }
        out.push_str("\n\nContext captured from the system (read-only; it may be incomplete):\n");
        for item in &self.context {
            let content = item.content.as_deref()?;
            out.push_str(&format!("\n--- {} ({}) ---\n", item.name, item.kind.as_str()));
            out.push_str(content.trim_end());
            out.push_str(&format!("\n--- end of {} ---\n", item.name));
        }
        Some(out)
    }
}

// ---------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------

/// Problems found so far, in document order.
#[derive(Default)]
struct Problems {
    list: Vec<FieldError>,
}

impl Problems {
    fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.list.push(FieldError { field: field.into(), message: message.into() });
    }
}

/// Converts a YAML value to JSON, reporting what JSON cannot hold: non-text keys, tags
/// (`!foo`) and non-finite numbers (`.inf`, `.nan`), which JSON would turn into `null` and
/// so into "absent". Each becomes `null` after its problem is recorded.
fn yaml_to_json(value: &serde_norway::Value, path: &str, p: &mut Problems) -> Value {
    use serde_norway::Value as Y;
    let at = |path: &str| if path.is_empty() { "$".to_owned() } else { path.to_owned() };
    match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(u) = n.as_u64() {
                Value::from(u)
            } else if let Some(i) = n.as_i64() {
                Value::from(i)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f) => Value::Number(f),
                    None => {
                        p.push(at(path), format!("{n} is not a finite number"));
                        Value::Null
                    }
                }
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => {
            Value::Array(items.iter().enumerate().map(|(i, v)| yaml_to_json(v, &format!("{path}[{i}]"), p)).collect())
        }
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                match k.as_str() {
                    Some(key) => {
                        let child = yaml_to_json(v, &join(path, key), p);
                        out.insert(key.to_owned(), child);
                    }
                    None => p.push(at(path), "mapping keys must be text (quote numbers and booleans used as keys)"),
                }
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            p.push(at(path), format!("YAML tags such as `{}` are not supported", tagged.tag));
            Value::Null
        }
    }
}

/// YAML name of a value's type, for messages.
fn yaml_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A mapping being read: hands out values by key and reports unknown keys at the end.
struct Obj<'a> {
    path: String,
    map: Option<&'a Map<String, Value>>,
}

impl<'a> Obj<'a> {
    /// Starts reading `value` at `path` (`""` for the document); a non-mapping is
    /// reported and reads as empty.
    fn new(value: &'a Value, path: &str, p: &mut Problems) -> Obj<'a> {
        let map = value.as_object();
        if map.is_none() {
            let at = if path.is_empty() { "$" } else { path };
            p.push(at, format!("expected a mapping, found {}", yaml_type(value)));
        }
        Obj { path: path.to_owned(), map }
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The value of `key`; YAML `~`/empty reads as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key)).filter(|v| !v.is_null())
    }

    /// Reports keys outside `allowed`, sorted, each at its own path.
    fn finish(self, allowed: &[&str], p: &mut Problems) {
        let Some(map) = self.map else { return };
        let mut unknown: Vec<&String> = map.keys().filter(|k| !allowed.contains(&k.as_str())).collect();
        unknown.sort();
        for key in unknown {
            p.push(join(&self.path, key), format!("unknown key; expected one of: {}", allowed.join(", ")));
        }
    }

    /// A required string, non-blank and at most `max` characters.
    fn req_str(&self, key: &str, max: usize, p: &mut Problems) -> Option<String> {
        match self.get(key) {
            None => {
                if self.map.is_some() {
                    p.push(self.at(key), "is required");
                }
                None
            }
            Some(v) => self.check_str(key, v, max, p),
        }
    }

    /// An optional string; present means non-blank and at most `max` characters.
    fn opt_str(&self, key: &str, max: usize, p: &mut Problems) -> Option<String> {
        self.get(key).and_then(|v| self.check_str(key, v, max, p))
    }

    fn check_str(&self, key: &str, v: &Value, max: usize, p: &mut Problems) -> Option<String> {
        string_at(&self.at(key), v, max, p)
    }

    /// An optional list; each element with its path. A non-list is reported.
    fn list(&self, key: &str, p: &mut Problems) -> Vec<(String, &'a Value)> {
        match self.get(key) {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                items.iter().enumerate().map(|(i, v)| (format!("{}[{i}]", self.at(key)), v)).collect()
            }
            Some(other) => {
                p.push(self.at(key), format!("expected a list, found {}", yaml_type(other)));
                Vec::new()
            }
        }
    }
}

/// Checks that `v` is a non-blank string of at most `max` characters.
fn string_at(at: &str, v: &Value, max: usize, p: &mut Problems) -> Option<String> {
    match v.as_str() {
        None => {
            let hint = if v.is_number() || v.is_boolean() { " (quote it to make it text)" } else { "" };
            p.push(at, format!("expected a string, found {}{hint}", yaml_type(v)));
            None
        }
        Some(s) if s.trim().is_empty() => {
            p.push(at, "must not be empty");
            None
        }
        Some(s) if s.chars().count() > max => {
            p.push(at, format!("is {} characters long; the maximum is {max}", s.chars().count()));
            None
        }
        Some(s) => Some(s.to_owned()),
    }
}

/// Checks an identifier: 1–64 of `[a-z0-9-]`, starting with a letter or digit.
fn ident_at(at: &str, v: &Value, p: &mut Problems) -> Option<String> {
    let s = string_at(at, v, MAX_ID_LEN, p)?;
    let ok_chars = s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !ok_chars || s.starts_with('-') {
        p.push(
            at,
            format!("`{s}` is not an id: use lowercase letters, digits and `-`, starting with a letter or digit"),
        );
        return None;
    }
    Some(s)
}

/// Checks a context file path: relative, forward slashes, no `..`, so a suite cannot make
/// the loader read outside its own directory.
fn relative_path_problem(path: &str) -> Option<&'static str> {
    let bytes = path.as_bytes();
    if path.starts_with('/') || (bytes.len() >= 2 && bytes[1] == b':' && bytes[0].is_ascii_alphabetic()) {
        return Some("must be relative to the suite file, not absolute");
    }
    if path.contains('\\') {
        return Some("use `/` as the separator");
    }
    if path.contains('\0') {
        return Some("must not contain a NUL character");
    }
    if path.split('/').any(|part| part == "..") {
        return Some("must stay inside the suite's directory (no `..`)");
    }
    None
}

fn read_suite(value: &Value, p: &mut Problems) -> Option<Suite> {
    let obj = Obj::new(value, "", p);
    let name = obj.get("name").and_then(|v| ident_at("name", v, p));
    if obj.map.is_some() && obj.get("name").is_none() {
        p.push("name", "is required");
    }
    let description = obj.req_str("description", MAX_TEXT_LEN, p);
    let version = match obj.get("version") {
        None => {
            if obj.map.is_some() {
                p.push("version", "is required");
            }
            None
        }
        Some(Value::Number(n)) if n.is_u64() => Some(n.to_string()),
        Some(Value::Number(n)) => {
            p.push("version", format!("{n} is not a whole number; quote versions such as \"1.2\" to make them text"));
            None
        }
        Some(v) => string_at("version", v, MAX_ID_LEN, p),
    };
    let default_model = obj.opt_str("default_model", crate::contracts::MAX_MODEL_LEN, p);

    let case_values = obj.list("cases", p);
    if obj.map.is_some() && case_values.is_empty() && matches!(obj.get("cases"), None | Some(Value::Array(_))) {
        p.push("cases", "at least one case is required");
    }
    if case_values.len() > MAX_CASES {
        p.push("cases", format!("has {} cases; the maximum is {MAX_CASES}", case_values.len()));
    }
    let mut cases = Vec::new();
    let mut first_use: HashMap<String, String> = HashMap::new();
    for (at, v) in &case_values {
        if let Some(case) = read_case(v, at, p) {
            if let Some(first) = first_use.get(&case.id) {
                p.push(join(at, "id"), format!("duplicate case id `{}` (first used at {first})", case.id));
            } else {
                first_use.insert(case.id.clone(), at.clone());
            }
            cases.push(case);
        }
    }
    obj.finish(SUITE_KEYS, p);
    Some(Suite { name: name?, description: description?, version: version?, default_model, cases })
}

fn read_case(value: &Value, at: &str, p: &mut Problems) -> Option<Case> {
    let obj = Obj::new(value, at, p);
    obj.map?;
    let id = match obj.get("id") {
        Some(v) => ident_at(&obj.at("id"), v, p),
        None => {
            p.push(obj.at("id"), "is required");
            None
        }
    };
    let question = obj.req_str("question", MAX_QUESTION_LEN, p);

    let mut context = Vec::new();
    let mut context_names: HashMap<String, String> = HashMap::new();
    for (item_at, v) in obj.list("context", p) {
        if let Some(item) = read_context(v, &item_at, p) {
            if let Some(first) = context_names.get(&item.name) {
                p.push(
                    join(&item_at, "name"),
                    format!("duplicate context name `{}` (first used at {first})", item.name),
                );
            } else {
                context_names.insert(item.name.clone(), item_at.clone());
            }
            context.push(item);
        }
    }

    let expected = match obj.get("expected") {
        Some(v) => read_expected(v, &obj.at("expected"), p),
        None => {
            p.push(obj.at("expected"), "is required: give `facts` (and optionally `forbidden`) or a `judge_rubric`");
            None
        }
    };

    let tags = ident_list(&obj, "tags", p);
    let agents = ident_list(&obj, "agents", p);

    let scope = match obj.get("scope") {
        None => {
            p.push(obj.at("scope"), format!("is required; one of: {}", scope_names()));
            None
        }
        Some(v) => string_at(&obj.at("scope"), v, MAX_ID_LEN, p).and_then(|s| {
            let scope = Scope::parse(&s);
            if scope.is_none() {
                p.push(obj.at("scope"), format!("unknown scope `{s}`; expected one of: {}", scope_names()));
            }
            scope
        }),
    };
    obj.finish(CASE_KEYS, p);
    Some(Case { id: id?, question: question?, context, expected: expected?, tags, scope: scope?, agents })
}

fn scope_names() -> String {
    Scope::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// A list of unique identifiers (tags, agents).
fn ident_list(obj: &Obj<'_>, key: &str, p: &mut Problems) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (at, v) in obj.list(key, p) {
        if let Some(s) = ident_at(&at, v, p) {
            if out.contains(&s) {
                p.push(at, format!("`{s}` is listed twice"));
            } else {
                out.push(s);
            }
        }
    }
    out
}

fn read_context(value: &Value, at: &str, p: &mut Problems) -> Option<ContextItem> {
    let obj = Obj::new(value, at, p);
    obj.map?;
    let name = obj.req_str("name", 200, p);
    let kind = match obj.get("kind") {
        None => {
            p.push(obj.at("kind"), format!("is required; one of: {}", kind_names()));
            None
        }
        Some(v) => string_at(&obj.at("kind"), v, MAX_ID_LEN, p).and_then(|s| {
            let kind = ContextKind::parse(&s);
            if kind.is_none() {
                p.push(obj.at("kind"), format!("unknown kind `{s}`; expected one of: {}", kind_names()));
            }
            kind
        }),
    };
    let content = obj.opt_str("content", MAX_CONTEXT_LEN, p);
    let file = obj.opt_str("file", 1024, p);
    let mut ok = true;
    match (obj.get("content"), obj.get("file")) {
        (Some(_), Some(_)) => {
            p.push(at, "give either `content` or `file`, not both");
            ok = false;
        }
        (None, None) => {
            p.push(at, "needs `content` (inline text) or `file` (a path relative to the suite file)");
            ok = false;
        }
        _ => {}
    }
    if let Some(path) = &file {
        if let Some(problem) = relative_path_problem(path) {
            p.push(obj.at("file"), format!("`{path}` {problem}"));
            ok = false;
        }
    }
    obj.finish(CONTEXT_KEYS, p);
    if !ok || (content.is_none() && file.is_none()) {
        return None;
    }
    Some(ContextItem { name: name?, kind: kind?, file, content })
}

fn kind_names() -> String {
    ContextKind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")
}

fn read_expected(value: &Value, at: &str, p: &mut Problems) -> Option<Expected> {
    let obj = Obj::new(value, at, p);
    obj.map?;
    // Fact and forbidden ids share one namespace so results never name an id ambiguously.
    let mut ids: HashMap<String, String> = HashMap::new();
    let mut claim_id = |id: &str, id_at: &str, p: &mut Problems| {
        if let Some(first) = ids.get(id) {
            p.push(id_at, format!("duplicate id `{id}` (first used at {first})"));
        } else {
            ids.insert(id.to_owned(), id_at.trim_end_matches(".id").to_owned());
        }
    };

    let mut facts = Vec::new();
    let fact_values = obj.list("facts", p);
    for (fact_at, v) in &fact_values {
        if let Some(fact) = read_fact(v, fact_at, p) {
            claim_id(&fact.id, &join(fact_at, "id"), p);
            facts.push(fact);
        }
    }
    let mut forbidden = Vec::new();
    for (claim_at, v) in obj.list("forbidden", p) {
        if let Some(claim) = read_forbidden(v, &claim_at, p) {
            claim_id(&claim.id, &join(&claim_at, "id"), p);
            forbidden.push(claim);
        }
    }
    let judge_rubric = obj.opt_str("judge_rubric", MAX_TEXT_LEN, p);
    let pass_threshold = match obj.get("pass_threshold") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => Some(x),
            Some(x) => {
                p.push(obj.at("pass_threshold"), format!("{x} is out of range; expected a number from 0 to 1"));
                None
            }
            None => {
                p.push(obj.at("pass_threshold"), format!("expected a number from 0 to 1, found {}", yaml_type(v)));
                None
            }
        },
    };
    let facts_given = matches!(obj.get("facts"), Some(Value::Array(a)) if !a.is_empty());
    let facts_malformed = matches!(obj.get("facts"), Some(v) if !v.is_array());
    if !facts_given && !facts_malformed && obj.get("judge_rubric").is_none() {
        p.push(
            obj.at("facts"),
            "at least one fact is required (or give a `judge_rubric` to make this a judge-only case)",
        );
    }
    obj.finish(EXPECTED_KEYS, p);
    Some(Expected { facts, forbidden, judge_rubric, pass_threshold })
}

/// Reads `any_of` and `regex` shared by facts and forbidden claims; at least one must be
/// present and every synonym must still say something after normalisation.
fn read_matchers(obj: &Obj<'_>, at: &str, p: &mut Problems) -> (Vec<String>, Option<Pattern>, bool) {
    let mut ok = true;
    let mut any_of = Vec::new();
    if matches!(obj.get("any_of"), Some(Value::Array(a)) if a.is_empty()) {
        p.push(obj.at("any_of"), "must list at least one phrase (or leave it out and give `regex`)");
        ok = false;
    }
    for (syn_at, v) in obj.list("any_of", p) {
        match string_at(&syn_at, v, MAX_TEXT_LEN, p) {
            Some(s) if normalize(&s).is_empty() => {
                p.push(syn_at, format!("`{s}` is empty once markdown and spaces are removed"));
                ok = false;
            }
            Some(s) => any_of.push(s),
            None => ok = false,
        }
    }
    let regex = match obj.get("regex") {
        None => None,
        Some(v) => match string_at(&obj.at("regex"), v, MAX_TEXT_LEN, p) {
            None => {
                ok = false;
                None
            }
            Some(src) => match Pattern::new(&src) {
                Err(e) => {
                    p.push(obj.at("regex"), format!("invalid regex: {e}"));
                    ok = false;
                    None
                }
                Ok(pat) if pat.regex().is_match("") => {
                    p.push(obj.at("regex"), format!("`{src}` matches an empty answer, so every answer would match"));
                    ok = false;
                    None
                }
                Ok(pat) => Some(pat),
            },
        },
    };
    if obj.map.is_some() && obj.get("any_of").is_none() && obj.get("regex").is_none() {
        p.push(at, "needs `any_of` (phrases) or `regex`");
        ok = false;
    }
    (any_of, regex, ok)
}

fn read_fact(value: &Value, at: &str, p: &mut Problems) -> Option<Fact> {
    let obj = Obj::new(value, at, p);
    obj.map?;
    let id = match obj.get("id") {
        Some(v) => ident_at(&obj.at("id"), v, p),
        None => {
            p.push(obj.at("id"), "is required");
            None
        }
    };
    let (any_of, regex, ok) = read_matchers(&obj, at, p);
    let weight = match obj.get("weight") {
        None => Some(1.0),
        Some(v) => match v.as_f64() {
            Some(w) if w.is_finite() && w > 0.0 => Some(w),
            Some(w) => {
                p.push(obj.at("weight"), format!("{w} is not allowed; a weight must be greater than 0"));
                None
            }
            None => {
                p.push(obj.at("weight"), format!("expected a number greater than 0, found {}", yaml_type(v)));
                None
            }
        },
    };
    obj.finish(FACT_KEYS, p);
    if !ok {
        return None;
    }
    Some(Fact { id: id?, any_of, regex, weight: weight? })
}

fn read_forbidden(value: &Value, at: &str, p: &mut Problems) -> Option<Forbidden> {
    let obj = Obj::new(value, at, p);
    obj.map?;
    let id = match obj.get("id") {
        Some(v) => ident_at(&obj.at("id"), v, p),
        None => {
            p.push(obj.at("id"), "is required");
            None
        }
    };
    let (any_of, regex, ok) = read_matchers(&obj, at, p);
    let reason = obj.req_str("reason", MAX_TEXT_LEN, p);
    obj.finish(FORBIDDEN_KEYS, p);
    if !ok {
        return None;
    }
    Some(Forbidden { id: id?, any_of, regex, reason: reason? })
}

/// For every `sre-basics` case: `(case id, a known-correct answer, a known-wrong answer)`.
/// The suite's tests prove each correct answer scores ≥ 0.8 and each wrong one ≤ 0.2, so
/// the ground truth is matchable; end-to-end tests script `rune sim-llm` with them.
pub const SRE_BASICS_REFERENCE_ANSWERS: &[(&str, &str, &str)] = &[
    (
        "crashloop-missing-env",
        "The new pod payments-api-7d9c6b5f8-x2k4q exits with code 1 at startup because the required environment \
         variable `DATABASE_URL` is not set. The payments-config ConfigMap was changed and now has the key DB_URL \
         instead of DATABASE_URL, so envFrom no longer provides it; the old pods still run because they started \
         with the old value. Fix: rename the key back to DATABASE_URL in payments-config (or update the app to \
         read DB_URL) and run `kubectl rollout restart deployment/payments-api -n payments`.",
        "The container is being OOMKilled: its 512Mi memory limit is too small for the JVM. Increase the memory \
         limit to 1Gi.",
    ),
    (
        "oomkilled",
        "The indexer container is **OOMKilled** (Last State: OOMKilled, exit code 137). Its memory limit is 256Mi \
         but JAVA_TOOL_OPTIONS sets -Xmx512m, so the JVM heap grows past the limit while loading batches and the \
         kernel kills it (kubectl top showed 251Mi just before). Raise the memory limit to about 768Mi, or lower \
         -Xmx below the limit (e.g. -Xmx192m) and reduce INDEX_BATCH_SIZE.",
        "The liveness probe is failing during indexing, so the kubelet restarts the container. Increase the \
         probe's timeoutSeconds.",
    ),
    (
        "imagepull-wrong-tag",
        "The new ReplicaSet uses the image tag v2.3.0, which does not exist in the registry: the pull fails with \
         NotFound (ErrImagePull, then ImagePullBackOff). The registry has 2.3.0 without the v prefix. Fix the \
         Deployment: kubectl set image deployment/frontend frontend=ghcr.io/acme/frontend:2.3.0 -n web.",
        "ghcr.io/acme/frontend is private and the pod has no imagePullSecret, so the pull is unauthorized. Create \
         a docker-registry secret and add it to the pod spec.",
    ),
    (
        "readiness-wrong-port",
        "The pods are Running but not Ready because the readiness probe fails: it calls port 8081 (/healthz) while \
         the app listens on 8080, so every probe gets connection refused. With no ready addresses the Service has \
         no endpoints and the ingress returns 503. Change the readinessProbe port to 8080 (or the named port \
         http).",
        "The Service selector does not match the pod labels, so the Service has no endpoints. Fix the selector to \
         app=catalog.",
    ),
    (
        "pvc-pending-storageclass",
        "postgres-0 is Pending because its PVC data-postgres-0 is unbound: it asks for storageClassName fast-ssd, \
         and that StorageClass does not exist (ProvisioningFailed: storageclass.storage.k8s.io \"fast-ssd\" not \
         found). The cluster only has standard (default) and premium-rwo. Change the volumeClaimTemplate to use \
         standard or premium-rwo (delete the pending PVC and recreate the StatefulSet, the template is \
         immutable), or create a StorageClass named fast-ssd.",
        "The pod is Pending because the nodes do not have enough memory: the scheduler reports insufficient \
         memory. Add more nodes or enable the cluster autoscaler.",
    ),
    (
        "dns-wrong-service-name",
        "The orders pods call inventory-svc.shop.svc.cluster.local, but there is no Service called inventory-svc: \
         the Service is named inventory. The lookup fails with ENOTFOUND and nslookup returns NXDOMAIN, while \
         inventory.shop.svc.cluster.local resolves to 10.96.142.7 and CoreDNS is healthy. Fix INVENTORY_URL: set \
         it to http://inventory.shop.svc.cluster.local:8080 and roll out orders again.",
        "CoreDNS is down, so service names cannot be resolved inside the cluster. Restart the CoreDNS pods in \
         kube-system.",
    ),
    (
        "node-disk-pressure",
        "worker-3 has DiskPressure: the kubelet evicted pods because ephemeral-storage fell below the 10% \
         threshold, and the node is tainted node.kubernetes.io/disk-pressure:NoSchedule so nothing new schedules \
         there. The culprit is reports-worker: its emptyDir /tmp/reports holds about 46 GiB of nightly exports \
         because KEEP_EXPORTS=true disables cleanup. Delete the old exports, set KEEP_EXPORTS=false or add a \
         retention job, and give the emptyDir a sizeLimit plus an ephemeral-storage limit.",
        "The node ran out of memory and the kubelet evicted the pods. Add memory to worker-3 or lower the pods' \
         memory limits.",
    ),
    (
        "hpa-missing-requests",
        "The HPA cannot compute CPU utilisation because the gateway container has no CPU request: the manifest \
         only sets a memory limit, so the target shows <unknown> and ScalingActive is False \
         (FailedGetResourceMetric: missing request for cpu). metrics-server works (kubectl top shows ~1.9 \
         cores). Add resources.requests.cpu (for example 500m) to the container.",
        "metrics-server is not installed, so the HPA has no metrics. Install metrics-server in kube-system.",
    ),
    (
        "bad-rollout-5xx",
        "The errors started with the rollout of release 1.9.0 (revision 8) at 14:02: the new version fails \
         inserts with 'column discount_code of relation orders does not exist', so every checkout with a \
         discount code returns 500; the schema migration for 1.9.0 was never run (only checkout-migrate-1-8-2 \
         exists). Roll back now with kubectl rollout undo deployment/checkout-api -n checkout (revision 7, \
         1.8.2), then run the 1.9.0 migration before redeploying.",
        "The database is overloaded and refusing connections under the checkout load. Scale up the checkout-api \
         replicas and increase the connection pool.",
    ),
    (
        "tls-cert-expired",
        "Calls to the ledger fail TLS verification because its certificate has expired: x509 says the current \
         time is after NotAfter 2024-09-01T23:59:59Z, and the ledger-tls Certificate is Ready=False (Expired). \
         cert-manager could not renew it since 2024-08-17 because the ledger-ca Issuer is not ready: its secret \
         ledger-ca-key-pair was deleted. Restore the CA key pair secret from backup, then renew the certificate \
         (cmctl renew ledger-tls -n ledger).",
        "The nodes' clocks are out of sync (NTP drift), so valid certificates look expired. Fix time \
         synchronisation on the nodes.",
    ),
    (
        "resourcequota-exceeded",
        "The ReplicaSet cannot create the extra pods: the API server rejects them with 'exceeded quota: \
         analytics-quota'. Each pod requests 2Gi of memory (4Gi limit) and the namespace ResourceQuota allows \
         requests.memory=8Gi and limits.memory=16Gi, which the 4 running pods already use. Raise the quota (for \
         example requests.memory 12Gi) or reduce the pods' memory requests.",
        "The new pods are stuck Pending because the nodes are full (insufficient memory). Add more nodes or \
         enable the cluster autoscaler.",
    ),
    (
        "networkpolicy-default-deny",
        "The default-deny-ingress NetworkPolicy applied at 16:19 blocks all ingress in prod, and the only allow \
         rule (allow-frontend-to-api) admits frontend to api; there is no policy allowing api to reach redis on \
         6379. The packets are dropped, hence the i/o timeout, while redis-0 itself is healthy. Add a \
         NetworkPolicy that allows ingress to app=redis from app=api on port 6379.",
        "Redis is down or overloaded, so connections time out. Restart the redis-0 pod and give it more memory.",
    ),
    (
        "imagepull-private-registry",
        "The scorer pod pulls anonymously: its pod spec has no imagePullSecrets, unlike trainer, which references \
         regcred. The Harbor registry therefore answers 401 Unauthorized (failed to authorize), so the pull ends \
         in ImagePullBackOff; the tag 1.4.2 exists, CI pushed it. Add imagePullSecrets with regcred to the scorer \
         Deployment (or patch the default ServiceAccount).",
        "The tag 1.4.2 does not exist in the registry (wrong image tag). Check the CI pipeline and deploy a tag \
         that was pushed.",
    ),
    (
        "liveness-slow-start",
        "The liveness probe kills the container before the app finishes starting: 5.0.0 loads its caches for \
         60-90 s on a cold start, but the probe starts after 20 s and fails three times (connection refused), so \
         the kubelet restarts it with SIGTERM (exit code 143). Add a startupProbe (e.g. failureThreshold 30, \
         periodSeconds 5), or increase initialDelaySeconds above the warm-up time.",
        "The container is OOMKilled because the JVM needs more memory than 1536Mi. Raise the memory limit to \
         3Gi.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Registry keys of the agents RUNE can run (reference §4.3); catalog suites must
    /// name agents by these keys, not by the catalog's display names.
    const REGISTRY_KEYS: &[&str] = &[
        "holmes",
        "k8sgpt",
        "langgraph",
        "pagerduty",
        "metoro",
        "perplexity",
        "glean",
        "elicit",
        "consensus",
        "pentestgpt",
        "burpgpt",
        "mindgard",
        "dagger",
        "crewai",
        "comfyui",
        "invokeai",
        "browseruse",
        "harvey",
        "spellbook",
        "sierra",
        "xbow",
        "radiant",
        "krea",
        "midjourney",
        "multion",
        "skillfortify",
        "cleric",
    ];

    /// A minimal valid suite whose first case can be edited by string replacement.
    const MINIMAL: &str = r#"
name: demo
description: A demo suite.
version: 1
cases:
  - id: first
    scope: sre
    question: Why is the pod crashing?
    expected:
      facts:
        - id: cause
          any_of: ["OOMKilled"]
        - id: fix
          regex: 'raise .{0,20}limit'
      forbidden:
        - id: wrong
          any_of: ["liveness probe"]
          reason: No probe is configured.
"#;

    fn problems(yaml: &str) -> Vec<(String, String)> {
        match Suite::parse("demo.yaml", yaml) {
            Ok(_) => panic!("expected a validation error"),
            Err(e) => {
                assert!(matches!(e, SuiteError::Invalid { .. }), "expected Invalid, got {e:?}");
                e.problems().iter().map(|p| (p.field.clone(), p.message.clone())).collect()
            }
        }
    }

    fn assert_problem(yaml: &str, path: &str, needle: &str) {
        let found = problems(yaml);
        assert!(
            found.iter().any(|(f, m)| f == path && m.contains(needle)),
            "no problem at `{path}` containing `{needle}`; got {found:#?}"
        );
    }

    /// The minimal suite used by the negative tests is itself valid, so each negative test
    /// fails for the one reason it introduces.
    #[test]
    fn minimal_suite_is_valid() {
        let suite = Suite::parse("demo.yaml", MINIMAL).unwrap();
        assert_eq!(suite.version, "1");
        assert_eq!(suite.cases[0].expected.facts[0].weight, 1.0);
        assert_eq!(suite.cases[0].scope, Scope::Sre);
    }

    /// Every built-in suite parses and validates, is registered under its own name, and
    /// has unique case ids.
    #[test]
    fn every_builtin_suite_parses() {
        let all = builtin_suites();
        assert!(all.len() >= 6);
        for (name, yaml) in all {
            let suite = Suite::parse(&format!("{name}.yaml"), yaml).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(suite.name, name);
            let mut ids: Vec<&str> = suite.cases.iter().map(|c| c.id.as_str()).collect();
            let n = ids.len();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), n, "duplicate case ids in {name}");
            assert_eq!(load_builtin(name).unwrap(), suite);
        }
    }

    /// sre-basics has at least 12 cases, each with inline context, 2–4 facts including a
    /// weighted root cause, and 1–2 forbidden wrong diagnoses.
    #[test]
    fn sre_basics_cases_have_context_and_facts() {
        let suite = load_builtin("sre-basics").unwrap();
        assert!(suite.cases.len() >= 12, "only {} cases", suite.cases.len());
        for case in &suite.cases {
            assert!(case.context.len() >= 2, "{}: needs captured context", case.id);
            assert!(case.context.iter().all(|c| c.content.is_some()), "{}: unresolved context", case.id);
            let facts = case.expected.facts.len();
            assert!((2..=4).contains(&facts), "{}: {facts} facts", case.id);
            assert!(case.expected.facts.iter().any(|f| f.weight > 1.0), "{}: no weighted root cause", case.id);
            let forbidden = case.expected.forbidden.len();
            assert!((1..=2).contains(&forbidden), "{}: {forbidden} forbidden claims", case.id);
            assert_eq!(case.scope, Scope::Sre);
            assert!(case.prompt().unwrap().contains(&case.context[0].name));
        }
    }

    /// The catalog ships as one suite per scope, three questions each, every case listing
    /// agents by registry key and every scope with a model (the original's misaligned rows
    /// gave Elicit and MultiOn a URL and a question as "model").
    #[test]
    fn catalog_suites_cover_the_five_scopes() {
        let mut agents_seen: Vec<String> = Vec::new();
        for scope in Scope::ALL {
            let name = format!("catalog-{scope}");
            let suite = load_builtin(&name).unwrap();
            assert_eq!(suite.cases.len(), 3, "{name}");
            let model = suite.default_model.as_deref().unwrap();
            assert!(!model.contains("://") && !model.contains(' '), "{name}: model `{model}`");
            for case in &suite.cases {
                assert_eq!(case.scope, scope, "{name}/{}", case.id);
                assert!(case.context.is_empty(), "catalog cases have no captured context");
                assert!(!case.agents.is_empty());
                for agent in &case.agents {
                    assert!(REGISTRY_KEYS.contains(&agent.as_str()), "{name}: `{agent}` is not a registry key");
                }
                assert_eq!(case.agents, suite.cases[0].agents, "all agents of a scope get the same questions");
                assert!(case.expected.judge_rubric.is_some(), "{name}/{}: catalog cases carry a rubric", case.id);
            }
            for agent in &suite.cases[0].agents {
                assert!(!agents_seen.contains(agent), "`{agent}` is in two scopes");
                agents_seen.push(agent.clone());
            }
        }
        assert_eq!(agents_seen.len(), REGISTRY_KEYS.len(), "every registry agent belongs to one scope");
    }

    /// Asking for an unknown built-in names the ones that exist.
    #[test]
    fn unknown_builtin_lists_the_available_names() {
        let err = load_builtin("sre-advanced").unwrap_err();
        assert!(matches!(err, SuiteError::UnknownBuiltin { .. }));
        assert!(err.to_string().contains("sre-basics, catalog-sre"), "{err}");
    }

    /// Unknown keys are reported at every level with the keys that are allowed.
    #[test]
    fn rejects_unknown_keys() {
        let yaml = MINIMAL
            .replace("version: 1", "version: 1\nauthor: me")
            .replace("          any_of: [\"OOMKilled\"]", "          any_of: [\"OOMKilled\"]\n          weigth: 2");
        let found = problems(&yaml);
        assert!(found.iter().any(|(f, m)| f == "author" && m.contains("expected one of: name, description")));
        assert!(found.iter().any(|(f, m)| f == "cases[0].expected.facts[0].weigth" && m.contains("weight")));
    }

    /// Two cases with the same id: the second is reported and the first named.
    #[test]
    fn rejects_duplicate_case_ids() {
        let case = MINIMAL.split("cases:\n").nth(1).unwrap();
        let yaml = format!("{MINIMAL}{case}");
        assert_problem(&yaml, "cases[1].id", "duplicate case id `first` (first used at cases[0])");
    }

    /// A blank question is rejected at its path.
    #[test]
    fn rejects_empty_question() {
        let yaml = MINIMAL.replace("question: Why is the pod crashing?", "question: '  '");
        assert_problem(&yaml, "cases[0].question", "must not be empty");
        let yaml = MINIMAL.replace("    question: Why is the pod crashing?\n", "");
        assert_problem(&yaml, "cases[0].question", "is required");
    }

    /// A regex that does not compile is reported at its exact path with the reason.
    #[test]
    fn rejects_bad_regex() {
        let yaml = MINIMAL.replace("regex: 'raise .{0,20}limit'", "regex: 'raise (limit'");
        assert_problem(&yaml, "cases[0].expected.facts[1].regex", "invalid regex: unclosed group");
    }

    /// A regex that matches the empty answer would credit every answer, so it is refused.
    #[test]
    fn rejects_regex_matching_empty_answer() {
        let yaml = MINIMAL.replace("regex: 'raise .{0,20}limit'", "regex: '(raise)?'");
        assert_problem(&yaml, "cases[0].expected.facts[1].regex", "matches an empty answer");
    }

    /// Weights must be positive numbers.
    #[test]
    fn rejects_non_positive_weights() {
        for (weight, needle) in [("0", "greater than 0"), ("-1.5", "greater than 0"), ("heavy", "found a string")] {
            let yaml = MINIMAL.replace(
                "          any_of: [\"OOMKilled\"]",
                &format!("          any_of: [\"OOMKilled\"]\n          weight: {weight}"),
            );
            assert_problem(&yaml, "cases[0].expected.facts[0].weight", needle);
        }
    }

    /// A case needs facts unless it is judge-only (has a rubric).
    #[test]
    fn rejects_case_without_facts_or_rubric() {
        let start = MINIMAL.find("      facts:").unwrap();
        let end = MINIMAL.find("      forbidden:").unwrap();
        let yaml = format!("{}{}", &MINIMAL[..start], &MINIMAL[end..]);
        assert_problem(&yaml, "cases[0].expected.facts", "at least one fact is required");
        let judge_only = format!("{}      judge_rubric: Grade it.\n{}", &MINIMAL[..start], &MINIMAL[end..]);
        let suite = Suite::parse("demo.yaml", &judge_only).unwrap();
        assert!(suite.cases[0].is_judge_only());
    }

    /// Fact and forbidden ids share one namespace per case.
    #[test]
    fn rejects_duplicate_fact_ids() {
        let yaml = MINIMAL.replace("        - id: wrong", "        - id: cause");
        assert_problem(
            &yaml,
            "cases[0].expected.forbidden[0].id",
            "duplicate id `cause` (first used at cases[0].expected.facts[0])",
        );
    }

    /// A fact needs phrases or a regex; an empty phrase list and blank phrases are refused.
    #[test]
    fn rejects_facts_without_matchers() {
        let yaml = MINIMAL.replace("          any_of: [\"OOMKilled\"]\n", "");
        assert_problem(&yaml, "cases[0].expected.facts[0]", "needs `any_of` (phrases) or `regex`");
        let yaml = MINIMAL.replace("any_of: [\"OOMKilled\"]", "any_of: []");
        assert_problem(&yaml, "cases[0].expected.facts[0].any_of", "at least one phrase");
        let yaml = MINIMAL.replace("any_of: [\"OOMKilled\"]", "any_of: [\"OOMKilled\", \"**``**\"]");
        assert_problem(&yaml, "cases[0].expected.facts[0].any_of[1]", "empty once markdown");
    }

    /// A forbidden claim must say why it is wrong.
    #[test]
    fn rejects_forbidden_without_reason() {
        let yaml = MINIMAL.replace("          reason: No probe is configured.\n", "");
        assert_problem(&yaml, "cases[0].expected.forbidden[0].reason", "is required");
    }

    /// Ids are lowercase `[a-z0-9-]`; tags and agents too, without repeats.
    #[test]
    fn rejects_bad_ids_and_repeated_tags() {
        let yaml = MINIMAL.replace("id: first", "id: First_Case");
        assert_problem(&yaml, "cases[0].id", "is not an id");
        let yaml = MINIMAL.replace("    scope: sre\n", "    scope: sre\n    tags: [dns, dns]\n    agents: [Holmes]\n");
        assert_problem(&yaml, "cases[0].tags[1]", "listed twice");
        assert_problem(&yaml, "cases[0].agents[0]", "is not an id");
        let yaml = MINIMAL.replace("name: demo", "name: my suite");
        assert_problem(&yaml, "name", "is not an id");
    }

    /// Scopes come from a fixed list, named in the message.
    #[test]
    fn rejects_unknown_scope() {
        let yaml = MINIMAL.replace("scope: sre", "scope: devops");
        assert_problem(
            &yaml,
            "cases[0].scope",
            "unknown scope `devops`; expected one of: sre, research, creative, cybersec, legal-ops",
        );
    }

    /// Context is inline or a file, never both or neither; kinds are fixed; file paths
    /// stay inside the suite's directory.
    #[test]
    fn rejects_bad_context() {
        let with = |item: &str| MINIMAL.replace("    scope: sre\n", &format!("    scope: sre\n    context:\n{item}"));
        let both = with("      - {name: a, kind: logs, content: x, file: a.log}\n");
        assert_problem(&both, "cases[0].context[0]", "not both");
        let neither = with("      - {name: a, kind: logs}\n");
        assert_problem(&neither, "cases[0].context[0]", "needs `content`");
        let kind = with("      - {name: a, kind: pcap, content: x}\n");
        assert_problem(&kind, "cases[0].context[0].kind", "unknown kind `pcap`");
        for (path, needle) in [
            ("/etc/passwd", "not absolute"),
            ("../secrets.txt", "no `..`"),
            ("logs/../../x", "no `..`"),
            ("C:/x.log", "not absolute"),
            ("logs\\\\x.log", "use `/`"),
        ] {
            let yaml = with(&format!("      - {{name: a, kind: logs, file: \"{path}\"}}\n"));
            assert_problem(&yaml, "cases[0].context[0].file", needle);
        }
        let dup = with("      - {name: a, kind: logs, content: x}\n      - {name: a, kind: text, content: y}\n");
        assert_problem(&dup, "cases[0].context[1].name", "duplicate context name `a`");
    }

    /// The pass threshold is a number from 0 to 1.
    #[test]
    fn rejects_threshold_out_of_range() {
        let yaml = MINIMAL.replace("      forbidden:", "      pass_threshold: 1.5\n      forbidden:");
        assert_problem(&yaml, "cases[0].expected.pass_threshold", "out of range");
    }

    /// A decimal version would lose its meaning as a float (1.10 == 1.1), so it must be
    /// quoted; a missing suite field or an empty case list is reported.
    #[test]
    fn rejects_bad_top_level_fields() {
        assert_problem(&MINIMAL.replace("version: 1", "version: 1.10"), "version", "quote versions");
        assert_problem(&MINIMAL.replace("description: A demo suite.\n", ""), "description", "is required");
        assert_problem("name: x\ndescription: d\nversion: '1'\ncases: []\n", "cases", "at least one case");
        assert_problem("- just\n- a list\n", "$", "expected a mapping, found a list");
    }

    /// Every problem in a file is reported at once, each line naming the file and path.
    #[test]
    fn reports_all_problems_with_file_and_path() {
        let yaml = MINIMAL
            .replace("id: first", "id: First")
            .replace("question: Why is the pod crashing?", "question: ''")
            .replace("regex: 'raise .{0,20}limit'", "regex: '('")
            .replace("scope: sre", "scope: ops");
        let err = Suite::parse("suites/demo.yaml", &yaml).unwrap_err();
        let paths: Vec<&str> = err.problems().iter().map(|p| p.field.as_str()).collect();
        for path in ["cases[0].id", "cases[0].question", "cases[0].expected.facts[1].regex", "cases[0].scope"] {
            assert!(paths.contains(&path), "missing {path} in {paths:?}");
        }
        let text = err.to_string();
        assert_eq!(text.lines().count(), err.problems().len());
        assert!(text.lines().all(|l| l.starts_with("suites/demo.yaml: cases[0].")), "{text}");
    }

    /// YAML syntax errors and duplicate keys name the file and the position.
    #[test]
    fn reports_yaml_syntax_errors() {
        let err = Suite::parse("bad.yaml", "name: [unclosed\n").unwrap_err();
        assert!(matches!(err, SuiteError::Syntax { .. }));
        assert!(err.to_string().starts_with("bad.yaml: not a valid YAML document: "), "{err}");
        let err = Suite::parse("dup.yaml", "name: a\nname: b\n").unwrap_err();
        assert!(matches!(err, SuiteError::Syntax { .. }));
        assert!(err.to_string().contains("duplicate entry with key \"name\""), "{err}");
    }

    /// What JSON cannot hold is reported instead of silently becoming "absent": `.inf`
    /// would otherwise read as a missing weight (and default to 1).
    #[test]
    fn rejects_values_json_cannot_hold() {
        let inf = MINIMAL
            .replace("          any_of: [\"OOMKilled\"]", "          any_of: [\"OOMKilled\"]\n          weight: .inf");
        assert_problem(&inf, "cases[0].expected.facts[0].weight", "not a finite number");
        let tagged = MINIMAL.replace("question: Why is the pod crashing?", "question: !secret q");
        assert_problem(&tagged, "cases[0].question", "YAML tags");
        let key = MINIMAL.replace("version: 1", "version: 1\n7: seven");
        assert_problem(&key, "$", "mapping keys must be text");
    }

    /// File context stays unresolved until a loader fills it; every loader failure is
    /// reported at its path; the prompt refuses to render with evidence missing.
    #[test]
    fn resolves_context_files_through_a_loader() {
        let yaml = MINIMAL.replace(
            "    scope: sre\n",
            "    scope: sre\n    context:\n      - {name: pod logs, kind: logs, file: logs/pod.log}\n      - {name: events, kind: events, file: events.txt}\n",
        );
        let mut suite = Suite::parse("demo.yaml", &yaml).unwrap();
        let refs = suite.file_references();
        assert_eq!(refs.len(), 2);
        assert_eq!(refs[0].path, "cases[0].context[0].file");
        assert_eq!(refs[0].file, "logs/pod.log");
        assert_eq!(suite.cases[0].prompt(), None);

        let failing =
            |p: &str| if p == "events.txt" { Err("no such file".to_owned()) } else { Ok("OOMKilled".to_owned()) };
        let err = suite.resolve_context("demo.yaml", &failing).unwrap_err();
        assert_eq!(err.problems().len(), 1);
        assert_eq!(err.problems()[0].field, "cases[0].context[1].file");
        assert!(err
            .to_string()
            .contains("demo.yaml: cases[0].context[1].file: cannot read `events.txt`: no such file"));
        assert_eq!(suite.file_references().len(), 1, "content loaded before the failure is kept");

        suite.resolve_context("demo.yaml", &|_| Ok("Warning BackOff".to_owned())).unwrap();
        assert!(suite.file_references().is_empty());
        let prompt = suite.cases[0].prompt().unwrap();
        assert!(prompt.starts_with("Why is the pod crashing?"));
        assert!(prompt.contains("--- pod logs (logs) ---\nOOMKilled\n--- end of pod logs ---"), "{prompt}");
        assert!(prompt.contains("--- events (events) ---\nWarning BackOff\n"));
    }

    /// A suite serialises to JSON that validates back to the same suite (regexes as their
    /// source), so suites can travel through the API as JSON.
    #[test]
    fn json_round_trip() {
        for (name, yaml) in builtin_suites() {
            let suite = Suite::parse(name, yaml).unwrap();
            let json = serde_json::to_value(&suite).unwrap();
            assert_eq!(Suite::from_value(name, &json).unwrap(), suite, "{name}");
        }
        let suite = Suite::parse("demo.yaml", MINIMAL).unwrap();
        let json = serde_json::to_value(&suite).unwrap();
        assert_eq!(json["cases"][0]["expected"]["facts"][1]["regex"], "raise .{0,20}limit");
    }

    fn schema_validator() -> jsonschema::Validator {
        let text = include_str!("../suites/suite.schema.json");
        let schema: Value = serde_json::from_str(text).expect("suite.schema.json is valid JSON");
        jsonschema::validator_for(&schema).expect("suite.schema.json is a valid JSON Schema")
    }

    /// The committed JSON Schema is valid JSON and a valid schema, and every built-in
    /// suite validates against it.
    #[test]
    fn builtin_suites_match_the_json_schema() {
        let validator = schema_validator();
        for (name, yaml) in builtin_suites() {
            let doc: Value = serde_norway::from_str(yaml).unwrap();
            let errors: Vec<String> =
                validator.iter_errors(&doc).map(|e| format!("{}: {e}", e.instance_path())).collect();
            assert!(errors.is_empty(), "{name}: {errors:#?}");
        }
    }

    /// The schema is not vacuous: documents the parser rejects for structural reasons are
    /// rejected by the schema too.
    #[test]
    fn json_schema_rejects_what_the_parser_rejects() {
        let validator = schema_validator();
        let bad = [
            MINIMAL.replace("version: 1", "version: 1\nauthor: me"),
            MINIMAL.replace("scope: sre", "scope: devops"),
            MINIMAL.replace("id: first", "id: First"),
            MINIMAL.replace("          reason: No probe is configured.\n", ""),
            MINIMAL.replace("          any_of: [\"OOMKilled\"]\n", ""),
            MINIMAL.replace(
                "    scope: sre\n",
                "    scope: sre\n    context:\n      - {name: a, kind: logs, file: ../x}\n",
            ),
            MINIMAL.replace(
                "    scope: sre\n",
                "    scope: sre\n    context:\n      - {name: a, kind: logs, content: x, file: x}\n",
            ),
            MINIMAL
                .replace("          any_of: [\"OOMKilled\"]", "          any_of: [\"OOMKilled\"]\n          weight: 0"),
        ];
        for yaml in bad {
            assert!(Suite::parse("demo.yaml", &yaml).is_err());
            let doc: Value = serde_norway::from_str(&yaml).unwrap();
            assert!(!validator.is_valid(&doc), "schema accepted:\n{yaml}");
        }
        let ok: Value = serde_norway::from_str(MINIMAL).unwrap();
        assert!(validator.is_valid(&ok));
    }
}
