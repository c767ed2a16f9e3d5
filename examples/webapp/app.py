"""The demo: a small shop where sessions do the work.

    make demo        # then open http://127.0.0.1:8000

- log in and out (alice / wonderland, bob / builder); logging in moves the
  visitor's session to a fresh id, so a planted cookie is worthless;
- "Your sessions": every device signed in as you, and "log out everywhere else";
- a cart kept in the session, in a SQLite file, so it survives a restart of
  the server (and follows you from visitor to logged-in user);
- ``/api/ping``: a JSON endpoint allowing 5 calls at once, then one every 2
  seconds, per visitor; past that it answers 429 with ``Retry-After``;
- ``/admin`` (for alice): live sessions, sessions per user, and sessions
  created, ended and expired over the last five minutes; ``/metrics``: the
  same for Prometheus.
"""

from __future__ import annotations

import argparse
import hmac
from datetime import timedelta
from typing import Any

from admin import register_admin  # this folder
from flask import (
    Flask,
    abort,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from pysessionmanager import RateLimiter, SessionManager
from pysessionmanager.contrib.flask import init_app, login, logout, rate_limit

# Demo accounts. A real application keeps password hashes in its database.
USERS = {"alice": "wonderland", "bob": "builder"}
ADMINS = {"alice"}

CATALOG = {
    "tea": ("Green tea", 4.50),
    "mug": ("Enamel mug", 12.00),
    "honey": ("Wildflower honey", 8.25),
}


def create_app(store: str = "sqlite:///demo-sessions.db", *, secure_cookies: bool = True) -> Flask:
    """The demo application on ``store``. Its cookies keep the library's
    ``Secure`` default: browsers accept those from http://127.0.0.1 and
    http://localhost; elsewhere over plain http pass ``secure_cookies=False``."""
    app = Flask(__name__)
    # Flask's setting is the stored sessions' idle timeout too.
    app.permanent_session_lifetime = timedelta(hours=1)
    manager = SessionManager(store=store, max_sessions_per_user=10)
    init_app(app, manager, secure=secure_cookies)
    register_pages(app, manager)
    register_admin(app, manager, ADMINS, current_user)
    # Limits share the sessions' store, so they hold across server restarts
    # and across processes serving the same file.
    register_api(app, RateLimiter("30/minute", burst=5, store=manager))
    return app


def current_user() -> str | None:
    return session.user_id  # type: ignore[attr-defined, no-any-return]


def register_pages(app: Flask, manager: SessionManager) -> None:
    @app.get("/")
    def home() -> str:
        return render_template("home.html", user=current_user())

    @app.route("/login", methods=["GET", "POST"])
    def login_page() -> Any:
        if request.method == "GET":
            return render_template("login.html", user=current_user())
        name = request.form.get("username", "")
        password = request.form.get("password", "")
        expected = USERS.get(name)
        if expected is None or not hmac.compare_digest(password, expected):
            flash("Unknown user or wrong password.")
            return render_template("login.html", user=None), 401
        login(name)
        session["device"] = request.user_agent.string[:200] or "unknown device"
        return redirect(url_for("home"))

    @app.post("/logout")
    def logout_page() -> Any:
        logout()
        return redirect(url_for("home"))

    @app.get("/sessions")
    def sessions_page() -> Any:
        user = current_user()
        if user is None:
            return redirect(url_for("login_page"))
        # Listed sessions carry only their key (stores keep no ids): find ours by it.
        mine = manager.session_info(session.sid).key  # type: ignore[attr-defined]
        devices = [
            {
                "device": s.get("device", "unknown device"),
                "created": s.created_at,
                "last_active": s.last_active,
                "this": s.key == mine,
            }
            for s in manager.list_sessions(user)
        ]
        return render_template("sessions.html", user=user, devices=devices)

    @app.post("/sessions/logout-others")
    def logout_others() -> Any:
        user = current_user()
        if user is None:
            abort(403)
        ended = manager.end_user_sessions(user, except_session=session.sid)  # type: ignore[attr-defined]
        flash(f"Logged out {ended} other session{'s' if ended != 1 else ''}.")
        return redirect(url_for("sessions_page"))

    @app.get("/cart")
    def cart_page() -> str:
        cart = quantities(session.get("cart", []))
        lines = [
            {"id": item, "name": CATALOG[item][0], "qty": qty, "price": CATALOG[item][1] * qty}
            for item, qty in cart.items()
            if item in CATALOG
        ]
        total = sum(line["price"] for line in lines)
        return render_template(
            "cart.html", user=current_user(), lines=lines, total=total, catalog=CATALOG
        )

    @app.post("/cart")
    def change_cart() -> Any:
        item = request.form.get("item", "")
        if item not in CATALOG:
            abort(400, f"unknown item {item!r}")
        try:
            qty = int(request.form.get("qty", "1"))
        except ValueError:
            abort(400, "quantity must be a whole number")
        if not 0 <= qty <= 99:
            abort(400, "quantity must be between 0 and 99")
        if request.form.get("action") == "add":
            # Atomic in the store: adds from two tabs at once both land.
            session.append("cart", [item, qty])  # type: ignore[attr-defined]
            return redirect(url_for("cart_page"))
        cart = quantities(session.get("cart", []))
        if qty == 0:
            cart.pop(item, None)
        else:
            cart[item] = qty
        # A rewrite of the list: if another tab changed the cart meanwhile,
        # this request answers 409 rather than undo that change.
        session["cart"] = [[line, n] for line, n in cart.items()]
        return redirect(url_for("cart_page"))


def quantities(cart: list[list[Any]]) -> dict[str, int]:
    """Quantity by item of a cart: a list of ``[item, quantity]`` lines,
    each appended by one "add", so adds never conflict."""
    totals: dict[str, int] = {}
    for item, qty in cart:
        totals[item] = min(99, totals.get(item, 0) + qty)
    return totals


def register_api(app: Flask, limiter: RateLimiter) -> None:
    @app.get("/api/ping")
    @rate_limit(limiter)
    def ping() -> Any:
        return jsonify(pong=True, user=current_user())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--store", default="sqlite:///demo-sessions.db")
    parser.add_argument(
        "--insecure-cookies",
        action="store_true",
        help="drop the Secure cookie flag (for plain http on a host other than 127.0.0.1)",
    )
    args = parser.parse_args()
    app = create_app(args.store, secure_cookies=not args.insecure_cookies)
    print(f"pysessionmanager demo on http://{args.host}:{args.port}/ (sessions in {args.store})")
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
