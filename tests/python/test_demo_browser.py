"""The demo app in a real browser (headless Chromium): log in, fill a cart,
restart the server, find the cart; log in elsewhere and log out everywhere else."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from needs import in_ci
from playwright import sync_api as playwright
from ports import free_port

DEMO = Path(__file__).parents[2] / "examples" / "webapp" / "app.py"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if CHROMIUM is None:
    message = "the browser test needs Debian's chromium (apt-get install chromium)"
    if in_ci():
        pytest.fail(f"running in CI, and {message}", pytrace=False)
    pytestmark = pytest.mark.skip(reason=message)


class Demo:
    """The demo server as a child process, on a fixed port and database."""

    def __init__(self, port: int, db: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.command = [
            sys.executable,
            str(DEMO),
            "--port",
            str(port),
            "--store",
            f"sqlite:///{db}",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(
                    ("127.0.0.1", int(self.url.rsplit(":", 1)[1])), 0.2
                ).close()
                return
            except OSError:
                assert self.process.poll() is None, "the demo server exited at start"
                time.sleep(0.05)
        raise TimeoutError("the demo server did not start listening within 20 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    server = Demo(free_port(), tmp_path / "demo-sessions.db")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser() -> Iterator[object]:
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        chromium.close()


def log_in(page: object, base: str, user: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", password)
    page.click("#submit")
    assert f"Signed in as {user}" in page.inner_text("#who")


def test_cart_survives_a_restart_and_log_out_everywhere_else_works(
    demo: Demo, browser: object, tmp_path: Path
) -> None:
    laptop = browser.new_context(user_agent="Laptop browser")
    page = laptop.new_page()
    page.goto(f"{demo.url}/cart")
    page.click("#add-tea")  # as a visitor: the cart follows the visitor into the login
    log_in(page, demo.url, "alice", "wonderland")
    page.goto(f"{demo.url}/cart")
    page.click("#add-tea")
    page.click("#add-mug")
    assert page.inner_text("#total") == "21.00"

    (cookie,) = laptop.cookies()
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert len(cookie["value"]) == 43
    database = (tmp_path / "demo-sessions.db").read_bytes()
    wal = tmp_path / "demo-sessions.db-wal"
    at_rest = database + (wal.read_bytes() if wal.exists() else b"")
    assert cookie["value"].encode() not in at_rest, "raw session ids must never be stored"

    demo.stop()
    demo.start()
    page.goto(f"{demo.url}/cart")
    assert page.inner_text("#total") == "21.00"
    assert "Signed in as alice" in page.inner_text("#who")

    phone = browser.new_context(user_agent="Phone browser").new_page()
    log_in(phone, demo.url, "alice", "wonderland")
    phone.goto(f"{demo.url}/sessions")
    devices = phone.inner_text("#devices")
    assert "Laptop browser" in devices and "Phone browser" in devices
    phone.click("#logout-others")
    # The click starts a navigation: wait for the page it leads to.
    playwright.expect(phone.locator("body")).to_contain_text("Logged out 1 other session.")
    assert "Laptop browser" not in phone.inner_text("#devices")

    page.goto(f"{demo.url}/")
    assert "Visitor" in page.inner_text("#who")
    page.goto(f"{demo.url}/cart")
    assert page.is_visible("#empty")
    phone.goto(f"{demo.url}/")
    assert "Signed in as alice" in phone.inner_text("#who")


def test_a_wrong_password_is_refused(demo: Demo, browser: object) -> None:
    page = browser.new_page()
    page.goto(f"{demo.url}/login")
    page.fill("#username", "alice")
    page.fill("#password", "guess")
    page.click("#submit")
    playwright.expect(page.locator("body")).to_contain_text("Unknown user or wrong password.")
    assert "Visitor" in page.inner_text("#who")
    assert page.context.cookies() == []


def test_the_api_answers_429_with_retry_after_past_its_limit(demo: Demo, browser: object) -> None:
    context = browser.new_context()
    answers = [context.request.get(f"{demo.url}/api/ping") for _ in range(7)]
    assert [a.status for a in answers] == [200] * 5 + [429] * 2
    assert answers[0].json() == {"pong": True, "user": None}
    assert answers[4].headers["ratelimit-remaining"] == "0"
    assert answers[5].headers["retry-after"] == "2"
    assert answers[5].json()["error"] == "rate limit exceeded"


def admin_figures(page: object, base: str) -> dict[str, object]:
    page.goto(f"{base}/admin")
    bars = page.locator("#activity rect")
    return {
        "live": int(page.inner_text("#live")),
        "created": int(page.inner_text("#created")),
        "logout": int(page.inner_text("#ended-logout")),
        "per_user": dict(
            row.split("\t") for row in page.locator("#per-user tr.user").all_inner_texts()
        ),
        "bars": {
            series: sum(
                int(bars.nth(i).get_attribute("data-count"))
                for i in range(bars.count())
                if bars.nth(i).get_attribute("class") == series
            )
            for series in ("created", "ended")
        },
    }


def test_the_admin_page_follows_logins_and_logouts(demo: Demo, browser: object) -> None:
    admin = browser.new_context().new_page()
    log_in(admin, demo.url, "alice", "wonderland")
    before = admin_figures(admin, demo.url)
    assert before["live"] == 1 and before["per_user"] == {"alice": "1"}

    bobs = [browser.new_context().new_page() for _ in range(2)]
    for page in bobs:
        log_in(page, demo.url, "bob", "builder")
    bobs[0].click("#logout")
    playwright.expect(bobs[0].locator("#who")).to_contain_text("Visitor")

    after = admin_figures(admin, demo.url)
    assert after["live"] == 2
    assert after["per_user"] == {"alice": "1", "bob": "1"}
    assert after["created"] == before["created"] + 2
    assert after["logout"] == before["logout"] + 1
    # The server-drawn chart holds the same events, in the last minutes' bars.
    assert after["bars"]["created"] - before["bars"]["created"] == 2
    assert after["bars"]["ended"] - before["bars"]["ended"] == 1

    bob = browser.new_context().new_page()
    log_in(bob, demo.url, "bob", "builder")
    assert bob.goto(f"{demo.url}/admin").status == 403, "only admins see it"

    metrics = admin.request.get(f"{demo.url}/metrics")
    assert metrics.status == 200
    text = metrics.text()
    assert f'pysessionmanager_sessions_created_total{{store="demo"}} {after["created"] + 1}' in text
    assert 'pysessionmanager_live_sessions{store="demo"} 3' in text
