"""Multiplayer game sessions: a lobby, matches, and stats at a high rate.

    python examples/game.py [store URL]      # memory:// by default

- Each player in a match holds a session owned by the match (user id
  ``match:<id>``), so ``list_sessions`` is the roster, a player whose session
  expires (they went away) drops out of it by itself, and
  ``end_user_sessions`` ends the whole match at once.
- Player stats are keys of the player's session, bumped with the atomic
  ``increment``; nothing is lost however many updates arrive at once.
- The match's shared state is one more session, changed by compare-and-set
  (``expected_version``), so concurrent updates never overwrite each other.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, Callable

from pysessionmanager import SessionConflict, SessionManager
from pysessionmanager.testing import ManualClock


def owner(match: str) -> str:
    return f"match:{match}"


def join(m: SessionManager, match: str, player: str, *, idle_timeout: float = 60) -> str:
    """Puts ``player`` in ``match``; returns the player's session id. A player
    idle for ``idle_timeout`` seconds drops out."""
    return m.create_session(
        owner(match), {"player": player, "score": 0, "kills": 0}, expiration_time=idle_timeout
    )


def roster(m: SessionManager, match: str) -> dict[str, dict[str, Any]]:
    """The players still in the match, with their stats."""
    return {s["player"]: dict(s) for s in m.list_sessions(owner(match))}


def score(m: SessionManager, player_sid: str, points: int = 1) -> int:
    """Adds to a player's score (atomic); returns the new score."""
    return m.increment(player_sid, "score", points)


def open_match(m: SessionManager, match: str) -> str:
    """The session holding the match's shared state."""
    return m.create_session(f"state:{match}", {"round": 1, "log": []})


def change_state(
    m: SessionManager, state_sid: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Applies ``change`` to the shared state, retrying on concurrent writes."""
    while True:
        state = m.get_session(state_sid)
        data = dict(state)
        change(data)
        try:
            m.set_session_data(state_sid, data, expected_version=state.version)
            return
        except SessionConflict:
            continue


def end_match(m: SessionManager, match: str, state_sid: str) -> int:
    """Ends every player's session and the shared state; returns players ended."""
    m.end_session(state_sid)
    return m.end_user_sessions(owner(match))


def main(store: str = "memory://") -> None:
    # A clock moved by hand, to show expiry without waiting; it starts at the
    # real time because server stores (Redis) also expire records by their own.
    clock = ManualClock(time.time())
    with SessionManager(store=store, clock=clock) as m:
        state = open_match(m, "m1")
        players = {name: join(m, "m1", name) for name in ["ada", "bo", "cy", "dee"]}
        print("roster:", sorted(roster(m, "m1")))

        def play(name: str) -> None:
            for _ in range(250):
                score(m, players[name])
            change_state(m, state, lambda s: s["log"].append(f"{name} finished"))

        threads = [threading.Thread(target=play, args=(name,)) for name in players]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        print("scores:", {p: s["score"] for p, s in sorted(roster(m, "m1").items())})
        print("log entries:", len(m.get_session(state)["log"]))

        clock.advance(45)
        for name in ["ada", "bo", "cy"]:
            m.touch(players[name])  # still playing; dee went quiet
        clock.advance(30)
        print("after dee's session expired:", sorted(roster(m, "m1")))
        print("players ended with the match:", end_match(m, "m1", state))
        print("roster now:", roster(m, "m1"))


if __name__ == "__main__":
    main(*sys.argv[1:2])
