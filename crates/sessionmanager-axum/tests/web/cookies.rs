//! The cookie's attributes, as browsers see them.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use sessionmanager_axum::{SameSite, SessionLayer};

use crate::app::{app, app_with, memory, send, send_request};

#[tokio::test]
async fn default_cookie_is_http_only_secure_lax_and_lasts_the_browser_session() {
    let manager = memory();
    let (app, _) = app(&manager);
    let r = send(&app, "POST", "/set/a/1", None).await;
    let token = r.new_token();
    assert_eq!(token.len(), 43);
    assert_eq!(
        r.set_cookies(),
        [format!(
            "session={token}; Path=/; HttpOnly; Secure; SameSite=Lax"
        )]
    );
    assert_eq!(r.headers.get(header::VARY).unwrap(), "cookie");

    let r = send(&app, "POST", "/clear", Some(&token)).await;
    assert_eq!(
        r.set_cookies(),
        [
            "session=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0; \
          Expires=Thu, 01 Jan 1970 00:00:00 GMT"
        ]
    );
}

#[tokio::test]
async fn every_attribute_can_be_configured() {
    let manager = memory();
    let layer = SessionLayer::new(manager.clone())
        .with_cookie_name("__Secure-sid")
        .with_path("/app")
        .with_domain("example.com")
        .with_http_only(false)
        .with_same_site(SameSite::Strict)
        .with_max_age(Some(Duration::from_secs(1800)));
    let (app, _) = app_with(layer);
    let r = send(&app, "POST", "/set/a/1", None).await;
    let cookie = r
        .cookie_named("__Secure-sid")
        .expect("set under the configured name");
    let token = cookie["__Secure-sid=".len()..].split(';').next().unwrap();
    assert_eq!(
        cookie,
        format!(
            "__Secure-sid={token}; Path=/app; Domain=example.com; Secure; SameSite=Strict; \
             Max-Age=1800"
        )
    );
    assert_eq!(r.session_cookie(), None, "the default name is not used");

    // A persistent cookie is sent again by every response that read the
    // session, so the browser's expiry slides along with the store's.
    let request = Request::get("/read")
        .header(header::COOKIE, format!("__Secure-sid={token}"))
        .body(Body::empty())
        .unwrap();
    let r = send_request(&app, request).await;
    assert_eq!(r.body, "user=-; id=stored; empty=false");
    assert_eq!(r.cookie_named("__Secure-sid").unwrap(), cookie);
}

#[tokio::test]
async fn insecure_and_none_same_site_are_possible_when_asked_for() {
    let manager = memory();
    let (app, _) = app_with(
        SessionLayer::new(manager.clone())
            .with_secure(false)
            .with_same_site(SameSite::Lax),
    );
    let r = send(&app, "POST", "/set/a/1", None).await;
    let token = r.new_token();
    assert_eq!(
        r.set_cookies(),
        [format!("session={token}; Path=/; HttpOnly; SameSite=Lax")]
    );
    let (app, _) = app_with(SessionLayer::new(manager).with_same_site(SameSite::None));
    let r = send(&app, "POST", "/set/a/1", None).await;
    assert!(r.set_cookies()[0].ends_with("; HttpOnly; Secure; SameSite=None"));
}

#[tokio::test]
async fn the_session_cookie_is_found_among_others_and_other_cookies_are_left_alone() {
    let manager = memory();
    let (app, _) = app(&manager);
    let token = send(&app, "POST", "/set/a/1", None).await.new_token();
    let request = Request::get("/read")
        .header(header::COOKIE, "theme=dark; sessionx=1")
        .header(
            header::COOKIE,
            format!("lang=fr; session={token}; session=junk"),
        )
        .body(Body::empty())
        .unwrap();
    let r = send_request(&app, request).await;
    assert_eq!(r.body, "user=-; id=stored; empty=false");
    assert_eq!(r.set_cookies(), Vec::<String>::new());
}

#[tokio::test]
async fn an_existing_vary_header_is_extended_not_replaced() {
    use axum::Router;
    use axum::routing::get;
    use sessionmanager_axum::Session;
    let manager = memory();
    let app = Router::new()
        .route(
            "/",
            get(|session: Session| async move {
                session.insert("a", 1).unwrap();
                ([(header::VARY, "accept-encoding")], "ok")
            }),
        )
        .route(
            "/cookie",
            get(|_: Session| async { ([(header::VARY, "Accept, Cookie")], "ok") }),
        )
        .layer(SessionLayer::new(manager));
    let r = send(&app, "GET", "/", None).await;
    let vary: Vec<_> = r.headers.get_all(header::VARY).iter().collect();
    assert_eq!(vary, ["accept-encoding", "cookie"]);
    let r = send(&app, "GET", "/cookie", None).await;
    let vary: Vec<_> = r.headers.get_all(header::VARY).iter().collect();
    assert_eq!(vary, ["Accept, Cookie"]);
}

/// One rule in every integration: of two session cookies, the first counts
/// (browsers send the most specific path first).
#[tokio::test]
async fn of_two_session_cookies_the_first_counts() {
    let manager = memory();
    let (app, _) = app(&manager);
    let first = send(&app, "POST", "/set/who/first", None).await.new_token();
    let second = send(&app, "POST", "/set/who/second", None)
        .await
        .new_token();
    let both = |cookies: String| {
        Request::builder()
            .uri("/get/who")
            .header(header::COOKIE, cookies)
            .body(Body::empty())
            .unwrap()
    };
    let r = send_request(&app, both(format!("session={first}; session={second}"))).await;
    assert_eq!(r.body, r#""first""#);
    let r = send_request(&app, both(format!("session=forged; session={second}"))).await;
    assert_eq!(r.body, "none", "a value after a forged one is not read");
}
