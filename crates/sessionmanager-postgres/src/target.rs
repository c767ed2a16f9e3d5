//! What a store connects to, as messages name it: never with the password.

use std::fmt;

use tokio_postgres::config::Host;

/// The server, database and user of a connection configuration.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    servers: String,
    database: String,
    user: String,
}

impl Target {
    pub(crate) fn of(config: &tokio_postgres::Config) -> Self {
        let ports = config.get_ports();
        let servers = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                // tokio-postgres gives one port for all hosts, or one per host.
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                    Host::Tcp(name) => format!("{name}:{port}"),
                    #[cfg(unix)]
                    Host::Unix(path) => format!("{}/.s.PGSQL.{port}", path.display()),
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        let user = config.get_user().unwrap_or_default().to_owned();
        Self {
            servers,
            database: config.get_dbname().unwrap_or(&user).to_owned(),
            user,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PostgreSQL at {} (database {:?}, user {:?})",
            self.servers, self.database, self.user
        )
    }
}
