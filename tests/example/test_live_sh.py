"""``example_project/live.sh`` as a newcomer runs it: soketi, the example, and the logins it prints.

The script's own output is the only source of credentials here, as it is for a person:
the staff login and the admin login demo_data prints, the curl for the port served.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.harness import ensure_node_modules, free_port
from tests.pythonpath import child_pythonpath

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e


def _login(session: requests.Session, base: str, path: str, username: str, password: str) -> requests.Response:
    """Log in through a Django login form at ``path``, CSRF token and all, as a browser does."""
    form = session.get(base + path)
    assert form.status_code == 200, form.text[:500]
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    return session.post(
        form.url,
        data={"csrfmiddlewaretoken": csrf, "username": username, "password": password},
        headers={"Referer": form.url},
    )


def _free_port_from(lowest: int) -> int:
    """A TCP port at or above ``lowest`` that is free right now."""
    for port in range(lowest, 65536):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free port at or above {lowest}")


def _start_live_sh(tmp_path: Path, django_port: int, soketi_port: int) -> tuple[subprocess.Popen, Path]:
    """Start live.sh as a person does, on the given ports with its own SQLite database."""
    ensure_node_modules()
    log = tmp_path / "live.log"
    # The example's own settings, as a person gets them (pytest's DJANGO_SETTINGS_MODULE would win over manage.py's).
    env = {
        **{name: value for name, value in os.environ.items() if name != "DJANGO_SETTINGS_MODULE"},
        "PYTHON": sys.executable,
        "PYTHONPATH": child_pythonpath(),
        "DJANGO_PORT": str(django_port),
        "SOKETI_PORT": str(soketi_port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "DJANGO_MEDIA_ROOT": str(tmp_path / "media"),
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["bash", str(ROOT / "example_project" / "live.sh")],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, log


def _stop_live_sh(proc: subprocess.Popen) -> None:
    """Ctrl-C, as the script says: its trap stops soketi, runserver stops itself."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
    except ProcessLookupError:
        return  # it has exited already (the caller's assertion says why)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture
def live_sh(tmp_path):
    """live.sh on free ports with its own SQLite database; yields (base URL, a function reading its output)."""
    django_port = free_port()
    proc, log = _start_live_sh(tmp_path, django_port, free_port())
    base = f"http://127.0.0.1:{django_port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(base + "/", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        yield base, log.read_text
    finally:
        _stop_live_sh(proc)


def test_live_sh_prints_logins_and_a_curl_that_work(live_sh):
    base, output = live_sh
    text = output()
    logins = dict(re.findall(r"user (\S+), password ([0-9a-f]{16})\b", text))
    assert set(logins) == {"killarney-staff", "galway-staff", "admin"}, text
    assert ":8000" not in text  # every printed address is the port really served

    home = requests.get(base + "/", timeout=10)
    assert 'href="/staff/"' in home.text and 'href="/hotels/killarney/offers/"' in home.text

    staff = requests.Session()
    response = _login(staff, base, "/staff/", "killarney-staff", logins["killarney-staff"])
    assert response.status_code == 200 and response.url == f"{base}/staff/killarney/offers/live/", response.text[:500]
    assert "Killarney Park Hotel" in response.text
    # The board's page talks to the soketi live.sh started, on the private staff channel.
    config = re.search(r"<script id=\"board-config\" type=\"application/json\">(.*?)</script>", response.text, re.S)
    assert json.loads(config.group(1))["channel"] == "private-hotel-killarney", config.group(1)

    curl = text[text.index("curl -X POST") :].split("\n\n", 1)[0]
    assert f"curl -X POST {base}/api/staff/hotel/killarney/offers/" in curl
    status = subprocess.run(
        ["bash", "-c", curl + " -s -o /dev/null -w '%{http_code}'"], capture_output=True, text=True, timeout=30
    )
    assert status.stdout == "201", (status.stdout, status.stderr)
    offers = staff.get(f"{base}/api/staff/hotel/killarney/offers/", timeout=10).json()
    assert "Test Offer" in [offer["title"] for offer in offers]

    admin = requests.Session()
    response = _login(admin, base, "/admin/login/?next=/admin/", "admin", logins["admin"])
    assert response.status_code == 200 and response.url == f"{base}/admin/", response.text[:500]
    assert admin.get(f"{base}/admin/hotel/offer/", timeout=10).status_code == 200


def test_live_sh_starts_soketi_on_a_port_near_the_top_of_the_range(tmp_path):
    # soketi's side ports were SOKETI_PORT + 3600 and + 5001: from 60535 up, past 65535,
    # and soketi crashed at start. A free port from the OS can be that high.
    soketi_port = _free_port_from(64000)
    proc, log = _start_live_sh(tmp_path, free_port(), soketi_port)
    try:
        deadline = time.monotonic() + 120
        while f"soketi on 127.0.0.1:{soketi_port}" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # and it is soketi answering there, not something else
        assert requests.get(f"http://127.0.0.1:{soketi_port}/", timeout=5).status_code == 200
    finally:
        _stop_live_sh(proc)
