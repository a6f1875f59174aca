"""Test matrix: ``python3 -m nox`` runs what CI runs; ``nox -s <name>`` one cell.

Each session installs the package (not editable, so the installed wheel is what is
tested) with its ``test`` extra, then runs the suite twice: on SQLite, and on the
PostgreSQL at ``POSTGRES_URL`` (default: the loopback server these machines run).
"""

from __future__ import annotations

import os
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


def _expose_pyenv_interpreters() -> None:
    # pyenv's shims answer "python3.12: command not found" unless that version is
    # selected; selecting every installed one lets nox find each interpreter.
    if os.environ.get("PYENV_VERSION") or not shutil.which("pyenv"):
        return
    versions = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True).stdout.split()
    current = subprocess.run(["pyenv", "version-name"], capture_output=True, text=True).stdout.strip()
    ordered = [v for v in [current, *sorted(versions, reverse=True)] if v and "/" not in v]
    os.environ["PYENV_VERSION"] = ":".join(dict.fromkeys(ordered))


_expose_pyenv_interpreters()


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
    [nox.param(p, d, id=_session_id(p, d)) for p, d in CI_MATRIX + MORE],
)
def tests(session: nox.Session, django: str) -> None:
    """The whole suite on SQLite, then on PostgreSQL."""
    _require_postgres(session)
    session.install(f"django~={django}.0", ".[test]")
    session.run("python", "-m", "django", "--version")
    args = session.posargs or ["-q"]
    session.run("pytest", *args, env={"DATABASE_URL": ""})
    session.run("pytest", *args, env={"DATABASE_URL": POSTGRES_URL})


nox.options.sessions = [f"tests({_session_id(p, d)})" for p, d in CI_MATRIX]
