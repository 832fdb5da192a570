//! Server configuration: what `rune serve` reads from flags and environment, validated
//! once at start-up so a bad value fails fast with the variable's name.

use crate::auth::{AuthConfig, AuthError};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Largest request body accepted (the original's limit).
pub const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

/// Everything the server needs besides the store.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Authentication.
    pub auth: AuthConfig,
    /// Jobs run at once by this process (`RUNE_MAX_CONCURRENT_JOBS`).
    pub max_concurrent_jobs: usize,
    /// A job running longer is failed (`RUNE_JOB_TIMEOUT_SECONDS`).
    pub job_timeout: Duration,
    /// Lease length; heartbeats renew it at a third of this.
    pub lease: Duration,
    /// Claims before a repeatedly orphaned job is failed (`RUNE_JOB_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// Sustained requests per second per tenant; 0 disables (`RUNE_RATE_LIMIT_RPS`).
    pub rate_limit_rps: f64,
    /// Burst per tenant (`RUNE_RATE_LIMIT_BURST`).
    pub rate_limit_burst: f64,
    /// Failed authentications per client address per minute before it is throttled.
    pub auth_failures_per_minute: u32,
    /// Time allowed to drain running jobs on shutdown before they are requeued.
    pub shutdown_grace: Duration,
    /// Run the embedded scheduler.
    pub scheduler: bool,
    /// How often the scheduler looks at schedules.
    pub scheduler_tick: Duration,
    /// Identity of this process in job leases.
    pub worker_id: String,
    /// Timeout for a whole request (not SSE streams).
    pub request_timeout: Duration,
    /// Tenants allowed to engage or release the E-Stop (`RUNE_ESTOP_TENANTS`; all when
    /// unset).
    pub estop_tenants: Option<Vec<String>>,
}

/// A configuration value that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable or flag has a bad value.
    #[error("{name}=`{value}`: {reason}")]
    Invalid {
        /// Variable or flag.
        name: String,
        /// Its value (never a secret).
        value: String,
        /// What is expected.
        reason: String,
    },
    /// Authentication settings are unusable.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// Refusing to serve without authentication on a non-loopback address.
    #[error(
        "refusing to listen on {addr} without authentication: set RUNE_API_TOKENS=tenant:<token of 32+ characters>, \
         or pass --allow-unauthenticated if something in front of RUNE authenticates"
    )]
    UnauthenticatedExposure {
        /// The address.
        addr: SocketAddr,
    },
}

impl ServerConfig {
    /// Reads the configuration from environment variables (`lookup` is `std::env::var`
    /// in production, a map in tests) plus the listen address chosen by flags.
    pub fn from_env(
        listen: SocketAddr,
        allow_unauthenticated: bool,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        // No tokens configured: fine on loopback (a laptop), refused elsewhere unless forced.
        let no_tokens = lookup("RUNE_API_TOKENS").is_none_or(|t| t.trim().is_empty());
        let auth = match AuthConfig::from_env(&lookup) {
            Err(AuthError::NoTokens) if no_tokens && (is_loopback(listen.ip()) || allow_unauthenticated) => {
                AuthConfig::disabled()
            }
            other => other?,
        };
        if !auth.enabled() && !is_loopback(listen.ip()) && !allow_unauthenticated {
            return Err(ConfigError::UnauthenticatedExposure { addr: listen });
        }
        let num = |name: &str, default: f64, min: f64, max: f64| -> Result<f64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<f64>() {
                    Ok(x) if x.is_finite() && (min..=max).contains(&x) => Ok(x),
                    _ => Err(ConfigError::Invalid {
                        name: name.into(),
                        value: v,
                        reason: format!("expected a number from {min} to {max}"),
                    }),
                },
            }
        };
        let host = std::process::id();
        Ok(Self {
            listen,
            auth,
            max_concurrent_jobs: num("RUNE_MAX_CONCURRENT_JOBS", 4.0, 1.0, 1024.0)? as usize,
            job_timeout: Duration::from_secs_f64(num("RUNE_JOB_TIMEOUT_SECONDS", 3600.0, 1.0, 7.0 * 86400.0)?),
            lease: Duration::from_secs_f64(num("RUNE_JOB_LEASE_SECONDS", 30.0, 1.0, 3600.0)?),
            max_attempts: num("RUNE_JOB_MAX_ATTEMPTS", 3.0, 1.0, 100.0)? as u32,
            rate_limit_rps: num("RUNE_RATE_LIMIT_RPS", 200.0, 0.0, 1e9)?,
            rate_limit_burst: num("RUNE_RATE_LIMIT_BURST", 400.0, 1.0, 1e9)?,
            auth_failures_per_minute: num("RUNE_AUTH_FAILURES_PER_MINUTE", 10.0, 1.0, 1e6)? as u32,
            shutdown_grace: Duration::from_secs_f64(num("RUNE_SHUTDOWN_GRACE_SECONDS", 30.0, 0.0, 3600.0)?),
            scheduler: lookup("RUNE_SCHEDULER").is_none_or(|v| !matches!(v.as_str(), "0" | "false" | "off" | "no")),
            scheduler_tick: Duration::from_secs_f64(num("RUNE_SCHEDULER_TICK_SECONDS", 5.0, 0.05, 3600.0)?),
            worker_id: lookup("RUNE_WORKER_ID").unwrap_or_else(|| {
                format!("{}-{host}-{}", hostname(&lookup), &uuid::Uuid::new_v4().simple().to_string()[..8])
            }),
            request_timeout: Duration::from_secs_f64(num("RUNE_REQUEST_TIMEOUT_SECONDS", 30.0, 1.0, 3600.0)?),
            estop_tenants: lookup("RUNE_ESTOP_TENANTS")
                .map(|v| v.split(',').map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect()),
        })
    }
}

fn hostname(lookup: &impl Fn(&str) -> Option<String>) -> String {
    lookup("HOSTNAME")
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok().map(|s| s.trim().to_owned()))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rune".into())
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(addr: &str, env: &[(&str, &str)], force: bool) -> Result<ServerConfig, ConfigError> {
        let map: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ServerConfig::from_env(addr.parse().unwrap(), force, |k| map.get(k).cloned())
    }

    /// Unauthenticated is fine on loopback, refused elsewhere unless forced.
    #[test]
    fn unauthenticated_only_on_loopback() {
        assert!(cfg("127.0.0.1:8080", &[("RUNE_API_AUTH_DISABLED", "1")], false).is_ok());
        assert!(!cfg("127.0.0.1:8080", &[], false).unwrap().auth.enabled(), "no tokens on loopback: open");
        assert!(cfg("0.0.0.0:8080", &[], false).is_err(), "no tokens elsewhere: refused");
        let err = cfg("0.0.0.0:8080", &[("RUNE_API_AUTH_DISABLED", "1")], false).unwrap_err().to_string();
        assert!(err.contains("RUNE_API_TOKENS"), "{err}");
        assert!(cfg("0.0.0.0:8080", &[("RUNE_API_AUTH_DISABLED", "1")], true).is_ok());
        let token = "t".repeat(32);
        assert!(cfg("0.0.0.0:8080", &[("RUNE_API_TOKENS", &format!("team:{token}"))], false).is_ok());
    }

    /// Bad numbers name the variable.
    #[test]
    fn bad_numbers_name_the_variable() {
        let off = ("RUNE_API_AUTH_DISABLED", "1");
        let err = cfg("127.0.0.1:1", &[off, ("RUNE_MAX_CONCURRENT_JOBS", "lots")], false).unwrap_err().to_string();
        assert!(err.starts_with("RUNE_MAX_CONCURRENT_JOBS=`lots`"), "{err}");
        let err = cfg("127.0.0.1:1", &[off, ("RUNE_JOB_TIMEOUT_SECONDS", "0")], false).unwrap_err().to_string();
        assert!(err.contains("RUNE_JOB_TIMEOUT_SECONDS"), "{err}");
    }
}
