//! Hiding passwords in store URLs before they reach a message or a repr.

use crate::error::Error;

/// `url` with any password replaced by `***`, for reprs and messages.
///
/// One rule for every store URL: the user info runs from the start of the
/// authority to the *last* `@`, so a password holding an unencoded `/`, `?`,
/// `#` or `@` is hidden whole. Also hidden: a `password=` option (or libpq
/// `key=value` keyword), quoted or not; the whole user info of a URL whose
/// `://` is mangled; and a "port" that is not a number in a URL without
/// user info (`postgresql://postgres:secret` is a password with its `@host`
/// forgotten). Hiding too much is preferred to hiding too little. The user
/// name stays, to tell stores apart.
pub fn redact_url(url: &str) -> String {
    hide(url, url_secrets(url))
}

/// `message` (an error about `url`) with everything of the URL that may be
/// secret (see [`redact_url`]) replaced by `***`, wherever the message
/// quotes it, pieces included. Errors about a URL go through this, so no
/// parser's or server's wording can leak a password, however the URL was
/// mangled. A user name stays when the URL is well formed (a login error
/// that names the user is worth it); in a mangled URL, where it may be a
/// password, it is hidden too.
pub fn scrub(message: &str, url: &str) -> String {
    hide(message, url_secrets(url))
}

/// `err` with its message scrubbed (see [`scrub`]); unchanged (its source
/// kept) when the message quotes nothing of the URL's secrets.
pub fn scrub_error(err: Error, url: &str) -> Error {
    let (text, rebuild): (String, fn(String) -> Error) = match &err {
        Error::InvalidArgument(text) => (text.clone(), Error::InvalidArgument),
        Error::Unavailable(cause) => (cause.to_string(), |t| Error::Unavailable(t.into())),
        Error::Store(cause) => (cause.to_string(), |t| Error::Store(t.into())),
        _ => return err,
    };
    let scrubbed = scrub(&text, url);
    if scrubbed == text {
        err
    } else {
        rebuild(scrubbed)
    }
}

fn hide(text: &str, mut secrets: Vec<String>) -> String {
    // Longest first, so a secret inside another is not half replaced.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = hide_password_values(text);
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret.as_str(), "***");
    }
    out
}

/// The parts of `url` that may be secret, as written and percent-decoded.
fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    // Mangled: no "://", an empty authority followed by user-info-like text
    // ("postgresql:///u:pw", unlike "sqlite:////var/sessions.db"), or a
    // "scheme" holding what no scheme may ("redis:/u:pw://").
    let well_formed = url.split_once("://").filter(|(scheme, rest)| {
        !(rest.starts_with('/') && rest.contains([':', '@']))
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    match well_formed {
        // A mangled separator ("redis//:pw@h", "postgresql:/u:pw@h",
        // "redis//u:pw"): all before the last '@', and all after the first
        // ':' (of the rest, when there is a "://"), may be user info. Guesses
        // of a character or two are left out (they would blank out whole
        // messages).
        None => {
            let before_at = url.rsplit_once('@').map(|(before, _)| before);
            let after_colon = url.split_once(':').map(|(_, after)| after);
            secrets.extend(
                [before_at, after_colon]
                    .into_iter()
                    .flatten()
                    .filter(|guess| guess.len() >= 3)
                    .map(str::to_owned),
            );
        }
        Some((_, rest)) => {
            let host = match rest.rsplit_once('@') {
                Some((userinfo, host)) => {
                    if let Some((_, password)) = userinfo.split_once(':') {
                        secrets.push(password.to_owned());
                    }
                    host
                }
                None => rest,
            };
            // What follows the host's ':' (after an IPv6 address's ']'): a
            // port, then maybe a path or query; anything else there is a
            // password whose "@host" was forgotten, and all of it is hidden.
            let after_host = match host.strip_prefix('[') {
                Some(v6) => v6.split_once(']').map_or("", |(_, after)| after),
                None => host,
            };
            if let Some((_, port)) = after_host.split_once(':') {
                let digits = port.bytes().take_while(u8::is_ascii_digit).count();
                // A ',' starts the next host of a list (Sentinel's).
                let after = port.as_bytes().get(digits);
                let a_port = digits > 0 && matches!(after, None | Some(b'/' | b'?' | b','));
                if !a_port {
                    secrets.push(port.to_owned());
                }
            }
        }
    }
    with_pieces(secrets)
}

/// `secrets` with their pieces and percent-decoded forms added.
fn with_pieces(mut secrets: Vec<String>) -> Vec<String> {
    // A parser that ends the user info at another '@' or ':' than this rule
    // would quote a piece of the password: each piece is hidden too (but
    // not one of a character or two, which would blank out whole messages).
    let pieces: Vec<String> = secrets
        .iter()
        .flat_map(|s| s.split(['@', ':', '/', '?', '#', '=', '&']))
        .filter(|piece| piece.len() >= 3)
        .map(str::to_owned)
        .collect();
    secrets.extend(pieces);
    let decoded: Vec<String> = secrets.iter().filter_map(|s| percent_decoded(s)).collect();
    secrets.extend(decoded);
    secrets
}

/// `text` percent-decoded, when it holds an escape and decodes to UTF-8.
fn percent_decoded(text: &str) -> Option<String> {
    text.contains('%').then(|| percent_decode(text)).flatten()
}

/// `text` (a part of a store URL) percent-decoded as UTF-8, or `None` when
/// a `%` is not followed by two hex digits or the bytes are not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Replaces the value of every `password=` (a query option such as
/// `password=` or `sentinel_password=`, or a libpq keyword, quoted or not)
/// with `***`.
fn hide_password_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        let before = rest[..at].strip_suffix("sentinel_").unwrap_or(&rest[..at]);
        let preceded = before
            .chars()
            .next_back()
            .is_none_or(|c| matches!(c, '?' | '&' | ' ' | '\t'));
        let value_start = at + "password=".len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        if !preceded {
            continue; // another option's name ending in "password"
        }
        let value_end = if let Some(quoted) = rest.strip_prefix('\'') {
            // libpq's quoting: '\'' and '\\' are escapes inside single quotes.
            let mut end = quoted.len();
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = i + 1;
                        break;
                    }
                    _ => {}
                }
            }
            1 + end
        } else {
            rest.find(['&', ' ', '\t', '#']).unwrap_or(rest.len())
        };
        out.push_str("***");
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::redact_url as redact;

    #[test]
    fn redact_hides_passwords_wherever_they_are() {
        assert_eq!(
            redact("postgresql://app:s3cret@db/app?x=1"),
            "postgresql://app:***@db/app?x=1"
        );
        assert_eq!(
            redact("postgresql://app@db/app?password=s3cret&pool_size=2"),
            "postgresql://app@db/app?password=***&pool_size=2"
        );
        assert_eq!(redact("postgresql://db/app"), "postgresql://db/app");
        assert_eq!(redact("postgresql://app@db/app"), "postgresql://app@db/app");
        // Unencoded '/', '?' and '#' in the password.
        for password in ["s3/cret", "s3?cret", "s3#cret", "a@b/c"] {
            let url = format!("postgresql://app:{password}@db/app");
            assert_eq!(redact(&url), "postgresql://app:***@db/app", "{url}");
        }
        // libpq's key=value form, quoted or not, and a lookalike option kept.
        assert_eq!(
            redact("host=db user=app password=s3cret dbname=x"),
            "host=db user=app password=*** dbname=x"
        );
        assert_eq!(
            redact("host=db password='se cr\\'et' dbname=x"),
            "host=db password=*** dbname=x"
        );
        assert_eq!(
            redact("postgresql://db/app?old_password=x&password=s3cret"),
            "postgresql://db/app?old_password=x&password=***"
        );
    }

    #[test]
    fn redact_hides_every_password() {
        assert_eq!(
            redact("redis://:hunter2@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact("redis://app:pa/ss?w#rd@host:6379/0?prefix=a"),
            "redis://app:***@host:6379/0?prefix=a"
        );
        assert_eq!(redact("valkey://host/1"), "valkey://host/1");
        assert_eq!(
            redact("redis+sentinel://:hunter2@s1:26379,s2:26380/m?sentinel_password=s3cret&x=1"),
            "redis+sentinel://:***@s1:26379,s2:26380/m?sentinel_password=***&x=1"
        );
    }

    #[test]
    fn mangled_urls_never_show_their_password() {
        for url in [
            "redis//:pw-SECRET@host/0",
            "postgresql:/app:pw-SECRET@host/db",
            "postgresql://app:pa?pw-SECRET@host/db",
            "postgresql://app:pa@pw-SECRET@host/db",
            "postgresql://postgres:pw-SECRET",
            "redis://host:pw-SECRET/0",
            "redis:pw-SECRET@host",
            "postgresql://app:pw%2DSECRET@db/app",
        ] {
            let shown = redact(url);
            assert!(!shown.contains("SECRET"), "{url} -> {shown}");
        }
        // What is not secret stays readable.
        assert_eq!(redact("redis://[::1]/0"), "redis://[::1]/0");
        assert_eq!(redact("redis://[::1]:6380/0"), "redis://[::1]:6380/0");
        assert_eq!(
            redact("postgresql://db:5432/app"),
            "postgresql://db:5432/app"
        );
    }

    #[test]
    fn a_message_quoting_any_part_of_the_user_info_is_scrubbed() {
        let url = "postgresql://app:pa@pw-SECRET@host/db";
        let message = "invalid host \"pw-SECRET@host\" in pa@pw-SECRET";
        assert!(!super::scrub(message, url).contains("SECRET"));
        let named = "connection refused for user \"app\"";
        assert_eq!(super::scrub(named, "postgresql://app:pw@h/db"), named);
    }
}
