//! The session cookie's settings, checked when they are set so that a bad
//! value fails at startup instead of producing a broken `Set-Cookie` header.

use std::time::Duration;

/// The cookie's `SameSite` attribute: whether browsers send it on requests
/// that other sites start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SameSite {
    /// Only on requests this site starts.
    Strict,
    /// Also on top-level navigations from other sites (following a link),
    /// not on their embedded or background requests (the default: it blocks
    /// most cross-site request forgery and keeps links into the site working).
    #[default]
    Lax,
    /// On every request; browsers accept this only on `Secure` cookies.
    None,
}

impl SameSite {
    fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "Strict",
            Self::Lax => "Lax",
            Self::None => "None",
        }
    }
}

/// Everything about the session cookie.
#[derive(Clone, Debug)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    /// `None`: a browser-session cookie, dropped when the browser closes.
    pub(crate) max_age: Option<Duration>,
}

/// The default cookie name, the same as Flask's.
pub(crate) const DEFAULT_NAME: &str = "session";

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: DEFAULT_NAME.to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The attributes after `name=value`, shared by setting and deleting.
    pub(crate) fn attributes(&self) -> String {
        let mut out = format!("; Path={}", self.path);
        if let Some(domain) = &self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if self.http_only {
            out.push_str("; HttpOnly");
        }
        if self.secure {
            out.push_str("; Secure");
        }
        out.push_str("; SameSite=");
        out.push_str(self.same_site.as_str());
        out
    }

    /// Rules that involve several settings, checked once they are all known.
    /// Browsers silently drop cookies that break them, which would look like
    /// sessions that never stick.
    pub(crate) fn check_combination(&self) -> Result<(), String> {
        if self.same_site == SameSite::None && !self.secure {
            return Err(
                "SameSite=None cookies must be Secure (browsers drop them otherwise)".into(),
            );
        }
        if self.name.starts_with("__Secure-") && !self.secure {
            return Err(format!("the cookie name {:?} requires Secure", self.name));
        }
        if self.name.starts_with("__Host-")
            && !(self.secure && self.path == "/" && self.domain.is_none())
        {
            return Err(format!(
                "the cookie name {:?} requires Secure, Path=/ and no Domain",
                self.name
            ));
        }
        Ok(())
    }
}

/// A cookie name is an RFC 6265 token: visible ASCII without separators.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid cookie name {name:?}: use visible \
             ASCII without ()<>@,;:\\\"/[]?={{}} or spaces"
        ))
    }
}

/// A path starts with `/` and holds visible ASCII other than `;`.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    let ok = path.starts_with('/') && path.bytes().all(|b| b.is_ascii_graphic() && b != b';');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid cookie path {path:?}: it must start \
             with '/' and hold visible ASCII other than ';'"
        ))
    }
}

/// A domain is a host name: letters, digits, `-` and `.`.
pub(crate) fn check_domain(domain: &str) -> Result<(), String> {
    let ok = !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid cookie domain {domain:?}: use a host name (letters, digits, '-' and '.')"
        ))
    }
}
