"""Throwaway PostgreSQL servers for the tests: initdb and postgres in a temporary
folder, on a free loopback port, with password (SCRAM) logins over TCP.

As root (CI) the server runs as ``nobody``: initdb refuses to run as root. The
binaries are taken from the PATH, else from Debian's /usr/lib/postgresql/<version>/bin.
Without them, tests that need a server are skipped with the reason, except in
CI (`needs.in_ci`), where they fail.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from needs import missing
from ports import free_port
from tls_pki import Pki

PASSWORD = "test-secret-pw"


def bin_dir() -> Optional[Path]:
    """The folder holding initdb and postgres (and psql, beside them in Debian's
    layout: a PATH entry that links to them is followed there), or None."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return (Path(folder) / "initdb").resolve().parent
    versions = []
    for entry in Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        if entry.parent.parent.name.isdigit():
            versions.append((int(entry.parent.parent.name), entry.parent))
    return max(versions)[1] if versions else None


MISSING = (
    "PostgreSQL is not installed (no initdb/postgres on the PATH or in "
    "/usr/lib/postgresql/*/bin); install Debian's postgresql package "
    "(tools/ensure-system-packages does, as root)"
)


def require_postgres() -> Path:
    """The binaries' folder; without them the test skips (fails in CI)."""
    found = bin_dir()
    if found is None:
        missing(MISSING)
    return found


# Runs the server ("$@"), waits for its stdin to close, then stops the server
# (fast shutdown) and waits for it.
WATCHDOG = '"$@" & pid=$!; cat >/dev/null; kill -INT "$pid" 2>/dev/null; wait "$pid"'


def _parent_and_state(pid: int) -> tuple[int, str]:
    """(parent pid, state letter) of a process; (0, "") if there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0, ""
    return int(fields[1]), fields[0]


class PostgresServer:
    """One server: its own data folder and port; stop, kill and start it again at will."""

    def __init__(self, bin: Path, settings: Optional[dict[str, str]] = None) -> None:
        self.bin = bin
        self.settings = settings or {}
        self.dir = Path(tempfile.mkdtemp(prefix="pysm-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.process: Optional[subprocess.Popen[bytes]] = None  # the watchdog
        self.postmaster: Optional[int] = None
        # initdb refuses root: as root, everything runs as nobody, who owns the folder.
        self.user: Optional[pwd.struct_passwd] = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("nobody")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD)
        if self.user is not None:
            os.chown(pwfile, self.user.pw_uid, self.user.pw_gid)
        self._run(
            [
                str(bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
                f"--pwfile={pwfile}",
            ]
        )

    def _as_server_user(self) -> dict[str, object]:
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _run(self, command: list[str]) -> None:
        done = subprocess.run(command, capture_output=True, text=True, **self._as_server_user())
        assert done.returncode == 0, f"{command[0]} failed:\n{done.stdout}\n{done.stderr}"

    def start(self, timeout: float = 30, memory_limit_mb: Optional[int] = None) -> None:
        """Starts the server (again) on its port and waits until it accepts
        connections; with `memory_limit_mb`, every server process may map at
        most that much memory (`ulimit -v`), so big requests run out of it."""
        assert self.process is None, "already running"
        limit = (
            []
            if memory_limit_mb is None
            else ["sh", "-c", 'ulimit -v "$0" && exec "$@"', str(memory_limit_mb * 1024)]
        )
        command = limit + [
            str(self.bin / "postgres"),
            "-D",
            str(self.data),
            "-p",
            str(self.port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={self.dir}",
        ]
        for name, value in self.settings.items():
            command += ["-c", f"{name}={value}"]
        with open(self.dir / "log", "ab") as log:
            # A shell watchdog runs the server and holds a pipe from this process:
            # when the pipe closes (stop(), or this process dying however it dies)
            # it stops the server, so no server outlives the tests.
            self.process = subprocess.Popen(
                ["sh", "-c", WATCHDOG, "pg-watchdog", *command],
                stdout=log,
                stderr=log,
                stdin=subprocess.PIPE,
                start_new_session=True,
                **self._as_server_user(),  # type: ignore[arg-type]
            )
        deadline = time.monotonic() + timeout
        while not self._ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log_text = (self.dir / "log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"the test PostgreSQL server did not start:\n{log_text}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        try:
            lines = (self.data / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        # The file of a killed server says "ready" too: the postmaster must be this watchdog's.
        assert self.process is not None
        if len(lines) < 8 or not lines[0].strip().isdigit():
            return False
        pid = int(lines[0])
        if _parent_and_state(pid)[0] != self.process.pid or lines[7].strip() != "ready":
            return False
        self.postmaster = pid
        return True

    def stop(self, mode: str = "fast") -> None:
        """Shuts down: "fast" (SIGINT), "immediate" (SIGQUIT: no checkpoint, crash
        recovery at the next start) or "kill" (SIGKILL to the postmaster and every
        backend at once, as a crash would)."""
        if self.process is None:
            return
        if self.postmaster is not None and self.process.poll() is None:
            if mode == "kill":
                self._signal_all(signal.SIGKILL)
            else:
                sig = {"fast": signal.SIGINT, "immediate": signal.SIGQUIT}[mode]
                os.kill(self.postmaster, sig)
            deadline = time.monotonic() + 60
            while _parent_and_state(self.postmaster)[1] not in ("Z", "") and (
                time.monotonic() < deadline
            ):
                time.sleep(0.02)
        assert self.process.stdin is not None
        self.process.stdin.close()  # the watchdog reaps the server and exits
        self.process.wait(timeout=60)
        self.process = None
        self.postmaster = None

    def _signal_all(self, sig: int) -> None:
        """Sends `sig` to the postmaster and each of its children (every backend
        makes itself a session leader, so one process group does not hold them)."""
        assert self.postmaster is not None
        pids = [self.postmaster]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            if _parent_and_state(int(stat.parent.name))[0] == self.postmaster:
                pids.append(int(stat.parent.name))
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def pause(self) -> None:
        """Freezes every server process (SIGSTOP): a server that hangs."""
        self._signal_all(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_all(signal.SIGCONT)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = "postgres", **options: object) -> str:
        """A store URL for `database` (password included), with `options` as its query."""
        query = "&".join(f"{k}={v}" for k, v in options.items())
        password = PASSWORD if user == "postgres" else ""
        auth = f"{user}:{password}" if password else user
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}" + (
            f"?{query}" if query else ""
        )

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs `sql` as the superuser over the Unix socket; returns psql's unaligned output."""
        psql = self.bin / "psql"
        done = subprocess.run(
            [
                str(psql) if psql.is_file() else "psql",
                "-X",
                "-At",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"psql {sql!r} failed: {done.stderr}"
        return done.stdout.strip()

    def fresh_database(self) -> str:
        """Creates an empty database; returns its name."""
        name = f"db_{next(_names)}"
        self.psql(f"CREATE DATABASE {name}")
        return name

    def fresh_schema_url(self, **options: object) -> str:
        """A URL whose connections use a new, empty schema (their search_path) in `postgres`."""
        name = f"s_{next(_names)}"
        self.psql(f"CREATE SCHEMA {name}")
        return self.url(options=f"-c%20search_path%3D{name}", **options)


def _counter() -> Iterator[int]:
    n = 0
    while True:
        n += 1
        yield n


_names = _counter()
_shared: Optional[PostgresServer] = None


def tls_server(settings: Optional[dict[str, str]] = None) -> tuple[PostgresServer, Pki]:
    """A new server (not started) with TLS on, with certificates made in its
    folder: the server's user owns its key, mode 0600, as PostgreSQL demands."""
    server = PostgresServer(require_postgres(), {"fsync": "off", **(settings or {})})
    pki = Pki.make(server.dir / "pki")
    os.chmod(pki.server_key, 0o600)
    if server.user is not None:
        for path in [pki.server_key.parent, *pki.server_key.parent.iterdir()]:
            os.chown(path, server.user.pw_uid, server.user.pw_gid)
    server.settings.update(
        ssl="on",
        ssl_cert_file=str(pki.server_cert),
        ssl_key_file=str(pki.server_key),
        ssl_ca_file=str(pki.ca),
    )
    return server, pki


def shared_server() -> PostgresServer:
    """The server shared by this test process (fsync off: the durability tests
    start their own with PostgreSQL's defaults), started on first use."""
    global _shared
    if _shared is None:
        server = PostgresServer(require_postgres(), {"fsync": "off"})
        server.start()
        atexit.register(server.remove)
        _shared = server
    return _shared


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The shared server."""
    return shared_server()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A store URL on a new, empty database of the shared server."""
    return postgres_server.url(postgres_server.fresh_database())


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of the test's own, with PostgreSQL's default settings, running;
    the test may stop, kill and start it."""
    server = PostgresServer(require_postgres())
    server.start()
    yield server
    server.remove()
