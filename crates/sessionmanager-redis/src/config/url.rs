//! Parsing `redis://` URLs. Hand-written (the grammar is small) so that every
//! error names the part that is wrong and none echoes the password.

use std::time::Duration;

use sessionmanager_tls::{TlsFiles, Verify};

use super::{Address, RedisConfig, Server};

/// Longest accepted `timeout_ms`: a day. Longer is surely a typo.
const MAX_TIMEOUT_MS: u64 = 86_400_000;

/// What is wrong with a URL, in words that never quote its password.
#[derive(Debug)]
pub(super) struct UrlError(pub(super) String);

fn bad(message: impl Into<String>) -> UrlError {
    UrlError(message.into())
}

/// See [`RedisConfig::from_url`].
pub(super) fn parse(url: &str) -> Result<RedisConfig, UrlError> {
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad(
            "a Redis URL starts with redis://, like \"redis://127.0.0.1:6379/0\"",
        ));
    };
    let scheme = scheme.to_ascii_lowercase();
    let (base, sentinel, cluster) = match scheme.split_once('+') {
        Some((base, "sentinel")) => (base, true, false),
        Some((base, "cluster")) => (base, false, true),
        _ => (scheme.as_str(), false, false),
    };
    let tls = match base {
        "redis" | "valkey" => false,
        "rediss" | "valkeys" => true,
        _ => {
            return Err(bad(format!(
                "a Redis URL starts with redis:// or valkey:// (rediss:// or valkeys:// \
                 for TLS; redis+sentinel:// through Sentinel; redis+cluster:// for a \
                 cluster), not {scheme}://"
            )));
        }
    };
    // The last '@' ends the user name and password, so a password may hold
    // '/', '?', '#' or '@' unencoded; nothing after it is secret, so only
    // that part is ever quoted in errors.
    let (userinfo, public) = match rest.rsplit_once('@') {
        Some((userinfo, public)) => (Some(userinfo), public),
        None => (None, rest),
    };
    if public.contains('#') {
        return Err(bad("a Redis URL has no #fragment"));
    }
    let (location, query) = public.split_once('?').unwrap_or((public, ""));
    let (hosts, path) = match location.find('/') {
        Some(slash) => location.split_at(slash),
        None => (location, ""),
    };
    let mut config = if sentinel {
        let sentinels = hosts
            .split(',')
            .map(|hostport| host_and_port(hostport, RedisConfig::DEFAULT_SENTINEL_PORT))
            .collect::<Result<Vec<_>, _>>()?;
        let (service, db) = service_and_database(path)?;
        let mut config = RedisConfig::sentinel(sentinels, service);
        config.db = db;
        config
    } else if cluster {
        let seeds = hosts
            .split(',')
            .map(|hostport| host_and_port(hostport, RedisConfig::DEFAULT_PORT))
            .collect::<Result<Vec<_>, _>>()?;
        if !matches!(path, "" | "/" | "/0") {
            return Err(bad(format!(
                "a Redis Cluster has database 0 only; write {scheme}://host:port,host:port \
                 with no database, not {path:?}"
            )));
        }
        RedisConfig::cluster(seeds)
    } else {
        if hosts.contains(',') {
            return Err(bad(format!(
                "a {scheme}:// URL names one server; for the sentinels of a \
                 master write {base}+sentinel://host:port,host:port/service, for a \
                 cluster {base}+cluster://host:port,host:port"
            )));
        }
        let address = host_and_port(hosts, RedisConfig::DEFAULT_PORT)?;
        let mut config = RedisConfig::new(address.host, address.port);
        config.db = database(path)?;
        config
    };
    if let Some(userinfo) = userinfo {
        let (user, password) = credentials(userinfo)?;
        config.username = user;
        config.password = password;
    }
    let mut tls_settings = TlsFiles {
        ca_certs: None,
        client: None,
        verify: Verify::Full,
    };
    let (mut cert_file, mut key_file) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if name.starts_with("sentinel_") && !sentinel {
            return Err(bad(format!(
                "option {name} is for the sentinels of a redis+sentinel:// URL"
            )));
        }
        if name.starts_with("ssl_") && !tls {
            return Err(bad(format!(
                "option {name} is for TLS connections: write rediss:// (or valkeys://)"
            )));
        }
        let file = |value: &str| {
            decode(value)
                .ok()
                .filter(|path| !path.is_empty())
                .map(std::path::PathBuf::from)
                .ok_or_else(|| bad(format!("option {name} must name a file, got {value:?}")))
        };
        match name {
            "ssl_ca_certs" => tls_settings.ca_certs = Some(file(value)?),
            "ssl_certfile" => cert_file = Some(file(value)?),
            "ssl_keyfile" => key_file = Some(file(value)?),
            "ssl_cert_reqs" => {
                tls_settings.verify = match value.to_ascii_lowercase().as_str() {
                    "required" => Verify::Full,
                    "none" => Verify::Nothing,
                    _ => {
                        return Err(bad(format!(
                            "option ssl_cert_reqs must be required (the default: the server's \
                             certificate and host name are checked) or none, got {value:?}"
                        )));
                    }
                };
            }
            "prefix" => {
                let prefix = decode(value).map_err(|why| bad(format!("option prefix {why}")))?;
                if prefix.is_empty() {
                    return Err(bad("option prefix must not be empty: the prefix keeps \
                                    sessions apart from other data in the database"));
                }
                config.prefix = prefix;
            }
            "timeout_ms" => {
                config.timeout = value
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=MAX_TIMEOUT_MS).contains(ms))
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        bad(format!(
                            "option timeout_ms must be a whole number of \
                             milliseconds from 1 to {MAX_TIMEOUT_MS}, got {value:?}"
                        ))
                    })?;
            }
            "sweep_on_create" => {
                config.sweep_on_create = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 10_000)
                    .ok_or_else(|| {
                        bad(format!(
                            "option sweep_on_create must be a whole \
                             number from 0 to 10000, got {value:?}"
                        ))
                    })?;
            }
            "sweep_interval_ms" => {
                let interval = sessionmanager_core::url::sweep_interval(value, "redis://")
                    .map_err(|e| bad(e.to_string()))?;
                if interval.is_some_and(|i| i > RedisConfig::MAX_SWEEP_INTERVAL) {
                    return Err(bad(format!(
                        "option sweep_interval_ms must be at most {} (Redis removes an \
                         expired session by itself {} s after its expiry, unreported), \
                         got {value:?}",
                        RedisConfig::MAX_SWEEP_INTERVAL.as_millis(),
                        RedisConfig::KEEP_EXPIRED.as_secs()
                    )));
                }
                config.sweep_interval = interval;
            }
            "wait_replicas" => {
                config.wait_replicas =
                    value
                        .parse::<u32>()
                        .ok()
                        .filter(|n| *n <= 100)
                        .ok_or_else(|| {
                            bad(format!(
                                "option wait_replicas must be a whole number of replicas \
                             from 0 to 100, got {value:?}"
                            ))
                        })?;
            }
            "sentinel_username" | "sentinel_password" => {
                let value = decode(value).map_err(|why| bad(format!("option {name} {why}")))?;
                let value = (!value.is_empty()).then_some(value);
                if let Server::Sentinel(sentinel) = &mut config.server {
                    if name == "sentinel_username" {
                        sentinel.username = value;
                    } else {
                        sentinel.password = value;
                    }
                }
            }
            "password" | "pass" | "user" | "username" | "db" => {
                return Err(bad(format!(
                    "option {name:?} is not read from the query; \
                     write redis://user:password@host:port/db"
                )));
            }
            _ => {
                return Err(bad(format!(
                    "unknown redis:// option {name:?}; known options: prefix, timeout_ms, \
                     sweep_on_create, sweep_interval_ms, wait_replicas, for rediss:// \
                     ssl_ca_certs, ssl_certfile, ssl_keyfile, ssl_cert_reqs, and for \
                     redis+sentinel:// sentinel_username, sentinel_password"
                )));
            }
        }
    }
    tls_settings.client = match (cert_file, key_file) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err(bad(
                "options ssl_certfile and ssl_keyfile go together: give both, or neither",
            ));
        }
    };
    config.tls = tls.then_some(tls_settings);
    Ok(config)
}

/// The user name and password of `userinfo` (`user[:password]`), percent-decoded.
fn credentials(userinfo: &str) -> Result<(Option<String>, Option<String>), UrlError> {
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password)),
        None => (userinfo, None),
    };
    let user = decode(user).map_err(|why| bad(format!("the user name in the URL {why}")))?;
    // Never quote the password back, not even a broken one.
    let password = match password {
        Some(password) => {
            decode(password).map_err(|why| bad(format!("the password in the URL {why}")))?
        }
        None => String::new(),
    };
    Ok((
        (!user.is_empty()).then_some(user),
        (!password.is_empty()).then_some(password),
    ))
}

fn host_and_port(hostport: &str, default_port: u16) -> Result<Address, UrlError> {
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let Some((host, after)) = inner.split_once(']') else {
            return Err(bad(format!(
                "the IPv6 address in {hostport:?} has no closing ']'"
            )));
        };
        match after {
            "" => (host, None),
            _ => match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None => return Err(bad(format!("unexpected {after:?} after the IPv6 address"))),
            },
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad(
            "the Redis URL has no host; write it like \"redis://127.0.0.1:6379/0\"",
        ));
    }
    if host.contains(['/', '?', '@', ' ', '%']) {
        return Err(bad(format!("{host:?} is not a valid host name")));
    }
    let port = match port {
        None => default_port,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                bad(format!(
                    "the port must be a number from 1 to 65535, got {text:?}"
                ))
            })?,
    };
    Ok(Address::new(host, port))
}

/// `/service[/db]` of a Sentinel URL.
fn service_and_database(path: &str) -> Result<(String, i64), UrlError> {
    let path = path.strip_prefix('/').unwrap_or(path);
    let (service, db) = match path.split_once('/') {
        Some((service, db)) => (service, database(db)?),
        None => (path, 0),
    };
    let service = decode(service).map_err(|why| bad(format!("the service name {why}")))?;
    if service.is_empty() {
        return Err(bad(
            "a redis+sentinel:// URL names the master's service after the \
             sentinels, like \"redis+sentinel://127.0.0.1:26379/mymaster/0\"",
        ));
    }
    Ok((service, db))
}

fn database(path: &str) -> Result<i64, UrlError> {
    let number = path.strip_prefix('/').unwrap_or(path);
    if number.is_empty() {
        return Ok(0);
    }
    number.parse::<u32>().map(i64::from).map_err(|_| {
        bad(format!(
            "the database after the host must be a number like /0, got {path:?}"
        ))
    })
}

/// Percent-decodes `text` as UTF-8; the error says what is wrong without quoting it.
fn decode(text: &str) -> Result<String, &'static str> {
    sessionmanager_core::percent_decode(text)
        .ok_or("has a '%' not followed by two hex digits, or is not UTF-8 once decoded")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_url() {
        let c = parse(
            "redis://app:p%40ss@cache.local:6380/3?prefix=myapp%3As%3A\
             &timeout_ms=500&sweep_on_create=0&sweep_interval_ms=250",
        )
        .unwrap();
        assert_eq!(c.sweep_on_create, 0);
        assert_eq!(c.sweep_interval, Some(Duration::from_millis(250)));
        assert_eq!(
            c.server,
            Server::Standalone(Address::new("cache.local", 6380))
        );
        assert_eq!(c.db, 3);
        assert_eq!(c.username.as_deref(), Some("app"));
        assert_eq!(c.password.as_deref(), Some("p@ss"));
        assert_eq!(c.prefix, "myapp:s:");
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert!(!format!("{c:?}").contains("p@ss"));
    }

    #[test]
    fn defaults_and_short_forms() {
        let c = parse("redis://localhost").unwrap();
        assert_eq!(
            (c.server.clone(), c.db, c.username, c.password),
            (
                Server::Standalone(Address::new("localhost", 6379)),
                0,
                None,
                None
            )
        );
        assert_eq!(c.prefix, RedisConfig::DEFAULT_PREFIX);
        let c = parse("valkey://:secret@[::1]:7000/").unwrap();
        assert_eq!(c.server, Server::Standalone(Address::new("::1", 7000)));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.address(), "[::1]:7000/0");
        let c =
            parse("rediss://h/0?ssl_ca_certs=%2Fetc%2Fca.pem&ssl_certfile=c.pem&ssl_keyfile=k.pem")
                .unwrap();
        let tls = c.tls.expect("rediss:// is TLS");
        assert_eq!(
            tls.ca_certs.as_deref(),
            Some(std::path::Path::new("/etc/ca.pem"))
        );
        let (cert, key) = tls.client.expect("a client certificate");
        assert_eq!(
            (cert.to_str(), key.to_str()),
            (Some("c.pem"), Some("k.pem"))
        );
        assert_eq!(tls.verify, Verify::Full);
        let c = parse("valkeys://h?ssl_cert_reqs=none").unwrap();
        assert_eq!(c.tls.expect("valkeys:// is TLS").verify, Verify::Nothing);
        assert!(parse("redis://h").unwrap().tls.is_none());
        let c = parse("redis://u:a/b?c#d@e@h:1/2").unwrap();
        assert_eq!(c.password.as_deref(), Some("a/b?c#d@e"));
        assert_eq!(c.server, Server::Standalone(Address::new("h", 1)));
        assert_eq!(c.db, 2);
    }

    #[test]
    fn sentinel_urls() {
        let c = parse(
            "redis+sentinel://app:p%40ss@s1,s2:26380,[::1]/my%20master/2\
             ?sentinel_password=s%26cret&sentinel_username=watch&prefix=x:",
        )
        .unwrap();
        let Server::Sentinel(sentinel) = &c.server else {
            panic!("a Sentinel URL: {c:?}");
        };
        assert_eq!(
            sentinel.sentinels,
            [
                Address::new("s1", 26379),
                Address::new("s2", 26380),
                Address::new("::1", 26379)
            ]
        );
        assert_eq!(sentinel.service, "my master");
        assert_eq!(
            (sentinel.username.as_deref(), sentinel.password.as_deref()),
            (Some("watch"), Some("s&cret"))
        );
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref(), c.db),
            (Some("app"), Some("p@ss"), 2)
        );
        assert!(c.tls.is_none());
        assert!(!format!("{c:?}").contains("s&cret"));
        assert_eq!(
            c.address(),
            "the master \"my master\" of sentinels s1:26379,s2:26380,[::1]:26379 (db 2)"
        );
        let c = parse("valkeys+sentinel://h/m?ssl_cert_reqs=none").unwrap();
        assert_eq!(c.tls.expect("TLS").verify, Verify::Nothing);
        assert_eq!(c.db, 0);
    }

    #[test]
    fn cluster_urls() {
        let c = parse("redis+cluster://app:s3cret@n1:7000,n2,[::1]:7002/?prefix=x:&timeout_ms=500")
            .unwrap();
        assert_eq!(
            c.server,
            Server::Cluster(vec![
                Address::new("n1", 7000),
                Address::new("n2", 6379),
                Address::new("::1", 7002),
            ])
        );
        assert_eq!(
            (c.username.as_deref(), c.password.as_deref()),
            (Some("app"), Some("s3cret"))
        );
        assert_eq!((c.prefix.as_str(), c.timeout.as_millis()), ("x:", 500));
        assert_eq!(c.wait_replicas, 0);
        assert_eq!(c.address(), "the cluster of n1:7000,n2:6379,[::1]:7002");
        let c = parse("redis+cluster://n1?wait_replicas=1").unwrap();
        assert_eq!(c.wait_replicas, 1);
        let c = parse("valkeys+cluster://n1/0?ssl_cert_reqs=none").unwrap();
        assert_eq!(c.tls.expect("TLS").verify, Verify::Nothing);
    }

    #[test]
    fn errors_name_the_problem_and_never_the_password() {
        for (url, expected) in [
            ("127.0.0.1:6379", "starts with redis://"),
            ("http://127.0.0.1", "not http://"),
            ("redis://h/0?ssl_cert_reqs=none", "write rediss://"),
            ("rediss://h/0?ssl_cert_reqs=optional", "must be required"),
            ("rediss://h/0?ssl_keyfile=k.pem", "go together"),
            ("redis://", "no host"),
            ("redis://:hunter2@/0", "no host"),
            ("redis://h:port", "port must be a number"),
            ("redis://h:0", "port must be a number"),
            ("redis://h:99999", "port must be a number"),
            ("redis://h/x", "database after the host must be a number"),
            ("redis://h/-1", "database after the host must be a number"),
            ("redis://h/0?prefix=", "prefix must not be empty"),
            ("redis://h/0?timeout_ms=0", "timeout_ms"),
            ("redis://h/0?timeout_ms=soon", "timeout_ms"),
            ("redis://h/0?sweep_on_create=-1", "sweep_on_create"),
            ("redis://h/0?wait_replicas=-1", "wait_replicas must be"),
            ("redis://h/0?wait_replicas=many", "wait_replicas must be"),
            ("redis://h/0?wait_replicas=101", "wait_replicas must be"),
            (
                "redis://h/0?colour=blue",
                "unknown redis:// option \"colour\"",
            ),
            ("redis://h/0?password=hunter2", "not read from the query"),
            ("redis://:hun%zzter2@h/0", "password in the URL has a '%'"),
            ("redis://[::1/0", "no closing ']'"),
            ("redis://:hunter2/x?y#z@h/x", "database after the host"),
            ("redis://a,b/0", "write redis+sentinel://"),
            ("redis+sentinel://a,b", "names the master's service"),
            ("redis+sentinel://a,b/", "names the master's service"),
            ("redis+sentinel://a,/m", "no host"),
            ("redis+sentinel://a/m/x", "database after the host"),
            ("redis+cluster://a/m", "database 0 only"),
            ("redis+cluster://a,b/1", "database 0 only"),
            ("redis+cluster://a,,b", "no host"),
            ("redis+cluster://a?sentinel_password=x", "for the sentinels"),
            ("redis+clusters://a", "not redis+clusters://"),
            ("redis://h/0?sentinel_password=hunter2", "for the sentinels"),
            (
                "redis+sentinel://h/m?sentinel_password=%zzhunter2",
                "sentinel_password has a '%'",
            ),
        ] {
            let err = parse(url).expect_err(url).0;
            assert!(err.contains(expected), "{url}: {err}");
            assert!(
                !err.contains("hunter2") && !err.contains("hun%zz"),
                "{url}: {err}"
            );
        }
    }
}
