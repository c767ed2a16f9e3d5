//! Store errors keep the driver's error as their cause.

use sessionmanager_core::Error;
use sessionmanager_sqlite::{SqliteConfig, SqliteStore};

#[test]
fn a_failure_keeps_the_rusqlite_error_as_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-sqlite.db");
    std::fs::write(
        &path,
        b"this is not a database file, just text that is long enough",
    )
    .unwrap();
    let err = SqliteStore::open(SqliteConfig::new(path)).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(
        err.to_string().contains("is not a SQLite database"),
        "{err}"
    );
    let cause = err
        .driver_error::<rusqlite::Error>()
        .expect("the rusqlite error is in the chain");
    assert_eq!(
        cause.sqlite_error_code(),
        Some(rusqlite::ErrorCode::NotADatabase)
    );
}
