//! A test application exercising every part of the `Session` API, and helpers
//! to send it requests and read its cookies.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::{get, post};
use sessionmanager_axum::{Session, SessionError, SessionLayer};
use sessionmanager_core::{
    CreateOptions, ManagerConfig, MemoryStore, SessionManager, SessionStore,
};
use tokio::sync::Notify;
use tower::ServiceExt as _;

pub type Memory = Arc<SessionManager<MemoryStore>>;

/// Shared by the handlers: the manager (to close it mid-request) and a gate
/// that holds `/wait/...` handlers until the test opens it.
pub struct Ctx<S> {
    pub manager: Arc<SessionManager<S>>,
    pub gate: Notify,
}

pub fn memory() -> Memory {
    Arc::new(SessionManager::in_memory(ManagerConfig::default()).unwrap())
}

/// The test routes behind a default `SessionLayer`.
pub fn app(manager: &Memory) -> (Router, Arc<Ctx<MemoryStore>>) {
    app_with(SessionLayer::new(manager.clone()))
}

pub fn app_with<S: SessionStore>(layer: SessionLayer<S>) -> (Router, Arc<Ctx<S>>) {
    let ctx = Arc::new(Ctx {
        manager: layer.manager().clone(),
        gate: Notify::new(),
    });
    let router = routes::<S>().with_state(ctx.clone()).layer(layer);
    (router, ctx)
}

/// Handlers return `Result<_, SessionError>`: a session error is the response.
type Reply = Result<String, SessionError>;

pub fn routes<S: SessionStore>() -> Router<Arc<Ctx<S>>> {
    Router::new()
        .route("/noop", get(|| async { "no session asked for" }))
        .route("/read", get(read))
        .route("/get/{key}", get(get_key))
        .route("/set/{key}/{value}", post(set))
        .route("/set-then-remove/{key}", post(set_then_remove))
        .route("/remove/{key}", post(remove))
        .route("/incr/{key}", post(incr))
        .route("/clear", post(clear))
        .route("/login/{user}", post(login))
        .route("/remember/{user}/{days}", post(remember))
        .route("/logout", post(logout))
        .route("/fail/{key}/{value}", post(fail))
        .route("/bad-request/{key}/{value}", post(bad_request))
        .route("/login-then-fail/{user}", post(login_then_fail))
        .route("/wait/set/{key}/{value}", post(wait_set::<S>))
        .route("/wait/remove/{key}", post(wait_remove::<S>))
        .route("/close-store/set/{key}/{value}", post(close_then_set::<S>))
        .route("/spawned/set/{key}/{value}", post(spawned_set))
}

/// `user=<id or ->; id=<stored or ->; keys=<n>`
async fn read(session: Session) -> String {
    format!(
        "user={}; id={}; empty={}",
        session.user_id().unwrap_or_else(|| "-".into()),
        if session.id().is_some() {
            "stored"
        } else {
            "-"
        },
        session.is_empty()
    )
}

async fn get_key(session: Session, Path(key): Path<String>) -> String {
    match session.get_value(&key) {
        Some(value) => value.to_string(),
        None => "none".into(),
    }
}

async fn set(session: Session, Path((key, value)): Path<(String, String)>) -> Reply {
    session.insert(&key, &value)?;
    Ok("ok".into())
}

async fn set_then_remove(session: Session, Path(key): Path<String>) -> Reply {
    session.insert(&key, 1)?;
    session.remove_value(&key);
    Ok("ok".into())
}

async fn remove(session: Session, Path(key): Path<String>) -> Reply {
    Ok(format!("{:?}", session.remove::<serde_json::Value>(&key)?))
}

async fn incr(session: Session, Path(key): Path<String>) -> Reply {
    let n = session.get::<i64>(&key)?.unwrap_or(0) + 1;
    session.insert(&key, n)?;
    Ok(n.to_string())
}

async fn clear(session: Session) -> &'static str {
    session.clear();
    "cleared"
}

async fn login(session: Session, Path(user): Path<String>) -> Reply {
    session.login(&user).await?;
    Ok(format!("hello {}", session.user_id().unwrap()))
}

/// A login whose session lives `days` idle, 90 days at most.
async fn remember(session: Session, Path((user, days)): Path<(String, i64)>) -> Reply {
    let day_ms = 86_400_000;
    let options = CreateOptions {
        idle_timeout_ms: Some(days * day_ms),
        absolute_timeout_ms: Some(90 * day_ms),
        ..CreateOptions::default()
    };
    session.login_with(&user, options).await?;
    Ok(format!("remembered {}", session.user_id().unwrap()))
}

async fn logout(session: Session) -> Reply {
    session.logout().await?;
    Ok("bye".into())
}

async fn fail(session: Session, Path((key, value)): Path<(String, String)>) -> StatusCode {
    session.insert(&key, &value).unwrap();
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn bad_request(session: Session, Path((key, value)): Path<(String, String)>) -> StatusCode {
    session.insert(&key, &value).unwrap();
    StatusCode::BAD_REQUEST
}

async fn login_then_fail(session: Session, Path(user): Path<String>) -> StatusCode {
    session.login(&user).await.unwrap();
    session.insert("after_login", 1).unwrap();
    StatusCode::INTERNAL_SERVER_ERROR
}

/// Loads the session, waits for the gate, then sets a key: the other request
/// the test sends meanwhile writes the same session in between.
async fn wait_set<S: SessionStore>(
    State(ctx): State<Arc<Ctx<S>>>,
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Reply {
    ctx.gate.notified().await;
    session.insert(&key, &value)?;
    Ok("ok".into())
}

async fn wait_remove<S: SessionStore>(
    State(ctx): State<Arc<Ctx<S>>>,
    session: Session,
    Path(key): Path<String>,
) -> Reply {
    ctx.gate.notified().await;
    session.remove_value(&key);
    Ok("ok".into())
}

async fn close_then_set<S: SessionStore>(
    State(ctx): State<Arc<Ctx<S>>>,
    session: Session,
    Path((key, value)): Path<(String, String)>,
) -> Reply {
    session.insert(&key, &value)?;
    ctx.manager.close().await.unwrap();
    Ok("ok".into())
}

/// A clone of the session changed from another task of the same request.
async fn spawned_set(session: Session, Path((key, value)): Path<(String, String)>) -> Reply {
    let clone = session.clone();
    tokio::spawn(async move { clone.insert(&key, &value) })
        .await
        .unwrap()?;
    Ok("ok".into())
}

/// What came back.
pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub extensions: axum::http::Extensions,
}

impl Response {
    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    /// The one `Set-Cookie` for `name`, if any (panics on several).
    pub fn cookie_named(&self, name: &str) -> Option<String> {
        let mut found: Vec<String> = self
            .set_cookies()
            .into_iter()
            .filter(|c| c.starts_with(&format!("{name}=")))
            .collect();
        assert!(found.len() <= 1, "several Set-Cookie for {name}: {found:?}");
        found.pop()
    }

    /// The `session` cookie's new value: `Some(token)` when set, `Some("")`
    /// when deleted, `None` when untouched.
    pub fn session_cookie(&self) -> Option<String> {
        self.cookie_named("session").map(|c| {
            let value = c["session=".len()..].split(';').next().unwrap().to_owned();
            if value.is_empty() {
                assert!(
                    c.contains("; Max-Age=0"),
                    "a deletion expires the cookie: {c}"
                );
            }
            value
        })
    }

    /// The new session id the response set (panics if it set none).
    pub fn new_token(&self) -> String {
        match self.session_cookie() {
            Some(token) if !token.is_empty() => token,
            other => panic!("expected a new session cookie, got {other:?}"),
        }
    }

    pub fn deletes_session_cookie(&self) -> bool {
        self.session_cookie().as_deref() == Some("")
    }
}

/// Sends `method path` with `Cookie: session=<cookie>` when given.
pub async fn send(app: &Router, method: &str, path: &str, cookie: Option<&str>) -> Response {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("session={cookie}"));
    }
    send_request(app, request.body(Body::empty()).unwrap()).await
}

pub async fn send_request(app: &Router, request: Request<Body>) -> Response {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    Response {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
        extensions: parts.extensions,
    }
}

/// The stored data of `token` as JSON text, or `None` if it is not live.
pub async fn stored<S: SessionStore>(manager: &SessionManager<S>, token: &str) -> Option<String> {
    match manager.peek(token).await {
        Ok(session) => Some(session.record.data.as_json().to_owned()),
        Err(e) if e.is_not_found() => None,
        Err(e) => panic!("{e}"),
    }
}
