//! Checks through the RUNE API (`rune serve`): the probes, the schema version, the job
//! history against a backup manifest, and schedules resumed after an E-Stop.

use crate::report::{Check, Report};
use crate::HealthConfig;
use rune_client::{ClientConfig, ClientError, RuneClient};
use rune_core::api::Readiness;
use std::collections::{BTreeMap, BTreeSet};

/// `suspended_by` of schedules the API's E-Stop suspended (rune-api's `ESTOP_SUSPENDER`).
const ESTOP_SUSPENDER: &str = "estop";
/// Jobs fetched per page of digests.
const DIGEST_PAGE: u32 = 5_000;
/// Names listed in a reason before "and N more".
const LIST_MAX: usize = 10;

/// Runs the API checks against `api`, appending them to `report`.
pub async fn checks(api: &ClientConfig, config: &HealthConfig, report: &mut Report) {
    let client = match RuneClient::new(ClientConfig { timeout: config.timeout, ..api.clone() }) {
        Ok(c) => c,
        Err(e) => return report.push(Check::fail("api-healthz", e.to_string())),
    };
    let base = client.base_url().to_owned();
    match client.health().await {
        Ok(h) if h.status == "ok" => report.push(Check::pass("api-healthz", format!("{base}/healthz answered 200"))),
        Ok(h) => report.push(Check::fail("api-healthz", format!("{base}/healthz answered status `{}`", h.status))),
        Err(e) => {
            // Nothing else can be asked of an API that does not answer.
            report.push(Check::unreachable("api-healthz", e.to_string()));
            return;
        }
    }
    let readiness = match client.ready().await {
        Ok(r) => {
            report.push(Check::pass("api-readyz", format!("{base}/readyz answered 200 ({})", summary(&r))));
            Some(r)
        }
        Err(ClientError::Api { status, message, .. }) => {
            // /readyz answers 503 with the same body; the client keeps it as the message.
            let r = serde_json::from_str::<Readiness>(&message).ok();
            let why = r.as_ref().map(summary).unwrap_or(message);
            report.push(Check::fail("api-readyz", format!("{base}/readyz answered {status}: {why}")));
            r
        }
        Err(e) => {
            report.push(Check::unreachable("api-readyz", e.to_string()));
            None
        }
    };
    report.push(schema_check(readiness.as_ref(), config));
    if let Some(manifest) = &config.manifest {
        report.push(job_history(&client, manifest, config).await);
    }
    report.push(schedules_resumed(&client).await);
}

fn summary(r: &Readiness) -> String {
    let checks: Vec<String> = r.checks.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    format!("{}; version {}, {} database", checks.join(", "), r.version, r.database)
}

/// The database schema is the one the server's binary knows (`/readyz` compares them).
fn schema_check(r: Option<&Readiness>, config: &HealthConfig) -> Check {
    const NAME: &str = "schema-version";
    let Some(r) = r else { return Check::fail(NAME, "/readyz gave no answer to read the schema version from") };
    let db = r.checks.get("database").map(String::as_str).unwrap_or("not reported");
    let Some(version) = r.schema_version else {
        return Check::fail(NAME, format!("the server reports no schema version (database: {db})"));
    };
    if db != "ok" {
        return Check::fail(
            NAME,
            format!(
                "server {} on schema {version}: {db}. After a rollback to an older image run \
                 `rune db rollback --to <version the image knows>` (see docs/operations/rollback.md)",
                r.version
            ),
        );
    }
    let mut reason = format!("schema {version} is the one server {} knows", r.version);
    if let Some(m) = &config.manifest {
        if m.schema_version != version {
            reason.push_str(&format!(" (the manifest's backup was taken at schema {})", m.schema_version));
        }
    }
    Check::pass(NAME, reason)
}

/// Every job of the manifest is present and unchanged (the same comparison as
/// `rune db verify --against`, through `GET /v1/system/job-digests`).
async fn job_history(client: &RuneClient, manifest: &rune_store::backup::Manifest, config: &HealthConfig) -> Check {
    const NAME: &str = "job-history";
    let source = config.manifest_path.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "manifest".into());
    let mut live: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/system/job-digests?limit={DIGEST_PAGE}");
        if let Some(a) = &after {
            path.push_str("&after=");
            path.push_str(&percent_encode(a));
        }
        let page = match client.get_json(&path).await {
            Ok(v) => v,
            Err(ClientError::Api { status: 404, .. }) => {
                return Check::fail(
                    NAME,
                    "the server has no /v1/system/job-digests (an older RUNE); verify inside the pod instead: \
                     kubectl exec -n rune deploy/rune-api -- rune db verify --against <manifest>",
                )
            }
            Err(e @ ClientError::Transport { .. }) => return Check::unreachable(NAME, e.to_string()),
            Err(e) => return Check::fail(NAME, format!("cannot read the job digests: {e}")),
        };
        if after.is_none() {
            let theirs = manifest.database_id.as_deref();
            let ours = page.get("database_id").and_then(|v| v.as_str());
            if let (Some(theirs), Some(ours)) = (theirs, ours) {
                if theirs != ours {
                    return Check::fail(
                        NAME,
                        format!(
                            "{source} belongs to database {theirs}, but the API serves database {ours}: \
                             pass the manifest of a backup of this database"
                        ),
                    );
                }
            }
        }
        if let Some(jobs) = page.get("jobs").and_then(|v| v.as_object()) {
            for (id, digests) in jobs {
                let map = digests
                    .as_object()
                    .map(|o| o.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
                    .unwrap_or_default();
                live.insert(id.clone(), map);
            }
        }
        match page.get("next_after").and_then(|v| v.as_str()) {
            Some(next) if Some(next) != after.as_deref() => after = Some(next.to_owned()),
            _ => break,
        }
    }
    let (mut missing, mut changed) = (Vec::new(), Vec::new());
    for (id, entry) in &manifest.jobs {
        let Some((tag, digest)) = entry.split_once(':') else {
            changed.push(id.clone());
            continue;
        };
        match live.get(id) {
            None => missing.push(id.clone()),
            Some(d) if d.get(tag).map(String::as_str) != Some(digest) => changed.push(id.clone()),
            Some(_) => {}
        }
    }
    let newer = live.keys().filter(|id| !manifest.jobs.contains_key(*id)).count();
    if missing.is_empty() && changed.is_empty() {
        Check::pass(
            NAME,
            format!(
                "all {} jobs of {source} present and unchanged ({newer} newer job{})",
                manifest.jobs.len(),
                if newer == 1 { "" } else { "s" }
            ),
        )
    } else {
        let mut parts = Vec::new();
        if !missing.is_empty() {
            parts.push(format!("{} missing: {}", missing.len(), list(&missing)));
        }
        if !changed.is_empty() {
            parts.push(format!("{} changed: {}", changed.len(), list(&changed)));
        }
        Check::fail(
            NAME,
            format!(
                "job history differs from {source}: {}. Restore the backup beside the manifest \
                 (docs/operations/backup-restore.md)",
                parts.join("; ")
            ),
        )
    }
}

/// Schedules run again: none is left suspended by an E-Stop that has been released.
/// Schedules a user suspended stay as they are; while the E-Stop is engaged, nothing
/// should run, so the check is skipped.
async fn schedules_resumed(client: &RuneClient) -> Check {
    const NAME: &str = "schedules-resumed";
    let estop = match client.estop_status().await {
        Ok(s) => s,
        Err(e @ ClientError::Transport { .. }) => return Check::unreachable(NAME, e.to_string()),
        Err(e) => return Check::fail(NAME, format!("cannot read the E-Stop status: {e}")),
    };
    if estop.active {
        return Check::skip(
            NAME,
            format!(
                "the E-Stop is engaged ({}): schedules stay suspended until `rune estop release`",
                estop.reason.as_deref().unwrap_or("no reason given")
            ),
        );
    }
    let schedules = match client.list_schedules().await {
        Ok(s) => s,
        Err(e @ ClientError::Transport { .. }) => return Check::unreachable(NAME, e.to_string()),
        Err(e) => return Check::fail(NAME, format!("cannot list schedules: {e}")),
    };
    let mut stuck = Vec::new();
    let mut by_user = BTreeSet::new();
    let mut active = 0;
    for s in &schedules.schedules {
        match (s.suspended, s.suspended_by.as_deref()) {
            (false, _) => active += 1,
            (true, Some(ESTOP_SUSPENDER)) => stuck.push(format!("{} ({})", s.name, s.schedule_id)),
            (true, _) => {
                by_user.insert(s.name.clone());
            }
        }
    }
    let user_note = if by_user.is_empty() {
        String::new()
    } else {
        format!("; suspended by a user, left as they are: {}", list(&by_user.into_iter().collect::<Vec<_>>()))
    };
    if stuck.is_empty() {
        Check::pass(NAME, format!("E-Stop released; {active} schedule(s) active{user_note}"))
    } else {
        Check::fail(
            NAME,
            format!(
                "E-Stop released but {} schedule(s) it suspended are still suspended: {}. \
                 Resume them: rune --backend http schedules resume <id>{user_note}",
                stuck.len(),
                list(&stuck)
            ),
        )
    }
}

fn list(items: &[String]) -> String {
    let shown: Vec<&str> = items.iter().take(LIST_MAX).map(String::as_str).collect();
    if items.len() > LIST_MAX {
        format!("{} and {} more", shown.join(", "), items.len() - LIST_MAX)
    } else {
        shown.join(", ")
    }
}

/// Job ids are URL-safe by construction, but a cursor is passed back verbatim.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Long lists are cut with a count; cursors are encoded.
    #[test]
    fn helpers() {
        let ids: Vec<String> = (0..12).map(|i| format!("j{i}")).collect();
        assert_eq!(list(&ids[..2]), "j0, j1");
        assert!(list(&ids).ends_with("j9 and 2 more"), "{}", list(&ids));
        assert_eq!(percent_encode("a b/c"), "a%20b%2Fc");
    }

    /// A readiness whose database check is not ok fails the schema check with the fix.
    #[test]
    fn schema_check_reads_readyz() {
        let mut r = Readiness {
            status: "ok".into(),
            checks: [("database".to_owned(), "ok".to_owned())].into(),
            schema_version: Some(4),
            database: "sqlite".into(),
            version: "0.1.0".into(),
        };
        let c = schema_check(Some(&r), &HealthConfig::default());
        assert_eq!(c.status, crate::Status::Pass, "{c:?}");
        r.checks.insert("database".into(), "schema 5 but binary needs 4".into());
        let c = schema_check(Some(&r), &HealthConfig::default());
        assert_eq!(c.status, crate::Status::Fail);
        assert!(c.reason.contains("rune db rollback --to"), "{}", c.reason);
        assert_eq!(schema_check(None, &HealthConfig::default()).status, crate::Status::Fail);
    }
}
