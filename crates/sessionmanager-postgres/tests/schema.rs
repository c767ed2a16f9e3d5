//! Schema versions on a real server: forward migrations keep the rows, run
//! in one transaction (a failed step changes nothing), and a newer version is refused.

mod support;

use sessionmanager_core::{
    ExpiryPolicy, SessionData, SessionKey, SessionRecord, SessionStore, Timestamp, block_on,
};
use sessionmanager_postgres::{CREATE_V1, PostgresConfig, PostgresStore, SCHEMA, Schema};

const ADD_NOTE: &str =
    "ALTER TABLE pysessionmanager_sessions ADD COLUMN note text NOT NULL DEFAULT 'v2';";
const INDEX_NOTE: &str =
    "CREATE INDEX pysessionmanager_sessions_by_note ON pysessionmanager_sessions (note);";
/// The first release's schema, before any step.
static V1: Schema = Schema {
    create: CREATE_V1,
    steps: &[],
};
static V2: Schema = Schema {
    create: CREATE_V1,
    steps: &[ADD_NOTE],
};
static V3: Schema = Schema {
    create: CREATE_V1,
    steps: &[ADD_NOTE, INDEX_NOTE],
};
static BROKEN_V3: Schema = Schema {
    create: CREATE_V1,
    steps: &[ADD_NOTE, "CREATE INDEX oops ON no_such_table (x);"],
};

fn open(url: &str, schema: &'static Schema) -> sessionmanager_core::Result<PostgresStore> {
    let config = PostgresConfig {
        sweep_interval: None,
        ..PostgresConfig::from_url(url).unwrap()
    };
    PostgresStore::open_with_schema(config, schema)
}

/// Stores `record()` under `key` as a first-release table holds it (the
/// user id as UTF-8 bytes), in the schema `url` names.
fn insert_first_release_row(server: &support::Server, url: &str, key: &SessionKey) {
    let schema = url
        .split("search_path%3D")
        .nth(1)
        .and_then(|rest| rest.split('&').next())
        .expect("a schema of its own");
    let r = record();
    let hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    server.sql(
        "postgres",
        &format!(
            "SET search_path TO {schema}; INSERT INTO pysessionmanager_sessions VALUES \
             ('\\x{hex}'::bytea, convert_to('{}', 'UTF8'), '{}', {}, {}, {}, {}, {}, {}, NULL)",
            r.user_id,
            r.data.as_json(),
            r.version,
            r.created_at.millis(),
            r.last_active.millis(),
            r.expires_at.millis(),
            r.idle_timeout_ms,
            r.sliding,
        ),
    );
}

/// How many sessions the schema `url` names holds.
fn rows(server: &support::Server, url: &str) -> i64 {
    let schema = url.split("search_path%3D").nth(1).unwrap();
    let query = format!("SELECT count(*) FROM {schema}.pysessionmanager_sessions");
    server.query_i64("postgres", &query)
}

fn record() -> SessionRecord {
    let data = SessionData::from_json_str(r#"{"kept":true}"#, &Default::default()).unwrap();
    SessionRecord::new(
        "alice".into(),
        data,
        &ExpiryPolicy::DEFAULT,
        Timestamp(1_000),
    )
}

#[test]
fn migrations_go_forward_keep_rows_and_refuse_newer_tables() {
    let server = support::server();
    let url = server.fresh_schema_url("");
    let key = SessionKey::from_bytes([7; 32]);
    drop(open(&url, &V1).unwrap());
    insert_first_release_row(server, &url, &key);

    let err = open(&url, &BROKEN_V3).unwrap_err().to_string();
    assert!(
        err.contains("from version 2 to 3 failed, and it was left at version 1"),
        "{err}"
    );
    // The failed run's first step was rolled back too: version 2 migrates from 1.
    drop(open(&url, &V2).unwrap());
    drop(open(&url, &V3).unwrap());
    assert_eq!(rows(server, &url), 1, "rows survive migrations");
    drop(open(&url, &V3).unwrap()); // nothing runs twice
    let err = open(&url, &V1).unwrap_err().to_string();
    assert!(
        err.contains("newer pysessionmanager (schema version 3; this one reads up to 1)"),
        "{err}"
    );
}

#[test]
fn a_new_schema_is_created_at_the_latest_version() {
    let server = support::server();
    let url = server.fresh_schema_url("");
    drop(open(&url, &V3).unwrap());
    let err = open(&url, &V2).unwrap_err().to_string();
    assert!(err.contains("schema version 3"), "{err}");
}

#[test]
fn the_release_schema_migrates_a_first_release_database() {
    let server = support::server();
    let url = server.fresh_schema_url("");
    let key = SessionKey::from_bytes([9; 32]);
    drop(open(&url, &V1).unwrap());
    insert_first_release_row(server, &url, &key);
    let store = open(&url, &SCHEMA).unwrap();
    assert_eq!(
        block_on(store.load(&key, Timestamp(1_000))).unwrap(),
        Some(record()),
        "rows survive the migration to the release schema"
    );
}
