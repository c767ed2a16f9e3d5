//! A throwaway PostgreSQL server for the tests: `initdb` and `postgres` in a
//! temporary folder, on a free loopback port, with password (SCRAM) logins.
//!
//! Run as root (CI), the server runs as `nobody` (initdb refuses root). It
//! lives as long as the test process: a small shell watchdog holds a pipe
//! from this process and stops the server and removes its folder when the
//! pipe closes, however the process ends.

#![allow(dead_code)] // each test file uses part of this

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The superuser's password on every test server.
pub const PASSWORD: &str = "test-secret-pw";

/// A running test server.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    /// The watchdog; its stdin is the pipe whose closing stops the server.
    _watchdog: Mutex<Child>,
}

/// Where the server binaries are: on the PATH, else Debian's versioned folder.
pub fn bin_dir() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let version = entry.file_name().to_str()?.parse().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").is_file().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    })
}

/// The shared server of this test process, started on first use. Without
/// PostgreSQL installed the test fails, saying how to install it (a test that
/// returned early would be counted as passing); `make test` installs it first
/// where it can (tools/ensure-system-packages).
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| match bin_dir() {
        Some(bin) => Server::start(&bin, &["-c", "fsync=off"]),
        None => panic!(
            "the PostgreSQL tests need a server, and PostgreSQL is not installed (no \
             initdb/postgres on the PATH or in /usr/lib/postgresql/*/bin); install \
             Debian's postgresql package (tools/ensure-system-packages does it as root)"
        ),
    })
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `nobody`'s uid and gid when this process is root, to run the server as.
fn unprivileged() -> Option<(String, String)> {
    let id = |flag: &str, user: Option<&str>| {
        let out = Command::new("id")
            .arg(flag)
            .args(user)
            .output()
            .expect("run id");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    (id("-u", None) == "0").then(|| (id("-u", Some("nobody")), id("-g", Some("nobody"))))
}

/// `program` as the server's user: `setpriv` to nobody when root.
fn as_server_user(program: &Path) -> Command {
    match unprivileged() {
        Some((uid, gid)) => {
            let mut c = Command::new("setpriv");
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
            ])
            .arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// initdb and start a server with `settings` (`-c name=value` pairs) added.
    pub fn start(bin: &Path, settings: &[&str]) -> Self {
        let settings: Vec<String> = settings.iter().map(|s| (*s).to_owned()).collect();
        Self::start_with(bin, |_| settings)
    }

    /// Like [`Server::start`], with settings made from the server's folder
    /// (where, say, certificates can be written first; the server's user
    /// owns everything in it).
    pub fn start_with(bin: &Path, settings: impl FnOnce(&Path) -> Vec<String>) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "pysm-pg-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let pwfile = dir.join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        let settings = settings(&dir);
        if unprivileged().is_some() {
            run(
                Command::new("chown").args(["-R", "nobody:"]).arg(&dir),
                "chown the server folder to nobody",
            );
        }
        let data = dir.join("data");
        run(
            as_server_user(&bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-U",
                    "postgres",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                ])
                .args(["-E", "UTF8", "--locale=C", "--no-sync"])
                .arg(format!("--pwfile={}", pwfile.display())),
            "initdb",
        );
        let port = free_port();
        let mut server = as_server_user(&bin.join("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .args(&settings);
        let log = std::fs::File::create(dir.join("log")).unwrap();
        // The watchdog: runs the server, waits for its stdin to close, then stops it.
        let script = concat!(
            r#"dir=$1; shift; "$@" & pid=$!; cat >/dev/null; "#,
            r#"kill -INT "$pid" 2>/dev/null; wait "$pid"; rm -rf "$dir""#,
        );
        let mut watchdog = Command::new("sh");
        watchdog
            .args(["-c", script, "watchdog"])
            .arg(&dir)
            .arg(server.get_program())
            .args(server.get_args())
            .stdin(Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = watchdog.spawn().expect("start the postgres watchdog");
        let started = Server {
            port,
            dir,
            _watchdog: Mutex::new(child),
        };
        started.wait_ready();
        started
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid_file = self.dir.join("data").join("postmaster.pid");
        loop {
            let status = std::fs::read_to_string(&pid_file).unwrap_or_default();
            if status.lines().nth(7).is_some_and(|s| s.trim() == "ready") {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
                panic!("the test PostgreSQL server did not start within 30 s:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The URL of `database` as the superuser, with `query` options appended.
    pub fn url(&self, database: &str, query: &str) -> String {
        let sep = if query.is_empty() { "" } else { "?" };
        format!(
            "postgresql://postgres:{PASSWORD}@127.0.0.1:{}/{database}{sep}{query}",
            self.port
        )
    }

    /// Runs `sql` (simple statements) as the superuser on `database`.
    pub fn sql(&self, database: &str, sql: &str) {
        self.as_superuser(database, |client| async move {
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        });
    }

    /// The number the query `sql` answers, as the superuser on `database`.
    pub fn query_i64(&self, database: &str, sql: &str) -> i64 {
        self.as_superuser(database, |client| async move {
            let row = client.query_one(sql, &[]).await;
            row.unwrap_or_else(|e| panic!("{sql}: {e:?}")).get(0)
        })
    }

    /// Runs `work` with a client connected as the superuser to `database`;
    /// the connection closes when `work` drops the client.
    fn as_superuser<T, F>(
        &self,
        database: &str,
        work: impl FnOnce(tokio_postgres::Client) -> F,
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let url = self.url(database, "");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test server");
            let connection = tokio::spawn(connection);
            let result = work(client).await;
            let _ = connection.await;
            result
        })
    }

    /// A new, empty schema on database `postgres`, and the URL whose
    /// connections use it (their `search_path`), with `query` options appended.
    pub fn fresh_schema_url(&self, query: &str) -> String {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let schema = format!("s{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.sql("postgres", &format!("CREATE SCHEMA {schema}"));
        let path = format!("options=-c%20search_path%3D{schema}");
        let query = if query.is_empty() {
            path
        } else {
            format!("{path}&{query}")
        };
        self.url("postgres", &query)
    }
}
