"""Django configured for the tests in this folder only: our engine as
SESSION_ENGINE, Django's own session tests fetched from its sdist, and a
test database (in memory) for django.contrib.auth's users."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django.conf import settings
from django.test import override_settings
from django.test.utils import (
    setup_databases,
    setup_test_environment,
    teardown_databases,
    teardown_test_environment,
)
from upstream.fetch import Unavailable, extracted

# When Django's tests cannot be fetched (no network on a first run), the
# module running them fails to collect with this error, naming the cause;
# Django is still configured here, so the other tests' setup stays sound.
DJANGO_TESTS = ("tests/sessions_tests", "LICENSE")
suite_apps = []
try:
    sys.path.insert(0, str(extracted("django", DJANGO_TESTS) / "tests"))
    suite_apps.append("sessions_tests")  # its models.py declares a model
except Unavailable:
    pass  # test_django_suite.py then fails to collect, naming the cause

settings.configure(
    SECRET_KEY="only-for-tests",
    ALLOWED_HOSTS=["testserver"],
    INSTALLED_APPS=[
        "django.contrib.contenttypes",
        "django.contrib.auth",
        "django.contrib.sessions",  # for `manage.py clearsessions`
        *suite_apps,
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ],
    SESSION_ENGINE="pysessionmanager.contrib.django",
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast, tests only
    USE_TZ=True,
)
django.setup()

from pysessionmanager import SessionManager  # noqa: E402
from pysessionmanager.contrib.django import close_managers, get_manager  # noqa: E402 (settings)
from pysessionmanager.testing import ManualClock  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def django_test_environment() -> Iterator[None]:
    """What Django's test runner sets up: the test environment and database."""
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    teardown_databases(databases, verbosity=0)
    teardown_test_environment()
    close_managers()


@pytest.fixture
def clock() -> ManualClock:
    """The engine's clock, moved by hand (Django's own clock stays real)."""
    return ManualClock(1_700_000_000.0)


@pytest.fixture
def manager(clock: ManualClock) -> Iterator[SessionManager]:
    """A fresh in-memory store for the engine, on ``clock``; the manager the
    engine uses, to look at what it stored."""
    close_managers()
    with override_settings(
        PYSESSIONMANAGER_STORE="memory://", PYSESSIONMANAGER_OPTIONS={"clock": clock}
    ):
        yield get_manager()
    close_managers()


@pytest.fixture
def sqlite_path(tmp_path: Path, clock: ManualClock) -> Iterator[Path]:
    """The engine on a SQLite file in ``tmp_path`` (no background sweeper, so
    only what the test does removes rows), on ``clock``."""
    path = tmp_path / "sessions.db"
    close_managers()
    with override_settings(
        PYSESSIONMANAGER_STORE=f"sqlite:///{path}?sweep_interval_ms=0",
        PYSESSIONMANAGER_OPTIONS={"clock": clock},
    ):
        yield path
    close_managers()
