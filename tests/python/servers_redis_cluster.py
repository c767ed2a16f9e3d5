"""A throwaway Redis Cluster for the tests: three masters and three replicas,
each a ``RedisServer`` on a free loopback port in a folder of its own, and the
faults the cluster tests inject: a manual failover, a node killed and restarted,
slots moved between masters.

Who is master of what changes under failover, so the helpers read the roles from
the nodes (``CLUSTER NODES``) each time instead of remembering them.

A test module uses the fixtures by importing them::

    from servers_redis_cluster import redis_cluster  # noqa: F401

``redis_cluster`` is one cluster for the whole session: tests keep apart by key
prefix and leave the topology as they found it (or call ``wait_ok``). A test
that breaks the cluster takes one of its own from ``own_redis_cluster``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from needs import missing
from ports import free_port
from servers_redis import RedisServer, require_redis_server

SLOTS = 16384
SETTLE = 30.0  # seconds wait_ok (and the helpers that call it) wait


def require_redis_cli() -> str:
    """The path of ``redis-cli``, or fail (CI) / skip (elsewhere) saying it is missing."""
    found = shutil.which("redis-cli")
    if found:
        return found
    missing(
        "redis-cli is not installed; the Redis Cluster tests need it "
        "(apt-get install redis-tools, or run tools/ensure-system-packages)"
    )


def command(port: int, *words: str | int, timeout: float = 10) -> Any:
    """Sends one command to the node at ``port`` (no redirection followed) and
    returns the reply as it came (str, int, list); an error reply raises
    ``redis.ResponseError``, a node that is down ``redis.ConnectionError``."""
    connection = redis.Connection(
        host="127.0.0.1",
        port=port,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=0.5,
    )
    try:
        connection.send_command(*words)
        return connection.read_response()
    finally:
        connection.disconnect()


def is_up(port: int) -> bool:
    try:
        return command(port, "PING") == "PONG"
    except (redis.ConnectionError, redis.TimeoutError):
        return False


def role(port: int) -> str | None:
    """``master`` or ``slave``, as the node at ``port`` says now (``ROLE``)."""
    try:
        return str(command(port, "ROLE")[0])
    except (redis.ConnectionError, redis.TimeoutError):
        return None


def node_id(port: int) -> str:
    return str(command(port, "CLUSTER", "MYID"))


def info_field(port: int, section: str, name: str) -> str | None:
    """A ``name:value`` field of ``INFO <section>`` of the node at ``port``."""
    try:
        info = str(command(port, "INFO", section))
    except (redis.ConnectionError, redis.TimeoutError):
        return None
    for line in info.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return None


@dataclass
class NodeLine:
    """One line of ``CLUSTER NODES``."""

    id: str
    port: int
    flags: list[str]
    master_id: str | None  # None for a master
    slots: list[str]  # "0-5460", "5461", or "[slot->-id]" for a slot half moved

    @classmethod
    def parse(cls, line: str) -> NodeLine | None:
        # <id> <ip:port@bus[,host]> <flags> <master> <ping> <pong> <epoch> <link> <slot>...
        fields = line.split()
        if len(fields) < 8:
            return None
        address = fields[1].split("@")[0]
        try:
            port = int(address.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            return None
        return cls(
            id=fields[0],
            port=port,
            flags=fields[2].split(","),
            master_id=None if fields[3] == "-" else fields[3],
            slots=fields[8:],
        )

    def ranges(self) -> list[tuple[int, int]]:
        """The slot ranges served (inclusive), leaving out slots half moved."""
        out = []
        for item in self.slots:
            if item.startswith("["):
                continue
            low, _, high = item.partition("-")
            out.append((int(low), int(high or low)))
        return out

    def serves(self, slot: int) -> bool:
        return any(low <= slot <= high for low, high in self.ranges())


def view_of(port: int) -> list[NodeLine]:
    """``CLUSTER NODES`` as the node at ``port`` sees it."""
    text = str(command(port, "CLUSTER", "NODES"))
    return [node for node in map(NodeLine.parse, text.splitlines()) if node is not None]


def _wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"waited {timeout} s for {what}")
        time.sleep(0.05)


def _node_args(folder: Path, bus: int) -> list[str]:
    """Quick failure detection, replicas that sync at once and always may take over,
    and no replica wandering off to another master."""
    return [
        *("--cluster-enabled", "yes"),
        *("--cluster-config-file", str(folder / "nodes.conf")),
        *("--cluster-node-timeout", "1000"),
        # The default bus port (port + 10000) is past 65535 for most free ports.
        *("--cluster-port", str(bus)),
        *("--cluster-replica-validity-factor", "0"),
        *("--cluster-allow-replica-migration", "no"),
        *("--appendonly", "no"),
        *("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"),
    ]


class RedisCluster:
    """Six nodes in ``folder`` (one subfolder each), joined by ``start`` as three
    masters with a replica each. ``kill``/``restart`` keep a node's port, bus
    port and ``nodes.conf``, so it comes back with its node id, where the
    others know it."""

    def __init__(self, folder: Path) -> None:
        self.redis_cli = require_redis_cli()
        self.folder = folder
        self.nodes: list[RedisServer] = []
        taken: set[int] = set()
        for n in range(6):
            where = folder / f"node-{n}"
            where.mkdir(parents=True, exist_ok=True)
            bus = free_port()
            while bus in taken:
                bus = free_port()
            taken.add(bus)
            node = RedisServer(where, *_node_args(where, bus))
            while node.port in taken:
                node.port = free_port()
            taken.add(node.port)
            self.nodes.append(node)
        self.seeds: list[int] = []  # the masters once created: the URL's seed list

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        """Starts the nodes, joins them (``redis-cli --cluster create
        --cluster-replicas 1``) and waits until every node sees all 16384 slots
        served and every replica is in sync."""
        for node in self.nodes:
            node.start()
        self._redis_cli(
            "create the cluster",
            "--cluster",
            "create",
            *(f"127.0.0.1:{node.port}" for node in self.nodes),
            *("--cluster-replicas", "1", "--cluster-yes"),
        )
        self.wait_ok()
        self.seeds = self.masters()
        assert len(self.seeds) == 3, f"three masters after create, not {self.seeds}"

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def url(self, **options: str) -> str:
        """``redis+cluster://`` URL naming the first masters as seeds, with
        ``options`` (say ``prefix=...``) as the query."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.seeds)
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis+cluster://{hosts}/" + (f"?{query}" if query else "")

    def client(self, *, decode_responses: bool = True) -> redis.RedisCluster:
        """A redis-py cluster client, for tests that look at the keys directly."""
        return redis.RedisCluster(
            host="127.0.0.1", port=self.seeds[0], decode_responses=decode_responses
        )

    # -- topology, read from the nodes -------------------------------------------

    def node(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(f"no node of the cluster is on port {port}")

    def view(self) -> list[NodeLine]:
        """``CLUSTER NODES`` as the first node that answers sees it."""
        for node in self.nodes:
            try:
                return view_of(node.port)
            except (redis.ConnectionError, redis.TimeoutError):
                continue
        raise RuntimeError("no node of the cluster answers CLUSTER NODES")

    def masters(self) -> list[int]:
        """Ports of the masters that are up now (a master emptied by ``reshard``
        is still one)."""
        return self._live_with_flag("master")

    def replicas(self) -> list[int]:
        """Ports of the replicas that are up now."""
        return self._live_with_flag("slave")

    def _live_with_flag(self, flag: str) -> list[int]:
        return sorted(
            n.port
            for n in self.view()
            if flag in n.flags and "fail" not in n.flags and is_up(n.port)
        )

    def replicas_of(self, master: int) -> list[int]:
        """Ports of the replicas (up or not) of the master at ``master``."""
        view = self.view()
        ids = [n.id for n in view if n.port == master]
        if not ids:
            raise KeyError(f"no node on port {master} in the cluster")
        return sorted(n.port for n in view if n.master_id == ids[0])

    def slots_of(self, master: int) -> list[tuple[int, int]]:
        """The slot ranges (inclusive) the master at ``master`` serves now."""
        for n in self.view():
            if n.port == master:
                return n.ranges()
        raise KeyError(f"no node on port {master} in the cluster")

    def master_of_slot(self, slot: int) -> int:
        assert 0 <= slot < SLOTS, f"slot {slot} is out of range"
        for n in self.view():
            if n.serves(slot):
                return n.port
        raise RuntimeError(f"no master serves slot {slot}")

    def slot_of(self, key: str) -> int:
        """The slot ``key`` hashes to (``CLUSTER KEYSLOT``, so hash tags count)."""
        for node in self.nodes:
            try:
                return int(command(node.port, "CLUSTER", "KEYSLOT", key))
            except (redis.ConnectionError, redis.TimeoutError):
                continue
        raise RuntimeError("no node of the cluster answers CLUSTER KEYSLOT")

    def master_of_key(self, key: str) -> int:
        return self.master_of_slot(self.slot_of(key))

    # -- faults -----------------------------------------------------------------

    def failover(self, replica: int, option: str | None = None) -> None:
        """Promotes the replica at ``replica`` with ``CLUSTER FAILOVER`` (``option``
        ``FORCE``: the master may be down; ``TAKEOVER``: no vote either), waits
        until it says it is a master, then for the cluster to settle."""
        words = ["CLUSTER", "FAILOVER", *([option] if option else [])]
        deadline = time.monotonic() + SETTLE
        asked = None
        while role(replica) != "master":
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the replica on port {replica} did not become a master in {SETTLE} s; "
                    f"see {self.node(replica).folder / 'redis.log'}"
                )
            # A manual failover the master does not answer in 5 s is dropped: ask again.
            if asked is None or time.monotonic() - asked > 6:
                command(replica, *words)
                asked = time.monotonic()
            time.sleep(0.05)
        self.wait_ok()

    def kill(self, port: int) -> None:
        """SIGKILL, as in a crash. The others notice after the node timeout (1 s);
        a master's replica then takes over on its own: ``wait_ok`` waits for that."""
        self.node(port).kill()

    def restart(self, port: int) -> None:
        """Starts a killed (or stopped) node again, on the same ports, with its
        ``nodes.conf``; returns once it answers. It rejoins as whatever the
        cluster says it is now (a master that was failed over comes back as a
        replica): call ``wait_ok`` to wait for that."""
        self.node(port).start()

    def reshard(self, source: int, target: int, slots: int) -> None:
        """Moves ``slots`` slots (and their keys) from the master at ``source`` to
        the one at ``target``, all but one with ``redis-cli --cluster reshard``,
        then waits for the cluster to settle.

        The last slot moves the careful way (``SlotMove.finish``), which also makes
        ``target`` announce all its slots once more: with redis-cli alone, Redis
        7.0 can leave a node believing the last slot moved is unclaimed (its
        ``owner_not_claiming_slot`` bit stays set), and if ``target`` later fails
        over and comes back from a crash, that node hands the slot to the stale
        claim and the slot ends up served by no one (``cluster_state:fail``)."""
        assert slots > 0, "reshard of no slots"
        self.wait_ok()  # redis-cli refuses a cluster whose nodes disagree
        if slots > 1:
            self._redis_cli(
                f"move {slots - 1} slots from {source} to {target}",
                *("--cluster", "reshard", f"127.0.0.1:{source}"),
                *("--cluster-from", node_id(source), "--cluster-to", node_id(target)),
                *("--cluster-slots", str(slots - 1), "--cluster-yes"),
            )
            self.wait_ok()
        ranges = self.slots_of(source)
        if not ranges:
            raise RuntimeError(f"the master on port {source} has fewer than {slots} slots")
        self.move_slot(ranges[0][0], target)

    def begin_slot_move(self, slot: int, target: int) -> SlotMove:
        """Starts moving ``slot`` to the master at ``target`` the way redis-cli
        does, and stops half way: IMPORTING on ``target``, MIGRATING on its owner,
        no key moved yet. A client then gets ``ASK`` for the keys
        ``SlotMove.move_keys`` moves; ``SlotMove.finish`` completes the move."""
        source = self.master_of_slot(slot)
        assert source != target, f"slot {slot} is on port {target} already"
        command(target, "CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
        command(source, "CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))
        return SlotMove(slot, source, target, self.masters(), [n.port for n in self.nodes])

    def move_slot(self, slot: int, target: int) -> None:
        """Moves ``slot`` and its keys to the master at ``target`` at once, and
        waits for the cluster to settle."""
        self.begin_slot_move(slot, target).finish()
        self.wait_ok()

    # -- settling ---------------------------------------------------------------

    def wait_ok(self, timeout: float = SETTLE) -> None:
        """Waits until every node that is up says ``cluster_state:ok`` with all 16384
        slots served by masters that are up, they all agree who serves what and who
        replicates whom, no slot is half moved, and every replica that is up is in
        sync. Raises, saying what is still wrong, after ``timeout`` seconds. Nodes
        that are down are left out (they must not serve a slot, though)."""
        deadline = time.monotonic() + timeout
        while True:
            why = self.check()
            if why is None:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the cluster is not ok after {timeout} s: {why}\n{self.describe()}"
                )
            time.sleep(0.1)

    def check(self) -> str | None:
        """What keeps the cluster from being ok, or None."""
        live = [node.port for node in self.nodes if is_up(node.port)]
        if not live:
            return "no node is up"
        agreed: tuple[int, list[str]] | None = None
        for port in live:
            try:
                info = str(command(port, "CLUSTER", "INFO"))
                view = view_of(port)
            except redis.RedisError as err:
                return f"port {port}: {err}"
            lines = {line.strip() for line in info.splitlines()}
            for wanted in (
                "cluster_state:ok",
                f"cluster_slots_ok:{SLOTS}",
                f"cluster_known_nodes:{len(self.nodes)}",
            ):
                if wanted not in lines:
                    said = sorted(x for x in lines if x.startswith(("cluster_s", "cluster_known")))
                    return f"port {port} does not say {wanted} but {said}"
            summary = []
            for n in view:
                if any(s.startswith("[") for s in n.slots):
                    return f"port {port} sees a slot half moved: {n.slots}"
                if n.port not in live:
                    if n.slots:
                        return f"slots of the down node {n.port} not taken over"
                    continue
                if {"fail", "fail?", "handshake"} & set(n.flags):
                    return f"port {port} flags {n.port} as {n.flags}"
                if n.master_id is None:
                    summary.append(f"{n.port} master {' '.join(n.slots)}")
                else:
                    of = next((m.port for m in view if m.id == n.master_id), 0)
                    summary.append(f"{n.port} replica of {of}")
            summary.sort()
            if agreed is None:
                agreed = (port, summary)
            elif agreed[1] != summary:
                return f"ports {agreed[0]} and {port} disagree: {agreed[1]} / {summary}"
            if (
                role(port) == "slave"
                and info_field(port, "replication", "master_link_status") != "up"
            ):
                return f"the replica on port {port} is not in sync"
        return None

    def describe(self) -> str:
        """Each node's view and the end of its log, for an error message."""
        parts = []
        for node in self.nodes:
            try:
                nodes = str(command(node.port, "CLUSTER", "NODES"))
            except redis.RedisError as err:
                nodes = f"(no answer: {err})\n"
            log = node.folder / "redis.log"
            tail = log.read_text(errors="replace").splitlines()[-12:] if log.exists() else []
            parts.append(f"--- node {node.port} sees:\n{nodes}--- end of its log:")
            parts.extend(f"    {line}" for line in tail)
        return "\n".join(parts)

    def _redis_cli(self, what: str, *args: str) -> None:
        done = subprocess.run(
            [self.redis_cli, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if done.returncode != 0 or "[ERR]" in done.stdout:
            raise RuntimeError(
                f"redis-cli failed to {what} ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )


@dataclass
class SlotMove:
    """A slot half moved by ``RedisCluster.begin_slot_move``."""

    slot: int
    source: int  # port of the master giving the slot
    target: int  # port of the master taking it
    masters: list[int]
    nodes: list[int]

    def move_keys(self, *keys: str) -> None:
        """Moves these keys of the slot (``MIGRATE``) to the new master: a client
        now gets ``ASK`` for them from the old one."""
        if keys:
            command(
                self.source,
                *("MIGRATE", "127.0.0.1", self.target, "", 0, 5000, "REPLACE", "KEYS"),
                *keys,
            )

    def finish(self) -> None:
        """Moves the slot's remaining keys, then gives the slot to the new master:
        first on it alone, waiting until every node that is up has heard it claim
        the slot (which also clears any stale ``owner_not_claiming_slot`` bit of
        Redis 7.0 for its other slots), then on the old one and the other masters:
        the old owner never stops claiming the slot before the others know the new
        one, so none of them sees the slot unclaimed."""
        while keys := command(self.source, "CLUSTER", "GETKEYSINSLOT", self.slot, 100):
            self.move_keys(*keys)
        target_id = node_id(self.target)
        command(self.target, "CLUSTER", "SETSLOT", self.slot, "NODE", target_id)

        def heard() -> bool:
            return all(
                any(n.port == self.target and n.serves(self.slot) for n in view_of(port))
                for port in self.nodes
                if is_up(port)
            )

        _wait_for(heard, SETTLE, f"every node to hear {self.target} claim slot {self.slot}")
        for port in self.masters:
            if port != self.target:
                command(port, "CLUSTER", "SETSLOT", self.slot, "NODE", target_id)


def _make_cluster(prefix: str) -> tuple[RedisCluster, Path]:
    require_redis_server()
    require_redis_cli()
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    cluster = RedisCluster(folder)
    try:
        cluster.start()
    except BaseException:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return cluster, folder


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """One cluster for the session; tests keep apart by prefix and leave the
    topology settled (call ``wait_ok`` after a failover)."""
    cluster, folder = _make_cluster("pysessionmanager-cluster-")
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def own_redis_cluster() -> Iterator[RedisCluster]:
    """A cluster of the test's own (started), for tests that kill nodes or move slots."""
    cluster, folder = _make_cluster("pysessionmanager-own-cluster-")
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)
