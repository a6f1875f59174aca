"""Test matrix: ``python3 -m nox`` runs what CI runs; ``nox -s <name>`` one cell.

Each session installs the package (not editable, so the installed wheel is what is
tested) with its ``test`` extra, then runs the suite twice: on SQLite, and on the
PostgreSQL at ``POSTGRES_URL`` (default: the loopback server these machines run).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
from urllib.parse import urlsplit

import nox

POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/offer_realtime")

#: (python, django) cells CI runs on every change.
CI_MATRIX = [("3.11", "5.2"), ("3.12", "6.1")]
#: The rest of what the package supports: ``nox -s "tests-3.13(django='6.1')"``-style.
MORE = [("3.10", "5.2"), ("3.13", "5.2"), ("3.12", "6.0"), ("3.13", "6.1")]

nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True


def _interpreter(version: str) -> str:
    """``version`` if ``pythonX.Y`` runs; else the newest pyenv build of it, by path.

    pyenv's shims answer "command not found" for a version that is installed but
    not selected, and nox's discovery does not look past them.
    """
    try:
        subprocess.run([f"python{version}", "-c", ""], check=True, capture_output=True)
        return version
    except (OSError, subprocess.CalledProcessError):
        pass
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        builds = glob.glob(f"{root}/versions/{version}.*/bin/python{version}")
        if builds:
            return max(builds, key=lambda path: [int(n) for n in re.findall(r"\d+", path.split("/versions/")[1])])
    return version


def _require_postgres(session: nox.Session) -> None:
    parts = urlsplit(POSTGRES_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5432), timeout=3).close()
    except OSError as exc:
        session.error(
            f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432} ({exc}). "
            "Start it (bash .ci/run does), or point POSTGRES_URL at one."
        )


def _session_id(python: str, django: str) -> str:
    return f"py{python}-django{django}"


@nox.session(name="tests")
@nox.parametrize(
    "python,django",
    [nox.param(_interpreter(p), d, id=_session_id(p, d)) for p, d in CI_MATRIX + MORE],
)
def tests(session: nox.Session, django: str) -> None:
    """The whole suite on SQLite, then on PostgreSQL."""
    _require_postgres(session)
    session.install(f"django~={django}.0", ".[test]")
    session.run("python", "-m", "django", "--version")
    args = session.posargs or ["-q"]
    session.run("pytest", *args, env={"DATABASE_URL": ""})
    # One database per cell, so cells (or a developer's own run) never share one.
    database_url = f"{POSTGRES_URL}_{session.name.split('(')[-1].strip(')').replace('.', '').replace('-', '_')}"
    session.run("pytest", *args, env={"DATABASE_URL": database_url})


nox.options.sessions = [f"tests({_session_id(p, d)})" for p, d in CI_MATRIX]
