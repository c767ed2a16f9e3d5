//! The shared rules: no record for an empty session, forged cookies are no
//! session, only changes are written, nothing is saved on a 5xx.

use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::routing::get;
use sessionmanager_axum::{Session, SessionError};
use sessionmanager_core::{Error, SessionToken};

use crate::app::{app, memory, send, stored};

#[tokio::test]
async fn a_visitor_whose_session_stays_empty_gets_no_record_and_no_cookie() {
    let manager = memory();
    let (app, _) = app(&manager);
    for path in ["/read", "/get/x", "/remove/x", "/clear"] {
        let method = if path == "/read" || path == "/get/x" {
            "GET"
        } else {
            "POST"
        };
        let r = send(&app, method, path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.set_cookies(), Vec::<String>::new(), "{path}");
    }
    // Data set and removed within the request leaves the session empty too.
    let r = send(&app, "POST", "/set-then-remove/x", None).await;
    assert_eq!(r.set_cookies(), Vec::<String>::new());
    assert_eq!(manager.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_visitor_with_data_gets_an_anonymous_session_and_a_cookie() {
    let manager = memory();
    let (app, _) = app(&manager);
    let r = send(&app, "POST", "/set/color/blue", None).await;
    let token = r.new_token();
    assert_eq!(
        stored(&manager, &token).await.unwrap(),
        r#"{"color":"blue"}"#
    );
    let session = manager.peek(&token).await.unwrap();
    assert!(
        session.record.user_id.starts_with("anonymous:"),
        "{}",
        session.record.user_id
    );
    assert_eq!(session.record.user_id.len(), "anonymous:".len() + 16);

    let r = send(&app, "GET", "/get/color", Some(&token)).await;
    assert_eq!(r.body, r#""blue""#);
    assert_eq!(
        r.set_cookies(),
        Vec::<String>::new(),
        "the browser already has it"
    );
    let r = send(&app, "GET", "/read", Some(&token)).await;
    assert_eq!(
        r.body, "user=-; id=stored; empty=false",
        "a visitor has no user id"
    );

    // Each visitor is their own anonymous user.
    let other = send(&app, "POST", "/set/color/red", None).await.new_token();
    let other_user = manager.peek(&other).await.unwrap().record.user_id;
    assert_ne!(other_user, session.record.user_id);
    assert_eq!(manager.count().await.unwrap(), 2);
}

#[tokio::test]
async fn an_unchanged_session_is_not_written() {
    let manager = memory();
    let (app, _) = app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    let version = manager.peek(&token).await.unwrap().record.version;
    send(&app, "GET", "/get/a", Some(&token)).await;
    send(&app, "POST", "/set/a/1", Some(&token)).await; // same value again
    assert_eq!(manager.peek(&token).await.unwrap().record.version, version);
    send(&app, "POST", "/set/a/2", Some(&token)).await;
    assert_eq!(
        manager.peek(&token).await.unwrap().record.version,
        version + 1
    );
}

#[tokio::test]
async fn forged_junk_and_huge_cookies_are_no_session_and_are_deleted() {
    let manager = memory();
    let (app, _) = app(&manager);
    let real = send(&app, "POST", "/set/secret/s3cr3t", None)
        .await
        .new_token();
    // One character off: well-formed, but no such session.
    let flipped = format!(
        "{}{}",
        if real.starts_with('A') { 'B' } else { 'A' },
        &real[1..]
    );
    let forged = SessionToken::generate().unwrap().into_string();
    let huge = "A".repeat(8 * 1024);
    for cookie in [
        flipped.as_str(),
        forged.as_str(),
        "",
        "abc",
        "../../etc/passwd",
        "\"quoted\"",
        &real[..42],
        &format!("{real}A"),
        huge.as_str(),
    ] {
        let r = send(&app, "GET", "/read", Some(cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "{cookie:.50}");
        assert_eq!(r.body, "user=-; id=-; empty=true", "{cookie:.50}");
        assert!(
            r.deletes_session_cookie(),
            "{cookie:.50}: {:?}",
            r.set_cookies()
        );
    }
    // Data under a forged id goes to a fresh session: a client never picks its id.
    let r = send(&app, "POST", "/set/k/v", Some(&forged)).await;
    let token = r.new_token();
    assert_ne!(token, forged);
    assert_eq!(stored(&manager, &forged).await, None);
    assert_eq!(manager.count().await.unwrap(), 2);
    assert_eq!(
        stored(&manager, &real).await.unwrap(),
        r#"{"secret":"s3cr3t"}"#
    );
}

#[tokio::test]
async fn a_handler_that_does_not_extract_the_session_touches_nothing() {
    let manager = memory();
    let (app, _) = app(&manager);
    let forged = SessionToken::generate().unwrap().into_string();
    let r = send(&app, "GET", "/noop", Some(&forged)).await;
    assert_eq!(r.set_cookies(), Vec::<String>::new());
    assert!(r.headers.get(header::VARY).is_none());
    let r = send(&app, "GET", "/read", Some(&forged)).await;
    assert_eq!(r.headers.get(header::VARY).unwrap(), "cookie");
}

#[tokio::test]
async fn a_5xx_response_saves_nothing() {
    let manager = memory();
    let (app, _) = app(&manager);
    // A visitor: no record, no cookie.
    let r = send(&app, "POST", "/fail/a/1", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.set_cookies(), Vec::<String>::new());
    assert_eq!(manager.count().await.unwrap(), 0);
    // A stored session keeps its data.
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    let r = send(&app, "POST", "/fail/a/2", Some(&token)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.set_cookies(), Vec::<String>::new());
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"a":"1"}"#);
    // A 4xx is not a failure of the server: it saves.
    let r = send(&app, "POST", "/bad-request/a/3", Some(&token)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"a":"3"}"#);
}

#[tokio::test]
async fn clearing_the_data_ends_the_record_and_deletes_the_cookie() {
    let manager = memory();
    let (app, _) = app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    let r = send(&app, "POST", "/clear", Some(&token)).await;
    assert!(r.deletes_session_cookie());
    assert_eq!(stored(&manager, &token).await, None);
    assert_eq!(manager.count().await.unwrap(), 0);
}

#[tokio::test]
async fn keys_keep_their_order_when_one_is_removed() {
    let manager = memory();
    let (app, _) = app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    send(&app, "POST", "/set/b/2", Some(&token)).await;
    send(&app, "POST", "/set/c/3", Some(&token)).await;
    send(&app, "POST", "/remove/a", Some(&token)).await;
    assert_eq!(
        stored(&manager, &token).await.unwrap(),
        r#"{"b":"2","c":"3"}"#
    );
}

#[tokio::test]
async fn removing_the_last_key_ends_the_record() {
    let manager = memory();
    let (app, _) = app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    let r = send(&app, "POST", "/remove/a", Some(&token)).await;
    assert_eq!(r.body, r#"Some(String("1"))"#);
    assert!(r.deletes_session_cookie());
    assert_eq!(manager.count().await.unwrap(), 0);
}

#[tokio::test]
async fn typed_values_round_trip_and_a_wrong_type_is_an_error() {
    let manager = memory();
    let (app, _) = app(&manager);
    let r = send(&app, "POST", "/incr/n", None).await;
    let token = r.new_token();
    assert_eq!(r.body, "1");
    assert_eq!(send(&app, "POST", "/incr/n", Some(&token)).await.body, "2");
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"n":2}"#);
    // A string where the handler expects an integer: the handler's error.
    send(&app, "POST", "/set/n/two", Some(&token)).await;
    let r = send(&app, "POST", "/incr/n", Some(&token)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"n":"two"}"#);
}

#[tokio::test]
async fn data_beyond_the_managers_limits_is_refused_at_insert() {
    use sessionmanager_core::{DataLimits, ManagerConfig, SessionManager};
    let manager = Arc::new(
        SessionManager::in_memory(ManagerConfig {
            limits: DataLimits {
                max_bytes: 64,
                max_depth: 2,
            },
            ..ManagerConfig::default()
        })
        .unwrap(),
    );
    let (app, _) = crate::app::app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    let big = "x".repeat(100);
    let r = send(&app, "POST", &format!("/set/b/{big}"), Some(&token)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"a":"1"}"#);

    // Checked in the handler, where the error can be handled.
    let limits_app = Router::new()
        .route(
            "/",
            get(|session: Session| async move {
                let err = session.insert("deep", [[1]]).unwrap_err();
                let SessionError::Engine(Error::InvalidData { path, .. }) = &err else {
                    panic!("{err:?}")
                };
                assert_eq!(path, "data['deep'][0]");
                session.insert("shallow", [1]).unwrap();
                let err = session.insert("long", "y".repeat(80)).unwrap_err();
                assert!(matches!(
                    err,
                    SessionError::Engine(Error::InvalidData { .. })
                ));
                format!("{:?}", session.get_value("long"))
            }),
        )
        .layer(sessionmanager_axum::SessionLayer::new(manager.clone()));
    let r = send(&limits_app, "GET", "/", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, "None", "a refused insert changes nothing");
    assert_eq!(
        stored(&manager, &r.new_token()).await.unwrap(),
        r#"{"shallow":[1]}"#
    );
}

#[tokio::test]
async fn a_failed_save_turns_the_response_into_an_error_carrying_it() {
    let manager = memory();
    let (app, _) = app(&manager);
    let r = send(&app, "POST", "/close-store/set/a/1", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body, "");
    assert_eq!(r.set_cookies(), Vec::<String>::new());
    let error = r
        .extensions
        .get::<Arc<SessionError>>()
        .expect("the error rides along");
    assert!(
        matches!(**error, SessionError::Engine(Error::Closed)),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_store_that_fails_on_read_rejects_the_extraction() {
    let manager = memory();
    let (app, _) = app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    manager.close().await.unwrap();
    let r = send(&app, "GET", "/read", Some(&token)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        r.body, "Internal Server Error",
        "no store details for clients"
    );
}

#[tokio::test]
async fn the_extractor_without_the_layer_is_a_500() {
    let app = Router::new().route("/", get(|_: Session| async { "unreachable" }));
    let r = send(&app, "GET", "/", None).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
}
