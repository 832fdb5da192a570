//! The Vast.ai REST calls RUNE makes, and the few fields it reads from each answer.
//!
//! Transport only: bearer auth, a bound on every request, bounded retries (connect
//! failures always; timeouts, 429 and 502-504 for every call but the renting PUT), optional
//! cancellation, bounded body reads and the mapping of failures to [`ProviderError`].
//! Which calls to make and in what order is `vastai.rs`'s job. The API key is sent in
//! the `Authorization` header and nowhere else: never in a URL, a log line or an error.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::vastai::{ApiKey, VastAiConfig};
use super::ProviderError;

/// Largest response body read (an instance list with a few hundred entries is far less).
const MAX_BODY: usize = 8 << 20;
/// Longest server message put into an error.
const MAX_EXCERPT: usize = 300;
/// Cap on the pause between retries.
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// One rentable offer, as far as RUNE reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Offer {
    pub(crate) id: u64,
    /// Total price, $/h, including the storage asked for in `allocated_storage`.
    pub(crate) dph_total: f64,
    pub(crate) gpu_name: String,
    /// Per-GPU RAM, MB (when reported).
    pub(crate) gpu_ram_mb: Option<f64>,
    /// Host reliability, 0..1 (when reported).
    pub(crate) reliability: Option<f64>,
}

/// One of the account's instances, as far as RUNE reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Instance {
    pub(crate) id: u64,
    pub(crate) label: Option<String>,
    /// `actual_status`: `null` while provisioning, then `loading`, `running`, `exited` …
    pub(crate) actual_status: Option<String>,
    pub(crate) status_msg: Option<String>,
    pub(crate) public_ip: Option<String>,
    /// Docker-style port map: `{"11434/tcp": [{"HostIp": …, "HostPort": "41234"}]}`.
    pub(crate) ports: Value,
    pub(crate) dph_total: Option<f64>,
    pub(crate) gpu_name: Option<String>,
}

impl Instance {
    /// The host port mapped to `container_port`, when the mapping is published.
    pub(crate) fn host_port(&self, container_port: u16) -> Option<u16> {
        let mappings = self.ports.get(format!("{container_port}/tcp"))?.as_array()?;
        mappings.iter().find_map(|m| {
            let p = m.get("HostPort")?;
            p.as_u64().or_else(|| p.as_str().and_then(|s| s.trim().parse().ok())).and_then(|p| u16::try_from(p).ok())
        })
    }

    /// `http://<public ip>:<host port of container_port>`, when both are known.
    pub(crate) fn service_url(&self, container_port: u16) -> Option<String> {
        let ip = self.public_ip.as_deref().map(str::trim).filter(|ip| !ip.is_empty())?;
        let port = self.host_port(container_port)?;
        Some(if ip.contains(':') { format!("http://[{ip}]:{port}") } else { format!("http://{ip}:{port}") })
    }
}

/// One of the account's volumes and the instances it is attached to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Volume {
    pub(crate) id: u64,
    pub(crate) instance_ids: Vec<u64>,
}

/// An answer that was not an auth failure; callers decide what a 404 means.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    endpoint: String,
    text: String,
}

impl Reply {
    /// The body as JSON, or an error for a non-2xx status or a body that is not JSON.
    fn json(self) -> Result<Value, ProviderError> {
        if !self.status.is_success() {
            return Err(ProviderError::Api {
                endpoint: self.endpoint,
                status: self.status.as_u16(),
                detail: server_message(&self.text),
            });
        }
        if self.text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.text).map_err(|e| ProviderError::BadResponse {
            endpoint: self.endpoint,
            detail: format!("body is not JSON ({e}): {}", excerpt(&self.text)),
        })
    }
}

/// An HTTP client bound to one Vast.ai API base URL and key.
#[derive(Debug)]
pub(crate) struct VastClient {
    http: reqwest::Client,
    base: String,
    key: ApiKey,
    key_env: String,
    request_timeout: Duration,
    attempts: u32,
    retry_backoff: Duration,
}

impl VastClient {
    pub(crate) fn new(config: &VastAiConfig, base: String, key: ApiKey) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .build()
            .map_err(|e| ProviderError::Client(e.to_string()))?;
        Ok(VastClient {
            http,
            base,
            key,
            key_env: config.api_key_env.clone(),
            request_timeout: config.request_timeout,
            attempts: config.api_attempts.max(1),
            retry_backoff: config.retry_backoff,
        })
    }

    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// One call with retries. `cancel`, when given, abandons the call promptly with
    /// [`ProviderError::Cancelled`] naming `phase`; teardown passes `None` so nothing
    /// stops it but its own bounds.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        cancel: Option<&CancellationToken>,
        phase: &'static str,
    ) -> Result<Reply, ProviderError> {
        let endpoint = self.endpoint(path);
        // Only the renting PUT changes something that a repeat would change again (a
        // second instance); searches are POSTs but read-only.
        let idempotent = method != Method::PUT;
        let mut backoff = self.retry_backoff;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut rb = self
                .http
                .request(method.clone(), &endpoint)
                .bearer_auth(self.key.expose())
                .timeout(self.request_timeout);
            if let Some(b) = body {
                rb = rb.json(b);
            }
            let exchange = async {
                let resp = rb.send().await?;
                let status = resp.status();
                let text = read_bounded(resp).await?;
                Ok::<_, reqwest::Error>((status, text))
            };
            let outcome = match cancel {
                Some(c) => tokio::select! {
                    biased;
                    _ = c.cancelled() => return Err(ProviderError::Cancelled { phase }),
                    r = exchange => r,
                },
                None => exchange.await,
            };
            let retry_because = match outcome {
                Ok((status, text)) => {
                    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                        return Err(ProviderError::Auth {
                            endpoint,
                            status: status.as_u16(),
                            detail: server_message(&text),
                            env_var: self.key_env.clone(),
                        });
                    }
                    let transient = status == StatusCode::TOO_MANY_REQUESTS || matches!(status.as_u16(), 502..=504);
                    if !(idempotent && transient) || attempt >= self.attempts {
                        return Ok(Reply { status, endpoint, text });
                    }
                    format!("HTTP {status}")
                }
                Err(e) => {
                    let retryable = e.is_connect() || idempotent;
                    if !retryable || attempt >= self.attempts {
                        let mut detail = root_cause(&e);
                        if !idempotent && !e.is_connect() {
                            detail.push_str("; the request may still have been applied");
                        }
                        return Err(ProviderError::Unreachable { endpoint, attempts: attempt, detail });
                    }
                    root_cause(&e)
                }
            };
            tracing::debug!(endpoint = %endpoint, attempt, reason = %retry_because, "Vast.ai call failed; retrying");
            let pause = tokio::time::sleep(backoff);
            match cancel {
                Some(c) => tokio::select! {
                    biased;
                    _ = c.cancelled() => return Err(ProviderError::Cancelled { phase }),
                    _ = pause => {}
                },
                None => pause.await,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// `POST /bundles/` with a JSON query; the offers that carry an id and a price.
    pub(crate) async fn search_offers(
        &self,
        query: &Value,
        cancel: &CancellationToken,
    ) -> Result<Vec<Offer>, ProviderError> {
        let reply = self.call(Method::POST, "/bundles/", Some(query), Some(cancel), "searching offers").await?;
        let endpoint = reply.endpoint.clone();
        let v = reply.json()?;
        let offers = v.get("offers").and_then(Value::as_array).ok_or_else(|| ProviderError::BadResponse {
            endpoint,
            detail: format!("expected {{\"offers\": [...]}}, got {}", excerpt(&v.to_string())),
        })?;
        Ok(offers.iter().filter_map(parse_offer).collect())
    }

    /// `GET /instances/`: every instance of the account.
    pub(crate) async fn list_instances(
        &self,
        cancel: Option<&CancellationToken>,
        phase: &'static str,
    ) -> Result<Vec<Instance>, ProviderError> {
        let reply = self.call(Method::GET, "/instances/", None, cancel, phase).await?;
        let endpoint = reply.endpoint.clone();
        let v = reply.json()?;
        let list = v.get("instances").and_then(Value::as_array).ok_or_else(|| ProviderError::BadResponse {
            endpoint,
            detail: format!("expected {{\"instances\": [...]}}, got {}", excerpt(&v.to_string())),
        })?;
        Ok(list.iter().filter_map(parse_instance).collect())
    }

    /// `GET /instances/{id}/`: `None` when Vast.ai no longer knows the instance.
    pub(crate) async fn show_instance(
        &self,
        id: u64,
        cancel: &CancellationToken,
    ) -> Result<Option<Instance>, ProviderError> {
        let reply = self
            .call(Method::GET, &format!("/instances/{id}/"), None, Some(cancel), "waiting for the instance")
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v = reply.json()?;
        // Documented shape: {"instances": {…}}; tolerate a one-element list or a bare object.
        let inst = match v.get("instances") {
            Some(Value::Array(a)) => a.first(),
            Some(Value::Null) => None,
            Some(obj) => Some(obj),
            None if v.get("id").is_some() => Some(&v),
            None => None,
        };
        Ok(inst.and_then(parse_instance).filter(|i| i.id == id))
    }

    /// `PUT /asks/{offer}/`: rents the offer; returns the new instance (contract) id.
    ///
    /// Not cancellable once sent: abandoning it half-way could leave an instance nobody
    /// knows about. It is bounded by the request timeout instead.
    pub(crate) async fn create_instance(&self, offer_id: u64, body: &Value) -> Result<u64, ProviderError> {
        let reply = self.call(Method::PUT, &format!("/asks/{offer_id}/"), Some(body), None, "renting").await?;
        let endpoint = reply.endpoint.clone();
        let v = reply.json()?;
        if v.get("success").and_then(Value::as_bool) == Some(false) {
            return Err(ProviderError::Api { endpoint, status: 200, detail: server_message(&v.to_string()) });
        }
        v.get("new_contract").and_then(as_id).ok_or_else(|| ProviderError::BadResponse {
            endpoint,
            detail: format!("expected {{\"new_contract\": <id>}}, got {}", excerpt(&v.to_string())),
        })
    }

    /// `DELETE /instances/{id}/`: `Ok(true)` when accepted, `Ok(false)` when Vast.ai does
    /// not know the instance (already destroyed).
    pub(crate) async fn destroy_instance(&self, id: u64) -> Result<bool, ProviderError> {
        let reply = self.call(Method::DELETE, &format!("/instances/{id}/"), None, None, "destroying").await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        let endpoint = reply.endpoint.clone();
        let v = reply.json()?;
        if v.get("success").and_then(Value::as_bool) == Some(false) {
            return Err(ProviderError::Api { endpoint, status: 200, detail: server_message(&v.to_string()) });
        }
        Ok(true)
    }

    /// `GET /volumes/`: the account's volumes with the instances they are attached to.
    pub(crate) async fn list_volumes(&self) -> Result<Vec<Volume>, ProviderError> {
        let reply = self.call(Method::GET, "/volumes/", None, None, "listing volumes").await?;
        let endpoint = reply.endpoint.clone();
        let v = reply.json()?;
        let list = v.get("volumes").and_then(Value::as_array).ok_or_else(|| ProviderError::BadResponse {
            endpoint,
            detail: format!("expected {{\"volumes\": [...]}}, got {}", excerpt(&v.to_string())),
        })?;
        Ok(list.iter().filter_map(parse_volume).collect())
    }

    /// `DELETE /volumes/` with `{"id": …}` (the documented form); a 404 means already gone.
    pub(crate) async fn delete_volume(&self, id: u64) -> Result<(), ProviderError> {
        let body = json!({ "id": id });
        let reply = self.call(Method::DELETE, "/volumes/", Some(&body), None, "deleting a volume").await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        let endpoint = reply.endpoint.clone();
        let v = reply.json()?;
        if v.get("success").and_then(Value::as_bool) == Some(false) {
            return Err(ProviderError::Api { endpoint, status: 200, detail: server_message(&v.to_string()) });
        }
        Ok(())
    }
}

/// Reads at most [`MAX_BODY`] bytes of the body (the rest is dropped with the connection).
async fn read_bounded(mut resp: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = MAX_BODY.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= MAX_BODY {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

/// An id Vast.ai sends as a number or as a string of digits.
fn as_id(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn as_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn parse_offer(v: &Value) -> Option<Offer> {
    Some(Offer {
        id: v.get("id").and_then(as_id)?,
        dph_total: v.get("dph_total").and_then(Value::as_f64).filter(|p| p.is_finite())?,
        gpu_name: as_text(v, "gpu_name").unwrap_or_else(|| "unknown GPU".to_owned()),
        gpu_ram_mb: v.get("gpu_ram").and_then(Value::as_f64),
        reliability: v.get("reliability").or_else(|| v.get("reliability2")).and_then(Value::as_f64),
    })
}

fn parse_instance(v: &Value) -> Option<Instance> {
    Some(Instance {
        id: v.get("id").and_then(as_id)?,
        label: as_text(v, "label"),
        actual_status: as_text(v, "actual_status"),
        status_msg: as_text(v, "status_msg").filter(|m| !m.trim().is_empty()),
        public_ip: as_text(v, "public_ipaddr"),
        ports: v.get("ports").cloned().unwrap_or(Value::Null),
        dph_total: v.get("dph_total").and_then(Value::as_f64),
        gpu_name: as_text(v, "gpu_name"),
    })
}

fn parse_volume(v: &Value) -> Option<Volume> {
    let mut instance_ids: Vec<u64> = match v.get("instances") {
        Some(Value::Array(a)) => a.iter().filter_map(|i| as_id(i).or_else(|| i.get("id").and_then(as_id))).collect(),
        _ => Vec::new(),
    };
    if let Some(id) = v.get("instance_id").and_then(as_id) {
        instance_ids.push(id);
    }
    Some(Volume { id: v.get("id").and_then(as_id)?, instance_ids })
}

/// The server's own message (`msg`, `error` or `detail` of a JSON body), else the body.
fn server_message(text: &str) -> String {
    let from_json = serde_json::from_str::<Value>(text).ok().and_then(|v| {
        ["msg", "error", "detail", "message"].iter().find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
    });
    let msg = from_json.unwrap_or_else(|| text.to_owned());
    if msg.trim().is_empty() {
        "(empty body)".to_owned()
    } else {
        excerpt(&msg)
    }
}

/// Truncates on a character boundary to at most [`MAX_EXCERPT`] bytes.
pub(crate) fn excerpt(s: &str) -> String {
    let s = s.trim();
    if s.len() <= MAX_EXCERPT {
        return s.to_owned();
    }
    let mut end = MAX_EXCERPT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &s[..end], s.len())
}

/// The innermost cause of a transport error (reqwest's own text is generic).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    if cur.to_string() == e.to_string() {
        e.to_string()
    } else {
        format!("{e}: {cur}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Ollama URL comes from the public IP and the host port published for 11434;
    /// string and numeric ports both parse, IPv6 gets brackets, and a missing mapping
    /// yields nothing.
    #[test]
    fn service_url_from_port_map() {
        let inst = |ip: &str, ports: Value| parse_instance(&json!({"id": 1, "public_ipaddr": ip, "ports": ports}));
        let a = inst("1.2.3.4\n", json!({"11434/tcp": [{"HostIp": "0.0.0.0", "HostPort": "41234"}]})).unwrap();
        assert_eq!(a.service_url(11434).as_deref(), Some("http://1.2.3.4:41234"));
        let b = inst("2001:db8::1", json!({"11434/tcp": [{"HostPort": 40000}]})).unwrap();
        assert_eq!(b.service_url(11434).as_deref(), Some("http://[2001:db8::1]:40000"));
        let c = inst("1.2.3.4", json!({"22/tcp": [{"HostPort": "40022"}]})).unwrap();
        assert_eq!(c.service_url(11434), None);
        assert_eq!(inst("", json!({"11434/tcp": [{"HostPort": "1"}]})).unwrap().service_url(11434), None);
    }

    /// Offers without an id or price are skipped; volumes name their instances either
    /// as ids or as objects.
    #[test]
    fn lenient_parsing() {
        assert!(parse_offer(&json!({"id": 3})).is_none());
        let o = parse_offer(&json!({"id": "3", "dph_total": 0.25, "reliability2": 0.995})).unwrap();
        assert_eq!((o.id, o.reliability, o.gpu_name.as_str()), (3, Some(0.995), "unknown GPU"));
        let v = parse_volume(&json!({"id": 9, "instances": [5, {"id": 6}]})).unwrap();
        assert_eq!(v.instance_ids, vec![5, 6]);
    }

    /// Error messages prefer the server's `msg`/`error` field and stay short.
    #[test]
    fn server_messages() {
        assert_eq!(server_message(r#"{"success": false, "msg": "no such offer"}"#), "no such offer");
        assert_eq!(server_message(""), "(empty body)");
        assert!(server_message(&"x".repeat(1000)).ends_with("(1000 bytes)"));
    }
}
