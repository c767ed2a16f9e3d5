"""The README's Django settings, pasted into a project made by
``django-admin startproject``, give a project that passes ``manage.py check``
with the admin and serves its login page with a session in the store."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_readme import all_blocks

DJANGO_DEFAULTS = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

USE_THE_PROJECT = """
import django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "site_app.settings"
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.test.utils import setup_test_environment
setup_test_environment()  # lets the test client's host in, as Django's test runner does
print(settings.MIDDLEWARE)
call_command("check", fail_level="WARNING")
call_command("migrate", verbosity=0)
client = Client()
assert client.get("/admin/login/").status_code == 200
from django.contrib.auth.models import User
User.objects.create_superuser("admin", "a@example.org", "pw")
assert client.login(username="admin", password="pw")
assert client.get("/admin/").status_code == 200
from pysessionmanager.contrib.django import get_manager
print("sessions of admin:", len(get_manager().list_sessions("1")))
"""


def test_the_readme_settings_work_in_a_new_project(tmp_path: Path) -> None:
    [snippet] = [b for b in all_blocks() if b.startswith("# settings.py")]
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", "site_app", str(tmp_path)],
        check=True,
    )
    settings = tmp_path / "site_app" / "settings.py"
    store = tmp_path / "sessions.db"
    snippet = snippet.replace("sqlite:///sessions.db", f"sqlite:///{store}")
    settings.write_text(settings.read_text() + "\n" + snippet)
    done = subprocess.run(
        [sys.executable, "-c", USE_THE_PROJECT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    middleware, sessions = lines[0], lines[-1]
    assert "System check identified no issues" in done.stdout
    assert "pysessionmanager.contrib.django.SessionMiddleware" in middleware
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in middleware
    assert all(entry in middleware for entry in DJANGO_DEFAULTS), middleware
    assert sessions == "sessions of admin: 1"
