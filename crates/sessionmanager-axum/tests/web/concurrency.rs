//! Requests of one user that overlap keep each other's changes, or the
//! later one is told that its change was not kept (409); clones of one
//! request's session share its state.

use axum::Router;
use axum::http::StatusCode;

use crate::app::{Ctx, app, memory, send, stored};
use sessionmanager_core::MemoryStore;
use std::sync::Arc;

/// Sends `slow` (a `/wait/...` request, which loads the session and then
/// waits), lets `fast` run to completion meanwhile, then releases `slow`.
async fn interleave(
    app: &Router,
    ctx: &Arc<Ctx<MemoryStore>>,
    token: &str,
    slow: &str,
    fast: &str,
) -> (crate::app::Response, crate::app::Response) {
    let slow = send(app, "POST", slow, Some(token));
    let fast = async {
        let r = send(app, "POST", fast, Some(token)).await;
        ctx.gate.notify_one();
        r
    };
    // join! polls `slow` first, so it has read the session before `fast` starts.
    tokio::join!(slow, fast)
}

#[tokio::test]
async fn two_interleaved_requests_changing_different_keys_both_keep_their_change() {
    let manager = memory();
    let (app, ctx) = app(&manager);
    let token = send(&app, "POST", "/set/a/0", None).await.new_token();
    send(&app, "POST", "/set/b/0", Some(&token)).await;
    let (slow, fast) = interleave(&app, &ctx, &token, "/wait/set/a/1", "/set/b/1").await;
    assert_eq!((slow.status, fast.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(
        stored(&manager, &token).await.unwrap(),
        r#"{"a":"1","b":"1"}"#
    );
}

#[tokio::test]
async fn a_removal_and_a_concurrent_write_are_both_kept() {
    let manager = memory();
    let (app, ctx) = app(&manager);
    let token = send(&app, "POST", "/set/a/0", None).await.new_token();
    send(&app, "POST", "/set/b/0", Some(&token)).await;
    interleave(&app, &ctx, &token, "/wait/remove/a", "/set/b/1").await;
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"b":"1"}"#);
}

#[tokio::test]
async fn a_key_another_request_changed_meanwhile_is_a_409_that_keeps_its_change() {
    let manager = memory();
    let (app, ctx) = app(&manager);
    let token = send(&app, "POST", "/set/a/0", None).await.new_token();
    let (slow, fast) = interleave(&app, &ctx, &token, "/wait/set/a/slow", "/set/a/fast").await;
    assert_eq!(
        (slow.status, fast.status),
        (StatusCode::CONFLICT, StatusCode::OK)
    );
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"a":"fast"}"#);

    // The same change made by both is no conflict.
    let (slow, fast) = interleave(&app, &ctx, &token, "/wait/set/a/x", "/set/a/x").await;
    assert_eq!((slow.status, fast.status), (StatusCode::OK, StatusCode::OK));
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"a":"x"}"#);
}

#[tokio::test]
async fn a_session_ended_meanwhile_is_not_brought_back() {
    let manager = memory();
    let (app, ctx) = app(&manager);
    let user = send(&app, "POST", "/login/alice", None).await.new_token();
    let slow = send(&app, "POST", "/wait/set/a/1", Some(&user));
    let log_out_everywhere = async {
        assert_eq!(manager.end_user("alice", None).await.unwrap(), 1);
        ctx.gate.notify_one();
    };
    let (slow, ()) = tokio::join!(slow, log_out_everywhere);
    assert_eq!(slow.status, StatusCode::OK);
    assert!(slow.deletes_session_cookie());
    assert_eq!(manager.count().await.unwrap(), 0);
}

#[tokio::test]
async fn a_clone_changed_in_another_task_is_saved() {
    let manager = memory();
    let (app, _) = app(&manager);
    let r = send(&app, "POST", "/spawned/set/k/v", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        stored(&manager, &r.new_token()).await.unwrap(),
        r#"{"k":"v"}"#
    );
}

#[tokio::test]
async fn a_change_after_the_response_is_refused_not_silently_lost() {
    use axum::routing::get;
    use sessionmanager_axum::{Session, SessionError, SessionLayer};
    use tokio::sync::{Notify, mpsc};

    let manager = memory();
    let gate = Arc::new(Notify::new());
    let (results, mut received) = mpsc::unbounded_channel();
    let handler_gate = gate.clone();
    let app = Router::new()
        .route(
            "/",
            get(move |session: Session| async move {
                session.insert("early", 1).unwrap();
                tokio::spawn(async move {
                    handler_gate.notified().await;
                    let late = session.insert("late", 2);
                    results.send((late, session.get_value("early"))).unwrap();
                });
                "ok"
            }),
        )
        .layer(SessionLayer::new(manager.clone()));
    let token = send(&app, "GET", "/", None).await.new_token();
    gate.notify_one();
    let (late, early) = received.recv().await.unwrap();
    assert!(matches!(late, Err(SessionError::Finished)), "{late:?}");
    assert_eq!(early, Some(serde_json::json!(1)), "reads still work");
    assert_eq!(stored(&manager, &token).await.unwrap(), r#"{"early":1}"#);
}
