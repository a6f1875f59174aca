"""Fixtures for the browser tests: soketi, Chromium through Playwright, logged-in board pages.

The parts are all real: the example project on a live server, offer_realtime sending
to soketi over HTTP, and the board page in Debian's Chromium running pusher-js from
``example_project/node_modules``. Screenshots of every page a test opened are saved
under ``tests/browser/artifacts/`` when the test ends.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from PIL import Image, ImageDraw
from rest_framework.authtoken.models import Token

from tests.e2e.conftest import use_soketi
from tests.e2e.harness import Soketi, ensure_node_modules

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
EXAMPLE_DIR = REPO / "example_project"
PUSHER_JS = EXAMPLE_DIR / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Longest wait for anything a page should show after a change (the brief's bound).
LIVE_TIMEOUT_MS = 2_000


@pytest.fixture(scope="module")
def soketi():
    """One soketi per module; tests use their own hotels' channels."""
    ensure_node_modules()
    with Soketi() as server:
        yield server


@pytest.fixture(scope="session")
def pusher_js_installed():
    """``example_project/node_modules`` from its lock file, installed once if missing."""
    if not PUSHER_JS.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install example_project/node_modules (pusher-js for the board)")
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE_DIR, check=True, timeout=300,
                       stdin=subprocess.DEVNULL, capture_output=True)
    return PUSHER_JS


@pytest.fixture(scope="module")
def browser(pusher_js_installed):
    """Debian's Chromium, headless, driven by Playwright (one process per module).

    Module scope, not session: while Playwright runs, this thread has a running
    asyncio loop, and tests of other modules must not run inside that.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does), or set CHROMIUM")
    # Playwright's sync API keeps an asyncio loop running in this thread, which makes
    # Django refuse ORM calls from the test body ("async context"). Nothing here is
    # actually async, so the guard is lifted while the browser runs and restored afterwards.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=30_000)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def realtime(settings, soketi):
    """Point offer_realtime (and so the board's settings) at soketi; product-default delivery."""
    flush = use_soketi(settings, soketi, "tests.browser.urls")
    if not soketi.is_running:  # a failed reconnect test must not take the rest down with it
        soketi.start()
    yield soketi
    flush()


class Staff:
    """A staff member of one hotel: a password login and an API token."""

    def __init__(self, hotel, username: str) -> None:
        from hotel.models import StaffProfile

        self.hotel = hotel
        self.username = username
        self.password = f"{username}-password"
        self.user = get_user_model().objects.create_user(username, password=self.password)
        StaffProfile.objects.create(user=self.user, hotel=hotel)
        self.token = Token.objects.create(user=self.user).key

    @property
    def headers(self) -> dict[str, str]:
        """``Authorization`` for the staff API."""
        return {"Authorization": f"Token {self.token}"}

    def session_cookie(self) -> str:
        """A fresh session id for this user, as Django's login makes it."""
        client = Client()
        assert client.login(username=self.username, password=self.password)
        return client.cookies["sessionid"].value


class BoardPage:
    """One browser context (its own cookies) showing one hotel's board."""

    def __init__(self, page, base_url: str, label: str) -> None:
        self.page = page
        self.base_url = base_url
        self.label = label

    def offer(self, offer_id):
        """The card of offer ``offer_id`` (a Playwright locator)."""
        return self.page.locator(f'#offers > li[data-offer-id="{offer_id}"]')

    @property
    def cards(self):
        """Every offer card shown."""
        return self.page.locator("#offers > li")

    @property
    def connection(self):
        """The connection indicator."""
        return self.page.locator("#connection")

    def activity(self, **attrs: str):
        """Activity log entries, e.g. ``activity(event_id=...)``."""
        selector = "".join(f'[data-{name.replace("_", "-")}="{value}"]' for name, value in attrs.items())
        return self.page.locator(f"#activity > li{selector}")

    def wait_ready(self, timeout_ms: int = 15_000) -> None:
        """Wait until the page is subscribed and both list loads are done (on load, on subscribing)."""
        self.page.wait_for_function(
            "() => document.getElementById('connection').dataset.subscribed === 'true'"
            " && Number(document.body.dataset.syncs || 0) >= 2",
            timeout=timeout_ms,
        )

    def syncs(self) -> int:
        """How many full list loads have completed."""
        return int(self.page.evaluate("() => Number(document.body.dataset.syncs || 0)"))

    def screenshot(self, name: str, *, full_page: bool = True) -> Path:
        """Save a screenshot under the artifacts directory."""
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def open_board(browser, live_server, request):
    """Open a logged-in board page: ``open_board(staff, label)``; screenshots at teardown."""
    contexts = []
    pages: list[BoardPage] = []

    def open_(staff: Staff, label: str, *, login_form: bool = False, viewport=(1280, 800)) -> BoardPage:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        contexts.append(context)
        context.set_default_timeout(10_000)
        page = context.new_page()
        board = BoardPage(page, live_server.url, label)
        pages.append(board)
        url = f"{live_server.url}/staff/{staff.hotel.slug}/offers/live/"
        if login_form:
            # Through the login page, as a person would (and back to the board via ?next=).
            page.goto(url)
            page.fill("input[name=username]", staff.username)
            page.fill("input[name=password]", staff.password)
            page.click("button[type=submit]")
            page.wait_for_url(url)
        else:
            context.add_cookies([{"name": "sessionid", "value": staff.session_cookie(), "url": live_server.url}])
            page.goto(url)
        board.wait_ready()
        return board

    yield open_
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for board in pages:
        # A screenshot of a crashed page must not hide the test's own error.
        with contextlib.suppress(Exception):
            board.screenshot(f"{test_name}-{board.label}")
    for context in contexts:
        context.close()


@pytest.fixture
def hotels(db):
    """Hotels ``killarney`` and ``galway``."""
    from hotel.models import Hotel

    return (
        Hotel.objects.create(name="Killarney Park Hotel", slug="killarney"),
        Hotel.objects.create(name="Galway Bay Hotel", slug="galway"),
    )


@pytest.fixture
def staff(hotels):
    """Two killarney staff members and one of galway."""
    killarney, galway = hotels
    return Staff(killarney, "maire"), Staff(killarney, "sean"), Staff(galway, "aoife")


def photo_bytes(size: tuple[int, int] = (480, 300), colours=((31, 111, 139), (244, 196, 48))) -> bytes:
    """A small landscape-ish PNG: sky over a sunny band, so a screenshot shows a real picture."""
    image = Image.new("RGB", size, colours[0])
    draw = ImageDraw.Draw(image)
    width, height = size
    for y in range(height // 2, height):
        shade = int(255 * (y - height // 2) / (height // 2))
        draw.line([(0, y), (width, y)], fill=(20, 90 + shade // 3, 60))
    draw.ellipse([width * 0.65, height * 0.12, width * 0.85, height * 0.44], fill=colours[1])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Api:
    """The staff API of one hotel over real HTTP, as a script or another app would call it."""

    def __init__(self, base_url: str, staff: Staff) -> None:
        self.url = f"{base_url}/api/staff/hotel/{staff.hotel.slug}/offers/"
        self.headers = staff.headers

    def create(self, **fields) -> dict:
        """POST an offer; return the created offer."""
        response = requests.post(self.url, json=fields, headers=self.headers, timeout=10)
        assert response.status_code == 201, response.text
        return response.json()

    def update(self, offer_id, **fields) -> dict:
        """PATCH an offer; return it."""
        response = requests.patch(f"{self.url}{offer_id}/", json=fields, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def upload_photo(self, offer_id, data: bytes | None = None) -> str:
        """Upload a PNG as the offer's photo; return its URL."""
        files = {"photo": ("photo.png", data or photo_bytes(), "image/png")}
        response = requests.post(f"{self.url}{offer_id}/upload-image/", files=files, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()["photo_url"]

    def delete(self, offer_id) -> None:
        """DELETE an offer."""
        response = requests.delete(f"{self.url}{offer_id}/", headers=self.headers, timeout=10)
        assert response.status_code == 204, response.text


@pytest.fixture
def api(live_server):
    """``api(staff)``: the staff API as that staff member, with their token."""
    return lambda staff: Api(live_server.url, staff)
