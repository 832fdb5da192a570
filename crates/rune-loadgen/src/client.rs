//! The HTTP side: one pooled hyper client (HTTP/1.1, `TCP_NODELAY`, keep-alive, idle
//! connections kept for every worker) and [`exchange`], which sends one request and
//! timestamps every body frame the moment hyper hands it over. Output events are found by
//! [`crate::sse::StreamParser`] on the frame's bytes; the only per-request allocations are
//! hyper's own and the usage decode.

use crate::metrics::Outcome;
use crate::sse::{Event, Framing, StreamParser, Usage};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;
use tokio::time::Instant;

/// The pooled client every worker shares (the pool is internally synchronised; a
/// connection is owned by one request at a time).
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// How long an idle pooled connection is kept: longer than any pause between steps.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A client whose pool keeps up to `max_idle` idle connections (one per worker), with
/// Nagle's algorithm off so small requests leave at once.
pub fn http_client(max_idle: usize) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.enforce_http(true);
    connector.set_connect_timeout(Some(Duration::from_secs(10)));
    Client::builder(TokioExecutor::new()).pool_max_idle_per_host(max_idle).pool_idle_timeout(POOL_IDLE).build(connector)
}

/// What one request produced.
#[derive(Debug, Clone, Copy)]
pub struct Exchange {
    /// First output event.
    pub first: Option<Instant>,
    /// Last output event.
    pub last: Option<Instant>,
    /// End of the stream, or the failure.
    pub end: Instant,
    /// Output events.
    pub chunks: u32,
    /// Counts the server reported.
    pub usage: Option<Usage>,
    /// How it ended.
    pub outcome: Outcome,
}

/// Sends `body` to `uri` and reads the stream until it ends, fails or `deadline` passes.
/// Inter-chunk gaps are appended to `gaps` (cleared first; reused across requests).
pub async fn exchange(
    client: &HttpClient,
    uri: &http::Uri,
    body: Bytes,
    parser: &mut StreamParser,
    gaps: &mut Vec<u64>,
    deadline: Instant,
) -> Exchange {
    gaps.clear();
    parser.reset();
    let mut ex =
        Exchange { first: None, last: None, end: Instant::now(), chunks: 0, usage: None, outcome: Outcome::Ok };
    let request = match http::Request::post(uri.clone())
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "text/event-stream, application/x-ndjson")
        .body(Full::new(body))
    {
        Ok(r) => r,
        Err(_) => {
            ex.outcome = Outcome::Connect;
            return ex;
        }
    };
    let response = match tokio::time::timeout_at(deadline, client.request(request)).await {
        Err(_) => {
            ex.end = Instant::now();
            ex.outcome = Outcome::Timeout;
            return ex;
        }
        Ok(Err(_)) => {
            ex.end = Instant::now();
            ex.outcome = Outcome::Connect;
            return ex;
        }
        Ok(Ok(r)) => r,
    };
    let status = response.status();
    if !status.is_success() {
        ex.end = Instant::now();
        ex.outcome = Outcome::Http(status.as_u16());
        return ex;
    }
    let mut body = response.into_body();
    let mut done = false;
    let mut broken = false;
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => {
                ex.end = Instant::now();
                ex.outcome = Outcome::Timeout;
                return ex;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                ex.end = Instant::now();
                ex.outcome = if broken { Outcome::Malformed } else { Outcome::Disconnect };
                return ex;
            }
            Ok(Some(Ok(frame))) => frame,
        };
        // The arrival time of every event in this frame.
        let now = Instant::now();
        let Some(data) = frame.data_ref() else { continue };
        parser.feed(data, |event| match event {
            Event::Content => {
                if let Some(prev) = ex.last {
                    gaps.push(u64::try_from(now.duration_since(prev).as_nanos()).unwrap_or(u64::MAX));
                }
                ex.first.get_or_insert(now);
                ex.last = Some(now);
                ex.chunks += 1;
            }
            Event::Usage(u) => ex.usage = Some(u),
            Event::Done => done = true,
            Event::Malformed | Event::ServerError => broken = true,
        });
    }
    ex.end = Instant::now();
    ex.outcome = if broken {
        Outcome::Malformed
    } else if !done || parser.has_partial() {
        Outcome::Disconnect
    } else if ex.chunks == 0 {
        Outcome::Empty
    } else {
        Outcome::Ok
    };
    ex
}

/// The framing a backend type streams in.
pub fn framing(api: crate::workload::Api) -> Framing {
    match api {
        crate::workload::Api::OllamaChat => Framing::Ndjson,
        _ => Framing::Sse,
    }
}
