"""Django's own session tests (``tests/sessions_tests/``), which ship in
Django's source distribution but not in its wheel: fetched once with pip from
the sdist of the installed Django version and kept in a cache folder (inside
the virtualenv when there is one)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path, PurePosixPath
from typing import Optional

import django

VERSION = django.__version__
#: The package Django's session tests live in (imported as ``sessions_tests``).
PACKAGE = "sessions_tests"


class Unavailable(RuntimeError):
    """Django's session tests could not be fetched."""


def cache_dir() -> Path:
    in_venv = sys.prefix != sys.base_prefix
    base = Path(sys.prefix, "cache") if in_venv else Path.home() / ".cache"
    return base / "pysessionmanager" / f"django-{VERSION}-tests"


def fetch() -> Path:
    """The folder holding the ``sessions_tests`` package, fetched if missing."""
    root = cache_dir()
    if (root / PACKAGE / "tests.py").is_file():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent) as work:
        sdist = _download(Path(work))
        staged = Path(work, "staged")
        _extract(sdist, staged)
        try:
            staged.rename(root)  # atomic: a half-extracted tree is never seen
        except OSError:
            if not (root / PACKAGE / "tests.py").is_file():
                raise
    return root


def _download(into: Path) -> Path:
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--no-binary", ":all:", f"django=={VERSION}", "--dest", str(into),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    found = sorted(into.glob(f"[dD]jango-{VERSION}.tar.gz"))
    if done.returncode != 0 or not found:
        raise Unavailable(
            f"could not download Django {VERSION}'s sdist for its session tests "
            f"({' '.join(command)}): {done.stderr.strip()[-2000:]}"
        )
    return found[0]


def _extract(sdist: Path, into: Path) -> None:
    """Copies ``tests/sessions_tests/*`` and Django's LICENSE out of the sdist,
    reading member contents only (no links, no paths outside ``into``)."""
    wanted = {PACKAGE: ("tests", PACKAGE), ".": ("LICENSE",)}
    with tarfile.open(sdist, "r:gz") as tar:
        for member in tar.getmembers():
            parts = PurePosixPath(member.name).parts
            if not member.isfile() or ".." in parts or len(parts) < 2:
                continue
            inner = parts[1:]  # drop the "Django-X.Y/" top folder
            for folder, prefix in wanted.items():
                name = _relative(inner, prefix)
                if name is not None:
                    target = into / folder / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    source = tar.extractfile(member)
                    assert source is not None
                    with source, open(target, "wb") as out:
                        shutil.copyfileobj(source, out)
    if not (into / PACKAGE / "tests.py").is_file():
        raise Unavailable(f"Django {VERSION}'s sdist has no tests/{PACKAGE}/tests.py")


def _relative(parts: tuple[str, ...], prefix: tuple[str, ...]) -> Optional[str]:
    if prefix == parts:
        return parts[-1]
    if parts[: len(prefix)] == prefix and len(parts) > len(prefix):
        return "/".join(parts[len(prefix) :])
    return None
