"""Frameworks' own test suites, from the source distribution of the exact
version installed, so our integrations are held to the framework's tests."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from importlib.metadata import version
from pathlib import Path

CACHE = Path(sys.prefix) / "upstream-tests"


def upstream_tests(distribution: str) -> Path:
    """The ``tests`` folder of ``distribution``'s sdist, downloaded once."""
    name = f"{distribution.lower()}-{version(distribution)}"
    tests = CACHE / name / "tests"
    if not tests.is_dir():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet"),
                *("--disable-pip-version-check", "--no-deps", "--no-binary", ":all:"),
                *("--dest", str(CACHE), f"{distribution}=={version(distribution)}"),
            ],
            check=True,
        )
        with tarfile.open(CACHE / f"{name}.tar.gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(f"{name}/tests/")]
            # The "data" filter refuses links and absolute paths; older Pythons lack it.
            safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
            tar.extractall(CACHE, members=members, **safe)  # noqa: S202
    return tests
