//! `SimArgs` → `SimConfig`: defaults, and every invalid flag or answers file rejected with
//! an error naming the flag, the file and the entry.

use clap::Parser;
use rune_sim::{FailStatus, SimArgs, SimConfig, SimError};
use std::io::Write;
use std::time::Duration;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn parse(args: &[&str]) -> Result<SimConfig, SimError> {
    let cli = Cli::try_parse_from(std::iter::once("rune-sim").chain(args.iter().copied())).unwrap();
    SimConfig::try_from(cli.sim)
}

fn error(args: &[&str]) -> String {
    format!("{:#}", parse(args).expect_err("the flags are invalid"))
}

fn file(suffix: &str, content: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(suffix).tempfile().unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f
}

/// Without flags: 127.0.0.1:11435, zero latency, 64 one-token chunks, no faults, the two
/// default models.
#[test]
fn defaults() {
    let cli = Cli::try_parse_from(["rune-sim"]).unwrap();
    assert_eq!(cli.sim.listen_addr(), "127.0.0.1:11435");
    let c = SimConfig::try_from(cli.sim).unwrap();
    assert_eq!((c.ttft, c.itl, c.output_tokens, c.tokens_per_chunk.get()), (Duration::ZERO, Duration::ZERO, 64, 1));
    assert_eq!(c.models, ["sim-llama", "sim-qwen"]);
    assert!(!c.faults.any());
    assert!(c.answers.is_empty());
}

/// Every flag reaches the config, with milliseconds converted (fractions kept).
#[test]
fn flags_reach_the_config() {
    let c = parse(&[
        "--ttft-ms",
        "50",
        "--itl-ms",
        "2.5",
        "--output-tokens",
        "10",
        "--tokens-per-chunk",
        "3",
        "--fail-rate",
        "0.1",
        "--fail-status",
        "429",
        "--stall-rate",
        "0.2",
        "--stall-ms",
        "100",
        "--malformed-rate",
        "0.3",
        "--drop-rate",
        "0.4",
        "--seed",
        "9",
        "--models",
        "a,b,c",
    ])
    .unwrap();
    assert_eq!((c.ttft, c.itl), (Duration::from_millis(50), Duration::from_micros(2500)));
    assert_eq!((c.output_tokens, c.tokens_per_chunk.get()), (10, 3));
    assert_eq!(c.faults.fail_status, FailStatus::TooManyRequests);
    let rates = [c.faults.fail_rate, c.faults.stall_rate, c.faults.malformed_rate, c.faults.drop_rate];
    assert_eq!(rates.map(|r| r.get()), [0.1, 0.2, 0.3, 0.4]);
    assert_eq!((c.faults.stall, c.faults.seed), (Duration::from_millis(100), 9));
    assert_eq!(c.models, ["a", "b", "c"]);
}

/// Rates outside 0..1 are rejected naming the flag and the value.
#[test]
fn rates_out_of_range_are_rejected() {
    for flag in ["--fail-rate", "--stall-rate", "--malformed-rate", "--drop-rate"] {
        let e = error(&[flag, "1.5"]);
        assert!(e.starts_with(flag) && e.contains("1.5") && e.contains("between 0 and 1"), "{e}");
        assert!(error(&[flag, "-0.1"]).starts_with(flag));
        assert!(error(&[flag, "NaN"]).starts_with(flag));
    }
}

/// Negative or absurd milliseconds are rejected naming the flag.
#[test]
fn negative_milliseconds_are_rejected() {
    for flag in ["--ttft-ms", "--itl-ms", "--stall-ms"] {
        let e = error(&[flag, "-5"]);
        assert!(e.starts_with(flag) && e.contains("-5"), "{e}");
        assert!(error(&[flag, "1e12"]).starts_with(flag));
    }
}

/// Zero tokens, zero tokens per chunk, an unsupported status and bad model lists are
/// rejected naming the flag.
#[test]
fn other_invalid_flags_are_rejected() {
    assert!(error(&["--output-tokens", "0"]).starts_with("--output-tokens"));
    assert!(error(&["--output-tokens", "2000000"]).starts_with("--output-tokens"));
    assert!(error(&["--tokens-per-chunk", "0"]).starts_with("--tokens-per-chunk"));
    let e = error(&["--fail-status", "404"]);
    assert!(e.starts_with("--fail-status") && e.contains("500, 429 or 503"), "{e}");
    assert!(error(&["--models", "a,,b"]).contains("entry 2"));
    assert!(error(&["--models", "a,a"]).contains("twice"));
    // Values clap itself cannot parse fail at parse time, naming the flag.
    let e = Cli::try_parse_from(["rune-sim", "--output-tokens", "-1"]).err().unwrap().to_string();
    assert!(e.contains("--output-tokens"), "{e}");
}

/// `--help` works without any valid configuration.
#[test]
fn help_works() {
    let e = Cli::try_parse_from(["rune-sim", "--help"]).err().unwrap();
    assert_eq!(e.kind(), clap::error::ErrorKind::DisplayHelp);
    assert!(e.to_string().contains("--fail-rate"));
}

/// A YAML answers file and a JSON one load in order.
#[test]
fn answers_files_load_from_yaml_and_json() {
    let yaml = file(
        ".yaml",
        "- pattern: crashloop\n  answer: \"It crashes.\"\n- pattern: 're:^What'\n  answer: |\n    Two\n    lines\n",
    );
    let c = parse(&["--answers", yaml.path().to_str().unwrap()]).unwrap();
    let got: Vec<_> = c.answers.iter().map(|a| (a.pattern(), a.answer())).collect();
    assert_eq!(got, [("crashloop", "It crashes."), ("re:^What", "Two\nlines\n")]);
    let json = file(".json", r#"[{"pattern": "x", "answer": "y"}]"#);
    assert_eq!(parse(&["--answers", json.path().to_str().unwrap()]).unwrap().answers[0].answer(), "y");
}

/// An unreadable answers file is an error naming the flag and the path.
#[test]
fn unreadable_answers_file_is_named() {
    let e = error(&["--answers", "/nonexistent/answers.yaml"]);
    assert!(e.contains("--answers /nonexistent/answers.yaml: cannot read the file"), "{e}");
}

/// A file that is not a list of entries is an error naming the file and the expected shape.
#[test]
fn malformed_answers_file_is_named() {
    for (suffix, content) in [(".yaml", "pattern: x\nanswer: y\n"), (".yaml", "- [unclosed"), (".json", "[{")] {
        let f = file(suffix, content);
        let path = f.path().to_str().unwrap();
        let e = error(&["--answers", path]);
        assert!(e.contains(path) && e.contains("expected a list of {pattern, answer} entries"), "{e}");
    }
}

/// A bad entry (missing key, unknown key, empty or invalid pattern) is an error naming the
/// file and the entry's 1-based position.
#[test]
fn malformed_answers_entry_is_named() {
    let cases = [
        ("- pattern: a\n  answer: b\n- pattern: c\n", "entry 2", "answer"),
        ("- pattern: a\n  answr: b\n", "entry 1", "answr"),
        ("- pattern: a\n  answer: b\n- pattern: ''\n  answer: b\n", "entry 2", "empty"),
        ("- pattern: 're:(['\n  answer: b\n", "entry 1", "invalid regular expression"),
        ("- 42\n", "entry 1", "invalid type"),
    ];
    for (content, entry, detail) in cases {
        let f = file(".yml", content);
        let path = f.path().to_str().unwrap();
        let e = error(&["--answers", path]);
        assert!(e.contains(path) && e.contains(entry) && e.contains(detail), "{content:?}: {e}");
    }
}

/// `bind` names the address when the port is taken.
#[tokio::test]
async fn bind_names_the_address() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let cli = Cli::try_parse_from(["rune-sim", "--port", &port]).unwrap();
    let e = cli.sim.bind().await.unwrap_err().to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}")), "{e}");
}
