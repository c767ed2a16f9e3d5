//! Store errors keep the driver's error as their cause.

mod support;

use sessionmanager_core::Error;
use sessionmanager_postgres::{PostgresConfig, PostgresStore};

#[test]
fn a_failure_keeps_the_tokio_postgres_error_as_its_cause() {
    let server = support::server();
    let url = server
        .url("postgres", "")
        .replace(support::PASSWORD, "wrong-password");
    let config = PostgresConfig::from_url(&url).unwrap();
    let err = PostgresStore::open(config).unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert!(!format!("{err:?}").contains("wrong-password"), "{err:?}");
    let cause = err
        .driver_error::<tokio_postgres::Error>()
        .expect("the tokio-postgres error is in the chain");
    let code = cause.as_db_error().map(|db| db.code().code().to_owned());
    assert_eq!(code.as_deref(), Some("28P01"), "{cause:?}");
}
