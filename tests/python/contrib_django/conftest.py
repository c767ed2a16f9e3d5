"""Django configured for the tests in this folder only: our engine as
SESSION_ENGINE, Django's own session tests fetched from its sdist, and a
test database (in memory) for django.contrib.auth's users."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import django
import django_sources
import pytest
from django.conf import settings
from django.test.utils import (
    setup_databases,
    setup_test_environment,
    teardown_databases,
    teardown_test_environment,
)

# When Django's tests cannot be fetched, only the module running them fails
# (it re-raises this); everything else here still runs.
FETCH_ERROR: Exception | None = None
suite_apps = []
try:
    sys.path.insert(0, str(django_sources.fetch()))
    suite_apps.append(django_sources.PACKAGE)  # its models.py declares a model
except django_sources.Unavailable as error:
    FETCH_ERROR = error
django_sources.FETCH_ERROR = FETCH_ERROR  # type: ignore[attr-defined]

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

from pysessionmanager.contrib.django import close_managers  # noqa: E402  (needs settings)


@pytest.fixture(scope="session", autouse=True)
def django_test_environment() -> Iterator[None]:
    """What Django's test runner sets up: the test environment and database."""
    setup_test_environment()
    databases = setup_databases(verbosity=0, interactive=False, aliases={"default"})
    yield
    teardown_databases(databases, verbosity=0)
    teardown_test_environment()
    close_managers()
