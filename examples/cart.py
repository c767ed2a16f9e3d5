"""A shopping cart kept in the session, safe under concurrent requests.

    python examples/cart.py [store URL]      # memory:// by default

Each item is one key of the session (``"cart:<item>"`` -> quantity), so adding
is one atomic ``increment`` and no two requests can lose each other's items.
When a user comes back on a new session (another device, or after logging
in), ``restore`` brings the cart of their latest earlier session along.
"""

from __future__ import annotations

import sys
import threading

from pysessionmanager import SessionConflict, SessionManager

PREFIX = "cart:"


def add(m: SessionManager, sid: str, item: str, quantity: int = 1) -> int:
    """Adds ``quantity`` of ``item``; returns the new quantity. Atomic."""
    if quantity < 1:
        raise ValueError(f"quantity to add must be at least 1, got {quantity}")
    return m.increment(sid, PREFIX + item, quantity)


def set_quantity(m: SessionManager, sid: str, item: str, quantity: int) -> None:
    """Sets ``item``'s quantity; 0 removes it."""
    if quantity < 0:
        raise ValueError(f"quantity must be 0 or more, got {quantity}")
    if quantity == 0:
        remove(m, sid, item)
    else:
        m.update_session(sid, {PREFIX + item: quantity})  # merges this key only


def remove(m: SessionManager, sid: str, item: str) -> None:
    """Removes ``item``: compare-and-set, retried if another request wrote meanwhile."""
    while True:
        session = m.get_session(sid)
        if PREFIX + item not in session:
            return
        data = {k: v for k, v in session.items() if k != PREFIX + item}
        try:
            m.set_session_data(sid, data, expected_version=session.version)
            return
        except SessionConflict:
            continue


def items(m: SessionManager, sid: str) -> dict[str, int]:
    """The cart: item -> quantity."""
    return {k[len(PREFIX) :]: v for k, v in m.get_session(sid).items() if k.startswith(PREFIX)}


def restore(m: SessionManager, sid: str) -> dict[str, int]:
    """Merges the cart of the user's latest other session into this one (for a
    user returning on a new session); returns the cart."""
    me = m.session_info(sid)
    earlier = [
        s
        for s in m.list_sessions(me.user_id)
        if s.key != me.key and any(k.startswith(PREFIX) for k in s)
    ]
    if earlier:
        latest = max(earlier, key=lambda s: s.last_active)
        mine = items(m, sid)
        carried = {
            PREFIX + item: qty
            for item, qty in (
                (k[len(PREFIX) :], v) for k, v in latest.items() if k.startswith(PREFIX)
            )
            if item not in mine
        }
        if carried:
            m.update_session(sid, carried)
    return items(m, sid)


def main(store: str = "memory://") -> None:
    with SessionManager(store=store) as m:
        laptop = m.create_session("alice")
        add(m, laptop, "tea", 2)
        add(m, laptop, "mug")
        set_quantity(m, laptop, "tea", 3)
        print("laptop cart:", items(m, laptop))

        def shopper(n: int) -> None:
            for _ in range(25):
                add(m, laptop, f"sticker-{n}")

        threads = [threading.Thread(target=shopper, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stickers = sum(q for i, q in items(m, laptop).items() if i.startswith("sticker-"))
        print("stickers added by 8 threads x 25:", stickers)
        remove(m, laptop, "mug")
        for n in range(8):
            remove(m, laptop, f"sticker-{n}")

        phone = m.create_session("alice")  # alice comes back on her phone
        print("phone cart after restore:", restore(m, phone))


if __name__ == "__main__":
    main(*sys.argv[1:2])
