//! Sessions and CSRF: the browser holds only a random session id in an HttpOnly,
//! SameSite=Strict cookie; the API token stays in this process's memory, inside the
//! session's [`RuneClient`], and never reaches the page or its scripts.

use rune_client::{ClientConfig, RuneClient};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Name of the session cookie.
pub const COOKIE: &str = "rune_session";

/// Sessions idle longer than this are forgotten (the user logs in again).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);

/// Most sessions held at once; beyond it the least recently used is dropped, so a
/// client that discards cookies cannot grow memory without bound.
pub const MAX_SESSIONS: usize = 10_000;

/// One browser's session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Random id, the cookie value (256 bits).
    pub id: String,
    /// Per-session CSRF token, required on every state-changing request.
    pub csrf: String,
    /// Tenant the user acts as; `None` before login when the API needs credentials.
    pub tenant: Option<String>,
    /// The API client carrying the user's token (its `Debug` redacts the token).
    pub client: Option<RuneClient>,
    /// Last request seen, for the idle timeout.
    last_seen: Instant,
}

impl Session {
    /// Whether this session may use the API (logged in, or the API needs no token).
    pub fn is_authenticated(&self) -> bool {
        self.client.is_some()
    }
}

/// Every live session, keyed by id.
///
/// A `std::sync::Mutex` is right here: the lock is never held across an `.await` and
/// each critical section is a map lookup or insert.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// 256 random bits as hex (two v4 UUIDs: 244 bits from the OS generator).
pub fn random_token() -> String {
    format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

impl Sessions {
    /// The live session `id`, touching its idle timer.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match map.get_mut(id) {
            Some(s) if now.duration_since(s.last_seen) < IDLE_TIMEOUT => {
                s.last_seen = now;
                Some(s.clone())
            }
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    /// Creates a session (with a fresh id and CSRF token) and returns it.
    pub fn create(&self, tenant: Option<String>, client: Option<RuneClient>) -> Session {
        let session = Session { id: random_token(), csrf: random_token(), tenant, client, last_seen: Instant::now() };
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_SESSIONS {
            let now = Instant::now();
            map.retain(|_, s| now.duration_since(s.last_seen) < IDLE_TIMEOUT);
            if map.len() >= MAX_SESSIONS {
                if let Some(oldest) = map.values().min_by_key(|s| s.last_seen).map(|s| s.id.clone()) {
                    map.remove(&oldest);
                }
            }
        }
        map.insert(session.id.clone(), session.clone());
        session
    }

    /// Gives session `id` an identity (an open API needs no login); `None` if it expired.
    pub fn authenticate(&self, id: &str, tenant: String, client: RuneClient) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let s = map.get_mut(id)?;
        s.tenant = Some(tenant);
        s.client = Some(client);
        Some(s.clone())
    }

    /// Forgets `id` (logout, or a login replacing a pre-login session).
    pub fn remove(&self, id: &str) {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// Number of live sessions (for tests and the System page).
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A client for `tenant` with `token` against `base_url`.
pub fn client_for(
    base_url: &str,
    tenant: &str,
    token: Option<String>,
    timeout: Duration,
) -> Result<RuneClient, rune_client::ClientError> {
    RuneClient::new(ClientConfig {
        base_url: base_url.to_owned(),
        token,
        tenant: tenant.to_owned(),
        timeout,
        insecure: false,
    })
}

/// Constant-time comparison of a presented CSRF token with the session's.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|part| part.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// The `Set-Cookie` value for session `id` (`secure` adds `Secure`, for HTTPS).
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}")
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tokens are long, hex and never repeat.
    #[test]
    fn tokens_are_random() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    /// CSRF comparison: equal passes; different, shorter, longer and empty fail.
    #[test]
    fn csrf_comparison() {
        let t = random_token();
        assert!(csrf_matches(&t, &t.clone()));
        assert!(!csrf_matches(&t, &random_token()));
        assert!(!csrf_matches(&t, &t[..63]));
        assert!(!csrf_matches(&t, &format!("{t}0")));
        assert!(!csrf_matches(&t, ""));
    }

    /// Cookie parsing finds the named cookie among others and ignores malformed parts.
    #[test]
    fn cookie_parsing() {
        assert_eq!(cookie_value("a=1; rune_session=abc; b=2", COOKIE), Some("abc"));
        assert_eq!(cookie_value("rune_session_x=1; junk", COOKIE), None);
        assert_eq!(cookie_value("", COOKIE), None);
        assert!(set_cookie("x", false).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("x", true).ends_with("; Secure"));
        assert!(clear_cookie(false).contains("Max-Age=0"));
    }

    /// Sessions are found by id, removed on logout, and bounded in number.
    #[test]
    fn session_lifecycle() {
        let sessions = Sessions::default();
        let s = sessions.create(Some("alpha".into()), None);
        assert_eq!(sessions.get(&s.id).map(|x| x.csrf), Some(s.csrf.clone()));
        assert!(sessions.get("nope").is_none());
        sessions.remove(&s.id);
        assert!(sessions.get(&s.id).is_none());
        for _ in 0..MAX_SESSIONS + 5 {
            sessions.create(None, None);
        }
        assert!(sessions.len() <= MAX_SESSIONS);
    }
}
