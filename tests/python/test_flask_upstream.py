"""Flask's own session tests, run against our server-side SessionInterface.

Flask's defaults are not ours (we default to ``Secure`` and ``SameSite=Lax``),
so here the interface is built with Flask's (``secure=False, samesite=None``);
test_flask.py checks our defaults.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from upstream.fetch import extracted

# Every session test of Flask's suite except those about signing the cookie,
# which a server-side session does not do: test_missing_session and
# test_session_transactions_no_null_sessions expect no session without a
# secret key (ours needs none), test_session_secret_key_fallbacks rotates
# signing keys.
SESSION_TESTS = [
    *(
        f"test_basic.py::{name}"
        for name in [
            "test_session_accessed",
            "test_session_path",
            "test_session_using_application_root",
            "test_session_using_session_settings",
            "test_session_using_samesite_attribute",
            "test_session_expiration",
            "test_session_stored_last",
            "test_session_special_types",
            "test_session_cookie_setting",
            "test_session_vary_cookie",
            "test_session_refresh_vary",
            "test_flashes",
            "test_extended_flashing",
        ]
    ),
    *(
        f"test_testing.py::{name}"
        for name in [
            "test_redirect_session",
            "test_session_transactions",
            "test_session_transactions_keep_context",
            "test_session_transaction_needs_cookies",
        ]
    ),
]

# Loaded by pytest in the child run: every Flask app gets a fresh
# server-side interface on a fresh memory store.
PLUGIN = """
import _pytest.monkeypatch
import flask
import pytest
from pysessionmanager.contrib.flask import SessionInterface

# Flask's conftest predates pytest 9, which renamed this sentinel.
if not hasattr(_pytest.monkeypatch, "notset"):
    _pytest.monkeypatch.notset = _pytest.monkeypatch.NOTSET

@pytest.fixture(autouse=True)
def _server_side_sessions(monkeypatch):
    interface = SessionInterface(secure=False, samesite=None)
    monkeypatch.setattr(flask.Flask, "session_interface", interface)
    yield
    interface.manager.close()
"""


def test_flask_session_tests_pass_on_our_interface(tmp_path: Path) -> None:
    tests = extracted("flask") / "tests"
    (tmp_path / "server_side_sessions.py").write_text(PLUGIN)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    run = subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "-q", "-p", "server_side_sessions"),
            *("-p", "no:cacheprovider", "--rootdir", str(tests)),
            *SESSION_TESTS,
        ],
        cwd=tests,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(SESSION_TESTS)} passed" in run.stdout, run.stdout
