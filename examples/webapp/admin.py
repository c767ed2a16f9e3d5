"""The demo's admin page: live sessions, sessions per user, and sessions
created, ended and expired over the last five minutes as a chart the server
draws (SVG, no JavaScript); and the Prometheus text at ``/metrics``."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any

from flask import Flask, Response, abort, render_template

from pysessionmanager import SessionManager
from pysessionmanager.cli import every_session
from pysessionmanager.contrib.prometheus import exposition

STEP = 10  # seconds per bar
STEPS = 30  # bars: five minutes
SERIES = ("created", "ended", "expired")


def totals(manager: SessionManager) -> dict[str, int]:
    stats = manager.stats() or {}
    return {
        "created": stats.get("created", 0),
        "ended": sum(stats.get("ended", {}).values()),
        "expired": stats.get("expired", 0),
    }


class Activity:
    """The counters as they stood at the start of each STEP-second step (read
    every second by a thread of its own), so each step's bar is the
    difference to the next step's, or to now for the step under way."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager
        self.marks: deque[tuple[int, dict[str, int]]] = deque(maxlen=STEPS)
        self.lock = threading.Lock()
        self.sample()
        threading.Thread(target=self.run, name="demo-activity", daemon=True).start()

    def run(self) -> None:
        while True:
            time.sleep(1)
            self.sample()

    def sample(self) -> dict[str, int]:
        now = totals(self.manager)
        step = int(time.time() // STEP)
        with self.lock:
            if not self.marks or self.marks[-1][0] < step:
                self.marks.append((step, now))
        return now

    def steps(self) -> list[dict[str, Any]]:
        """Each step's counts, oldest first, the current one last."""
        current = self.sample()
        with self.lock:
            marks = list(self.marks)
        ends = [m[1] for m in marks[1:]] + [current]
        return [
            {"start": step * STEP, **{s: end[s] - start[s] for s in SERIES}}
            for (step, start), end in zip(marks, ends, strict=True)
        ]


def chart(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Bars for the template: per step, one bar per series, scaled to the tallest."""
    top = max([1] + [step[s] for step in steps for s in SERIES])
    width, height, bar = 600, 120, 600 / STEPS / 4
    bars = []
    for i, step in enumerate(steps):
        x = width - (len(steps) - i) * 4 * bar
        for j, series in enumerate(SERIES):
            tall = height * step[series] / top
            bars.append(
                {
                    "series": series,
                    "count": step[series],
                    "x": round(x + j * bar, 1),
                    "y": round(height - tall, 1),
                    "width": round(bar, 1),
                    "height": round(tall, 1),
                }
            )
    return {"width": width, "height": height, "bars": bars, "top": top}


def register_admin(app: Flask, manager: SessionManager, admins: set[str], user: Any) -> None:
    """Adds ``/admin`` (for the users in ``admins``; ``user()`` names the
    signed-in one) and ``/metrics`` (open, as Prometheus scrapes it)."""
    activity = Activity(manager)

    @app.get("/admin")
    def admin_page() -> Any:
        if user() not in admins:
            abort(403)
        per_user = Counter(s["user_id"] for s in every_session(manager))
        steps = activity.steps()
        return render_template(
            "admin.html",
            user=user(),
            live=manager.count(),
            per_user=per_user.most_common(20),
            totals=totals(manager),
            stats=manager.stats(),
            chart=chart(steps),
        )

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(exposition(("demo", manager)), mimetype="text/plain; version=0.0.4")
