"""The `pysessionmanager` command: look into a store, end sessions, purge,
and move every session from one store to another without logging anyone out.

    pysessionmanager info STORE_URL
    pysessionmanager list STORE_URL [--user USER] [--json]
    pysessionmanager end STORE_URL (--user USER | --key KEY)
    pysessionmanager purge STORE_URL
    pysessionmanager migrate FROM_URL TO_URL [--state FILE] [--batch N]

Exit status: 0 done, 1 the store failed or a migration did not verify,
2 bad arguments. URLs are shown with their passwords hidden.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional, TextIO

from pysessionmanager import SessionManager
from pysessionmanager.errors import SessionError

__all__ = ["main"]


class Failed(Exception):
    """A command that could not do its job; the message says why."""


@contextmanager
def opened(url: str) -> Iterator[SessionManager]:
    if url.startswith("memory:"):
        raise Failed(
            "a memory store lives inside one process; export and import its sessions "
            "from that process (SessionManager.export_sessions / import_sessions)"
        )
    try:
        manager = SessionManager(store=url)
    except (ValueError, TypeError, SessionError) as e:
        raise Failed(f"cannot open the store: {e}") from None
    try:
        yield manager
    finally:
        manager.close()


def every_session(manager: SessionManager, batch: int = 1000) -> Iterator[dict[str, Any]]:
    """Every live session, once (a store may repeat one across pages)."""
    seen: set[str] = set()
    cursor: Optional[str] = None
    while True:
        page, cursor = manager.export_sessions(cursor, batch)
        for session in page:
            if session["key"] not in seen:
                seen.add(session["key"])
                yield session
        if cursor is None:
            return


def seconds(ms: float) -> str:
    """A span of milliseconds for people: 45s, 12m, 3.5h, 2.0d."""
    s = ms / 1000
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(s) >= size:
            return f"{s / size:.1f}{unit}"
    return f"{s:.0f}s"


def info(args: argparse.Namespace, out: TextIO) -> None:
    with opened(args.store) as m:
        now_ms = time.time() * 1000
        per_user: Counter[str] = Counter()
        expires_in = []
        for session in every_session(m):
            per_user[session["user_id"]] += 1
            expires_in.append(session["expires_at_ms"] - now_ms)
        counts = sorted(per_user.values())
        lines = [
            ("store", m.store),
            ("kind", m.store.split(":", 1)[0]),
            ("layout version", str(m.store_layout_version)),
            ("live sessions", str(m.count())),
            ("users", str(len(per_user))),
        ]
        if counts:
            lines.append(
                (
                    "sessions per user",
                    f"max {counts[-1]}, median {statistics.median(counts):g}",
                )
            )
            q = statistics.quantiles(expires_in, n=10) if len(expires_in) > 1 else expires_in * 9
            lines.append(
                (
                    "expire in",
                    f"min {seconds(min(expires_in))}, 10% {seconds(q[0])}, "
                    f"median {seconds(statistics.median(expires_in))}, 90% {seconds(q[-1])}, "
                    f"max {seconds(max(expires_in))}",
                )
            )
        width = max(len(name) for name, _ in lines)
        for name, value in lines:
            print(f"{name + ':':{width + 1}} {value}", file=out)


def listing(args: argparse.Namespace, out: TextIO) -> None:
    with opened(args.store) as m:
        if args.user is not None:
            sessions = [
                {
                    "key": s.key,
                    "user_id": s.user_id,
                    "version": s.version,
                    "created_at_ms": int(s.created_at.timestamp() * 1000),
                    "last_active_ms": int(s.last_active.timestamp() * 1000),
                    "expires_at_ms": int(s.expires_at.timestamp() * 1000),
                    "data": dict(s),
                }
                for s in m.list_sessions(args.user)
            ]
        else:
            sessions = list(every_session(m))
        for s in sessions:
            s["size"] = len(json.dumps(s["data"], separators=(",", ":")).encode())
            if not args.json:
                del s["data"]
        if args.json:
            json.dump(sessions, out, indent=1)
            out.write("\n")
            return
        print(f"{'key':64}  {'user':20}  {'version':>7}  {'size':>6}  expires in", file=out)
        now_ms = time.time() * 1000
        for s in sessions:
            print(
                f"{s['key']}  {s['user_id'][:20]:20}  {s['version']:>7}  {s['size']:>6}  "
                f"{seconds(s['expires_at_ms'] - now_ms)}",
                file=out,
            )


def end(args: argparse.Namespace, out: TextIO) -> None:
    with opened(args.store) as m:
        if args.user is not None:
            ended = m.end_user_sessions(args.user)
            print(f"ended {ended} session(s) of user {args.user!r}", file=out)
        else:
            try:
                ended_one = m.end_any_session_by_key(args.key)
            except ValueError as e:
                raise Failed(str(e)) from None
            print("ended 1 session" if ended_one else "no live session has that key", file=out)


def purge(args: argparse.Namespace, out: TextIO) -> None:
    with opened(args.store) as m:
        print(f"removed {m.purge_expired()} expired session(s)", file=out)


class Progress:
    """A progress line on a terminal (count, rate, ETA); log lines otherwise."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total, self.stream = max(total, 1), stream
        self.tty = stream.isatty()
        self.started = self.last = time.monotonic()

    def show(self, done: int, label: str, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self.last < (0.1 if self.tty else 5.0):
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        left = max(self.total - done, 0)
        eta = f"{left / rate:.0f}s" if rate > 0 and not final else "-"
        done = min(done, self.total)
        share = done / self.total
        if self.tty:
            bar = "#" * int(share * 30)
            line = f"\r{label} [{bar:30}] {done}/{self.total} {rate:,.0f}/s ETA {eta} "
            self.stream.write(line + ("\n" if final else ""))
        else:
            self.stream.write(f"{label}: {done}/{self.total} sessions, {rate:,.0f}/s, ETA {eta}\n")
        self.stream.flush()


def default_state(source: str, target: str) -> Path:
    digest = hashlib.sha256(f"{source}\n{target}".encode()).hexdigest()[:16]
    return Path(f".pysessionmanager-migrate-{digest}.json")


def migrate(args: argparse.Namespace, out: TextIO) -> None:
    state_path = Path(args.state) if args.state else default_state(args.source, args.target)
    state = {"pass": 1, "cursor": None, "copied": 0}
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text())
            print(f"resuming from {state_path} (pass {state['pass']})", file=out)
        except (ValueError, KeyError) as e:
            raise Failed(f"{state_path} is not a migration state file ({e}); remove it") from None
    with opened(args.source) as source, opened(args.target) as target:
        print(f"migrating {source.store} -> {target.store}", file=out)
        started = time.monotonic()
        totals: Counter[str] = Counter()
        # Pass 1 copies everything; pass 2 walks again and brings over what
        # changed or appeared in the source while pass 1 ran.
        while state["pass"] <= 2:
            progress = Progress(source.count(), sys.stderr)
            label = f"pass {state['pass']}/2"
            pass_started, pass_read = time.monotonic(), 0
            while True:
                read, done, cursor = source.copy_sessions(target, state["cursor"], args.batch)
                totals.update(done)
                pass_read += read
                state["copied"] += read
                state["cursor"] = cursor
                if cursor is None:
                    state = {"pass": state["pass"] + 1, "cursor": None, "copied": 0}
                state_path.write_text(json.dumps(state))
                progress.show(state["copied"] if cursor else progress.total, label, cursor is None)
                if cursor is None:
                    took = time.monotonic() - pass_started
                    print(
                        f"{label}: {pass_read} sessions in {took:.2f}s "
                        f"({pass_read / max(took, 1e-9):,.0f}/s)",
                        file=out,
                    )
                    break
        elapsed = time.monotonic() - started
        print(
            f"copied in {elapsed:.1f}s: {totals['created']} created, {totals['updated']} updated, "
            f"{totals['unchanged']} unchanged, {totals['expired']} expired meanwhile",
            file=out,
        )
        verify(source, target, out)
    state_path.unlink(missing_ok=True)


def verify(source: SessionManager, target: SessionManager, out: TextIO) -> None:
    """Counts on both sides, and a sample of the source that the target must
    hold at the same version or newer. Sessions the source changed after
    their pass are copied now and named; with the source quiet meanwhile,
    fewer live sessions in the target than in the source is a failure."""
    before = source.count()
    sample, _ = source.export_sessions(None, 200)
    caught_up = target.import_sessions(sample)
    behind = caught_up["created"] + caught_up["updated"]
    have, want = target.count(), source.count()
    print(
        f"verified: source {want} live, target {have} live; sample of {len(sample)}: "
        f"{len(sample) - behind} up to date, {behind} changed in the source after their pass "
        "(copied now)",
        file=out,
    )
    if behind or want != before:
        print(
            "the source is still being written: switch the application to the target, "
            "then run migrate again to bring over what the source took meanwhile",
            file=out,
        )
    elif have < want:
        raise Failed(f"the target holds fewer live sessions ({have}) than the source ({want})")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="pysessionmanager",
        description="Look into a session store, end sessions, and migrate between stores.",
    )
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = commands.add_parser("info", help="what a store holds")
    p.add_argument("store", metavar="STORE_URL")
    p.set_defaults(run=info)
    p = commands.add_parser("list", help="sessions by key (never their ids)")
    p.add_argument("store", metavar="STORE_URL")
    p.add_argument("--user", help="only this user's sessions")
    p.add_argument("--json", action="store_true", help="JSON, data included")
    p.set_defaults(run=listing)
    p = commands.add_parser("end", help="end a user's sessions, or one by its key")
    p.add_argument("store", metavar="STORE_URL")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--user", help="end every session of this user")
    which.add_argument("--key", help="end the session with this key (as `list` shows)")
    p.set_defaults(run=end)
    p = commands.add_parser("purge", help="remove expired sessions now")
    p.add_argument("store", metavar="STORE_URL")
    p.set_defaults(run=purge)
    p = commands.add_parser(
        "migrate",
        help="copy every live session to another store",
        description="Copies every live session (key, user, data, version, times) so every "
        "session id keeps working on the target. Resumable: progress is saved after each "
        "batch; run it again after an interruption. Safe to run again when done.",
    )
    p.add_argument("source", metavar="FROM_URL")
    p.add_argument("target", metavar="TO_URL")
    p.add_argument("--state", help="where progress is kept (default: a file in this folder)")
    p.add_argument(
        "--batch", type=int, default=1000, help="sessions per batch (1 to 10000; default 1000)"
    )
    p.set_defaults(run=migrate)
    return top


def main(argv: Optional[Sequence[str]] = None, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    try:
        args.run(args, out)
    except Failed as e:
        print(f"pysessionmanager {args.command}: {e}", file=sys.stderr)
        return 1
    except (SessionError, OSError, ValueError) as e:
        print(f"pysessionmanager {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"pysessionmanager {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
