//! Store errors keep the driver's error as their cause.

use sessionmanager_core::Error;
use sessionmanager_redis::RedisStore;

#[test]
fn a_failure_keeps_the_redis_error_as_its_cause() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let err = RedisStore::open_url(&format!(
        "redis://:hunter2@127.0.0.1:{port}/0?timeout_ms=500"
    ))
    .unwrap_err();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    let cause = err
        .driver_error::<redis::RedisError>()
        .expect("the redis error is in the chain");
    assert!(
        cause.is_connection_refusal() || cause.is_io_error(),
        "{cause:?}"
    );
}
