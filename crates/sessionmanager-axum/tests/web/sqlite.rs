//! The layer over the persistent SQLite store: sessions outlive the process.

use std::sync::Arc;

use sessionmanager_axum::SessionLayer;
use sessionmanager_core::{ManagerConfig, SessionManager};
use sessionmanager_sqlite::{SqliteConfig, SqliteStore};

use crate::app::{app_with, send, stored};

fn open(path: &std::path::Path) -> Arc<SessionManager<SqliteStore>> {
    let store = SqliteStore::open(SqliteConfig::new(path)).unwrap();
    Arc::new(SessionManager::new(store, ManagerConfig::default()))
}

// The SQLite store does its I/O synchronously: run it on the multi-threaded
// runtime, as the crate documentation advises.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_a_restart_and_the_rules_hold() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let token = {
        let manager = open(&path);
        let (app, _) = app_with(SessionLayer::new(manager.clone()));
        assert_eq!(
            send(&app, "GET", "/read", None).await.set_cookies().len(),
            0
        );
        assert_eq!(
            manager.count().await.unwrap(),
            0,
            "no record for an empty visitor"
        );
        let visitor = send(&app, "POST", "/set/cart/pears", None)
            .await
            .new_token();
        let user = send(&app, "POST", "/login/carol", Some(&visitor))
            .await
            .new_token();
        assert_eq!(stored(&manager, &visitor).await, None);
        send(&app, "POST", "/fail/cart/lost", Some(&user)).await;
        manager.close().await.unwrap();
        user
    };
    let manager = open(&path);
    let (app, _) = app_with(SessionLayer::new(manager.clone()));
    let r = send(&app, "GET", "/read", Some(&token)).await;
    assert_eq!(r.body, "user=carol; id=stored; empty=false");
    assert_eq!(
        send(&app, "GET", "/get/cart", Some(&token)).await.body,
        r#""pears""#
    );
    let r = send(&app, "POST", "/logout", Some(&token)).await;
    assert!(r.deletes_session_cookie());
    assert_eq!(manager.count().await.unwrap(), 0);
}
