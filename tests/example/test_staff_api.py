"""The seed guide's four curl flows against the example project, response and broadcast.

Each test sends what the seed's curl sends (same URL, same headers, same body).
"""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone
from rest_framework import serializers

from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import image_bytes, payload, stored_files, upload

pytestmark = pytest.mark.django_db


def drf_time(value: datetime.datetime) -> str:
    """A datetime as the API and the events render it."""
    return serializers.DateTimeField().to_representation(value)


def offer_json(offer, *, photo: str | None = None) -> dict:
    """The exact OfferStaffSerializer data an event carries for ``offer`` (no request: relative URLs)."""
    return {
        "id": offer.pk,
        "title": offer.title,
        "short_description": offer.short_description,
        "details_text": offer.details_text,
        "details_html": offer.details_html,
        "valid_from": None if offer.valid_from is None else offer.valid_from.isoformat(),
        "valid_to": None if offer.valid_to is None else offer.valid_to.isoformat(),
        "tag": offer.tag,
        "book_now_url": offer.book_now_url,
        "photo": photo,
        "photo_url": photo,
        "sort_order": offer.sort_order,
        "is_active": offer.is_active,
        "created_at": drf_time(offer.created_at),
    }


def test_create_offer_seed_curl(api, killarney):
    """curl -X POST .../hotel/killarney/offers/ -d '{"title":"Test Offer",...}'"""
    from hotel.models import Offer

    with capture_broadcasts() as sent:
        response = api.post(
            "/api/staff/hotel/killarney/offers/",
            '{"title":"Test Offer","short_description":"Test","is_active":true}',
            content_type="application/json",
        )

    assert response.status_code == 201, response.content
    offer = Offer.objects.get()
    assert offer.hotel == killarney
    assert response.json() == offer_json(offer)
    assert [(e.name, e.channel) for e in sent] == [("offer-created", "hotel-killarney")]
    assert payload(sent[0]) == {"offer": offer_json(offer), "action": "created"}
    assert sent[0].data["offer"]["title"] == "Test Offer"


def test_create_ignores_a_hotel_in_the_body(api, killarney, galway):
    """The hotel comes from the staff profile; a client cannot create offers for another hotel."""
    from hotel.models import Offer

    with capture_broadcasts() as sent:
        response = api.post(
            "/api/staff/hotel/killarney/offers/",
            {"title": "Sneaky", "short_description": "x", "hotel": galway.pk},
            format="json",
        )

    assert response.status_code == 201
    assert Offer.objects.get().hotel == killarney
    assert [(e.name, e.channel) for e in sent] == [("offer-created", "hotel-killarney")]


def test_create_invalid_body_is_400_without_event(api, killarney):
    from hotel.models import Offer

    with capture_broadcasts() as sent:
        response = api.post("/api/staff/hotel/killarney/offers/", {"short_description": "no title"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"title": ["This field is required."]}
    assert not Offer.objects.exists()
    assert list(sent) == []


def test_upload_image_seed_curl(api, spa_offer, media_root):
    """curl -X POST .../offers/1/upload-image/ -F "photo=@/path/to/image.jpg" """
    before = timezone.now()
    with capture_broadcasts() as sent:
        response = api.post(
            f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/upload-image/",
            {"photo": upload("image.jpg", image_bytes("JPEG"), "image/jpeg")},
            format="multipart",
        )

    assert response.status_code == 200, response.content
    spa_offer.refresh_from_db()
    assert spa_offer.photo.name == "offers/image.jpg"
    assert response.json() == {"message": "Image uploaded successfully", "photo_url": "/media/offers/image.jpg"}
    assert stored_files(media_root) == ["offers/image.jpg"]
    assert [(e.name, e.channel) for e in sent] == [("offer-image-updated", "hotel-killarney")]
    data = payload(sent[0])
    timestamp = datetime.datetime.fromisoformat(data.pop("timestamp"))
    assert before <= timestamp <= timezone.now()
    assert data == {
        "offer_id": spa_offer.pk,
        "offer_title": "Spa Weekend",
        "photo_url": "/media/offers/image.jpg",
        "action": "image-updated",
    }


def test_update_offer_seed_curl(api, spa_offer):
    """curl -X PATCH .../offers/1/ -d '{"title":"Updated Title"}'"""
    with capture_broadcasts() as sent:
        response = api.patch(
            f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/",
            '{"title":"Updated Title"}',
            content_type="application/json",
        )

    assert response.status_code == 200, response.content
    spa_offer.refresh_from_db()
    assert spa_offer.title == "Updated Title"
    assert response.json() == offer_json(spa_offer)
    assert [(e.name, e.channel) for e in sent] == [("offer-updated", "hotel-killarney")]
    assert payload(sent[0]) == {"offer": offer_json(spa_offer), "action": "updated"}


def test_full_update_with_put(api, spa_offer):
    body = {"title": "Spa Week", "short_description": "Five nights", "tag": "Spa", "is_active": False}
    with capture_broadcasts() as sent:
        response = api.put(f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/", body, format="json")

    assert response.status_code == 200
    spa_offer.refresh_from_db()
    assert (spa_offer.title, spa_offer.tag, spa_offer.is_active) == ("Spa Week", "Spa", False)
    assert sent.names == ["offer-updated"]
    assert payload(sent[0]) == {"offer": offer_json(spa_offer), "action": "updated"}


def test_delete_offer_seed_curl(api, photo_offer, media_root):
    """curl -X DELETE .../offers/1/ ; the offer's photo leaves storage once the delete commits."""
    from hotel.models import Offer

    offer_id = photo_offer.pk
    with capture_broadcasts() as sent:
        response = api.delete(f"/api/staff/hotel/killarney/offers/{offer_id}/")

    assert response.status_code == 204
    assert response.content == b""
    assert not Offer.objects.filter(pk=offer_id).exists()
    assert [(e.name, e.channel) for e in sent] == [("offer-deleted", "hotel-killarney")]
    assert payload(sent[0]) == {"offer_id": offer_id, "offer_title": "Golf Break", "action": "deleted"}
    assert stored_files(media_root) == []


def test_the_four_seed_commands_in_sequence(api, killarney, media_root):
    """The seed's test script as one session: create, upload, update, delete; one event each.

    Every request commits on its own in a real server; reading ``sent`` after each one
    runs its on_commit callbacks, as that commit would (otherwise the app would rightly
    coalesce create-then-delete into nothing).
    """
    with capture_broadcasts() as sent:
        response = api.post(
            "/api/staff/hotel/killarney/offers/",
            '{"title":"Test Offer","short_description":"Test","is_active":true}',
            content_type="application/json",
        )
        assert (response.status_code, sent.names) == (201, ["offer-created"])
        offer_id = response.json()["id"]
        base = f"/api/staff/hotel/killarney/offers/{offer_id}/"

        response = api.post(base + "upload-image/", {"photo": upload("image.jpg", image_bytes("JPEG"))})
        assert (response.status_code, sent.names[1:]) == (200, ["offer-image-updated"])

        response = api.patch(base, '{"title":"Updated Title"}', content_type="application/json")
        assert (response.status_code, sent.names[2:]) == (200, ["offer-updated"])

        response = api.delete(base)
        assert (response.status_code, sent.names[3:]) == (204, ["offer-deleted"])

    assert {e.channel for e in sent} == {"hotel-killarney"}
    assert sent[2].data["offer"]["title"] == "Updated Title"
    assert sent[2].data["offer"]["photo_url"] == "/media/offers/image.jpg"
    assert payload(sent[3]) == {"offer_id": offer_id, "offer_title": "Updated Title", "action": "deleted"}
    assert stored_files(media_root) == []


def test_list_is_a_plain_list_of_own_offers_in_display_order(api, killarney, seafood_offer):
    from hotel.models import Offer

    second = Offer.objects.create(hotel=killarney, title="B", sort_order=2)
    first = Offer.objects.create(hotel=killarney, title="A", sort_order=1)
    newest_first = Offer.objects.create(hotel=killarney, title="C", sort_order=2)

    response = api.get("/api/staff/hotel/killarney/offers/")

    assert response.status_code == 200
    assert [o["id"] for o in response.json()] == [first.pk, newest_first.pk, second.pk]


def test_retrieve(api, spa_offer):
    response = api.get(f"/api/staff/hotel/killarney/offers/{spa_offer.pk}/")

    assert response.status_code == 200
    assert response.json() == offer_json(spa_offer)


def test_non_numeric_offer_id_is_404(api, killarney):
    assert api.get("/api/staff/hotel/killarney/offers/abc/").status_code == 404


def test_photo_that_is_not_a_file_is_400_and_changes_nothing(api, photo_offer, media_root):
    """A string naming some other file cannot point the offer at it: a photo is sent as a file."""
    with capture_broadcasts() as sent:
        response = api.patch(
            f"/api/staff/hotel/killarney/offers/{photo_offer.pk}/", {"photo": "offers/elsewhere.png"}, format="json"
        )

    assert response.status_code == 400
    assert response.json() == {
        "photo": ["Send the photo as a file upload (multipart/form-data), or null to remove it."]
    }
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []
