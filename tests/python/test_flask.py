"""The Flask integration: server-side ``flask.session`` and its safety rules."""

from __future__ import annotations

import copy
import pickle
from datetime import datetime, timedelta, timezone
from pathlib import Path

import flask
import pytest
from flask.testing import FlaskClient

from pysessionmanager import SessionManager, UnsupportedDataType
from pysessionmanager.contrib._web import RequestState
from pysessionmanager.contrib.flask import SessionInterface, init_app, login, logout


@pytest.fixture
def manager() -> SessionManager:
    m = SessionManager()
    yield m
    m.close()


def make_app(manager: SessionManager, **options: object) -> flask.Flask:
    app = flask.Flask(__name__)
    init_app(app, manager, **options)

    @app.post("/cart/<item>")
    def add(item: str) -> str:
        flask.session.setdefault("cart", []).append(item)
        return ",".join(flask.session["cart"])

    @app.get("/cart")
    def show() -> str:
        return ",".join(flask.session.get("cart", []))

    @app.post("/login/<user>")
    def do_login(user: str) -> str:
        return login(user) and "ok"

    @app.post("/logout")
    def do_logout() -> str:
        logout()
        return "bye"

    @app.get("/nothing")
    def nothing() -> str:
        return "no session here"

    @app.get("/whoami")
    def whoami() -> str:
        return str(flask.session.user_id)  # type: ignore[attr-defined]

    @app.post("/boom")
    def boom() -> str:
        flask.session["cart"] = ["lost"]
        raise RuntimeError("the view failed")

    return app


def cookie_of(client: FlaskClient) -> str | None:
    cookie = client.get_cookie("session")
    return None if cookie is None else cookie.value


def test_the_cookie_carries_only_a_safe_token(manager: SessionManager) -> None:
    client = make_app(manager).test_client()
    response = client.post("/cart/apple")
    header = response.headers["Set-Cookie"]
    token = cookie_of(client)
    assert token is not None and len(token) == 43 and "apple" not in header
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert manager.get_session(token) == {"cart": ["apple"]}
    assert client.post("/cart/pear").text == "apple,pear"
    assert manager.get_session(token) == {"cart": ["apple", "pear"]}


def test_safe_defaults_can_be_relaxed_for_local_http(manager: SessionManager) -> None:
    app = make_app(manager, secure=False, samesite=None)
    header = app.test_client().post("/cart/apple").headers["Set-Cookie"]
    assert "Secure" not in header and "SameSite" not in header and "HttpOnly" in header
    app.config.update(SESSION_COOKIE_SECURE=True, SESSION_COOKIE_SAMESITE="Strict")
    header = app.test_client().post("/cart/apple").headers["Set-Cookie"]
    assert "Secure" in header and "SameSite=Strict" in header


def test_a_visitor_whose_session_stays_empty_gets_no_record_and_no_cookie(
    manager: SessionManager,
) -> None:
    client = make_app(manager).test_client()
    for _ in range(3):
        response = client.get("/cart")
        assert "Set-Cookie" not in response.headers
    assert manager.count() == 0


def test_a_forged_cookie_is_no_session(manager: SessionManager) -> None:
    real = make_app(manager).test_client()
    real.post("/cart/apple")
    token = cookie_of(real)
    tampered = token[:-1] + ("B" if token.endswith("A") else "A")
    for forged in ["x" * 43, "", "not a token", "a" * 4000, tampered]:
        client = make_app(manager).test_client()
        client.set_cookie("session", forged)
        response = client.get("/cart")
        assert response.text == ""
        if forged:
            assert "session=;" in response.headers["Set-Cookie"]  # dropped
    assert manager.count() == 1


def test_a_failed_request_saves_nothing(manager: SessionManager) -> None:
    app = make_app(manager)
    client = app.test_client()
    client.post("/cart/apple")
    token = cookie_of(client)
    assert client.post("/boom").status_code == 500
    assert manager.get_session(token) == {"cart": ["apple"]}
    fresh = app.test_client()
    assert fresh.post("/boom").status_code == 500
    assert cookie_of(fresh) is None and manager.count() == 1


def test_login_moves_the_session_to_a_new_id_owned_by_the_user(manager: SessionManager) -> None:
    client = make_app(manager).test_client()
    client.post("/cart/apple")
    before = cookie_of(client)
    assert client.get("/whoami").text == "None"
    client.post("/login/alice")
    after = cookie_of(client)
    assert after is not None and after != before
    assert not manager.is_session_active(before)
    assert manager.get_session(after) == {"cart": ["apple"]}
    assert manager.get_session(after).user_id == "alice"
    assert client.get("/whoami").text == "alice"
    assert [s.user_id for s in manager.list_sessions("alice")] == ["alice"]
    # The old id, replayed by an attacker who planted it, is no session.
    attacker = make_app(manager).test_client()
    attacker.set_cookie("session", before)
    assert attacker.get("/whoami").text == "None"


def test_login_as_another_user_starts_from_empty_data(manager: SessionManager) -> None:
    client = make_app(manager).test_client()
    client.post("/login/alice")
    client.post("/cart/alice-note")
    client.post("/login/bob")
    assert client.get("/whoami").text == "bob"
    assert client.get("/cart").text == ""
    assert dict(manager.get_session(cookie_of(client))) == {}
    # The same user logging in again keeps the session's data.
    client.post("/cart/bob-note")
    client.post("/login/bob")
    assert client.get("/cart").text == "bob-note"


def test_logout_ends_the_session_and_deletes_the_cookie(manager: SessionManager) -> None:
    client = make_app(manager).test_client()
    client.post("/login/alice")
    token = cookie_of(client)
    response = client.post("/logout")
    assert "session=;" in response.headers["Set-Cookie"]
    assert not manager.is_session_active(token) and cookie_of(client) is None
    assert manager.count() == 0


def test_log_out_everywhere_else_ends_the_other_devices(manager: SessionManager) -> None:
    app = make_app(manager)

    @app.post("/logout-others")
    def logout_others() -> str:
        user = flask.session.user_id  # type: ignore[attr-defined]
        ended = manager.end_user_sessions(user, except_session=flask.session.sid)  # type: ignore[attr-defined]
        return str(ended)

    laptop, phone = app.test_client(), app.test_client()
    laptop.post("/login/alice")
    phone.post("/login/alice")
    phone.post("/cart/apple")
    assert laptop.post("/logout-others").text == "1"
    assert phone.get("/whoami").text == "None"
    assert laptop.get("/whoami").text == "alice"


def test_changes_nested_in_values_are_saved_without_setting_modified(
    manager: SessionManager,
) -> None:
    client = make_app(manager).test_client()
    client.post("/cart/apple")
    client.post("/cart/pear")  # appends to the stored list in place
    assert manager.get_session(cookie_of(client)) == {"cart": ["apple", "pear"]}


def test_a_request_that_never_reaches_the_session_skips_the_save(
    manager: SessionManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = make_app(manager).test_client()
    client.post("/cart/apple")
    encoded = []
    original = RequestState.encoded
    monkeypatch.setattr(
        RequestState, "encoded", lambda state, data: encoded.append(1) or original(state, data)
    )
    response = client.get("/nothing")
    assert encoded == [] and "Cookie" not in response.vary
    client.post("/cart/pear")
    assert encoded == [1]
    assert manager.get_session(cookie_of(client)) == {"cart": ["apple", "pear"]}


def test_nested_changes_in_a_session_transaction_are_saved(manager: SessionManager) -> None:
    client = make_app(manager).test_client()
    client.post("/cart/apple")
    with client.session_transaction() as session:  # Flask notes no access here
        session["cart"].append("pear")
    with client.session_transaction() as session:
        session.setdefault("cart", []).append("plum")
    assert manager.get_session(cookie_of(client)) == {"cart": ["apple", "pear", "plum"]}


def test_the_session_copies_and_pickles_as_a_plain_dict(manager: SessionManager) -> None:
    app = make_app(manager)

    @app.get("/copies")
    def copies() -> dict[str, object]:
        deep = copy.deepcopy(flask.session)
        pickled = pickle.loads(pickle.dumps(flask.session._get_current_object()))  # type: ignore[attr-defined]
        deep["cart"].append("only in the copy")
        return {"types": [type(deep).__name__, type(pickled).__name__], "copy": deep}

    client = app.test_client()
    client.post("/cart/apple")
    answer = client.get("/copies").json
    assert answer == {"types": ["dict", "dict"], "copy": {"cart": ["apple", "only in the copy"]}}
    assert manager.get_session(cookie_of(client)) == {"cart": ["apple"]}


def test_two_requests_at_once_keep_both_changes(manager: SessionManager) -> None:
    app = make_app(manager)

    @app.post("/slow")
    def slow() -> str:
        flask.session["seen"] = True
        # Another request of the same visitor writes while this one runs.
        other = app.test_client()
        other.set_cookie("session", flask.session.sid)  # type: ignore[attr-defined]
        assert other.post("/cart/pear").text == "apple,pear"
        return "done"

    client = app.test_client()
    client.post("/cart/apple")
    assert client.post("/slow").text == "done"
    assert manager.get_session(cookie_of(client)) == {"cart": ["apple", "pear"], "seen": True}


def test_flask_types_survive_the_round_trip(manager: SessionManager) -> None:
    app = make_app(manager)
    when = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)

    @app.post("/typed")
    def typed() -> str:
        flask.session.update(point=(1, 2), raw=b"\xff", when=when)
        return ""

    @app.get("/typed")
    def read_typed() -> str:
        s = flask.session
        return repr((s["point"], s["raw"], s["when"] == when))

    client = app.test_client()
    client.post("/typed")
    assert client.get("/typed").text == "((1, 2), b'\\xff', True)"


def test_unstorable_data_fails_the_request_and_keeps_what_was_stored(
    manager: SessionManager,
) -> None:
    app = make_app(manager)
    app.testing = True  # let the error reach the test

    @app.post("/bad")
    def bad() -> str:
        flask.session["cart"] = {"a", "set"}
        return ""

    client = app.test_client()
    client.post("/cart/apple")
    with pytest.raises(UnsupportedDataType, match=r"data\['cart'\]"):
        client.post("/bad")
    assert manager.get_session(cookie_of(client)) == {"cart": ["apple"]}


def test_the_stored_session_lives_as_long_as_flask_says(manager: SessionManager) -> None:
    app = make_app(manager)
    app.permanent_session_lifetime = timedelta(minutes=5)
    client = app.test_client()
    client.post("/cart/apple")
    expires = manager.session_info(cookie_of(client)).expires_at
    remaining = expires - datetime.now(timezone.utc)
    assert timedelta(minutes=4) < remaining <= timedelta(minutes=5)


def test_sessions_survive_a_restart_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    first = SessionManager(store=url)
    client = make_app(first).test_client()
    client.post("/cart/apple")
    first.close()
    with SessionManager(store=url) as second:
        restarted = make_app(second).test_client()
        restarted.set_cookie("session", cookie_of(client))
        assert restarted.get("/cart").text == "apple"


def test_bad_arguments_are_clear_errors(manager: SessionManager) -> None:
    with pytest.raises(TypeError, match="SessionManager or a store URL, not int"):
        SessionInterface(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown store"):
        SessionInterface("ftp://nowhere")
    app = make_app(manager)
    app.testing = True

    @app.post("/login-as")
    def login_as() -> str:
        return login(flask.request.args["user"])

    @app.post("/login-as-number")
    def login_as_number() -> str:
        return login(123)  # type: ignore[arg-type]

    for bad, words in [("", "non-empty user id"), ("anonymous:x", "reserved for visitors")]:
        with pytest.raises(ValueError, match=words):
            app.test_client().post("/login-as", query_string={"user": bad})
    with pytest.raises(TypeError, match="user_id must be a str, got int"):
        app.test_client().post("/login-as-number")
    assert manager.count() == 0
    plain = flask.Flask(__name__)
    with plain.test_request_context(), pytest.raises(RuntimeError, match="call init_app"):
        login("alice")


def test_rate_limit_answers_429_with_retry_after(manager: SessionManager) -> None:
    from pysessionmanager import RateLimiter
    from pysessionmanager.contrib.flask import rate_limit
    from pysessionmanager.testing import ManualClock

    clock = ManualClock()
    app = make_app(manager)
    per_visitor = RateLimiter("2/minute", clock=clock)
    per_user = RateLimiter("1/hour", clock=clock)

    @app.get("/api")
    @rate_limit(per_visitor)
    def api() -> str:
        return "ok"

    @app.get("/report")
    @rate_limit(per_user, key=lambda: f"user:{flask.request.args['user']}")
    def report() -> str:
        return "report"

    client, other = app.test_client(), app.test_client()
    answers = [client.get("/api") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[1].headers["RateLimit-Remaining"] == "0"
    assert answers[2].headers["Retry-After"] == "30"
    assert answers[2].json == {"error": "rate limit exceeded", "retry_after": 30.0}
    assert other.get("/api").status_code == 429, "visitors without a session share an address"
    other.post("/cart/apple")  # now it has a session of its own
    assert other.get("/api").status_code == 200
    clock.advance(30)
    assert client.get("/api").status_code == 200
    assert client.get("/report?user=a").status_code == 200
    assert client.get("/report?user=a").status_code == 429
    assert client.get("/report?user=b").status_code == 200


def test_the_interface_can_be_built_with_nothing_or_with_the_app() -> None:
    app = flask.Flask(__name__)
    interface = SessionInterface(app)
    assert app.session_interface is interface
    assert interface.manager.store == "memory://"

    @app.post("/set")
    def set_value() -> str:
        flask.session["x"] = 1
        return "ok"

    client = app.test_client()
    client.post("/set")
    assert interface.manager.count() == 1
    bare = flask.Flask(__name__)
    bare.session_interface = SessionInterface()
    assert bare.test_client().get("/missing").status_code == 404


def test_samesite_none_without_secure_is_refused(manager: SessionManager) -> None:
    with pytest.raises(ValueError, match="SameSite=None needs a Secure cookie"):
        SessionInterface(manager, secure=False, samesite="None")
    app = make_app(manager, secure=False)
    app.config["SESSION_COOKIE_SAMESITE"] = "None"
    app.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(ValueError, match="SameSite=None needs a Secure cookie"):
        app.test_client().post("/cart/apple")
    # With Secure (the default) it is allowed.
    app = make_app(manager)
    app.config["SESSION_COOKIE_SAMESITE"] = "None"
    response = app.test_client().post("/cart/apple", base_url="https://localhost")
    assert "SameSite=None" in response.headers["Set-Cookie"]
    assert "Secure" in response.headers["Set-Cookie"]


def test_of_two_session_cookies_the_first_counts(manager: SessionManager) -> None:
    """One rule in every integration: the first session cookie of the header
    (browsers send the most specific path first)."""
    first = manager.create_session("first-user", {"cart": ["first"]})
    second = manager.create_session("second-user", {"cart": ["second"]})
    # Without its cookie jar, the test client sends the header as given.
    client = make_app(manager).test_client(use_cookies=False)
    both = {"Cookie": f"session={first}; session={second}"}
    assert client.get("/cart", headers=both).text == "first"
    both = {"Cookie": f"session=forged; session={second}"}
    assert client.get("/cart", headers=both).text == ""


def test_login_may_choose_the_sessions_own_lifetime(manager: SessionManager) -> None:
    """ "Remember me": a login with its own idle and absolute timeouts; the
    session is permanent and its cookie lives as long as the session."""
    import datetime

    from pysessionmanager.contrib.flask import login

    app = flask.Flask(__name__)
    app.testing = True  # a view's error reaches the test
    init_app(app, manager)

    @app.post("/login/<user>")
    def log_in(user: str) -> str:
        days = flask.request.args.get("days")
        if days is None:
            return login(user)
        return login(user, expiration_time=float(days) * 86400, absolute_timeout=90 * 86400)

    @app.post("/note")
    def note() -> str:
        flask.session["note"] = "x"
        return "ok"

    client = app.test_client()
    plain = client.post("/login/alice").headers["Set-Cookie"]
    assert "Expires=" not in plain, "a plain login keeps Flask's browser-session cookie"

    remembered = client.post("/login/alice?days=30")
    header = remembered.headers["Set-Cookie"]
    expires = datetime.datetime.strptime(
        header.split("Expires=")[1].split(";")[0], "%a, %d %b %Y %H:%M:%S GMT"
    ).replace(tzinfo=datetime.timezone.utc)
    days = (expires - datetime.datetime.now(datetime.timezone.utc)).total_seconds() / 86400
    assert 29.9 < days <= 30.01, header
    session = manager.session_info(remembered.text)
    assert (session.expires_at - session.last_active).days == 30
    assert (session.absolute_expires_at - session.created_at).days == 90
    again = client.post("/note").headers["Set-Cookie"]
    assert "Expires=" in again, "later cookies keep the session's own lifetime"

    with pytest.raises(ValueError, match="expiration_time"):
        client.post("/login/alice?days=-1")
    assert manager.is_session_active(remembered.text), "a refused login ends nothing"
