"""Fixtures for the browser tests: soketi, Chromium through Playwright, board and guest pages.

The parts are all real: the example project on a live server, offer_realtime sending
to soketi over HTTP, and the staff board and the guest page in Debian's Chromium running
pusher-js from ``example_project/node_modules``. Screenshots of every page a test opened
are saved under ``tests/browser/artifacts/`` when the test ends.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from django.contrib.auth import get_user_model
from django.test import Client
from PIL import Image, ImageDraw
from rest_framework.authtoken.models import Token

from tests.e2e.conftest import shared_database_url, use_soketi
from tests.e2e.harness import Soketi, ensure_node_modules
from tests.pythonpath import child_pythonpath

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
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=EXAMPLE_DIR,
            check=True,
            timeout=300,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
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


#: Reads the offer cards of the board or the guest page, in page order, as the API's fields.
READ_CARDS_JS = """
() => [...document.querySelectorAll('#offers > li')].map((li) => {
  const text = (selector) => { const el = li.querySelector(selector); return el ? el.textContent : null; };
  const validity = li.querySelector('.offer-validity');
  const book = li.querySelector('.offer-book');
  const img = li.querySelector('img.offer-photo');
  const inactive = li.querySelector('.offer-inactive');
  return {
    id: Number(li.dataset.offerId),
    title: text('.offer-title'),
    tag: text('.offer-tag'),
    short_description: text('.offer-short'),
    details_text: text('.offer-details'),
    valid_from: validity ? validity.dataset.from || null : null,
    valid_to: validity ? validity.dataset.to || null : null,
    book_now_url: book ? book.getAttribute('href') || '' : null,
    photo_url: img && !img.hidden ? img.getAttribute('src') : null,
    is_active: inactive ? inactive.hidden : null,
  };
})
"""

#: The fields of an offer both pages show (and READ_CARDS_JS reads); the board adds is_active.
SHOWN_FIELDS = (
    "id",
    "title",
    "tag",
    "short_description",
    "details_text",
    "valid_from",
    "valid_to",
    "book_now_url",
    "photo_url",
)


def shown(offers: list[dict], *, staff: bool) -> list[dict]:
    """What a page should show of these API offers, in the same shape as READ_CARDS_JS."""
    fields = (*SHOWN_FIELDS, "is_active") if staff else SHOWN_FIELDS
    return [{name: offer.get(name) for name in fields} for offer in offers]


class OffersPage:
    """One browser context (its own cookies) showing one hotel's board or guest page."""

    staff = True

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

    def shown(self) -> list[dict]:
        """The cards as the API's fields (see READ_CARDS_JS), in page order."""
        fields = (*SHOWN_FIELDS, "is_active") if self.staff else SHOWN_FIELDS
        return [{name: card[name] for name in fields} for card in self.page.evaluate(READ_CARDS_JS)]

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


class GuestPage(OffersPage):
    """The public guest page of one hotel (no login)."""

    staff = False

    def events(self) -> int:
        """How many events the page has applied (duplicates not counted)."""
        return int(self.page.evaluate("() => Number(document.body.dataset.events || 0)"))


class BoardPage(OffersPage):
    """One browser context (its own cookies) showing one hotel's board."""

    def activity(self, **attrs: str):
        """Activity log entries, e.g. ``activity(event_id=...)``."""
        selector = "".join(f'[data-{name.replace("_", "-")}="{value}"]' for name, value in attrs.items())
        return self.page.locator(f"#activity > li{selector}")


@pytest.fixture
def _opened_pages(browser, request):
    """Browser contexts opened by a test; a screenshot of each page at teardown, then closed."""
    contexts = []
    pages: list[OffersPage] = []

    def new_page(viewport) -> object:
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        contexts.append(context)
        context.set_default_timeout(10_000)
        return context

    yield new_page, pages
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    for opened in pages:
        # A screenshot of a crashed page must not hide the test's own error.
        with contextlib.suppress(Exception):
            opened.screenshot(f"{test_name}-{opened.label}")
    for context in contexts:
        context.close()


@pytest.fixture
def open_board(_opened_pages, live_server):
    """Open a logged-in board page: ``open_board(staff, label)``; screenshots at teardown."""
    new_context, pages = _opened_pages

    def open_(
        staff: Staff, label: str, *, login_form: bool = False, viewport=(1280, 800), query: str = ""
    ) -> BoardPage:
        context = new_context(viewport)
        page = context.new_page()
        board = BoardPage(page, live_server.url, label)
        pages.append(board)
        url = f"{live_server.url}/staff/{staff.hotel.slug}/offers/live/{query}"
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

    return open_


@pytest.fixture
def open_guest(_opened_pages, live_server):
    """Open a hotel's guest page, as an anonymous visitor: ``open_guest(hotel_slug, label)``."""
    new_context, pages = _opened_pages

    def open_(hotel_slug: str, label: str, *, viewport=(1280, 800)) -> GuestPage:
        page = new_context(viewport).new_page()
        guest = GuestPage(page, live_server.url, label)
        pages.append(guest)
        page.goto(f"{live_server.url}/hotels/{hotel_slug}/offers/")
        guest.wait_ready()
        return guest

    return open_


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
        """POST an offer (a short description is made up if not given); return the created offer."""
        fields.setdefault("short_description", f"About {fields.get('title', 'this offer')}")
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

    def list(self) -> list[dict]:
        """GET the hotel's offers, as the board shows them (all of them, in the API's order)."""
        response = requests.get(self.url, headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


def public_offers(base_url: str, hotel_slug: str) -> list[dict]:
    """GET the public API's offers of a hotel (active only, in order), as the guest page shows them."""
    response = requests.get(f"{base_url}/api/public/hotels/{hotel_slug}/offers/", timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def api(live_server):
    """``api(staff)``: the staff API as that staff member, with their token."""
    return lambda staff: Api(live_server.url, staff)


class DirectTrigger:
    """Sends offer events straight through the ``pusher`` library to soketi, bypassing offer_realtime.

    For what offer_realtime would never send on its own: redeliveries, events out of order,
    events from a past the page's snapshot already has.
    """

    def __init__(self, soketi, channel: str) -> None:
        import pusher

        self.client = pusher.Pusher(
            app_id=soketi.app_id, key=soketi.key, secret=soketi.secret, host=soketi.host, port=soketi.port, ssl=False
        )
        self.channel = channel

    def send(self, name: str, data: dict, event_id: str, changed_at: datetime.datetime | None) -> None:
        """One event, with ``event_id`` and ``changed_at`` added as offer_realtime adds them."""
        payload = {**data, "event_id": event_id}
        if changed_at is not None:
            payload["changed_at"] = changed_at.isoformat()
        self.client.trigger(self.channel, name, payload)

    def send_all(self, events: list[tuple[str, dict]]) -> None:
        """Already complete ``(name, data)`` events, in this order (batches of 10 keep the order)."""
        for start in range(0, len(events), 10):
            self.client.trigger_batch(
                [
                    {"channel": self.channel, "name": name, "data": json.dumps(data)}
                    for name, data in events[start : start + 10]
                ]
            )

    def updated(self, offer: dict, event_id: str, changed_at: datetime.datetime, **changes) -> None:
        """offer-updated with ``offer`` (API data) changed by ``changes``."""
        self.send("offer-updated", {"offer": {**offer, **changes}, "action": "updated"}, event_id, changed_at)

    def created(self, offer: dict, event_id: str, changed_at: datetime.datetime, **changes) -> None:
        """offer-created with ``offer`` (API data) changed by ``changes``."""
        self.send("offer-created", {"offer": {**offer, **changes}, "action": "created"}, event_id, changed_at)

    def image(self, offer: dict, photo_url: str, event_id: str, changed_at: datetime.datetime) -> None:
        """offer-image-updated for ``offer``."""
        self.send(
            "offer-image-updated",
            {
                "offer_id": offer["id"],
                "offer_title": offer["title"],
                "photo_url": photo_url,
                "timestamp": changed_at.isoformat(),
                "action": "image-updated",
            },
            event_id,
            changed_at,
        )

    def deleted(self, offer: dict, event_id: str, changed_at: datetime.datetime) -> None:
        """offer-deleted for ``offer``."""
        self.send(
            "offer-deleted",
            {"offer_id": offer["id"], "offer_title": offer["title"], "action": "deleted"},
            event_id,
            changed_at,
        )

    def sync(self, offer_id, event_id: str, changed_at: datetime.datetime | None = None) -> None:
        """offers-updated ``{"action": "sync", "offer_id"}`` (no ``offer_id`` when None)."""
        data = {"action": "sync", "reason": "too-large"}
        if offer_id is not None:
            data["offer_id"] = offer_id
        self.send("offers-updated", data, event_id, changed_at)


#: Writer processes of the convergence tests, and writes each makes.
WRITERS = 2
OPS_PER_WRITER = 40


def run_writers(seed: int, tmp_path: Path) -> tuple[list[dict], dict[str, int]]:
    """Run the writer processes (``tests/browser/writer.py``) at the same time, on the test database.

    Returns all their events (each process's in the order it sent them) and how many writes
    of each kind succeeded. Needs hotels ``killarney`` and ``galway``.
    """
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.browser.writer_settings",
        "PYTHONPATH": child_pythonpath(),
        "DATABASE_URL": shared_database_url(),
        "MEDIA_ROOT": str(settings.MEDIA_ROOT),
    }
    start = time.time() + 3  # after both processes have set Django up
    outs = [tmp_path / f"writer-{k}.json" for k in range(WRITERS)]
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.browser.writer",
                str(out),
                "--seed",
                str(seed * 100 + k),
                "--ops",
                str(OPS_PER_WRITER),
                "--start",
                str(start),
            ],
            # cwd: not the tree, which `-m` would put first on sys.path (see tests/pythonpath.py).
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for k, out in enumerate(outs)
    ]
    for proc in procs:
        output, _ = proc.communicate(timeout=180)
        assert proc.returncode == 0, output.decode()
    results = [json.loads(out.read_text()) for out in outs]
    done = Counter()
    for result in results:
        done.update(result["done"])
        assert sum(result["done"].values()) >= OPS_PER_WRITER // 2, result  # not all lost to the other writer
    return [event for result in results for event in result["events"]], done


def pytest_collection_modifyitems(items):
    """Mark the tests that drive Chromium (those using ``browser``): ``-m "not chromium"`` leaves them out."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.chromium)
