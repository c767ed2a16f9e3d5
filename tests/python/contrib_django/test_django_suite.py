"""Django's own tests for session engines, run against ours: the
``SessionTestsMixin`` every server-side engine passes (on the memory and the
SQLite store, with and without USE_TZ), and ``SessionMiddlewareTests``.

Excluded, each replaced by the same check on our engine below: the two
middleware tests that use Django's database engine by name.
"""

from __future__ import annotations

import shutil
import tempfile
import unittest

from upstream.fetch import extracted

# Cached when the conftest fetched it; otherwise fails collection with the cause.
extracted("django", ("tests/sessions_tests", "LICENSE"))

# The module, not its classes: pytest would otherwise collect Django's own
# test cases (for Django's engines) from this module's namespace.
import sessions_tests.tests as django_tests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.base import UpdateError  # noqa: E402
from django.contrib.sessions.exceptions import SessionInterrupted  # noqa: E402
from django.contrib.sessions.middleware import SessionMiddleware  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import SimpleTestCase, override_settings  # noqa: E402

from pysessionmanager.contrib.django import SessionStore, close_managers  # noqa: E402


class SessionStoreTests(django_tests.SessionTestsMixin, SimpleTestCase):  # type: ignore[misc]
    """Every test of Django's mixin, none excluded (the memory store)."""

    backend = SessionStore


@override_settings(USE_TZ=False)
class SessionStoreWithoutTimeZoneTests(SessionStoreTests):
    """Naive dates in ``_session_expiry``, as Django writes them without USE_TZ."""


_sqlite_dir = tempfile.mkdtemp(prefix="pysm-django-")


@override_settings(PYSESSIONMANAGER_STORE=f"sqlite:///{_sqlite_dir}/sessions.db")
class SqliteSessionStoreTests(SessionStoreTests):
    """The same tests on the persistent SQLite store."""

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        close_managers()  # releases the file before it is removed
        shutil.rmtree(_sqlite_dir, ignore_errors=True)


class OurSessionMiddlewareTests(django_tests.SessionMiddlewareTests):  # type: ignore[misc]
    """Django's middleware tests with SESSION_ENGINE set to ours."""

    def test_engine_under_test(self) -> None:
        middleware = SessionMiddleware(lambda request: HttpResponse())
        self.assertIs(middleware.SessionStore, SessionStore)

    @unittest.skip(
        "builds django.contrib.sessions.backends.db's DatabaseSession by name; "
        "test_session_update_error_redirect_on_our_engine checks the same on ours"
    )
    def test_session_update_error_redirect(self) -> None:
        pass

    @unittest.skip(
        "reads the row from the database engine's Session model; "
        "test_emptied_session_on_our_engine checks the same flow on ours"
    )
    def test_empty_session_saved(self) -> None:
        pass

    def test_session_update_error_redirect_on_our_engine(self) -> None:
        def response_delete_session(request):  # type: ignore[no-untyped-def]
            request.session = SessionStore()
            request.session.save(must_create=True)
            request.session.delete()
            return HttpResponse()

        request = self.request_factory.get("/foo/")
        middleware = SessionMiddleware(response_delete_session)
        with self.assertRaisesMessage(SessionInterrupted, "was deleted before the request"):
            middleware(request)
        # The error came from our save(), as UpdateError, like Django's engines.
        with self.assertRaises(UpdateError):
            request.session.save()

    def test_emptied_session_on_our_engine(self) -> None:
        """Django's test_empty_session_saved, where a session emptied of data
        keeps its key. Ours ends the record instead of storing an empty one;
        the key the cookie carries then names no session."""

        def response_set_session(request):  # type: ignore[no-untyped-def]
            request.session["foo"] = "bar"
            return HttpResponse("Session test")

        request = self.request_factory.get("/")
        middleware = SessionMiddleware(response_set_session)
        response = middleware(request)
        key = request.session.session_key
        self.assertIn(f"Set-Cookie: sessionid={key}", str(response.cookies))
        self.assertIs(SessionStore().exists(key), True)

        del request.session["foo"]
        response = middleware.process_response(request, HttpResponse("Session test"))
        self.assertEqual(dict(request.session.items()), {})
        self.assertEqual(request.session.session_key, key)
        self.assertIn(f"Set-Cookie: sessionid={key}", str(response.cookies))
        self.assertEqual(response.headers["Vary"], "Cookie")
        self.assertIs(SessionStore().exists(key), False)  # no empty record kept

        # The next request with that cookie has no session; touching it
        # deletes the cookie.
        later = self.request_factory.get("/")
        later.COOKIES[settings.SESSION_COOKIE_NAME] = key

        def reads_session(request):  # type: ignore[no-untyped-def]
            self.assertIsNone(request.session.get("foo"))
            return HttpResponse()

        response = SessionMiddleware(reads_session)(later)
        self.assertEqual(response.cookies[settings.SESSION_COOKIE_NAME].value, "")
        self.assertEqual(response.cookies[settings.SESSION_COOKIE_NAME]["max-age"], 0)
