"""The process exits cleanly (status 0, nothing on stderr) while daemon
threads are inside store calls, on every store, run after run; and no
write a thread saw acknowledged is lost."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from pysessionmanager import SessionManager

RUNS = 6

EXIT_WHILE_DAEMONS_WORK = """
import sys, threading, time
from pysessionmanager import SessionManager
m = SessionManager(store=sys.argv[1])
acked = open(sys.argv[2], "a", buffering=1)

def work(n):
    i = 0
    while True:
        sid = m.create_session(f"daemon{n}", {"i": i})
        acked.write(sid + "\\n")  # only after the store acknowledged it
        m.update_session(sid, {"j": i})
        m.get_session(sid)
        i += 1

for n in range(4):
    threading.Thread(target=work, args=(n,), daemon=True).start()
time.sleep(0.3)
print("exiting", flush=True)
"""


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
def test_exit_with_daemon_threads_inside_calls(
    kind: str, url_of: Callable[[str], str], tmp_path
) -> None:
    url = url_of(kind)
    acked = tmp_path / "acked"
    for run in range(RUNS):
        done = subprocess.run(
            [sys.executable, "-c", EXIT_WHILE_DAEMONS_WORK, url, str(acked)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert (done.returncode, done.stderr) == (0, ""), f"run {run}: {done.stderr}"
        assert done.stdout == "exiting\n"
    if kind != "memory":  # the memory store ends with its process
        sids = acked.read_text().split()
        assert sids, "the daemons acknowledged nothing"
        with SessionManager(store=url) as m:
            lost = [sid for sid in sids if not m.is_session_active(sid)]
        assert lost == []
