//! OTLP tracing: with `OTEL_EXPORTER_OTLP_ENDPOINT` set, every `rune` command (the API
//! server here; the operator shares the same set-up) exports its spans over OTLP/HTTP
//! protobuf to the collector, and flushes them at exit.

use crate::util::Home;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the collector saw: `(path, content type, body length)` of each POST.
type Seen = Arc<Mutex<Vec<(String, String, usize)>>>;

/// A minimal OTLP/HTTP collector on loopback; returns its endpoint.
fn collector() -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or_default().to_owned();
            let (mut length, mut content_type) = (0usize, String::new());
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                    break;
                }
                let lower = header.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                if let Some(v) = lower.strip_prefix("content-type:") {
                    content_type = v.trim().to_owned();
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            sink.lock().expect("lock").push((path, content_type, body.len()));
            let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (format!("http://{addr}"), seen)
}

#[test]
fn spans_are_exported_to_the_otlp_collector() {
    let (endpoint, seen) = collector();
    let home = Home::new();
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let mut server = home
        .cmd(&["serve", "--port", &port.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env_remove("OTEL_SERVICE_NAME")
        .env_remove("RUNE_API_TOKENS")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rune serve");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut answered = false;
    while Instant::now() < deadline && !answered {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            let mut reply = String::new();
            let _ = s.read_to_string(&mut reply);
            answered = reply.starts_with("HTTP/1.1 200");
        } else {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert!(answered, "rune serve never answered");
    let _ = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status();
    let status = server.wait().expect("wait");
    assert!(status.success(), "rune serve exited with {status}");
    let got = seen.lock().expect("lock").clone();
    assert!(
        got.iter().any(|(path, ct, len)| path == "/v1/traces" && ct.contains("application/x-protobuf") && *len > 0),
        "no OTLP trace export reached the collector: {got:?}"
    );
}
