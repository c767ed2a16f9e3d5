//! Reading the session cookie from a request and writing `Set-Cookie`. Done
//! by hand: it is a few lines, and the session cookie only ever holds a token
//! of URL-safe base64, so no quoting or percent-encoding arises.

use std::time::Duration;

use http::header::{COOKIE, HeaderMap, HeaderValue};
use sessionmanager_core::SessionToken;

use crate::config::CookieConfig;

/// What the request's cookie said.
#[derive(Clone, Debug, Default)]
pub(crate) struct Incoming {
    /// Whether a cookie with the session cookie's name came at all.
    pub(crate) present: bool,
    /// Its value, if it has the exact shape of a token. Anything else (junk,
    /// a forged or oversized value) is no session and never reaches the store.
    pub(crate) token: Option<SessionToken>,
}

/// The first cookie named `name` in the request's `Cookie` headers (HTTP/2
/// may split them into several), as browsers send the most specific first.
pub(crate) fn find(headers: &HeaderMap, name: &str) -> Incoming {
    for header in headers.get_all(COOKIE) {
        for pair in header.as_bytes().split(|&b| b == b';') {
            let Some(eq) = pair.iter().position(|&b| b == b'=') else {
                continue;
            };
            if pair[..eq].trim_ascii() == name.as_bytes() {
                let value = pair[eq + 1..].trim_ascii();
                return Incoming {
                    present: true,
                    token: std::str::from_utf8(value)
                        .ok()
                        .and_then(SessionToken::parse),
                };
            }
        }
    }
    Incoming::default()
}

/// `Set-Cookie` carrying `token`, living `own_lifetime` if the session
/// chose one, else the layer's `max_age`.
pub(crate) fn set(
    config: &CookieConfig,
    token: &SessionToken,
    own_lifetime: Option<Duration>,
) -> HeaderValue {
    let max_age = own_lifetime
        .or(config.max_age)
        .map(|age| format!("; Max-Age={}", age.as_secs()))
        .unwrap_or_default();
    header(format!(
        "{}={}{}{max_age}",
        config.name,
        token.as_str(),
        config.attributes()
    ))
}

/// `Set-Cookie` that makes the browser drop the cookie. `Expires` in the past
/// as well as `Max-Age=0`, for clients that know only one of them.
pub(crate) fn delete(config: &CookieConfig) -> HeaderValue {
    header(format!(
        "{}={}; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
        config.name,
        config.attributes()
    ))
}

fn header(text: String) -> HeaderValue {
    HeaderValue::try_from(text)
        .expect("cookie name, path and domain are checked when configured; tokens are base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(COOKIE, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn finds_the_first_cookie_of_that_name_across_headers() {
        let token = SessionToken::generate().unwrap();
        let found = find(
            &headers(&[
                "a=1; other=x",
                &format!(" session = {} ; session=junk", token.as_str()),
            ]),
            "session",
        );
        assert!(found.present);
        assert_eq!(found.token, Some(token));
    }

    #[test]
    fn junk_is_present_but_not_a_token() {
        for value in ["session=", "session=abc", "session=\"quoted\"", "session"] {
            let found = find(&headers(&[value]), "session");
            assert!(found.token.is_none(), "{value}");
            assert_eq!(found.present, value.contains('='), "{value}");
        }
        let none = find(&headers(&["sessionx=1; xsession=2"]), "session");
        assert!(!none.present);
    }

    #[test]
    fn non_utf8_header_is_no_token() {
        let mut map = HeaderMap::new();
        map.append(
            COOKIE,
            HeaderValue::from_bytes(b"session=\xff\xfe").unwrap(),
        );
        let found = find(&map, "session");
        assert!(found.present && found.token.is_none());
    }
}
