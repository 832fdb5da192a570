//! Bearer-token authentication per tenant.
//!
//! `RUNE_API_TOKENS=tenantA:<token>,tenantB:<token>` (tokens of at least 32 characters).
//! A request carries `Authorization: Bearer <token>` and `X-Tenant-ID: <tenant>`; the
//! token is compared in constant time. `RUNE_API_AUTH_DISABLED=1` makes every request
//! the `default` tenant (allowed on loopback only, see [`crate::config`]). Tokens are
//! never logged or echoed.

use rune_core::TenantId;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Minimum token length.
pub const MIN_TOKEN_LEN: usize = 32;

/// Who may call the API.
#[derive(Clone)]
pub struct AuthConfig {
    /// `None`: authentication disabled.
    tokens: Option<HashMap<String, Vec<u8>>>,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tokens {
            None => f.write_str("AuthConfig(disabled)"),
            Some(t) => write!(f, "AuthConfig({} tenants, tokens redacted)", t.len()),
        }
    }
}

/// Unusable authentication settings.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthError {
    /// Neither tokens nor the explicit opt-out.
    #[error("no API tokens: set RUNE_API_TOKENS=tenant:<token of 32+ characters>[,…], or RUNE_API_AUTH_DISABLED=1 for local use")]
    NoTokens,
    /// An entry is not `tenant:token`.
    #[error("RUNE_API_TOKENS entry {index} is not `tenant:token`")]
    Malformed {
        /// 1-based position.
        index: usize,
    },
    /// A tenant name is invalid.
    #[error("RUNE_API_TOKENS entry {index}: {reason}")]
    BadTenant {
        /// 1-based position.
        index: usize,
        /// Why.
        reason: String,
    },
    /// A token is too short.
    #[error("RUNE_API_TOKENS: the token of tenant `{tenant}` has {len} characters; tokens need at least {MIN_TOKEN_LEN} (e.g. `openssl rand -hex 32`)")]
    ShortToken {
        /// Tenant.
        tenant: String,
        /// Its length.
        len: usize,
    },
    /// A tenant listed twice.
    #[error("RUNE_API_TOKENS lists tenant `{0}` twice")]
    Duplicate(String),
}

impl AuthConfig {
    /// Authentication off: every request is tenant `default`.
    pub fn disabled() -> Self {
        Self { tokens: None }
    }

    /// Parses `tenant:token,…`.
    pub fn from_tokens(spec: &str) -> Result<Self, AuthError> {
        let mut tokens = HashMap::new();
        for (i, entry) in spec.split(',').map(str::trim).filter(|e| !e.is_empty()).enumerate() {
            let index = i + 1;
            let (tenant, token) = entry.split_once(':').ok_or(AuthError::Malformed { index })?;
            let tenant: TenantId = tenant
                .trim()
                .parse()
                .map_err(|e: rune_core::job::InvalidId| AuthError::BadTenant { index, reason: e.to_string() })?;
            let token = token.trim();
            if token.chars().count() < MIN_TOKEN_LEN {
                return Err(AuthError::ShortToken { tenant: tenant.to_string(), len: token.chars().count() });
            }
            if tokens.insert(tenant.to_string(), token.as_bytes().to_vec()).is_some() {
                return Err(AuthError::Duplicate(tenant.to_string()));
            }
        }
        if tokens.is_empty() {
            return Err(AuthError::NoTokens);
        }
        Ok(Self { tokens: Some(tokens) })
    }

    /// From `RUNE_API_TOKENS` / `RUNE_API_AUTH_DISABLED`.
    pub fn from_env(lookup: &impl Fn(&str) -> Option<String>) -> Result<Self, AuthError> {
        let disabled = lookup("RUNE_API_AUTH_DISABLED")
            .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"));
        match lookup("RUNE_API_TOKENS").filter(|s| !s.trim().is_empty()) {
            Some(spec) if !disabled => Self::from_tokens(&spec),
            _ if disabled => Ok(Self::disabled()),
            _ => Err(AuthError::NoTokens),
        }
    }

    /// Whether tokens are required.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some()
    }

    /// The tenant a request acts as, or `None` when its credentials are wrong.
    /// Always compares against a token (a dummy for unknown tenants) so timing does not
    /// reveal which tenants exist.
    pub fn authenticate(&self, tenant: Option<&str>, bearer: Option<&str>) -> Option<TenantId> {
        let Some(tokens) = &self.tokens else { return Some(TenantId::default_tenant()) };
        let tenant = tenant?.trim();
        let presented = bearer?.as_bytes();
        let dummy = [0u8; MIN_TOKEN_LEN];
        let expected = tokens.get(tenant).map(Vec::as_slice).unwrap_or(&dummy);
        let matches: bool = expected.ct_eq(presented).into();
        (matches && tokens.contains_key(tenant)).then(|| tenant.parse().ok()).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef0123456789abcdef";

    /// Valid specs parse; every malformed one names the problem.
    #[test]
    fn parse_tokens() {
        let a = AuthConfig::from_tokens(&format!("team-a:{T}, team-b:{T}x")).unwrap();
        assert!(a.enabled());
        assert_eq!(AuthConfig::from_tokens("nocolon").unwrap_err(), AuthError::Malformed { index: 1 });
        assert!(matches!(AuthConfig::from_tokens("a:short").unwrap_err(), AuthError::ShortToken { len: 5, .. }));
        assert!(matches!(
            AuthConfig::from_tokens(&format!("bad tenant:{T}")).unwrap_err(),
            AuthError::BadTenant { .. }
        ));
        assert_eq!(AuthConfig::from_tokens(&format!("a:{T},a:{T}")).unwrap_err(), AuthError::Duplicate("a".into()));
        assert_eq!(AuthConfig::from_tokens(" , ").unwrap_err(), AuthError::NoTokens);
        assert!(!format!("{a:?}").contains(T), "tokens never in Debug output");
    }

    /// Right tenant and token pass; anything else fails.
    #[test]
    fn authenticate() {
        let a = AuthConfig::from_tokens(&format!("team-a:{T}")).unwrap();
        assert_eq!(a.authenticate(Some("team-a"), Some(T)).unwrap().as_str(), "team-a");
        assert!(a.authenticate(Some("team-a"), Some("0123456789abcdef0123456789abcdeX")).is_none());
        assert!(a.authenticate(Some("team-b"), Some(T)).is_none());
        assert!(a.authenticate(None, Some(T)).is_none());
        assert!(a.authenticate(Some("team-a"), None).is_none());
        assert_eq!(AuthConfig::disabled().authenticate(None, None).unwrap().as_str(), "default");
    }
}
