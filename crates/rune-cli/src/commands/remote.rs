//! Where job, schedule and E-Stop commands run: the validated `--backend` mode, the API
//! client built from it, and the mapping of API answers to messages and exit codes.
//!
//! Owns no command behaviour; never prints the API token (not even in `Debug`).

use crate::cli::{BackendKind, GlobalArgs};
use crate::exit::{self, coded};
use rune_client::{ClientConfig, ClientError, RuneClient};
use rune_core::TenantId;
use std::fmt;
use std::time::Duration;

/// Per-request timeout of API calls (streams excepted).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The validated `--backend` choice: invalid combinations (an unusable URL, a tenant
/// the API would refuse) cannot be expressed.
#[derive(Debug, Clone)]
pub enum Backend {
    /// The job database on this machine.
    Local,
    /// A RUNE API server.
    Http(RemoteConfig),
}

/// How to reach the API, validated.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Base URL without a trailing slash, `http://` or `https://`.
    pub base_url: String,
    /// Bearer token, if any.
    token: Option<ApiToken>,
    /// Tenant sent as `X-Tenant-ID`.
    pub tenant: TenantId,
    /// Skip TLS verification.
    pub insecure: bool,
}

/// A token that never shows up in `Debug` output or messages.
#[derive(Clone)]
struct ApiToken(String);

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<redacted>)")
    }
}

impl Backend {
    /// Validates the global API flags. Only commands that use a backend call this, so a
    /// stray `RUNE_API_BASE_URL` never breaks `rune db …`.
    pub fn from_args(args: &GlobalArgs) -> anyhow::Result<Self> {
        match args.backend {
            BackendKind::Local => Ok(Backend::Local),
            BackendKind::Http => Ok(Backend::Http(RemoteConfig::from_args(args)?)),
        }
    }
}

impl RemoteConfig {
    fn from_args(args: &GlobalArgs) -> anyhow::Result<Self> {
        let base_url = args.api_base_url.trim().trim_end_matches('/').to_owned();
        let rest = base_url.strip_prefix("http://").or_else(|| base_url.strip_prefix("https://"));
        let host_ok = rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/'));
        if !host_ok || base_url.chars().any(char::is_whitespace) {
            return Err(coded(
                exit::BAD_INPUT,
                format!(
                    "--api-base-url / RUNE_API_BASE_URL `{}` is not an API address; use http://host:port or \
                     https://host (e.g. http://127.0.0.1:8080)",
                    args.api_base_url
                ),
            ));
        }
        let token = match args.api_token.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(t) if t.bytes().all(|b| b.is_ascii_graphic()) => Some(ApiToken(t.to_owned())),
            Some(_) => {
                return Err(coded(
                    exit::BAD_INPUT,
                    "--api-token / RUNE_API_TOKEN contains spaces or characters that cannot be sent in an HTTP \
                     header; copy the token exactly as issued",
                ))
            }
        };
        let tenant: TenantId = args.api_tenant.trim().parse().map_err(|e| {
            coded(exit::BAD_INPUT, format!("--api-tenant / RUNE_API_TENANT `{}`: {e}", args.api_tenant))
        })?;
        Ok(Self { base_url, token, tenant, insecure: args.insecure })
    }

    /// A client for this API.
    pub fn client(&self) -> anyhow::Result<RuneClient> {
        RuneClient::new(ClientConfig {
            base_url: self.base_url.clone(),
            token: self.token.as_ref().map(|t| t.0.clone()),
            tenant: self.tenant.to_string(),
            timeout: REQUEST_TIMEOUT,
            insecure: self.insecure,
        })
        .map_err(|e| self.error(e))
    }

    /// Turns a failed call into a message that says what to do, with the exit code the
    /// documentation promises (400/422/401/403 → 2, 404 → 1, 409 → 4, unreachable → 1).
    pub fn error(&self, err: ClientError) -> anyhow::Error {
        match err {
            ClientError::Api { status, code, message, fields } => {
                let mut text = format!("{message} (HTTP {status} {code})");
                for f in &fields {
                    text.push_str(&format!("\n  {}: {}", f.field, f.message));
                }
                let exit_code = match status {
                    400 | 422 => exit::BAD_INPUT,
                    401 | 403 => {
                        text.push_str(&format!(
                            "\nhint: check --api-token / RUNE_API_TOKEN ({}) and --api-tenant / RUNE_API_TENANT \
                             (now `{}`): the token must be one the server was given for this tenant",
                            if self.token.is_some() { "set" } else { "not set" },
                            self.tenant
                        ));
                        exit::BAD_INPUT
                    }
                    409 => exit::REFUSED,
                    _ => exit::FAILURE,
                };
                coded(exit_code, text)
            }
            ClientError::Transport { url, reason } => coded(
                exit::FAILURE,
                format!(
                    "cannot reach the RUNE API at {url}: {reason}\nhint: check --api-base-url / RUNE_API_BASE_URL \
                     (now {}) and that `rune serve` is running there",
                    self.base_url
                ),
            ),
            ClientError::Config(reason) => coded(exit::BAD_INPUT, reason),
            other => coded(exit::FAILURE, other.to_string()),
        }
    }
}

/// The error for commands that only exist against an API server.
pub fn needs_http(what: &str, why: &str) -> anyhow::Error {
    coded(
        exit::BAD_INPUT,
        format!(
            "{what} {why}; run it with --backend http (or RUNE_BACKEND=http) and --api-base-url pointing at \
             that server"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn global(args: &[&str]) -> GlobalArgs {
        let mut argv = vec!["rune"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&["estop", "status"]);
        crate::cli::Cli::try_parse_from(argv).expect("parses").global
    }

    fn remote(args: &[&str]) -> anyhow::Result<RemoteConfig> {
        match Backend::from_args(&global(args))? {
            Backend::Http(r) => Ok(r),
            Backend::Local => panic!("expected http"),
        }
    }

    /// Local is the default and ignores the API flags, even unusable ones.
    #[test]
    fn local_default_ignores_api_flags() {
        assert!(matches!(Backend::from_args(&global(&["--api-base-url", "nonsense"])).unwrap(), Backend::Local));
    }

    /// URLs are normalised; a URL without scheme or host, or with spaces, is exit 2.
    #[test]
    fn base_url_validation() {
        let r = remote(&["--backend", "http", "--api-base-url", " https://rune.example:8443/ "]).unwrap();
        assert_eq!(r.base_url, "https://rune.example:8443");
        for bad in ["localhost:8080", "ftp://x", "http://", "http:///x", "http://a b"] {
            let err = remote(&["--backend", "http", "--api-base-url", bad]).unwrap_err();
            assert_eq!(exit::code_for(&err), exit::BAD_INPUT, "{bad}");
            assert!(format!("{err:#}").contains("--api-base-url"), "{bad}: {err:#}");
        }
    }

    /// The tenant must be a valid id; the token is optional, checked, and never shown.
    #[test]
    fn tenant_and_token() {
        let err = remote(&["--backend", "http", "--api-tenant", "team a"]).unwrap_err();
        assert_eq!(exit::code_for(&err), exit::BAD_INPUT);
        assert!(format!("{err:#}").contains("--api-tenant"), "{err:#}");
        let secret = "s3cr3t-0123456789abcdef0123456789abcdef";
        let r = remote(&["--backend", "http", "--api-token", secret]).unwrap();
        assert!(!format!("{r:?}").contains(secret));
        assert!(remote(&["--backend", "http", "--api-token", "   "]).unwrap().token.is_none());
        let err = remote(&["--backend", "http", "--api-token", "two words"]).unwrap_err();
        assert!(!format!("{err:#}").contains("two words"), "{err:#}");
    }

    /// Each API status maps to its documented exit code; 401 carries the hint.
    #[test]
    fn api_error_codes() {
        let r = remote(&["--backend", "http", "--api-tenant", "alpha"]).unwrap();
        let api = |status: u16| ClientError::Api {
            status,
            code: "x".into(),
            message: "msg".into(),
            fields: vec![rune_core::FieldError { field: "request.min_dph".into(), message: "too low".into() }],
        };
        for (status, code) in [(400, 2), (422, 2), (401, 2), (404, 1), (409, 4), (429, 1), (500, 1)] {
            assert_eq!(exit::code_for(&r.error(api(status))), code, "HTTP {status}");
        }
        let text = format!("{:#}", r.error(api(422)));
        assert!(text.contains("request.min_dph: too low"), "{text}");
        let text = format!("{:#}", r.error(api(401)));
        assert!(text.contains("--api-token") && text.contains("`alpha`"), "{text}");
        let err =
            r.error(ClientError::Transport { url: "http://localhost:8080/v1/jobs".into(), reason: "refused".into() });
        assert_eq!(exit::code_for(&err), exit::FAILURE);
        assert!(format!("{err:#}").contains("http://localhost:8080/v1/jobs"));
    }
}
