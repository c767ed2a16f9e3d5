//! [`SessionService`]: gives each request its session, and when the response
//! comes back writes the changes and sets or deletes the cookie.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response};
use sessionmanager_core::{Basis, SessionManager, SessionStore};
use tower_service::Service;

use crate::backend::{Backend, BoxFuture};
use crate::config::CookieConfig;
use crate::cookie;
use crate::error::SessionError;
use crate::save::{self, Pending};
use crate::state::{Phase, Shared, Slot};

/// The service [`SessionLayer`](crate::SessionLayer) wraps around `I`.
pub struct SessionService<I> {
    inner: I,
    backend: Arc<dyn Backend>,
    cookie: Arc<CookieConfig>,
}

impl<I> SessionService<I> {
    pub(crate) fn new<S: SessionStore>(
        inner: I,
        manager: Arc<SessionManager<S>>,
        cookie: Arc<CookieConfig>,
    ) -> Self {
        Self {
            inner,
            backend: manager,
            cookie,
        }
    }
}

impl<I: Clone> Clone for SessionService<I> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            backend: self.backend.clone(),
            cookie: self.cookie.clone(),
        }
    }
}

impl<I: fmt::Debug> fmt::Debug for SessionService<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl<I, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<I>
where
    I: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    I::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = I::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let incoming = cookie::find(request.headers(), &self.cookie.name);
        let shared = Arc::new(Shared::new(self.backend.clone(), incoming));
        request.extensions_mut().insert(Slot(shared.clone()));
        // Call the instance that was polled ready, leave a fresh clone in its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let cookie = self.cookie.clone();
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(finish(&shared, &cookie, response).await)
        })
    }
}

/// Saves the request's session and sets the cookie. A session no handler
/// asked for is left alone (no store access, no cookie change). A save that
/// fails turns the response into a bare error status carrying the
/// `Arc<SessionError>` in its extensions, because the handler's response
/// would claim changes that were not kept.
async fn finish<B: Default>(
    shared: &Shared,
    config: &CookieConfig,
    mut response: Response<B>,
) -> Response<B> {
    let (pending, incoming, own_lifetime) = {
        let mut state = shared.lock();
        if state.phase != Phase::Open {
            return response;
        }
        state.phase = Phase::Closed;
        // Nothing reads `basis`, `stored` or `incoming` once closed; `data` stays
        // readable after the response.
        let pending = Pending {
            sid: state.sid.clone(),
            basis: std::mem::replace(&mut state.basis, Basis::Version(0)),
            stored: std::mem::take(&mut state.stored),
            data: state.data.clone(),
        };
        (
            pending,
            std::mem::take(&mut state.incoming),
            state.own_lifetime,
        )
    };
    let failed = response.status().is_server_error();
    let sid = match save::save(&*shared.backend, pending, failed).await {
        Ok(sid) => sid,
        Err(error) => return error_response(error),
    };
    let headers = response.headers_mut();
    // The response depends on the cookie: shared caches must not serve it to others.
    add_vary_cookie(headers);
    match sid {
        Some(sid)
            if incoming.token.as_ref() != Some(&sid)
                || config.max_age.is_some()
                || own_lifetime.is_some() =>
        {
            headers.append(SET_COOKIE, cookie::set(config, &sid, own_lifetime));
        }
        Some(_) => {}
        None if incoming.present => {
            headers.append(SET_COOKIE, cookie::delete(config));
        }
        None => {}
    }
    response
}

fn error_response<B: Default>(error: SessionError) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = error.status();
    response.extensions_mut().insert(Arc::new(error));
    response
}

fn add_vary_cookie(headers: &mut HeaderMap) {
    let covered = headers.get_all(VARY).iter().any(|value| {
        value.to_str().is_ok_and(|value| {
            value
                .split(',')
                .map(str::trim)
                .any(|field| field == "*" || field.eq_ignore_ascii_case("cookie"))
        })
    });
    if !covered {
        headers.append(VARY, HeaderValue::from_static("cookie"));
    }
}
