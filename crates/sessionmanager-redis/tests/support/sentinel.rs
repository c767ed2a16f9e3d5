//! A master, its replica and three sentinels, for the Sentinel tests.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::Server;

/// The name the sentinels monitor the master under.
pub const SERVICE: &str = "sessions";

/// A master, a replica of it, and three sentinels watching them.
pub struct Topology {
    pub master: Server,
    pub replica: Server,
    pub sentinels: Vec<Server>,
}

impl Topology {
    /// Starts the servers and waits until every sentinel knows the master
    /// and its replica.
    pub fn start() -> Self {
        let master = Server::start();
        let replica = Server::start_with(|_| {
            vec![
                "--replicaof".into(),
                "127.0.0.1".into(),
                master.port.to_string(),
            ]
        });
        let sentinels: Vec<Server> = (0..3)
            .map(|_| Server::start_sentinel(SERVICE, master.port))
            .collect();
        let topology = Self {
            master,
            replica,
            sentinels,
        };
        topology.wait_until_watched();
        topology
    }

    /// `redis+sentinel://` URL of the master, plus `rest` (like `?prefix=x:`).
    pub fn url(&self, rest: &str) -> String {
        let sentinels: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        format!("redis+sentinel://{}/{SERVICE}/0{rest}", sentinels.join(","))
    }

    fn wait_until_watched(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let replica = format!("127.0.0.1:{}", self.replica.port);
        for sentinel in &self.sentinels {
            while !inline(sentinel.port, &format!("SENTINEL REPLICAS {SERVICE}")).contains(&replica)
            {
                assert!(
                    Instant::now() < deadline,
                    "sentinel on port {} did not see the replica; see {}/redis.log",
                    sentinel.port,
                    sentinel.dir.display()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// One topology for the whole test binary.
pub fn shared() -> &'static Topology {
    static TOPOLOGY: OnceLock<Topology> = OnceLock::new();
    TOPOLOGY.get_or_init(Topology::start)
}

/// The raw reply to an inline command, read for a moment.
fn inline(port: u16, command: &str) -> String {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(300)));
    let mut writer = stream.try_clone().expect("clone the socket");
    let _ = writer.write_all(format!("{command}\r\n").as_bytes());
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        reply.push_str(&line);
        line.clear();
    }
    reply
}
