"""Frameworks' own test suites, from the source distribution of the exact
version installed, so our integrations are held to the framework's tests.

Each sdist is downloaded once with pip into ``<venv>/cache/upstream`` (the
temporary folder outside a virtualenv); a failed download raises with pip's
output rather than letting the tests quietly not run.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path, PurePosixPath

_IN_VENV = sys.prefix != sys.base_prefix
CACHE = Path(sys.prefix if _IN_VENV else tempfile.gettempdir()) / "cache" / "upstream"


class Unavailable(RuntimeError):
    """A framework's sdist could not be fetched or lacks what was asked for."""


def sdist(distribution: str) -> Path:
    """The sdist of the installed ``distribution``, downloaded if missing."""
    release = version(distribution)
    found = _find(distribution, release)
    if found is None:
        CACHE.mkdir(parents=True, exist_ok=True)
        # --no-binary <name>, not :all:, which would also build pip's build
        # tools (hatchling, flit...) from source: minutes instead of seconds.
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        command += ["--disable-pip-version-check", "--no-binary", distribution]
        command += ["--dest", str(CACHE), f"{distribution}=={release}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        found = _find(distribution, release)
        if done.returncode != 0 or found is None:
            raise Unavailable(
                f"could not download the sdist of {distribution} {release} for its own tests "
                f"({' '.join(command)}):\n{done.stdout}{done.stderr}"
            )
    return found


def _find(distribution: str, release: str) -> Path | None:
    for name in {distribution, distribution.lower(), distribution.capitalize()}:
        candidate = CACHE / f"{name}-{release}.tar.gz"
        if candidate.is_file():
            return candidate
    return None


def extracted(distribution: str, paths: Iterable[str] = ("tests",)) -> Path:
    """A folder laid out like the sdist's root, holding the regular files under
    ``paths`` (relative to that root). Extracted once; a half-extracted tree is
    never seen, and links or paths leaving the folder are never written."""
    wanted = [PurePosixPath(p).parts for p in paths]
    root = CACHE / f"{distribution.lower()}-{version(distribution)}"
    if root.is_dir():
        return root
    archive = sdist(distribution)
    with tempfile.TemporaryDirectory(dir=CACHE) as work:
        staged = Path(work, "staged")
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                parts = PurePosixPath(member.name).parts[1:]  # drop "name-version/"
                if not member.isfile() or ".." in parts or member.name.startswith("/"):
                    continue
                if not any(parts[: len(w)] == w for w in wanted):
                    continue
                target = staged.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                assert source is not None
                with source, open(target, "wb") as out:
                    shutil.copyfileobj(source, out)
        for path in paths:
            if not (staged / path).exists():
                raise Unavailable(f"the sdist of {distribution} has no {path}")
        try:
            staged.rename(root)
        except OSError:  # another run got there first
            if not root.is_dir():
                raise
    return root
