"""What a test does when a tool it drives for real is missing: it fails in CI
(a missing server must never pass as a skip there) and skips elsewhere."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    """Whether the tests run in CI: ``CI`` set to anything but empty, 0, false or no."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def missing(reason: str) -> NoReturn:
    """Fails the test in CI, skips it elsewhere, saying what is missing."""
    if in_ci():
        pytest.fail(f"running in CI, and {reason}", pytrace=False)
    pytest.skip(reason)
