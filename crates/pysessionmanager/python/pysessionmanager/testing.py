"""Helpers for testing code that uses pysessionmanager.

``ManualClock`` lets tests move time by hand::

    clock = ManualClock()
    m = SessionManager(expiration_time=60, clock=clock)
    sid = m.create_session("u1")
    clock.advance(61)
    assert not m.is_session_active(sid)
"""

from pysessionmanager._native import ManualClock

__all__ = ["ManualClock"]
