//! The store test suite. Every case in `cases` runs against SQLite **and** a real
//! PostgreSQL server (`RUNE_TEST_POSTGRES_URL`, set by `scripts/test.sh`; in CI a missing
//! server is a failure, locally the PostgreSQL half is skipped with a message).

mod cases;
mod harness;
mod sqlite_only;

/// Generates one test per engine for each named case.
macro_rules! both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let h = crate::harness::Harness::sqlite().await;
                    crate::cases::$name(&h).await;
                }
            )*
        }
        mod postgres_engine {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(h) = crate::harness::Harness::postgres().await else { return };
                    crate::cases::$name(&h).await;
                }
            )*
        }
    };
}

both_engines!(
    create_get_and_tenant_isolation,
    list_filters_and_cursor_pagination,
    counts_by_status_and_kind,
    state_machine_exhaustive,
    state_machine_random_sequences,
    idempotency_replay_and_conflict,
    idempotency_race_creates_exactly_one,
    claim_is_oldest_first_and_exclusive,
    lease_heartbeat_and_recovery,
    events_are_ordered_and_resumable,
    chain_state_round_trip,
    artifacts_round_trip_and_names_checked,
    settings_crud,
    schedules_crud_and_suspend,
    timestamps_keep_microseconds,
    migrations_round_trip_with_verify,
    newer_schema_is_refused_and_rolled_back_by_stored_sql,
    edited_migration_is_detected,
    export_import_round_trip,
    backup_verify_and_tamper_detection,
);
