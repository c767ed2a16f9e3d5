"""Throwaway redis-server processes for the tests: each on a free loopback port,
in its own temporary folder, stopped when the test is done.

A test that needs a server never silently skips in CI (`needs.in_ci`): there a missing
``redis-server`` binary fails the test; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import redis
from needs import missing
from ports import free_port
from tls_pki import Pki


def require_redis_server() -> str:
    """The path of ``redis-server``, or fail (CI) / skip (elsewhere) saying it is missing."""
    found = shutil.which("redis-server")
    if found:
        return found
    reason = (
        "redis-server is not installed; the Redis store's tests need a real server "
        "(apt-get install redis-server, or run tools/ensure-system-packages)"
    )
    missing(reason)


class RedisServer:
    """One redis-server on a loopback port, in ``folder``, with extra config ``args``.

    ``stop``/``kill``/``start`` keep the port and folder, so a restart comes back
    where clients expect it, with whatever it persisted.
    """

    def __init__(
        self,
        folder: Path,
        *args: str,
        password: str | None = None,
        launcher: Sequence[str] = (),
        config_file: Path | None = None,
    ) -> None:
        self.binary = require_redis_server()
        self.launcher = list(launcher)  # say, ["taskset", "-c", "0"] to pin it
        self.folder = folder
        self.port = free_port()
        self.password = password
        self.config_file = config_file  # read first: a sentinel needs one it can rewrite
        self.args = list(args)
        if password is not None:
            self.args += ["--requirepass", password]
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0, *, password: str | None = None, **options: str) -> str:
        """``redis://`` URL of this server, with ``options`` as the query."""
        auth = f":{password}@" if password is not None else ""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"redis://{auth}127.0.0.1:{self.port}/{db}" + (f"?{query}" if query else "")

    def start(self) -> None:
        log = open(self.folder / "redis.log", "ab")
        self.process = subprocess.Popen(
            [
                *self.launcher,
                self.binary,
                *([str(self.config_file)] if self.config_file else []),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.folder),
                "--save",
                "",
                "--appendonly",
                "no",
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                if self.command("PING") == "+PONG":
                    return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_text = (self.folder / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server did not start:\n{log_text}")
            time.sleep(0.02)

    def command(self, *words: str) -> str:
        """Sends one inline command (with AUTH first if needed); returns the first reply line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as conn:
            reader = conn.makefile("rb")
            if self.password is not None:
                conn.sendall(f"AUTH {self.password}\r\n".encode())
                reader.readline()
            conn.sendall((" ".join(words) + "\r\n").encode())
            return reader.readline().decode().rstrip("\r\n")

    def client(self, db: int = 0) -> redis.Redis:
        """A redis-py client, for tests that look at the keys directly."""
        return redis.Redis(port=self.port, db=db, password=self.password)

    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as in a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server shared by the tests that do not stop it; keep apart by prefix."""
    require_redis_server()
    folder = Path(tempfile.mkdtemp(prefix="pysessionmanager-redis-"))
    server = RedisServer(folder)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


ServerFactory = Callable[..., RedisServer]


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ServerFactory]:
    """A server of the test's own (not yet started), for tests that kill or reconfigure it."""
    require_redis_server()
    servers: list[RedisServer] = []

    def make(*args: str, password: str | None = None) -> RedisServer:
        folder = tmp_path / f"redis-{len(servers)}"
        folder.mkdir()
        server = RedisServer(folder, *args, password=password)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


SENTINEL_SERVICE = "sessions"


class SentinelTopology:
    """A master, its replica and three sentinels watching them (quorum 2), in ``folder``.

    With ``tls`` (a CA and a server certificate for 127.0.0.1), every server
    and sentinel also listens with TLS and they talk to each other over it;
    ``url`` then names the sentinels' TLS ports.
    """

    def __init__(self, folder: Path, *, tls: Pki | None = None) -> None:
        self.tls = tls
        # The port each server is known by: its TLS port when there is TLS.
        self.known_port: dict[int, int] = {}
        self.master = self._server(_subfolder(folder, "master"))
        self.replica = self._server(
            _subfolder(folder, "replica"),
            "--replicaof",
            "127.0.0.1",
            str(self.known_port[self.master.port]),
        )
        self.sentinels = []
        for n in range(3):
            where = _subfolder(folder, f"sentinel-{n}")
            conf = where / "sentinel.conf"
            master = self.known_port[self.master.port]
            conf.write_text(
                f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 1000\n"
                f"sentinel failover-timeout {SENTINEL_SERVICE} 5000\n"
            )
            self.sentinels.append(self._server(where, "--sentinel", config_file=conf))
        self.wait_until_watched()

    def _server(self, folder: Path, *args: str, config_file: Path | None = None) -> RedisServer:
        tls_port = free_port()
        tls_args: tuple[str, ...] = ()
        if self.tls is not None:
            tls_args = (
                *("--tls-port", str(tls_port), "--tls-replication", "yes"),
                *("--tls-cert-file", str(self.tls.server_cert)),
                *("--tls-key-file", str(self.tls.server_key)),
                *("--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"),
            )
        server = RedisServer(folder, *args, *tls_args, config_file=config_file)
        self.known_port[server.port] = tls_port if self.tls is not None else server.port
        server.start()
        return server

    def url(self, **options: str) -> str:
        """``redis+sentinel://`` (with TLS ``rediss+sentinel://``) URL of the
        master, with ``options`` as the query."""
        hosts = ",".join(f"127.0.0.1:{self.known_port[s.port]}" for s in self.sentinels)
        scheme = "redis+sentinel"
        if self.tls is not None:
            scheme = "rediss+sentinel"
            options = {"ssl_ca_certs": str(self.tls.ca), **options}
        query = "&".join(f"{k}={v}" for k, v in options.items())
        return f"{scheme}://{hosts}/{SENTINEL_SERVICE}/0" + (f"?{query}" if query else "")

    def sentinel_client(self, n: int = 0) -> redis.Redis:
        return redis.Redis(port=self.sentinels[n].port, decode_responses=True)

    def master_port(self) -> int:
        """The port the sentinels name the master by now."""
        _, port = self.sentinel_client().sentinel_get_master_addr_by_name(SENTINEL_SERVICE)
        return int(port)

    def wait_until_watched(self) -> None:
        """Waits until every sentinel knows the master's replica and the other sentinels."""
        deadline = time.monotonic() + 30
        for n in range(len(self.sentinels)):
            client = self.sentinel_client(n)
            while True:
                master = client.sentinel_master(SENTINEL_SERVICE)
                if master["num-slaves"] >= 1 and master["num-other-sentinels"] >= 2:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"sentinel {n} does not see the topology: {master}")
                time.sleep(0.1)

    def stop(self) -> None:
        for server in [*self.sentinels, self.replica, self.master]:
            server.stop()


def _subfolder(folder: Path, name: str) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    return folder / name


@pytest.fixture(scope="session")
def sentinel_topology() -> Iterator[SentinelTopology]:
    """One Sentinel-managed master for the tests that do not fail it over."""
    require_redis_server()
    folder = Path(tempfile.mkdtemp(prefix="pysessionmanager-sentinel-"))
    topology = SentinelTopology(folder)
    yield topology
    topology.stop()
    shutil.rmtree(folder, ignore_errors=True)


def fresh_prefix() -> str:
    """A key prefix no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The shared server's URL with a prefix of the test's own."""
    return redis_server.url(prefix=fresh_prefix())
