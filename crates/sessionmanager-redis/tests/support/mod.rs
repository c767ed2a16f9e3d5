//! Throwaway `redis-server` processes on free loopback ports, for the tests.
//!
//! Each server runs in its own temporary folder under a small shell watchdog
//! that stops it (and removes the folder) once the test process is gone, so
//! a shared server needs no teardown hook and never outlives the tests.

#![allow(dead_code)] // each test file uses part of this module

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running server.
pub struct Server {
    pub port: u16,
    pub dir: PathBuf,
    /// Held, not waited for: the watchdog ends with this process.
    _watchdog: Child,
}

impl Server {
    /// Starts `redis-server`; it stops when this process ends (the watchdog
    /// sees the parent gone). Panics with a clear message if the binary is missing.
    pub fn start() -> Self {
        Self::start_with(|_| Vec::new())
    }

    /// Like [`Server::start`], with more server arguments, made from the
    /// server's own folder (where, say, certificates can be written first).
    pub fn start_with(extra: impl FnOnce(&std::path::Path) -> Vec<String>) -> Self {
        Self::launch(None, extra)
    }

    /// A sentinel watching the master at `master_port` as `service` (quorum
    /// 2, a master is down after a second without answering).
    pub fn start_sentinel(service: &str, master_port: u16) -> Self {
        let conf = format!(
            "sentinel monitor {service} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 5000\n"
        );
        Self::launch(Some(conf), |_| vec!["--sentinel".into()])
    }

    /// Starts `redis-server` with `conf` (written to its folder, for a
    /// sentinel: it rewrites its configuration file) and `extra` arguments.
    fn launch(conf: Option<String>, extra: impl FnOnce(&std::path::Path) -> Vec<String>) -> Self {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            panic!(
                "redis-server is not installed, and the Redis store's tests need a real server: \
                 apt-get install redis-server (or run tools/ensure-system-packages)"
            );
        }
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "sessionmanager-redis-test-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create the server's folder");
        let conf = conf.map(|text| {
            let path = dir.join("redis.conf");
            std::fs::write(&path, text).expect("write the configuration file");
            path.display().to_string()
        });
        let extra = extra(&dir);
        let script = r#"
            parent=$1; dir=$2; shift 2
            redis-server "$@" >"$dir/redis.log" 2>&1 &
            server=$!
            while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.2; done
            kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"
        "#;
        let args: Vec<String> = [std::process::id().to_string(), dir.display().to_string()]
            .into_iter()
            .chain(conf)
            .chain([
                "--port".into(),
                port.to_string(),
                "--bind".into(),
                "127.0.0.1".into(),
                "--dir".into(),
                dir.display().to_string(),
                "--save".into(),
                String::new(),
                "--appendonly".into(),
                "no".into(),
            ])
            .chain(extra)
            .collect();
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .args(&args)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the redis-server watchdog");
        let server = Self {
            port,
            dir,
            _watchdog: watchdog,
        };
        server.wait_ready();
        server
    }

    /// `redis://127.0.0.1:<port>/0` plus `rest` (like `?prefix=x:`).
    pub fn url(&self, rest: &str) -> String {
        format!("redis://127.0.0.1:{}{rest}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                let _ = writer.write_all(b"PING\r\n");
                let mut line = String::new();
                if reader.read_line(&mut line).is_ok() && line.starts_with("+PONG") {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not start; see {}/redis.log",
                self.port,
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

pub mod cluster;
pub mod pki;
pub mod sentinel;

/// A server that also listens with TLS, and the certificates it uses.
pub struct TlsServer {
    pub server: Server,
    pub tls_port: u16,
    pub pki: pki::Pki,
}

impl TlsServer {
    /// A server on a TLS port too; with `client_auth`, it admits only
    /// clients with a certificate its CA signed.
    pub fn start(client_auth: bool) -> Self {
        let tls_port = free_port();
        let mut made = None;
        let server = Server::start_with(|dir| {
            let pki = pki::Pki::make(&dir.join("pki"));
            let args = pki.redis_args(tls_port, client_auth);
            made = Some(pki);
            args
        });
        Self {
            server,
            tls_port,
            pki: made.expect("certificates made"),
        }
    }

    /// `rediss://127.0.0.1:<tls port>/0?ssl_ca_certs=<the CA>` plus `&rest`.
    pub fn url(&self, rest: &str) -> String {
        format!(
            "rediss://127.0.0.1:{}/0?ssl_ca_certs={}{rest}",
            self.tls_port,
            self.pki.ca.display()
        )
    }
}

/// One TLS server for the whole test binary.
pub fn shared_tls() -> &'static TlsServer {
    static SERVER: OnceLock<TlsServer> = OnceLock::new();
    SERVER.get_or_init(|| TlsServer::start(false))
}

/// One server for the whole test binary; tests keep apart by key prefix.
pub fn shared() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(Server::start)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}
