//! A small web app on `sessionmanager-axum`: a visit counter for everyone,
//! and login / logout.
//!
//! ```sh
//! cargo run -p sessionmanager-axum --example counter
//! ```
//!
//! Then open <http://localhost:3000>. The cookie is `Secure`, which browsers
//! accept over plain HTTP on `localhost` only; in production serve HTTPS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Router, serve};
use sessionmanager_axum::{ANONYMOUS_PREFIX, Session, SessionError, SessionLayer};
use sessionmanager_core::{ManagerConfig, SessionManager};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // In memory: sessions last as long as the process. For sessions that
    // survive restarts, use sessionmanager_sqlite::SqliteStore instead.
    let manager =
        SessionManager::in_memory(ManagerConfig::default()).map_err(std::io::Error::other)?;
    let app = router(Arc::new(manager));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("listening on http://localhost:3000");
    serve(listener, app).await
}

fn router(manager: Arc<SessionManager<sessionmanager_core::MemoryStore>>) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .layer(SessionLayer::new(manager))
}

async fn home(session: Session) -> Result<Html<String>, SessionError> {
    let visits = session.get::<u64>("visits")?.unwrap_or(0) + 1;
    session.insert("visits", visits)?;
    let account = match session.user_id() {
        Some(user) => format!(
            "<p>Logged in as <b>{}</b>.</p>\
             <form method=post action=/logout><button>Log out</button></form>",
            escape(&user)
        ),
        None => "<form method=post action=/login>\
                 <input name=user placeholder=name required> <button>Log in</button></form>"
            .to_owned(),
    };
    Ok(Html(format!(
        "<!doctype html><title>Counter</title>\
         <p>This session has seen this page {visits} time(s).</p>{account}"
    )))
}

async fn login(
    session: Session,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, SessionError> {
    // A real app checks a password here; this demo trusts the name.
    let user = form.get("user").map_or("", |user| user.trim());
    if user.is_empty() || user.len() > 64 || user.starts_with(ANONYMOUS_PREFIX) {
        return Ok((StatusCode::BAD_REQUEST, "choose another name").into_response());
    }
    // The visit count moves to a new session id; the old id stops working.
    session.login(user).await?;
    Ok(Redirect::to("/").into_response())
}

async fn logout(session: Session) -> Result<Redirect, SessionError> {
    session.logout().await?;
    Ok(Redirect::to("/"))
}

/// Makes a user-chosen name safe to put into HTML.
fn escape(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
            out
        })
}
