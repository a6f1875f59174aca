"""Test matrix and release gates: ``python3 -m nox`` runs what CI runs; ``nox -s NAME`` one session.

What runs where (``nox -l`` lists every session; ``*`` marks the default ones, which
``.ci/run`` runs, in this order), with the time each took on the 2-core CI machine, from a
fresh virtualenv, while other work shared it; about 55 minutes in all:

======================================  =========================================================
session                                 what it does
======================================  =========================================================
``build`` (~3 min)                      sdist + wheel (``python -m build``, the wheel built from
                                        the sdist), ``twine check --strict``, the contents of both
                                        (LICENSE, every module, ``py.typed``, no ``node_modules``
                                        or databases), valid classifiers; then the sdist's own
                                        tests, without the ``e2e`` ones (soketi, pusher-js,
                                        gunicorn, Chromium), against that wheel, on SQLite
``lowest`` (~7.5 min)                   Python 3.10 with every dependency at its declared floor
                                        (each ``>=`` of pyproject.toml read as ``==``): the suite
                                        without the Chromium tests, on SQLite and PostgreSQL
``tests(py3.11-django5.2)``,            the whole suite (end-to-end through soketi, pusher-js
``tests(py3.13-django6.1)``             and gunicorn, and the Chromium tests) on SQLite, then on
(~10.5 min each)                        PostgreSQL
``tests(py3.10-django5.2)``,            the suite without the ``e2e`` tests, on SQLite: every
``tests(py3.12-django5.2)``,            other supported Python x Django cell (about 55 minutes
``tests(py3.13-django5.2)``,            in all, within CI's 90)
``tests(py3.12-django6.0)``,
``tests(py3.13-django6.0)``,
``tests(py3.12-django6.1)``
(~3 min each)
``imports`` (~1 min)                    ``lint-imports``: pyproject.toml's ``[tool.importlinter]``
                                        contracts (the pipeline's layers, settings and the
                                        helpers as leaves; so no import cycle in the package)
``types`` (~2 min)                      mypy --strict with the Django and DRF plugins on
                                        ``offer_realtime/`` (pyproject.toml ``[tool.mypy]``)
``lint`` (~1 min)                       ``ruff check`` (pyproject.toml ``[tool.ruff.lint]``)
                                        and ``ruff format --check`` on the whole tree
======================================  =========================================================

Every test session tests the *installed* package, not this tree: the package is
installed (not editable) into the session's virtualenv, and a ``.pth`` file puts the
tree (for ``tests``) and ``example_project/`` (for ``hotel``) *after* site-packages on
``sys.path``; pytest runs without the ``pythonpath`` of setup.cfg and with
``--import-mode=append``, and ``OFFER_REALTIME_TEST_SITE_PACKAGES`` makes
``tests/settings.py`` fail at once if ``offer_realtime`` would be imported from
anywhere else, in pytest and in every process a test starts with the test settings
(those processes get pytest's ``sys.path``: ``tests/pythonpath.py``).
(``PYTHONPATH=$PWD:$PWD/example_project pytest`` outside nox tests the tree, by design.)

PostgreSQL: ``POSTGRES_URL`` (default: the loopback server these machines run); each
session uses its own database, ``<POSTGRES_URL>_<session>`` (e.g. ``..._tests_py3_11_django5_2``).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import nox
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
POSTGRES_URL = os.environ.get("POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/offer_realtime")

#: (python, django) cells that run the whole suite on SQLite and PostgreSQL.
FULL = [("3.11", "5.2"), ("3.13", "6.1")]
#: Other supported cells, in CI: the suite without the e2e tests, on SQLite. With FULL and
#: ``lowest`` they run every supported Python and every supported Django.
QUICK = [("3.10", "5.2"), ("3.12", "5.2"), ("3.13", "5.2"), ("3.12", "6.0"), ("3.13", "6.0"), ("3.12", "6.1")]
#: Supported cells left out of CI (none now: all fit its time budget); ``nox -s NAME`` runs
#: any. (Django 6.x needs Python 3.12+.)
EXTRA: list[tuple[str, str]] = []
#: The lowest supported Python, for the ``lowest`` session.
LOWEST_PYTHON = "3.10"
#: Where the gates (build, lint, types) run.
GATES_PYTHON = "3.12"

#: What the QUICK cells leave out: the end-to-end tests (soketi, pusher-js, gunicorn, Chromium),
#: which the FULL cells and ``lowest`` run.
QUICK_SELECTION = ["-m", "not e2e"]
#: What ``lowest`` leaves out: the Chromium tests (``tests/browser/conftest.py`` marks them).
LOWEST_SELECTION = ["-m", "not chromium"]
#: pytest, testing the installed package (see the module docstring).
PYTEST_INSTALLED = ["pytest", "-o", "pythonpath=", "--import-mode=append"]

#: nox.project.dependency_groups (PEP 735 groups of pyproject.toml) came in 2025.02.09.
nox.needs_version = ">=2025.2.9"
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
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False).stdout.strip()
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


def _group(*names: str, pyproject: dict | None = None) -> tuple[str, ...]:
    """The requirements of dependency groups of pyproject.toml (PEP 735)."""
    return nox.project.dependency_groups(pyproject or PYPROJECT, *names)


def _use_installed(session: nox.Session, tree: Path) -> dict[str, str]:
    """Make ``tree``'s ``tests`` and ``example_project`` importable after site-packages.

    Returns the environment for pytest: the guard variable, and no ``PYTHONPATH`` (a
    developer's ``PYTHONPATH=$PWD`` would put the tree first).
    """
    # Straight from the virtualenv's interpreter, so it also works with --install-only and --no-install.
    site_packages = subprocess.run(
        [str(Path(session.bin, "python")), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # A .pth file's lines are appended to sys.path after site-packages, in this process
    # and in every Python process a test starts (manage.py, db_worker, ...).
    tree = tree.resolve()  # a .pth file's relative lines are relative to site-packages
    Path(site_packages, "_offer_realtime_test_tree.pth").write_text(f"{tree}\n{tree / 'example_project'}\n")
    return {"OFFER_REALTIME_TEST_SITE_PACKAGES": site_packages, "PYTHONPATH": ""}


def _cell_id(python: str, django: str) -> str:
    return f"py{python}-django{django}"


def _run_suite(session: nox.Session, args: list[str], *, postgres: bool) -> None:
    """The suite against the installed package on SQLite, then (``postgres``) on PostgreSQL."""
    env = _use_installed(session, ROOT)
    databases = {"SQLite": ""}
    if postgres:
        # One database per session, so sessions (or a developer's own run) never share one.
        databases["PostgreSQL"] = f"{POSTGRES_URL}_{re.sub(r'[^a-z0-9]+', '_', session.name.lower()).strip('_')}"
    failed = []
    for database, url in databases.items():
        try:
            session.run(*PYTEST_INSTALLED, *args, env={**env, "DATABASE_URL": url})
        except nox.command.CommandFailed:
            failed.append(database)  # still run the other database: both results are wanted
    if failed:
        session.error(f"the suite failed on {' and '.join(failed)}")


@nox.session(name="tests")
@nox.parametrize(
    "python,django,full",
    [nox.param(_interpreter(p), d, True, id=_cell_id(p, d)) for p, d in FULL]
    + [nox.param(_interpreter(p), d, False, id=_cell_id(p, d)) for p, d in QUICK + EXTRA],
)
def tests(session: nox.Session, django: str, full: bool) -> None:
    """The suite on one Python × Django cell (see the module docstring for which part)."""
    if full:
        _require_postgres(session)
    session.install(f"django~={django}.0", ".[tasks-db]", *_group("test"))
    session.run("python", "-m", "django", "--version")
    args = session.posargs or (["-ra"] if full else ["-ra", *QUICK_SELECTION])
    _run_suite(session, args, postgres=full)


def _lowest_constraints() -> list[str]:
    """``name==floor`` for every requirement the ``lowest`` session installs.

    Each must have a floor (a ``>=``): a requirement without one could not be tested
    at its lowest version.
    """
    optional = PYPROJECT["project"]["optional-dependencies"]
    requirements = [*PYPROJECT["project"]["dependencies"], *optional["tasks"], *optional["tasks-db"], *_group("test")]
    pins: dict[str, str] = {}
    for line in requirements:
        requirement = Requirement(line)
        floors = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        if len(floors) != 1:
            raise ValueError(f"{line!r} in pyproject.toml needs exactly one '>=' floor for the lowest session")
        pins[requirement.name.lower()] = f"{requirement.name}=={floors[0]}"
    return sorted(pins.values())


@nox.session(python=_interpreter(LOWEST_PYTHON))
def lowest(session: nox.Session) -> None:
    """Every dependency at its declared floor, on the lowest Python: the suite on SQLite and PostgreSQL."""
    _require_postgres(session)
    constraints = Path(session.create_tmp(), "lowest-constraints.txt")
    constraints.write_text("\n".join(_lowest_constraints()) + "\n")
    session.log("floors: " + ", ".join(_lowest_constraints()))
    session.install("-c", str(constraints), ".[tasks-db]", *_group("test"))
    session.run("pip", "check")
    session.run("python", "-m", "django", "--version")
    # PostgreSQL too: the database driver's floor is only exercised there.
    _run_suite(session, session.posargs or ["-ra", *LOWEST_SELECTION], postgres=True)


#: What an sdist must never carry: installed Node packages, databases, uploads, caches.
SDIST_FORBIDDEN = re.compile(
    r"(^|/)(node_modules|__pycache__|media|staticfiles|artifacts|\.nox|\.venv|build|dist)(/|$)|\.(py[co]|sqlite3)$"
)


def _check_dists(session: nox.Session, sdist: Path, wheel: Path) -> None:
    """The files of the sdist and the wheel: LICENSE, every module, nothing stray."""
    with tarfile.open(sdist) as archive:
        prefix = archive.getnames()[0].split("/")[0]
        sdist_files = {name.removeprefix(prefix + "/") for name in archive.getnames() if name != prefix}
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = set(archive.namelist())
    dist_info = next(name.split("/")[0] for name in wheel_files if ".dist-info/" in name)
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "offer_realtime").rglob("*.py")}
    modules |= {"offer_realtime/py.typed"}
    problems = [f"sdist lacks {name}" for name in sorted(modules - sdist_files)]
    problems += [f"wheel lacks {name}" for name in sorted(modules - wheel_files)]
    needed = ["LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml", "setup.cfg", "tests/conftest.py"]
    needed += ["tests/e2e/package-lock.json", "example_project/manage.py", "example_project/package-lock.json"]
    problems += [f"sdist lacks {name}" for name in needed if name not in sdist_files]
    problems += [f"sdist carries {name}" for name in sorted(sdist_files) if SDIST_FORBIDDEN.search(name)]
    if f"{dist_info}/licenses/LICENSE" not in wheel_files:
        problems.append("wheel lacks the LICENSE")
    problems += [
        f"wheel carries {name}"
        for name in sorted(wheel_files)
        if not name.startswith(("offer_realtime/", f"{dist_info}/"))
    ]
    if problems:
        session.error("\n".join(problems))
    session.log(f"{sdist.name}: {len(sdist_files)} files; {wheel.name}: {len(wheel_files)} files")


CHECK_CLASSIFIERS = """
import sys, zipfile
from email.parser import Parser
from trove_classifiers import classifiers, deprecated_classifiers
with zipfile.ZipFile(sys.argv[1]) as wheel:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    metadata = Parser().parsestr(wheel.read(name).decode())
bad = [c for c in metadata.get_all("Classifier") or [] if c not in classifiers or c in deprecated_classifiers]
sys.exit("unknown or deprecated classifiers: " + ", ".join(bad) if bad else 0)
"""


@nox.session(python=_interpreter(GATES_PYTHON))
def build(session: nox.Session) -> None:
    """Build the sdist and the wheel, check them, and run the sdist's tests against the wheel."""
    session.install(*_group("build"))
    tmp = Path(session.create_tmp()).resolve()
    out = tmp / "dist"
    shutil.rmtree(out, ignore_errors=True)
    # python -m build builds the sdist, then the wheel from the unpacked sdist.
    session.run("python", "-m", "build", "--outdir", str(out), str(ROOT))
    [sdist] = out.glob("*.tar.gz")
    [wheel] = out.glob("*.whl")
    session.run("twine", "check", "--strict", str(sdist), str(wheel))
    session.run("python", "-c", CHECK_CLASSIFIERS, str(wheel))
    _check_dists(session, sdist, wheel)

    unpacked = tmp / "sdist"
    shutil.rmtree(unpacked, ignore_errors=True)
    with tarfile.open(sdist) as archive:
        archive.extractall(unpacked, filter="data")
    [tree] = unpacked.iterdir()
    sdist_pyproject = nox.project.load_toml(tree / "pyproject.toml")
    session.install(f"{wheel}[tasks-db]", *_group("test", pyproject=sdist_pyproject))
    # A reused virtualenv may hold an older build of the same version, which pip keeps.
    session.install("--force-reinstall", "--no-deps", str(wheel))
    env = _use_installed(session, tree)
    session.chdir(tree)
    # Not the e2e tests: they need soketi and pusher-js from npm, and Chromium.
    session.run(*PYTEST_INSTALLED, "-ra", "-m", "not e2e", *session.posargs, env={**env, "DATABASE_URL": ""})


@nox.session(python=_interpreter(GATES_PYTHON))
def lint(session: nox.Session) -> None:
    """ruff check (pyproject.toml's [tool.ruff.lint]) and ruff format --check on the whole tree."""
    session.install(*_group("lint"))
    session.run("ruff", "check", *(session.posargs or ["."]))
    session.run("ruff", "format", "--check", "--diff", *(session.posargs or ["."]))


@nox.session(python=_interpreter(GATES_PYTHON))
def types(session: nox.Session) -> None:
    """mypy --strict with the Django and DRF plugins on offer_realtime/ (pyproject.toml's [tool.mypy])."""
    # The Django plugin loads tests.settings, so it needs what the suite needs.
    session.install(".[tasks-db]", *_group("test", "types"))
    session.run("mypy", *session.posargs, env={"PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'example_project'}"})


@nox.session(python=_interpreter(GATES_PYTHON))
def imports(session: nox.Session) -> None:
    """lint-imports: pyproject.toml's [tool.importlinter] contracts (no cycles; the pipeline flows one way)."""
    session.install(".", *_group("imports"))
    session.run("lint-imports")


nox.options.sessions = [
    "lint",
    "imports",
    "types",
    "build",
    "lowest",
    *(f"tests({_cell_id(p, d)})" for p, d in FULL + QUICK),
]
