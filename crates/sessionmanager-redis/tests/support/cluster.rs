//! A Redis Cluster of three masters and three replicas on loopback, for the
//! cluster store's tests, and the faults those tests inject: a manual
//! failover, a node killed and restarted, slots moved between masters.
//!
//! The nodes are [`Server`]s, so the same watchdog stops them (and removes
//! their folders) when the test process ends. Who is master of what changes
//! under failover, so the helpers read the roles from the nodes
//! (`CLUSTER NODES`) each time instead of remembering them.
//!
//! A test that changes the topology (failover, kill, reshard) should start a
//! [`Cluster`] of its own, or run in a test binary of its own: [`shared`]
//! is for the tests that leave the topology alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::pki::Pki;
use super::{Server, free_port};

/// How many hash slots a cluster has.
pub const SLOTS: u16 = 16384;

/// How long [`Cluster::wait_ok`] (and the helpers that call it) wait.
const SETTLE: Duration = Duration::from_secs(30);

/// Six nodes: three masters, each with one replica.
pub struct Cluster {
    /// In start order; a restarted node keeps its port and folder.
    pub nodes: Vec<Server>,
    /// The masters when the cluster was made: the URL's seed list.
    seeds: Vec<u16>,
    /// The TLS port of each node, by its port ([`Cluster::start_tls`]).
    tls_ports: HashMap<u16, u16>,
    /// The cluster bus port of each node, by its port (a restart reuses it).
    bus_ports: HashMap<u16, u16>,
    /// `nodes.conf` of each node [`Cluster::kill`] stopped, by port: the
    /// watchdog removes the folder once the server is gone, and a node
    /// restarted without its node id would be a stranger to the others.
    killed: Mutex<HashMap<u16, String>>,
}

impl Cluster {
    /// Starts six nodes, joins them with `redis-cli --cluster create
    /// --cluster-replicas 1`, and waits until every node sees all 16384
    /// slots served and every replica is in sync.
    pub fn start() -> Self {
        Self::start_with(|_| Vec::new())
    }

    /// Like [`Cluster::start`], every node also listening with TLS on a
    /// port of its own, with `pki`'s server certificate, and the cluster
    /// bus and replication over TLS too (each node showing the others
    /// `pki`'s client certificate), so that nodes tell TLS clients each other's TLS ports
    /// (`CLUSTER SLOTS`). The plain ports stay, for the helpers here. Nodes
    /// of such a cluster are not restarted ([`Cluster::restart`] starts
    /// them without TLS).
    pub fn start_tls(pki: &Pki) -> Self {
        let mut tls_ports = HashMap::new();
        let mut cluster = Self::start_with(|dir| {
            let port = free_port();
            tls_ports.insert(dir.to_path_buf(), port);
            let mut args = pki.redis_args(port, false);
            for (name, value) in [
                ("--tls-cluster", "yes".to_owned()),
                // Replicas reach their masters at the TLS ports the cluster announces.
                ("--tls-replication", "yes".to_owned()),
                (
                    "--tls-client-cert-file",
                    pki.client_cert.display().to_string(),
                ),
                (
                    "--tls-client-key-file",
                    pki.client_key.display().to_string(),
                ),
            ] {
                args.extend([name.to_owned(), value]);
            }
            args
        });
        for node in &cluster.nodes {
            cluster.tls_ports.insert(node.port, tls_ports[&node.dir]);
        }
        cluster
    }

    /// `rediss+cluster://` URL naming the first masters' TLS ports, trusting
    /// `ca`, with `?prefix=<prefix>`.
    pub fn tls_url(&self, prefix: &str, ca: &Path) -> String {
        let seeds: Vec<String> = self
            .seeds
            .iter()
            .map(|port| format!("127.0.0.1:{}", self.tls_ports[port]))
            .collect();
        format!(
            "rediss+cluster://{}/?prefix={prefix}&ssl_ca_certs={}",
            seeds.join(","),
            ca.display()
        )
    }

    /// Starts six nodes with `extra` arguments each (made from the node's
    /// folder) and joins them, as [`Cluster::start`] says.
    fn start_with(mut extra: impl FnMut(&Path) -> Vec<String>) -> Self {
        require_redis_cli();
        let mut bus_ports = HashMap::new();
        let nodes: Vec<Server> = (0..6)
            .map(|_| {
                let mut bus = 0;
                let server = Server::start_with(|dir| {
                    bus = bus_port_for(dir);
                    let mut args = node_args(dir, bus);
                    args.extend(extra(dir));
                    args
                });
                bus_ports.insert(server.port, bus);
                server
            })
            .collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        create.args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        redis_cli(create, "create the cluster");
        let mut cluster = Self {
            nodes,
            seeds: Vec::new(),
            tls_ports: HashMap::new(),
            bus_ports,
            killed: Mutex::new(HashMap::new()),
        };
        cluster.wait_ok();
        cluster.seeds = cluster.masters();
        assert_eq!(cluster.seeds.len(), 3, "three masters after create");
        cluster
    }

    /// `redis+cluster://` URL naming the first masters as seeds, with
    /// `?prefix=<prefix>` (add more options with `&name=value`).
    pub fn url(&self, prefix: &str) -> String {
        let seeds: Vec<String> = self
            .seeds
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}/?prefix={prefix}", seeds.join(","))
    }

    /// The ports of the masters that are up now, in port order (a master
    /// [`Cluster::reshard`] emptied is still one).
    pub fn masters(&self) -> Vec<u16> {
        self.live_with_role(true)
    }

    /// The ports of the replicas that are up now, in port order.
    pub fn replicas(&self) -> Vec<u16> {
        self.live_with_role(false)
    }

    /// The replicas (up or not) of the master at `master`, by port.
    pub fn replicas_of(&self, master: u16) -> Vec<u16> {
        let view = self.view();
        let Some(id) = view.iter().find(|n| n.port == master).map(|n| &n.id) else {
            panic!("no node on port {master} in the cluster");
        };
        let mut ports: Vec<u16> = view
            .iter()
            .filter(|n| n.master_id.as_ref() == Some(id))
            .map(|n| n.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// The port of the master that serves `slot` now.
    pub fn master_of_slot(&self, slot: u16) -> u16 {
        assert!(slot < SLOTS, "slot {slot} is out of range");
        self.view()
            .iter()
            .find(|n| n.serves(slot))
            .map(|n| n.port)
            .unwrap_or_else(|| panic!("no master serves slot {slot}"))
    }

    /// The slot ranges (inclusive) the master at `master` serves now.
    pub fn slots_of(&self, master: u16) -> Vec<(u16, u16)> {
        let view = self.view();
        let Some(node) = view.iter().find(|n| n.port == master) else {
            panic!("no node on port {master} in the cluster");
        };
        node.ranges().collect()
    }

    /// The slot `key` hashes to (`CLUSTER KEYSLOT`, so hash tags count).
    pub fn slot_of(&self, key: &str) -> u16 {
        self.ask_any(&["CLUSTER", "KEYSLOT", key])
    }

    /// The port of the master that serves `key` now.
    pub fn master_of_key(&self, key: &str) -> u16 {
        self.master_of_slot(self.slot_of(key))
    }

    /// Promotes the replica at `replica` with `CLUSTER FAILOVER` (its master
    /// must be up: the two agree the switch), waits until it says it is a
    /// master, then for the cluster to settle ([`Cluster::wait_ok`]).
    pub fn failover(&self, replica: u16) {
        self.failover_with(replica, None);
    }

    /// [`Cluster::failover`] with `FORCE` (the master may be down) or
    /// `TAKEOVER` (no vote of the other masters either).
    pub fn failover_with(&self, replica: u16, option: Option<&str>) {
        let mut words = vec!["CLUSTER", "FAILOVER"];
        words.extend(option);
        let deadline = Instant::now() + SETTLE;
        // A manual failover the master does not answer in 5 s is dropped:
        // ask again after that.
        let mut asked = None::<Instant>;
        while role(replica).as_deref() != Some("master") {
            assert!(
                Instant::now() < deadline,
                "the replica on port {replica} did not become a master in {SETTLE:?}; \
                 see {}",
                self.log_of(replica).display()
            );
            if asked.is_none_or(|at| at.elapsed() > Duration::from_secs(6)) {
                let reply: redis::RedisResult<String> = command(replica, &words);
                if let Err(err) = reply {
                    panic!("CLUSTER FAILOVER on port {replica}: {err}");
                }
                asked = Some(Instant::now());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.wait_ok();
    }

    /// Kills the node at `port` with SIGKILL, as in a crash, and returns
    /// once it no longer accepts connections. The others notice after the
    /// node timeout (1 s); a master's replica then takes over on its own:
    /// [`Cluster::wait_ok`] waits for that.
    pub fn kill(&self, port: u16) {
        let node = self.node(port);
        let pid: String = info_field(port, "server", "process_id")
            .unwrap_or_else(|| panic!("the node on port {port} is not up"));
        let conf = std::fs::read_to_string(node.dir.join("nodes.conf"))
            .expect("read the node's nodes.conf");
        self.killed.lock().unwrap().insert(port, conf);
        let done = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("run kill");
        assert!(done.success(), "kill -KILL {pid} (port {port}) failed");
        wait_for(
            Duration::from_secs(10),
            || !is_up(port),
            || format!("the node on port {port} still answers after SIGKILL"),
        );
    }

    /// Starts again, on the same ports and with its saved `nodes.conf`
    /// (so with its node id), a node [`Cluster::kill`] stopped; returns once
    /// it answers. It rejoins as whatever the cluster says it is now (a
    /// master that was failed over comes back as a replica): call
    /// [`Cluster::wait_ok`] to wait for that.
    pub fn restart(&self, port: u16) {
        let conf = self
            .killed
            .lock()
            .unwrap()
            .remove(&port)
            .unwrap_or_else(|| panic!("the node on port {port} was not stopped by kill()"));
        let dir = self.node(port).dir.clone();
        // The old watchdog removes the folder once its server is gone.
        wait_for(
            Duration::from_secs(10),
            || !dir.exists(),
            || format!("the folder {} of the killed node stays", dir.display()),
        );
        std::fs::create_dir_all(&dir).expect("create the node's folder");
        std::fs::write(dir.join("nodes.conf"), conf).expect("write the node's nodes.conf");
        let args = node_args(&dir, self.bus_ports[&port]);
        // Dropped once up: the watchdog goes on, and ends with the test
        // process (or the server); `nodes` has a `Server` for this port.
        let restarted = Server {
            port,
            dir: dir.clone(),
            _watchdog: relaunch(port, &dir, &args),
        };
        restarted.wait_ready();
    }

    /// Moves `slots` slots (and their keys) from the master at `from` to
    /// the master at `to`, all but one with `redis-cli --cluster reshard`,
    /// then waits for the cluster to settle.
    ///
    /// The last slot moves the careful way ([`SlotMove::finish`]), which
    /// also makes `to` announce all its slots once more: with redis-cli
    /// alone, Redis 7.0 can leave a node believing the last slot moved is
    /// unclaimed (its `owner_not_claiming_slot` bit stays set), and if `to`
    /// later fails over and comes back from a crash, that node hands the
    /// slot to the stale claim and ends up with the slot served by no one
    /// (`cluster_state:fail`).
    pub fn reshard(&self, from: u16, to: u16, slots: u32) {
        assert!(slots > 0, "reshard of no slots");
        self.wait_ok(); // redis-cli refuses a cluster whose nodes disagree
        if slots > 1 {
            let many = slots - 1;
            let mut reshard = Command::new("redis-cli");
            reshard.args(["--cluster", "reshard", &format!("127.0.0.1:{from}")]);
            reshard.args([
                "--cluster-from",
                &node_id(from),
                "--cluster-to",
                &node_id(to),
            ]);
            reshard.args(["--cluster-slots", &many.to_string(), "--cluster-yes"]);
            redis_cli(reshard, &format!("move {many} slots from {from} to {to}"));
            self.wait_ok();
        }
        let Some(&(last, _)) = self.slots_of(from).first() else {
            panic!("the master on port {from} has fewer than {slots} slots");
        };
        self.move_slot(last, to);
    }

    /// Starts moving `slot` to the master at `to`, the way `redis-cli`
    /// does, and stops half way: the slot is IMPORTING on `to` and
    /// MIGRATING on its owner, no key moved yet. A client then gets `ASK`
    /// for the keys [`SlotMove::move_keys`] moves; [`SlotMove::finish`]
    /// completes the move.
    pub fn begin_slot_move(&self, slot: u16, to: u16) -> SlotMove {
        let from = self.master_of_slot(slot);
        assert_ne!(from, to, "slot {slot} is on port {to} already");
        let (from_id, to_id) = (node_id(from), node_id(to));
        let slot_text = slot.to_string();
        ok(
            to,
            &["CLUSTER", "SETSLOT", &slot_text, "IMPORTING", &from_id],
        );
        ok(
            from,
            &["CLUSTER", "SETSLOT", &slot_text, "MIGRATING", &to_id],
        );
        SlotMove {
            slot,
            from,
            to,
            masters: self.masters(),
            nodes: self.nodes.iter().map(|n| n.port).collect(),
        }
    }

    /// Moves `slot` and its keys to the master at `to` at once, and waits
    /// for the cluster to settle.
    pub fn move_slot(&self, slot: u16, to: u16) {
        self.begin_slot_move(slot, to).finish();
        self.wait_ok();
    }

    /// Waits until every node that is up says `cluster_state:ok` with all
    /// 16384 slots served by masters that are up, they all agree who serves
    /// what and who replicates whom, no slot is half moved, and every
    /// replica that is up is in sync with its master. Panics, saying what
    /// is still wrong, after 30 s. A node [`Cluster::kill`] stopped is
    /// left out (it must not serve a slot, though).
    pub fn wait_ok(&self) {
        let deadline = Instant::now() + SETTLE;
        loop {
            let Err(why) = self.check() else { return };
            // The folders (and logs) go with the test process: show them now.
            assert!(
                Instant::now() < deadline,
                "the cluster is not ok after {SETTLE:?}: {why}\n{}",
                self.describe()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// What keeps the cluster from being ok, if anything (see `wait_ok`).
    fn check(&self) -> Result<(), String> {
        let live: Vec<u16> = self
            .nodes
            .iter()
            .map(|n| n.port)
            .filter(|&p| is_up(p))
            .collect();
        let mut agreed: Option<(u16, Vec<String>)> = None;
        for &port in &live {
            let info: String = command(port, &["CLUSTER", "INFO"]).map_err(|e| e.to_string())?;
            for wanted in [
                "cluster_state:ok".to_owned(),
                format!("cluster_slots_ok:{SLOTS}"),
                format!("cluster_known_nodes:{}", self.nodes.len()),
            ] {
                if !info.lines().any(|l| l.trim() == wanted) {
                    let said: Vec<&str> = info
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.starts_with("cluster_s") || l.starts_with("cluster_known"))
                        .collect();
                    return Err(format!("port {port} does not say {wanted} but {said:?}"));
                }
            }
            let view = view_of(port).map_err(|e| e.to_string())?;
            let mut summary = Vec::new();
            for node in &view {
                if node.slots.iter().any(|s| s.starts_with('[')) {
                    return Err(format!(
                        "port {port} sees a slot half moved: {:?}",
                        node.slots
                    ));
                }
                if !live.contains(&node.port) {
                    if !node.slots.is_empty() {
                        return Err(format!(
                            "slots of the down node {} not taken over",
                            node.port
                        ));
                    }
                    continue;
                }
                if node.has_flag("fail") || node.has_flag("fail?") || node.has_flag("handshake") {
                    return Err(format!(
                        "port {port} flags {} as {:?}",
                        node.port, node.flags
                    ));
                }
                let role = match &node.master_id {
                    None => format!("{} master {}", node.port, node.slots.join(" ")),
                    Some(id) => {
                        let of = view.iter().find(|n| &n.id == id).map_or(0, |n| n.port);
                        format!("{} replica of {of}", node.port)
                    }
                };
                summary.push(role);
            }
            summary.sort();
            match &agreed {
                None => agreed = Some((port, summary)),
                Some((first, seen)) if *seen != summary => {
                    return Err(format!(
                        "ports {first} and {port} disagree: {seen:?} / {summary:?}"
                    ));
                }
                Some(_) => {}
            }
            if role(port).as_deref() == Some("slave") {
                let link: Option<String> = info_field(port, "replication", "master_link_status");
                if link.as_deref() != Some("up") {
                    return Err(format!("the replica on port {port} is not in sync"));
                }
            }
        }
        if live.is_empty() {
            return Err("no node is up".into());
        }
        Ok(())
    }

    /// Each node's view (`CLUSTER NODES`) and the end of its log, for a
    /// panic message.
    fn describe(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            let nodes: String = command(node.port, &["CLUSTER", "NODES"])
                .unwrap_or_else(|e| format!("(no answer: {e})\n"));
            let log = std::fs::read_to_string(node.dir.join("redis.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(12).collect();
            text += &format!("--- node {} sees:\n{nodes}--- end of its log:\n", node.port);
            for line in tail.iter().rev() {
                text += &format!("    {line}\n");
            }
        }
        text
    }

    /// Live nodes that are masters (`true`) or replicas, by `CLUSTER NODES`.
    fn live_with_role(&self, master: bool) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .view()
            .iter()
            .filter(|n| n.has_flag(if master { "master" } else { "slave" }))
            .filter(|n| !n.has_flag("fail") && is_up(n.port))
            .map(|n| n.port)
            .collect();
        ports.sort_unstable();
        ports
    }

    /// `CLUSTER NODES` as the first node that answers sees it.
    fn view(&self) -> Vec<NodeLine> {
        self.nodes
            .iter()
            .find_map(|n| view_of(n.port).ok())
            .expect("no node of the cluster answers CLUSTER NODES")
    }

    /// A reply from the first node that gives one.
    fn ask_any<T: redis::FromRedisValue>(&self, words: &[&str]) -> T {
        self.nodes
            .iter()
            .find_map(|n| command(n.port, words).ok())
            .unwrap_or_else(|| panic!("no node of the cluster answers {words:?}"))
    }

    fn node(&self, port: u16) -> &Server {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .unwrap_or_else(|| panic!("no node of the cluster is on port {port}"))
    }

    fn log_of(&self, port: u16) -> PathBuf {
        self.node(port).dir.join("redis.log")
    }
}

impl Drop for Cluster {
    /// Stops the nodes at once (their watchdogs then remove the folders),
    /// so a test's own cluster does not run until the test process ends.
    fn drop(&mut self) {
        for node in &self.nodes {
            if let Some(pid) = info_field::<String>(node.port, "server", "process_id") {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
    }
}

/// One cluster for the whole test binary; tests keep apart by key prefix
/// and leave the topology alone.
pub fn shared() -> &'static Cluster {
    static CLUSTER: OnceLock<Cluster> = OnceLock::new();
    CLUSTER.get_or_init(Cluster::start)
}

/// A slot half moved by [`Cluster::begin_slot_move`].
pub struct SlotMove {
    pub slot: u16,
    /// The ports of the master giving the slot and the one taking it.
    pub from: u16,
    pub to: u16,
    masters: Vec<u16>,
    /// Every node's port.
    nodes: Vec<u16>,
}

impl SlotMove {
    /// Moves these keys of the slot (with `MIGRATE`) to the new master: a
    /// client now gets `ASK` for them from the old one.
    pub fn move_keys(&self, keys: &[&str]) {
        if keys.is_empty() {
            return;
        }
        let to = self.to.to_string();
        let mut words = vec![
            "MIGRATE",
            "127.0.0.1",
            &to,
            "",
            "0",
            "5000",
            "REPLACE",
            "KEYS",
        ];
        words.extend_from_slice(keys);
        let reply: redis::Value = command(self.from, &words)
            .unwrap_or_else(|e| panic!("MIGRATE of {keys:?} to port {to}: {e}"));
        let _ = reply; // OK, or NOKEY when none of them was there
    }

    /// Moves the slot's remaining keys, then gives the slot to the new
    /// master: first on it alone, waiting until every node that is up has
    /// heard it claim the slot (which also clears any stale
    /// `owner_not_claiming_slot` bit of Redis 7.0 for its other slots),
    /// then on the old one and the other masters. The old owner never stops
    /// claiming the slot before the others know the new one, so none of
    /// them sees the slot unclaimed.
    pub fn finish(self) {
        let slot = self.slot.to_string();
        loop {
            let keys: Vec<String> = command(self.from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"])
                .expect("CLUSTER GETKEYSINSLOT");
            if keys.is_empty() {
                break;
            }
            self.move_keys(&keys.iter().map(String::as_str).collect::<Vec<_>>());
        }
        let to_id = node_id(self.to);
        ok(self.to, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
        let heard = || {
            self.nodes.iter().filter(|&&p| is_up(p)).all(|&port| {
                view_of(port).is_ok_and(|view| {
                    view.iter()
                        .any(|n| n.port == self.to && n.serves(self.slot))
                })
            })
        };
        wait_for(SETTLE, heard, || {
            format!("not every node heard port {} claim slot {slot}", self.to)
        });
        for &port in &self.masters {
            if port != self.to {
                ok(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]);
            }
        }
    }
}

/// One line of `CLUSTER NODES`.
struct NodeLine {
    id: String,
    port: u16,
    flags: Vec<String>,
    /// `None` for a master.
    master_id: Option<String>,
    /// Ranges like `0-5460` or `5461`, and `[slot->-id]` / `[slot-<-id]`
    /// for a slot half moved.
    slots: Vec<String>,
}

impl NodeLine {
    /// `<id> <ip:port@bus[,host]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`
    fn parse(line: &str) -> Option<Self> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 8 {
            return None;
        }
        let address = fields[1].split('@').next()?;
        let port = address.rsplit(':').next()?.parse().ok()?;
        Some(Self {
            id: fields[0].to_owned(),
            port,
            flags: fields[2].split(',').map(str::to_owned).collect(),
            master_id: (fields[3] != "-").then(|| fields[3].to_owned()),
            slots: fields[8..].iter().map(|s| (*s).to_owned()).collect(),
        })
    }

    fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// The slot ranges served (inclusive), leaving out slots half moved.
    fn ranges(&self) -> impl Iterator<Item = (u16, u16)> + '_ {
        self.slots
            .iter()
            .filter(|s| !s.starts_with('['))
            .filter_map(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                Some((low.parse().ok()?, high.parse().ok()?))
            })
    }

    fn serves(&self, slot: u16) -> bool {
        self.ranges()
            .any(|(low, high)| (low..=high).contains(&slot))
    }
}

/// The server arguments of a cluster node in `dir`, its bus on `bus`:
/// quick failure detection, replicas that sync at once and always may take
/// over, and no replica wandering off to another master.
fn node_args(dir: &Path, bus: u16) -> Vec<String> {
    [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &dir.join("nodes.conf").display().to_string(),
        "--cluster-node-timeout",
        "1000",
        "--cluster-port",
        &bus.to_string(),
        "--cluster-replica-validity-factor",
        "0",
        "--cluster-allow-replica-migration",
        "no",
        "--appendonly",
        "no",
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A free port for the cluster bus of the node in `dir`. The default (port +
/// 10000) is past 65535 for most free ports; the node's own port is in the
/// folder's name (`...-<port>`), and not yet taken when this runs.
fn bus_port_for(dir: &Path) -> u16 {
    let own: Option<u16> = dir
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.rsplit('-').next())
        .and_then(|p| p.parse().ok());
    loop {
        let port = free_port();
        if Some(port) != own {
            return port;
        }
    }
}

/// `redis-server` on a given port and folder under the same watchdog as
/// `Server::launch` (which always takes a new port): a restarted node must
/// come back where the others know it.
fn relaunch(port: u16, dir: &Path, extra: &[String]) -> std::process::Child {
    let script = r#"
        parent=$1; dir=$2; shift 2
        redis-server "$@" >"$dir/redis.log" 2>&1 &
        server=$!
        while kill -0 "$parent" 2>/dev/null && kill -0 "$server" 2>/dev/null; do sleep 0.2; done
        kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$dir"
    "#;
    let dir_text = dir.display().to_string();
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .args([std::process::id().to_string(), dir_text.clone()])
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--dir",
            &dir_text,
        ])
        .args(["--save", ""])
        .args(extra)
        .stdin(Stdio::null())
        .spawn()
        .expect("start the redis-server watchdog")
}

fn require_redis_cli() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        panic!(
            "redis-cli is not installed, and the Redis Cluster tests need it: \
             apt-get install redis-tools (or run tools/ensure-system-packages)"
        );
    }
}

/// Runs a `redis-cli --cluster` command; panics with its output if it fails.
fn redis_cli(mut command: Command, what: &str) {
    let done = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run redis-cli to {what}: {e}"));
    let out = String::from_utf8_lossy(&done.stdout);
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        done.status.success() && !out.contains("[ERR]"),
        "redis-cli failed to {what} ({}):\n{out}\n{err}",
        done.status
    );
}

/// Sends one command to the node at `port` (not following redirections).
pub fn command<T: redis::FromRedisValue>(port: u16, words: &[&str]) -> redis::RedisResult<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/"))?;
    let mut connection = client.get_connection_with_timeout(Duration::from_millis(500))?;
    connection.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query(&mut connection)
}

/// `CLUSTER NODES` as the node at `port` sees it.
fn view_of(port: u16) -> redis::RedisResult<Vec<NodeLine>> {
    let text: String = command(port, &["CLUSTER", "NODES"])?;
    Ok(text.lines().filter_map(NodeLine::parse).collect())
}

/// Sends a command that must answer OK.
fn ok(port: u16, words: &[&str]) {
    if let Err(err) = command::<()>(port, words) {
        panic!("{words:?} on port {port}: {err}");
    }
}

/// Whether the node at `port` answers PING.
pub fn is_up(port: u16) -> bool {
    command::<String>(port, &["PING"]).is_ok_and(|r| r == "PONG")
}

/// What the node at `port` says it is now: `master` or `slave` (`ROLE`).
pub fn role(port: u16) -> Option<String> {
    let reply: redis::Value = command(port, &["ROLE"]).ok()?;
    match reply {
        redis::Value::Array(items) => items
            .into_iter()
            .next()
            .and_then(|first| redis::from_redis_value::<String>(first).ok()),
        _ => None,
    }
}

/// The id the node at `port` has in the cluster.
pub fn node_id(port: u16) -> String {
    command(port, &["CLUSTER", "MYID"]).unwrap_or_else(|e| panic!("CLUSTER MYID on {port}: {e}"))
}

/// A `name:value` field of `INFO <section>` of the node at `port`.
pub fn info_field<T: std::str::FromStr>(port: u16, section: &str, name: &str) -> Option<T> {
    let info: String = command(port, &["INFO", section]).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// Polls `done` every 50 ms; panics with `why()` after `limit`.
fn wait_for(limit: Duration, mut done: impl FnMut() -> bool, why: impl Fn() -> String) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "{} (waited {limit:?})", why());
        std::thread::sleep(Duration::from_millis(50));
    }
}
