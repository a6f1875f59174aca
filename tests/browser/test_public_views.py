"""The public side without a browser: the guest page's view and the public offers API."""

from __future__ import annotations

import datetime
import json
import re

import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.utils import timezone

from hotel.models import Offer
from tests.browser.conftest import photo_bytes

pytestmark = pytest.mark.django_db

LIST = "/api/public/hotels/killarney/offers/"
PUBLIC_FIELDS = [
    "id",
    "title",
    "short_description",
    "details_text",
    "details_html",
    "valid_from",
    "valid_to",
    "tag",
    "book_now_url",
    "photo_url",
    "sort_order",
    "created_at",
]


@pytest.fixture
def offers(hotels):
    killarney, galway = hotels
    spa = Offer.objects.create(
        hotel=killarney,
        title="Spa",
        short_description="Spa",
        sort_order=2,
        valid_to=datetime.date(2027, 3, 31),
        tag="Spa",
    )
    spa.photo.save("spa.png", ContentFile(photo_bytes()), save=True)
    golf = Offer.objects.create(hotel=killarney, title="Golf", short_description="Golf", sort_order=1)
    draft = Offer.objects.create(hotel=killarney, title="Draft", short_description="Not yet", is_active=False)
    seafood = Offer.objects.create(hotel=galway, title="Seafood", short_description="Galway's")
    return spa, golf, draft, seafood


def as_of(response) -> datetime.datetime:
    return datetime.datetime.fromisoformat(response["X-Offers-As-Of"])


def test_list_has_the_hotels_active_offers_only_with_public_fields(offers):
    spa, golf, _, _ = offers
    before = timezone.now()
    response = Client().get(LIST)
    assert response.status_code == 200
    data = response.json()
    assert [offer["id"] for offer in data] == [golf.pk, spa.pk]  # sort_order, then newest first
    assert all(list(offer) == PUBLIC_FIELDS for offer in data)
    assert data[1]["photo_url"] == spa.photo.url and data[1]["valid_to"] == "2027-03-31"
    # Stamped after the read, for the page to compare with the events' changed_at; never cached.
    assert before <= as_of(response) <= timezone.now()
    assert response["Cache-Control"] == "no-store"


def test_one_offer_is_there_while_active(offers):
    spa, _, draft, seafood = offers
    client = Client()
    response = client.get(f"{LIST}{spa.pk}/")
    assert response.status_code == 200 and response.json()["title"] == "Spa"
    for offer in (draft, seafood):  # inactive; another hotel's
        missing = client.get(f"{LIST}{offer.pk}/")
        assert missing.status_code == 404
        # A 404 is an answer as of a time too: "not shown, as of then".
        assert as_of(missing) <= timezone.now() and missing["Cache-Control"] == "no-store"
    spa.is_active = False
    spa.save()
    assert client.get(f"{LIST}{spa.pk}/").status_code == 404


def test_unknown_hotel_is_404(hotels):
    assert Client().get("/api/public/hotels/nowhere/offers/").status_code == 404
    assert Client().get("/hotels/nowhere/offers/").status_code == 404


def test_read_only_and_no_login_needed_even_with_a_bad_token(offers):
    client = Client(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(LIST).status_code == 200
    spa = offers[0]
    assert client.post(LIST, {"title": "x"}).status_code == 405
    assert client.patch(f"{LIST}{spa.pk}/", "{}", content_type="application/json").status_code == 405
    assert client.delete(f"{LIST}{spa.pk}/").status_code == 405
    assert Offer.objects.filter(pk=spa.pk, title="Spa").exists()


def guest_config(response) -> dict:
    match = re.search(rb'<script id="guest-config" type="application/json">(.*?)</script>', response.content, re.S)
    assert match, response.content[:2000]
    return json.loads(match.group(1))


def test_guest_page_is_public_and_listens_on_the_public_channel(hotels, settings):
    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "123", "guest-key", "s3cret"
    settings.PUSHER_HOST, settings.PUSHER_PORT, settings.PUSHER_SSL = "127.0.0.1", "6001", "false"
    response = Client().get("/hotels/killarney/offers/")
    assert response.status_code == 200
    assert b"Killarney Park Hotel" in response.content
    assert guest_config(response) == {
        "hotelSlug": "killarney",
        "key": "guest-key",
        "cluster": "mt1",
        "host": "127.0.0.1",
        "port": 6001,
        "ssl": False,
        "channel": "hotel-killarney",
        "apiUrl": LIST,
    }
    assert b"s3cret" not in response.content and b"csrf" not in response.content.lower()


def test_with_private_channels_the_guest_page_only_lists(hotels, settings):
    settings.PUSHER_APP_ID, settings.PUSHER_KEY, settings.PUSHER_SECRET = "123", "guest-key", "s3cret"
    settings.OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}"}
    config = guest_config(Client().get("/hotels/killarney/offers/"))
    assert (config["key"], config["channel"], config["apiUrl"]) == (None, None, LIST)


def test_the_board_links_to_the_guest_page(staff):
    client = Client()
    assert client.login(username=staff[0].username, password=staff[0].password)
    response = client.get("/staff/killarney/offers/live/")
    assert re.search(rb'<a id="guest-page"[^>]* href="/hotels/killarney/offers/"', response.content)
