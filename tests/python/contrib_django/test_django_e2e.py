"""End to end through Django: the test Client, SessionMiddleware,
django.contrib.auth, and a tiny urlconf (this module), on our engine."""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.models import User
from django.core import management
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path

from pysessionmanager import SessionManager
from pysessionmanager.contrib.django import get_manager
from pysessionmanager.testing import ManualClock

COOKIE = "sessionid"


def untouched(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello")


def whoami(request: HttpRequest) -> HttpResponse:
    user = request.user
    return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")


def cart(request: HttpRequest) -> HttpResponse:
    return HttpResponse(",".join(request.session.get("cart", [])) or "empty")


def add(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = [*request.session.get("cart", []), request.GET["item"]]
    return HttpResponse("added")


def login_view(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST["username"], password=request.POST["password"]
    )
    if user is None:
        return HttpResponse("no", status=403)
    login(request, user)
    if "remember" in request.POST:
        request.session.set_expiry(int(request.POST["remember"]))
    # Reading the key right after login (as some apps do) gives the new id.
    return HttpResponse(request.session.session_key if "show_key" in request.POST else "ok")


def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("bye")


def add_racing(request: HttpRequest) -> HttpResponse:
    """Like ``add``, while another request appends to the cart meanwhile."""
    cart = request.session.get("cart", [])
    get_manager().append(request.session.session_key, "cart", "theirs")
    request.session["cart"] = [*cart, request.GET["item"]]
    return HttpResponse("added")


def boom(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = ["changed by a failing request"]
    raise RuntimeError("the view failed")


def login_then_boom(request: HttpRequest) -> HttpResponse:
    login(request, User.objects.get(username="alice"))
    raise RuntimeError("the view failed after login")


def unavailable(request: HttpRequest) -> HttpResponse:
    request.session["cart"] = ["changed by a 503"]
    return HttpResponse("down", status=503)


urlpatterns = [
    path("untouched/", untouched),
    path("whoami/", whoami),
    path("cart/", cart),
    path("add/", add),
    path("add-racing/", add_racing),
    path("login/", login_view),
    path("logout/", logout_view),
    path("boom/", boom),
    path("login-then-boom/", login_then_boom),
    path("unavailable/", unavailable),
]


@pytest.fixture(autouse=True)
def urls() -> Iterator[None]:
    with override_settings(ROOT_URLCONF=__name__):
        yield


@pytest.fixture(scope="module")
def alice() -> User:
    user, _ = User.objects.get_or_create(username="alice")
    user.set_password("wonderland")
    user.save()
    return user


@pytest.fixture(scope="module")
def bob() -> User:
    user, _ = User.objects.get_or_create(username="bob")
    user.set_password("builder")
    user.save()
    return user


@pytest.fixture
def client(manager: SessionManager) -> Client:
    return Client(raise_request_exception=False)


def cookie(client: Client) -> str:
    return client.cookies[COOKIE].value


def log_in(client: Client, username: str = "alice", password: str = "wonderland", **extra: str):
    response = client.post("/login/", {"username": username, "password": password, **extra})
    assert response.status_code == 200
    return response


def test_a_visitor_who_never_touches_the_session_gets_no_cookie_and_no_record(
    client: Client, manager: SessionManager
) -> None:
    response = client.get("/untouched/")
    assert response.status_code == 200
    assert COOKIE not in response.cookies
    assert manager.count() == 0


def test_reading_an_empty_session_stores_nothing(client: Client, manager: SessionManager) -> None:
    # whoami reads the session (django.contrib.auth looks for a user id in it).
    response = client.get("/whoami/")
    assert response.content == b"anonymous"
    assert COOKIE not in response.cookies
    assert response.headers["Vary"] == "Cookie"
    assert manager.count() == 0


def test_the_cookie_carries_the_managers_token_and_the_data_stays_in_the_store(
    client: Client, manager: SessionManager
) -> None:
    response = client.get("/add/?item=book")
    token = response.cookies[COOKIE].value
    assert len(token) == 43  # 256 bits, URL-safe base64
    stored = manager.get_session(token)
    assert stored == {"cart": ["book"]}
    assert stored.user_id.startswith("anonymous:")
    assert client.get("/cart/").content == b"book"


def test_cookie_flags_by_default_and_with_the_recommended_setting(client: Client) -> None:
    morsel = client.get("/add/?item=book").cookies[COOKIE]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["secure"] == ""  # Django's default: SESSION_COOKIE_SECURE = False
    with override_settings(SESSION_COOKIE_SECURE=True):
        morsel = client.get("/add/?item=pen").cookies[COOKIE]
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"


def test_login_moves_the_session_to_a_new_id_owned_by_the_user(
    client: Client, manager: SessionManager, alice: User
) -> None:
    client.get("/add/?item=book")
    before = cookie(client)
    log_in(client)
    after = cookie(client)
    assert after != before
    assert not manager.is_session_active(before)
    stored = manager.get_session(after)
    assert stored.user_id == str(alice.pk)
    assert stored["cart"] == ["book"]  # kept across login, as Django does
    assert [s.key for s in manager.list_sessions(str(alice.pk))] == [stored.key]
    assert manager.count() == 1
    assert client.get("/whoami/").content == b"alice"


def test_the_id_from_before_login_is_dead(client: Client, alice: User) -> None:
    """Session fixation: an id planted (or seen) before login is worthless."""
    client.get("/add/?item=book")
    planted = cookie(client)
    log_in(client)
    attacker = Client()
    attacker.cookies[COOKIE] = planted
    assert attacker.get("/whoami/").content == b"anonymous"
    assert attacker.get("/cart/").content == b"empty"


def test_login_without_an_earlier_session(
    client: Client, manager: SessionManager, alice: User
) -> None:
    log_in(client)
    assert manager.get_session(cookie(client)).user_id == str(alice.pk)
    assert manager.count() == 1


def test_the_key_read_right_after_login_is_the_one_the_cookie_carries(
    client: Client, manager: SessionManager, alice: User
) -> None:
    client.get("/add/?item=book")
    response = log_in(client, show_key="1")
    assert response.content.decode() == cookie(client)
    assert manager.get_session(cookie(client)).user_id == str(alice.pk)
    assert manager.count() == 1


def test_logging_in_as_someone_else_starts_an_empty_session(
    client: Client, manager: SessionManager, alice: User, bob: User
) -> None:
    log_in(client)
    client.get("/add/?item=book")
    alices = cookie(client)
    log_in(client, "bob", "builder")
    assert not manager.is_session_active(alices)
    stored = manager.get_session(cookie(client))
    assert stored.user_id == str(bob.pk)
    assert "cart" not in stored
    assert client.get("/whoami/").content == b"bob"


def test_logout_ends_the_record_and_deletes_the_cookie(
    client: Client, manager: SessionManager, alice: User
) -> None:
    log_in(client)
    sid = cookie(client)
    response = client.get("/logout/")
    assert response.cookies[COOKIE].value == ""
    assert response.cookies[COOKIE]["max-age"] == 0
    assert not manager.is_session_active(sid)
    assert manager.count() == 0


def test_log_out_everywhere_through_the_manager(manager: SessionManager, alice: User) -> None:
    laptop, phone = Client(), Client()
    log_in(laptop)
    log_in(phone)
    assert get_manager().end_user_sessions(str(alice.pk)) == 2
    assert laptop.get("/whoami/").content == b"anonymous"
    assert phone.get("/whoami/").content == b"anonymous"


@pytest.mark.parametrize(
    "forged",
    [secrets.token_urlsafe(32), "x" * 43, "../../etc/passwd", "short", "a" * 500],
)
def test_a_forged_cookie_is_no_session(
    client: Client, manager: SessionManager, forged: str
) -> None:
    client.cookies[COOKIE] = forged
    assert client.get("/whoami/").content == b"anonymous"
    assert client.get("/cart/").content == b"empty"
    assert manager.count() == 0
    client.get("/add/?item=book")
    assert cookie(client) != forged
    assert manager.get_session(cookie(client)) == {"cart": ["book"]}


def test_a_failing_view_stores_nothing_for_a_new_visitor(
    client: Client, manager: SessionManager
) -> None:
    response = client.get("/boom/")
    assert response.status_code == 500
    assert COOKIE not in response.cookies
    assert manager.count() == 0


@pytest.mark.parametrize("url", ["/boom/", "/unavailable/"])
def test_a_5xx_response_leaves_the_stored_session_as_it_was(
    client: Client, manager: SessionManager, url: str
) -> None:
    client.get("/add/?item=book")
    sid = cookie(client)
    version = manager.get_session(sid).version
    response = client.get(url)
    assert response.status_code >= 500
    assert COOKIE not in response.cookies
    stored = manager.get_session(sid)
    assert stored == {"cart": ["book"]}
    assert stored.version == version


def test_a_login_that_fails_later_creates_no_session(
    client: Client, manager: SessionManager, alice: User
) -> None:
    """login() ends the visitor's old id at once (Django's cycle_key
    contract, and the safe side); the new record would only be created
    when the response is saved, which a 500 skips."""
    client.get("/add/?item=book")
    before = cookie(client)
    response = client.get("/login-then-boom/")
    assert response.status_code == 500
    assert COOKIE not in response.cookies
    assert not manager.is_session_active(before)
    assert manager.count() == 0


def test_reads_do_not_extend_a_session_saves_do(
    client: Client, manager: SessionManager, clock: ManualClock, alice: User
) -> None:
    """Django's contract: a session lives get_expiry_age() seconds after its
    last save (here set_expiry(60) at login); reading it does not renew it."""
    response = log_in(client, remember="60")
    assert response.cookies[COOKIE]["max-age"] == 60
    clock.advance(45)
    assert client.get("/whoami/").content == b"alice"  # a read, no save
    clock.advance(20)  # 65 s after the last save
    assert client.get("/whoami/").content == b"anonymous"

    log_in(client, remember="60")
    clock.advance(45)
    client.get("/add/?item=book")  # a save renews it
    clock.advance(45)
    assert client.get("/whoami/").content == b"alice"


def test_save_every_request_renews_on_reads_too(
    client: Client, clock: ManualClock, alice: User
) -> None:
    with override_settings(SESSION_SAVE_EVERY_REQUEST=True):
        log_in(client, remember="60")
        for _ in range(3):
            clock.advance(45)
            assert client.get("/whoami/").content == b"alice"


def count_rows(db: Path) -> int:
    """Rows in the store's file, counted by another process (SQLite's locks
    are per process, so this process must not open the file a second time)."""
    code = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM pysessionmanager_sessions').fetchone()[0])"  # noqa: E501
    done = subprocess.run(
        [sys.executable, "-c", code, str(db)], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def test_clearsessions_removes_expired_records(
    sqlite_path: Path, clock: ManualClock, alice: User
) -> None:
    short, long = Client(), Client()
    log_in(short, remember="60")
    log_in(long)  # SESSION_COOKIE_AGE: two weeks
    manager = get_manager()
    assert manager.store.startswith("sqlite")
    clock.advance(61)
    assert not manager.is_session_active(cookie(short))  # never returned meanwhile...
    assert count_rows(sqlite_path) == 2  # ...though still in the file
    management.call_command("clearsessions")
    assert count_rows(sqlite_path) == 1
    assert long.get("/whoami/").content == b"alice"


def test_check_deploy_flags_a_cookie_without_secure() -> None:
    """What the documentation tells users: Django's deploy checks cover
    SESSION_COOKIE_SECURE for this engine too (it runs in SessionMiddleware)."""

    def warnings() -> set[str]:
        return {m.id for m in run_checks(include_deployment_checks=True, tags=["security"])}

    # W012: SESSION_COOKIE_SECURE unset with both the sessions app and its middleware.
    assert "security.W012" in warnings()
    with override_settings(SESSION_COOKIE_SECURE=True):
        assert "security.W012" not in warnings()


OUR_MIDDLEWARE = [
    "pysessionmanager.contrib.django.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def test_our_middleware_makes_the_cookie_secure_unless_told_otherwise() -> None:
    with override_settings(MIDDLEWARE=OUR_MIDDLEWARE):
        morsel = Client().get("/add/?item=book").cookies[COOKIE]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True and morsel["samesite"] == "Lax"
        with override_settings(SESSION_COOKIE_SECURE=False):  # an explicit choice wins
            assert Client().get("/add/?item=pen").cookies[COOKIE]["secure"] == ""


def test_of_two_session_cookies_the_first_counts(manager: SessionManager) -> None:
    """One rule in every integration: the first session cookie of the header
    (Django's own parser keeps the last)."""
    first = manager.create_session("anonymous:first", {"cart": ["first"]})
    second = manager.create_session("anonymous:second", {"cart": ["second"]})
    ours = ["pysessionmanager.contrib.django.SessionMiddleware", *settings.MIDDLEWARE[1:]]
    with override_settings(MIDDLEWARE=ours):
        client = Client(HTTP_COOKIE=f"{COOKIE}={first}; {COOKIE}={second}")
        assert client.get("/cart/").content == b"first"
        client = Client(HTTP_COOKIE=f"{COOKIE}=forged; {COOKIE}={second}")
        assert client.get("/cart/").content == b"empty"


def test_a_change_to_a_key_a_concurrent_request_changed_is_a_409_that_writes_nothing(
    client: Client, manager: SessionManager
) -> None:
    ours = ["pysessionmanager.contrib.django.SessionMiddleware", *settings.MIDDLEWARE[1:]]
    with override_settings(MIDDLEWARE=ours):
        client.get("/add/?item=pen")
        response = client.get("/add-racing/?item=ink")
        assert response.status_code == 409
        assert b"not saved" in response.content
        assert response.headers["Vary"] == "Cookie"
        assert manager.get_session(cookie(client))["cart"] == ["pen", "theirs"]
        assert client.get("/cart/").content == b"pen,theirs"
