//! [`SessionLayer`]: the configuration, and the tower layer that applies it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sessionmanager_core::{SessionManager, SessionStore};
use tower_layer::Layer;

use crate::config::{self, CookieConfig, SameSite};
use crate::service::SessionService;

/// Gives each request a [`Session`](crate::Session) backed by a
/// [`SessionManager`], and writes its changes and cookie when the response
/// goes out.
///
/// The cookie defaults to `session=<id>; Path=/; HttpOnly; Secure;
/// SameSite=Lax`, lasting as long as the browser session. The stored
/// session's expiry is the manager's
/// ([`ManagerConfig::expiry`](sessionmanager_core::ManagerConfig)).
///
/// The `with_*` methods panic on a value that cannot go into a `Set-Cookie`
/// header, and [`Layer::layer`] (called by `Router::layer`) panics on a
/// combination browsers reject, so a bad setting fails at startup rather
/// than as sessions that never stick.
pub struct SessionLayer<S> {
    manager: Arc<SessionManager<S>>,
    cookie: Arc<CookieConfig>,
}

impl<S> Clone for SessionLayer<S> {
    fn clone(&self) -> Self {
        Self {
            manager: self.manager.clone(),
            cookie: self.cookie.clone(),
        }
    }
}

impl<S> fmt::Debug for SessionLayer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore> SessionLayer<S> {
    /// A layer keeping sessions in `manager`, with the default cookie.
    pub fn new(manager: Arc<SessionManager<S>>) -> Self {
        Self {
            manager,
            cookie: Arc::new(CookieConfig::default()),
        }
    }

    /// The manager, for work outside requests ("log out everywhere", purging).
    pub fn manager(&self) -> &Arc<SessionManager<S>> {
        &self.manager
    }

    fn cookie_mut(&mut self) -> &mut CookieConfig {
        Arc::make_mut(&mut self.cookie)
    }

    /// The cookie's name (default `session`).
    ///
    /// # Panics
    /// If `name` is empty or not an RFC 6265 token (visible ASCII without
    /// separators such as `;`, `=`, `,` or spaces).
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        config::check_name(&name).unwrap_or_else(|e| panic!("{e}"));
        self.cookie_mut().name = name;
        self
    }

    /// The cookie's `Path` (default `/`).
    ///
    /// # Panics
    /// If `path` does not start with `/` or holds `;`, spaces or control characters.
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        config::check_path(&path).unwrap_or_else(|e| panic!("{e}"));
        self.cookie_mut().path = path;
        self
    }

    /// The cookie's `Domain`, which also sends it to subdomains; by default
    /// none, so only the host that set it gets it back.
    ///
    /// # Panics
    /// If `domain` is not a host name (letters, digits, `-` and `.`).
    pub fn with_domain(mut self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        config::check_domain(&domain).unwrap_or_else(|e| panic!("{e}"));
        self.cookie_mut().domain = Some(domain);
        self
    }

    /// Whether the cookie is `Secure`, sent over HTTPS only (default `true`).
    /// Browsers treat `http://localhost` as secure, so local development
    /// works without turning this off.
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.cookie_mut().secure = secure;
        self
    }

    /// Whether the cookie is `HttpOnly`, out of reach of page scripts
    /// (default `true`).
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.cookie_mut().http_only = http_only;
        self
    }

    /// The cookie's `SameSite` (default [`SameSite::Lax`]).
    pub fn with_same_site(mut self, same_site: SameSite) -> Self {
        self.cookie_mut().same_site = same_site;
        self
    }

    /// How long the browser keeps the cookie: `None` (the default) until the
    /// browser closes, `Some(age)` for a persistent cookie with `Max-Age`,
    /// which is then sent again with every response that read the session,
    /// so it slides along with the stored session's idle timeout. Whole
    /// seconds count. The stored session's own expiry still decides; set
    /// `age` to the manager's idle timeout to keep the two together.
    pub fn with_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.cookie_mut().max_age = max_age;
        self
    }
}

impl<S: SessionStore, I> Layer<I> for SessionLayer<S> {
    type Service = SessionService<I>;

    /// # Panics
    /// If the cookie settings break a rule browsers enforce: `SameSite=None`
    /// without `Secure`, a `__Secure-` name without `Secure`, or a `__Host-`
    /// name without `Secure`, with a `Path` other than `/` or with a `Domain`.
    fn layer(&self, inner: I) -> Self::Service {
        self.cookie
            .check_combination()
            .unwrap_or_else(|e| panic!("invalid SessionLayer cookie settings: {e}"));
        SessionService::new(inner, self.manager.clone(), self.cookie.clone())
    }
}
