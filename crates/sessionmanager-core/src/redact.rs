//! Hiding passwords in store URLs before they reach a message or a repr.

/// `url` with any password replaced by `***`, for messages and reprs: in
/// the user info (which runs to the last '@', so a password holding '/',
/// '?', '#' or '@' is hidden whole), in a `password=` option, and in libpq's
/// `key=value` form. For store URLs of every scheme.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return hide_password_values(url);
    };
    // A password may hold an unencoded '/', '?', '#' or '@'; hide too much
    // rather than too little: when there may be user info, it runs to the
    // last '@' there is.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let userinfo_end = rest[..authority_end]
        .contains(['@', ':'])
        .then(|| rest.rfind('@'))
        .flatten();
    let redacted = match userinfo_end {
        Some(at) => {
            let (userinfo, after) = (&rest[..at], &rest[at..]);
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***{after}"),
                None => format!("{scheme}://{rest}"),
            }
        }
        None => format!("{scheme}://{rest}"),
    };
    hide_password_values(&redacted)
}

/// Replaces the value of every `password=` (a query option, or a libpq
/// keyword, quoted or not) with `***`.
fn hide_password_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("password=") {
        let preceded = rest[..at]
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
    }
}
