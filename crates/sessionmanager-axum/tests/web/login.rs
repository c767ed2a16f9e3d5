//! Login rotates the session (session fixation defence); logout ends it.

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use sessionmanager_axum::{Session, SessionError, SessionLayer};
use sessionmanager_core::{CreateOptions, Error, SessionData};

use crate::app::{app, memory, send, stored};

#[tokio::test]
async fn login_moves_the_data_to_a_new_id_and_the_old_id_is_dead() {
    let manager = memory();
    let (app, _) = app(&manager);
    let visitor = send(&app, "POST", "/set/cart/apples", None)
        .await
        .new_token();
    let r = send(&app, "POST", "/login/alice", Some(&visitor)).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "hello alice"));
    let user = r.new_token();
    assert_ne!(user, visitor);
    assert_eq!(stored(&manager, &visitor).await, None, "the old id is dead");
    assert_eq!(
        stored(&manager, &user).await.unwrap(),
        r#"{"cart":"apples"}"#
    );
    assert_eq!(
        manager.peek(&user).await.unwrap().record.user_id.as_ref(),
        "alice"
    );
    assert_eq!(manager.count().await.unwrap(), 1);

    let r = send(&app, "GET", "/read", Some(&visitor)).await;
    assert_eq!(
        r.body, "user=-; id=-; empty=true",
        "a planted id gives nothing after login"
    );
    let r = send(&app, "GET", "/read", Some(&user)).await;
    assert_eq!(r.body, "user=alice; id=stored; empty=false");
}

#[tokio::test]
async fn login_without_a_session_and_with_empty_data_still_stores_the_user() {
    let manager = memory();
    let (app, _) = app(&manager);
    let r = send(&app, "POST", "/login/bob", None).await;
    let token = r.new_token();
    assert_eq!(stored(&manager, &token).await.unwrap(), "{}");
    let r = send(&app, "GET", "/read", Some(&token)).await;
    assert_eq!(r.body, "user=bob; id=stored; empty=true");
    assert_eq!(r.set_cookies(), Vec::<String>::new());
}

#[tokio::test]
async fn logging_in_again_rotates_again_and_changes_the_user() {
    let manager = memory();
    let (app, _) = app(&manager);
    let first = send(&app, "POST", "/login/alice", None).await.new_token();
    let second = send(&app, "POST", "/login/bob", Some(&first))
        .await
        .new_token();
    assert_ne!(first, second);
    assert_eq!(stored(&manager, &first).await, None);
    assert_eq!(manager.list_user("alice").await.unwrap().len(), 0);
    assert_eq!(manager.list_user("bob").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_login_as_another_user_starts_from_empty_data() {
    let manager = memory();
    let (app, _) = app(&manager);
    let alice = send(&app, "POST", "/login/alice", None).await.new_token();
    send(&app, "POST", "/set/note/alices", Some(&alice)).await;
    let bob = send(&app, "POST", "/login/bob", Some(&alice))
        .await
        .new_token();
    assert_eq!(stored(&manager, &bob).await.unwrap(), "{}");
    let r = send(&app, "GET", "/read", Some(&bob)).await;
    assert_eq!(r.body, "user=bob; id=stored; empty=true");
    // The same user logging in again keeps the data.
    send(&app, "POST", "/set/note/bobs", Some(&bob)).await;
    let again = send(&app, "POST", "/login/bob", Some(&bob))
        .await
        .new_token();
    assert_eq!(
        stored(&manager, &again).await.unwrap(),
        r#"{"note":"bobs"}"#
    );
}

#[tokio::test]
async fn reserved_and_empty_user_ids_are_refused() {
    let manager = memory();
    let (app, _) = app(&manager);
    let visitor = send(&app, "POST", "/set/a/1", None).await.new_token();
    for path in ["/login/anonymous:x", "/login/anonymous:"] {
        let r = send(&app, "POST", path, Some(&visitor)).await;
        assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
    }
    assert_eq!(
        stored(&manager, &visitor).await.unwrap(),
        r#"{"a":"1"}"#,
        "untouched"
    );
    assert_eq!(manager.count().await.unwrap(), 1);

    let empty = Router::new()
        .route(
            "/",
            get(|session: Session| async move {
                let err = session.login("").await.unwrap_err();
                assert!(
                    matches!(err, SessionError::Engine(Error::InvalidArgument(_))),
                    "{err}"
                );
                let err = session.login("anonymous:me").await.unwrap_err();
                assert!(err.to_string().contains("reserved for visitors"), "{err}");
                format!("{:?}", session.id())
            }),
        )
        .layer(SessionLayer::new(manager.clone()));
    let r = send(&empty, "GET", "/", None).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "None"));
    assert_eq!(manager.count().await.unwrap(), 1);
}

#[tokio::test]
async fn a_login_then_a_5xx_keeps_the_rotation_but_saves_no_later_change() {
    let manager = memory();
    let (app, _) = app(&manager);
    let visitor = send(&app, "POST", "/set/a/1", None).await.new_token();
    let r = send(&app, "POST", "/login-then-fail/alice", Some(&visitor)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    // The login happened when it was called: the old id is dead, so the
    // response must carry the new one or the user would be stranded.
    let user = r.new_token();
    assert_eq!(stored(&manager, &visitor).await, None);
    assert_eq!(stored(&manager, &user).await.unwrap(), r#"{"a":"1"}"#);
}

#[tokio::test]
async fn a_rejecting_per_user_limit_makes_login_a_403() {
    use sessionmanager_core::{LimitAction, ManagerConfig, SessionManager};
    use std::sync::Arc;
    let manager = Arc::new(
        SessionManager::in_memory(ManagerConfig {
            max_sessions_per_user: Some(1),
            on_limit: LimitAction::Reject,
            ..ManagerConfig::default()
        })
        .unwrap(),
    );
    let (app, _) = crate::app::app(&manager);
    manager
        .create("alice", SessionData::empty(), CreateOptions::default())
        .await
        .unwrap();
    let visitor = send(&app, "POST", "/set/a/1", None).await.new_token();
    let r = send(&app, "POST", "/login/alice", Some(&visitor)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(stored(&manager, &visitor).await.unwrap(), r#"{"a":"1"}"#);
}

#[tokio::test]
async fn logout_ends_the_record_and_deletes_the_cookie() {
    let manager = memory();
    let (app, _) = app(&manager);
    let user = send(&app, "POST", "/login/alice", None).await.new_token();
    send(&app, "POST", "/set/theme/dark", Some(&user)).await;
    let r = send(&app, "POST", "/logout", Some(&user)).await;
    assert_eq!(r.body, "bye");
    assert!(r.deletes_session_cookie());
    assert_eq!(stored(&manager, &user).await, None);
    assert_eq!(manager.count().await.unwrap(), 0);
    let r = send(&app, "GET", "/read", Some(&user)).await;
    assert_eq!(r.body, "user=-; id=-; empty=true");

    // Logging out without a session is harmless and stores nothing.
    let r = send(&app, "POST", "/logout", None).await;
    assert_eq!(r.body, "bye");
    assert_eq!(r.set_cookies(), Vec::<String>::new());
    assert_eq!(manager.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_login_may_choose_its_sessions_lifetime_and_the_cookie_follows() {
    let manager = memory();
    let (app, _) = app(&manager);
    let max_age = |r: &crate::app::Response| {
        let cookie = r.cookie_named("session")?;
        let value = cookie.split("Max-Age=").nth(1)?;
        Some(value.split(';').next().unwrap().to_owned())
    };
    let r = send(&app, "POST", "/remember/alice/30", None).await;
    assert_eq!(r.body, "remembered alice");
    assert_eq!(max_age(&r).as_deref(), Some("2592000"), "30 days");
    let token = r.new_token();
    let record = manager.peek(&token).await.unwrap().record;
    assert_eq!(record.idle_timeout_ms, 30 * 86_400_000);
    assert!(record.absolute_expires_at.is_some());

    // Later responses keep the session's own lifetime on its cookie.
    let r = send(&app, "POST", "/set/theme/dark", Some(&token)).await;
    assert_eq!(max_age(&r).as_deref(), Some("2592000"));
    // The absolute deadline caps it when it is the shorter.
    let r = send(&app, "POST", "/remember/bob/365", None).await;
    assert_eq!(max_age(&r).as_deref(), Some(&*(90 * 86_400).to_string()));
    // A plain login keeps the layer's browser-session cookie.
    let r = send(&app, "POST", "/login/carol", None).await;
    assert_eq!(max_age(&r), None);
    // A lifetime the manager refuses is the app's error (a 500, the cause
    // kept from the client); it stores and ends nothing.
    let r = send(&app, "POST", "/remember/alice/-1", Some(&token)).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(manager.peek(&token).await.is_ok(), "the session stays");
}
