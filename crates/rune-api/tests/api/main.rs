//! The API over real HTTP on loopback, against a real SQLite file and (when
//! `RUNE_TEST_POSTGRES_URL` is set; required in CI) a real PostgreSQL server.

mod cases;
mod harness;

/// One test per engine for each case.
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let s = crate::harness::TestServer::start(crate::harness::Engine::Sqlite, &[]).await;
                    crate::cases::$name(&s).await;
                    s.stop().await;
                }
            )*
        }
        mod postgres_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if !crate::harness::postgres_available() { return; }
                    let s = crate::harness::TestServer::start(crate::harness::Engine::Postgres, &[]).await;
                    crate::cases::$name(&s).await;
                    s.stop().await;
                }
            )*
        }
    };
}

both_engines!(
    submit_runs_cost_estimate_to_success,
    unavailable_kind_fails_with_clear_error,
    invalid_requests_are_rejected_with_field_errors,
    authentication_and_tenant_isolation,
    idempotency_replay_conflict_and_race,
    list_filters_and_pagination,
    events_and_sse_trace_with_resume,
    cancel_stops_running_work_and_kills_subprocess,
    artifacts_are_tenant_scoped_with_content_types,
    schedules_crud_and_firing,
    estop_stops_everything_and_release_resumes,
    settings_and_profiles_use_the_right_verbs,
    estimates_and_finops,
    probes_metrics_and_openapi,
    abuse_is_refused_cleanly,
);

mod single {
    /// Two replicas on one PostgreSQL database share the queue: every job submitted to
    /// either runs exactly once, and only one scheduler fires.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_replicas_share_the_postgres_queue() {
        if !crate::harness::postgres_available() {
            return;
        }
        let a = crate::harness::TestServer::start(crate::harness::Engine::Postgres, &[]).await;
        let b =
            crate::harness::TestServer::start_on(crate::harness::Engine::Postgres, Some(a.db_url.clone()), &[]).await;
        crate::cases::replicas_share_queue(&a, &b).await;
        a.stop().await;
        b.stop().await;
    }

    /// Too many requests from one tenant: 429 with Retry-After; other tenants unaffected.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rate_limit_per_tenant() {
        let s = crate::harness::TestServer::start(
            crate::harness::Engine::Sqlite,
            &[("RUNE_RATE_LIMIT_RPS", "1"), ("RUNE_RATE_LIMIT_BURST", "5")],
        )
        .await;
        crate::cases::rate_limited(&s).await;
        s.stop().await;
    }

    /// Only the tenants in RUNE_ESTOP_TENANTS operate the E-Stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn estop_operators_can_be_restricted() {
        let s =
            crate::harness::TestServer::start(crate::harness::Engine::Sqlite, &[("RUNE_ESTOP_TENANTS", "alpha")]).await;
        crate::cases::estop_restricted(&s).await;
        s.stop().await;
    }

    /// Repeated bad tokens from one address are throttled with 429.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_auth_is_throttled() {
        let s = crate::harness::TestServer::start(
            crate::harness::Engine::Sqlite,
            &[("RUNE_AUTH_FAILURES_PER_MINUTE", "3")],
        )
        .await;
        crate::cases::auth_throttled(&s).await;
        s.stop().await;
    }

    /// The original Python client (rune-bench 0.0.0a5's RuneApiClient) works against
    /// this server: submit, status, wait, estimate.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn original_python_client_is_compatible() {
        let s = crate::harness::TestServer::start(crate::harness::Engine::Sqlite, &[]).await;
        crate::cases::original_python_client(&s).await;
        s.stop().await;
    }
}
