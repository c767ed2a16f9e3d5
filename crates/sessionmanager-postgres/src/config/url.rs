//! Parsing store URLs (`PostgresConfig::from_url`, where the options are listed).

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sessionmanager_core::{Error, Result, percent_decode, redact_url};
use sessionmanager_tls::{TlsFiles, Verify};
use tokio_postgres::config::SslMode;

use super::PostgresConfig;

/// libpq's options that tokio-postgres understands, passed on as they are.
const PASSED_ON: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// The store's own options.
const OURS: &[&str] = &[
    "pool_size",
    "timeout_ms",
    "sweep_interval_ms",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
];

fn bad(message: String) -> Error {
    Error::InvalidArgument(message)
}

/// Parses a store URL into a configuration (with the system clock).
pub(super) fn parse(url: &str) -> Result<PostgresConfig> {
    let shown = redact_url(url);
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(format!(
            "PostgreSQL store URL {shown:?} has no scheme; \
             expected \"postgresql://user@host:5432/database\""
        )));
    };
    if !matches!(
        scheme.to_ascii_lowercase().as_str(),
        "postgresql" | "postgres"
    ) {
        return Err(bad(format!(
            "{shown:?} is not a PostgreSQL URL; expected \"postgresql://user@host:5432/database\""
        )));
    }
    // The last '@' ends the user name and password (as for every store
    // URL), so a password may hold '/', '?', '#' or '@' unencoded; libpq's
    // parser would end it at the first '@' and read the rest as the host.
    let (userinfo, public) = match rest.rsplit_once('@') {
        Some((userinfo, public)) => (Some(userinfo), public),
        None => (None, rest),
    };
    let (location, query) = public.split_once('?').unwrap_or((public, ""));
    let mut passed_on = Vec::new();
    let mut pool_size = PostgresConfig::DEFAULT_POOL_SIZE;
    let mut timeout = PostgresConfig::DEFAULT_TIMEOUT;
    let mut sweep_interval = Some(PostgresConfig::DEFAULT_SWEEP_INTERVAL);
    let mut ssl_mode = "prefer".to_owned();
    let (mut root_cert, mut cert, mut key) = (None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = |min: u64, max: u64, what: &str| {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .ok_or_else(|| {
                    bad(format!(
                        "postgresql:// option {name} must be \
                         {what} from {min} to {max}, got {value:?}"
                    ))
                })
        };
        match name {
            "pool_size" => pool_size = number(1, 1024, "a whole number")? as usize,
            "timeout_ms" => {
                timeout = Duration::from_millis(number(1, 3_600_000, "milliseconds")?);
            }
            "sweep_interval_ms" => {
                sweep_interval = match number(0, 86_400_000, "milliseconds")? {
                    0 => None,
                    ms => Some(Duration::from_millis(ms)),
                }
            }
            "sslmode" => ssl_mode = value.to_ascii_lowercase(),
            "sslrootcert" | "sslcert" | "sslkey" => {
                let path = percent_decode(value)
                    .filter(|path| !path.is_empty())
                    .map(PathBuf::from)
                    .ok_or_else(|| {
                        bad(format!(
                            "postgresql:// option {name} must name a file, got {value:?}"
                        ))
                    })?;
                match name {
                    "sslrootcert" => root_cert = Some(path),
                    "sslcert" => cert = Some(path),
                    _ => key = Some(path),
                }
            }
            _ if PASSED_ON.contains(&name) => passed_on.push(pair),
            _ => {
                return Err(bad(format!(
                    "unknown postgresql:// option {name:?} in \
                     {shown:?}; known options: {}, and libpq's {}",
                    OURS.join(", "),
                    PASSED_ON.join(", ")
                )));
            }
        }
    }
    let mut rebuilt = format!("postgresql://{location}");
    if !passed_on.is_empty() {
        rebuilt.push('?');
        rebuilt.push_str(&passed_on.join("&"));
    }
    let mut connection = tokio_postgres::Config::from_str(&rebuilt).map_err(|e| {
        let cause = std::error::Error::source(&e)
            .map(|c| format!(": {c}"))
            .unwrap_or_default();
        bad(format!(
            "invalid PostgreSQL store URL {shown:?}: {e}{cause}"
        ))
    })?;
    if let Some(userinfo) = userinfo {
        let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
        let decode = |text: &str, what: &str| {
            percent_decode(text).ok_or_else(|| {
                bad(format!(
                    "the {what} in PostgreSQL store URL {shown:?} has a '%' not \
                     followed by two hex digits, or is not UTF-8 once decoded"
                ))
            })
        };
        let user = decode(user, "user name")?;
        if !user.is_empty() {
            connection.user(&user);
        }
        if userinfo.contains(':') {
            connection.password(decode(password, "password")?);
        }
    }
    if connection.get_user().is_none() {
        return Err(bad(format!(
            "PostgreSQL store URL {shown:?} names no user; \
             write \"postgresql://user@host/database\""
        )));
    }
    if connection.get_hosts().is_empty() {
        return Err(bad(format!(
            "PostgreSQL store URL {shown:?} names no host; \
             write \"postgresql://user@host/database\""
        )));
    }
    let (mode, verify) = match ssl_mode.as_str() {
        "disable" => (SslMode::Disable, Verify::Nothing),
        "prefer" | "allow" => (SslMode::Prefer, Verify::Nothing),
        // libpq: with a root certificate file, `require` checks the chain.
        "require" if root_cert.is_some() => (SslMode::Require, Verify::ChainOnly),
        "require" => (SslMode::Require, Verify::Nothing),
        "verify-ca" => (SslMode::Require, Verify::ChainOnly),
        "verify-full" => (SslMode::Require, Verify::Full),
        other => {
            return Err(bad(format!(
                "postgresql:// option sslmode must be disable, prefer, \
                 require, verify-ca or verify-full, got {other:?}"
            )));
        }
    };
    connection.ssl_mode(mode);
    let client = match (cert, key) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(bad(
                "postgresql:// options sslcert and sslkey go together: give both, or neither"
                    .to_owned(),
            ));
        }
    };
    if mode == SslMode::Disable && (root_cert.is_some() || client.is_some()) {
        return Err(bad(
            "postgresql:// options sslrootcert, sslcert and sslkey need TLS, but sslmode=disable"
                .to_owned(),
        ));
    }
    let tls = TlsFiles {
        ca_certs: root_cert,
        client,
        verify,
    };
    if connection.get_connect_timeout().is_none() {
        connection.connect_timeout(timeout);
    }
    if connection.get_application_name().is_none() {
        connection.application_name("pysessionmanager");
    }
    Ok(PostgresConfig {
        pool_size,
        timeout,
        sweep_interval,
        tls,
        ..PostgresConfig::new(connection)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        parse(url).unwrap_err().to_string()
    }

    #[test]
    fn a_full_url_is_understood() {
        let c = parse(
            "postgresql://app:s3cret@db.example:6543/sessions?pool_size=3&timeout_ms=1500\
             &sweep_interval_ms=0&application_name=web",
        )
        .unwrap();
        assert_eq!(c.pool_size, 3);
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.sweep_interval, None);
        assert_eq!(c.connection.get_user(), Some("app"));
        assert_eq!(c.connection.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(c.connection.get_dbname(), Some("sessions"));
        assert_eq!(c.connection.get_ports(), &[6543]);
        assert_eq!(c.connection.get_application_name(), Some("web"));
        assert_eq!(
            c.connection.get_connect_timeout(),
            Some(&Duration::from_millis(1500))
        );
        assert_eq!(
            c.describe(),
            "PostgreSQL at db.example:6543 (database \"sessions\", user \"app\")"
        );
    }

    #[test]
    fn the_last_at_ends_the_password() {
        for (url, password) in [
            ("postgresql://app:pa@pw@db/app", "pa@pw"),
            ("postgresql://app:pa?pw@db/app?pool_size=2", "pa?pw"),
            ("postgresql://app:p/a#s@db/app", "p/a#s"),
            ("postgresql://app:p%40ss@db/app", "p@ss"),
        ] {
            let c = parse(url).unwrap();
            assert_eq!(c.connection.get_user(), Some("app"), "{url}");
            assert_eq!(
                c.connection.get_password(),
                Some(password.as_bytes()),
                "{url}"
            );
            assert_eq!(c.connection.get_dbname(), Some("app"), "{url}");
            assert!(c.describe().starts_with("PostgreSQL at db:5432"), "{url}");
        }
    }

    #[test]
    fn defaults() {
        let c = parse("postgres://app@localhost/app").unwrap();
        assert_eq!(c.pool_size, PostgresConfig::DEFAULT_POOL_SIZE);
        assert_eq!(c.timeout, PostgresConfig::DEFAULT_TIMEOUT);
        assert_eq!(
            c.sweep_interval,
            Some(PostgresConfig::DEFAULT_SWEEP_INTERVAL)
        );
        assert_eq!(
            c.connection.get_application_name(),
            Some("pysessionmanager")
        );
    }

    #[test]
    fn bad_urls_name_the_problem_and_hide_the_password() {
        for (url, expected) in [
            ("127.0.0.1:5432/app", "has no scheme"),
            ("mysql://app@db/app", "is not a PostgreSQL URL"),
            (
                "postgresql://app:hunter2@db/app?pool=3",
                "unknown postgresql:// option \"pool\"",
            ),
            (
                "postgresql://app:hunter2@db/app?pool_size=0",
                "pool_size must be a whole number from 1",
            ),
            (
                "postgresql://app:hunter2@db/app?timeout_ms=soon",
                "timeout_ms must be milliseconds",
            ),
            (
                "postgresql://app:hunter2@db:notaport/app",
                "invalid PostgreSQL store URL",
            ),
            (
                "postgresql://app:hunter2@db/app?sslmode=sometimes",
                "sslmode must be disable, prefer, require, verify-ca or verify-full",
            ),
            (
                "postgresql://app:hunter2@db/app?sslmode=disable&sslrootcert=ca.pem",
                "need TLS, but sslmode=disable",
            ),
            (
                "postgresql://app:hunter2@db/app?sslkey=k.pem",
                "sslcert and sslkey go together",
            ),
            ("postgresql://db/app", "names no user"),
            ("postgresql://app@/app", "names no host"),
            (
                "postgresql://app@db/app?password=hunter2&x=1",
                "unknown postgresql:// option \"x\"",
            ),
        ] {
            let message = err(url);
            assert!(message.contains(expected), "{url}: {message}");
            assert!(!message.contains("hunter2"), "{url}: {message}");
        }
    }
}
