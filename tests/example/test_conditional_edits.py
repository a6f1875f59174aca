"""Conflict-safe edits in the example staff API (issue 12): ETag on GET, If-Match on PATCH/PUT/DELETE.

Two staff members open the same offer; the first saves; the second's save, sent with the
ETag it read, is refused with 412 and the offer as the first left it, and changes
nothing: no field, no stored photo, no event. Real concurrent requests are in
``test_conditional_races.py``.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from hotel.models import Offer
from offer_realtime.conditional import etag_for
from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import image_bytes, make_staff, payload, stored_files, token_client, upload
from tests.example.test_offer_writes import FORM_JSON
from tests.example.test_staff_api import offer_json

pytestmark = pytest.mark.django_db

LIST = "/api/staff/hotel/killarney/offers/"


def detail(offer) -> str:
    return f"{LIST}{offer.pk}/"


def state(offer) -> tuple:
    """Every stored field of ``offer`` that the API shows."""
    row = Offer.objects.get(pk=offer.pk)
    return (row.title, row.short_description, row.tag, row.valid_to, row.is_active, row.sort_order, row.photo.name)


def edit_form(api, offer, **changes) -> tuple[dict, str]:
    """What the staff frontend sends when it saves an offer it opened: every field as read, plus changes."""
    response = api.get(detail(offer))
    body = {key: "" if value is None else value for key, value in response.json().items()}
    for key in ("id", "created_at", "photo"):
        body.pop(key)
    return {**body, **changes}, response["ETag"]


# -- ETag on GET ---------------------------------------------------------------------------


def test_get_of_an_offer_carries_its_etag_and_the_list_none(api, photo_offer):
    response = api.get(detail(photo_offer))

    assert response.status_code == 200
    # The ETag is the hash of the offer as the events carry it (no request: relative URLs),
    # so it is the same whatever host name the client used.
    assert response["ETag"] == etag_for(offer_json(photo_offer, photo="/media/offers/old.png"))
    assert api.get(detail(photo_offer), HTTP_HOST="127.0.0.1")["ETag"] == response["ETag"]
    assert not api.get(LIST).has_header("ETag")


def test_etag_changes_when_the_photo_changes(api, photo_offer):
    before = api.get(detail(photo_offer))["ETag"]
    assert (
        api.post(f"{detail(photo_offer)}upload-image/", {"photo": upload("new.png", image_bytes())}).status_code == 200
    )

    assert api.get(detail(photo_offer))["ETag"] != before


# -- the second save of one version ----------------------------------------------------------


def test_the_second_save_of_the_same_version_is_412_with_the_offer_as_the_first_left_it(
    api, killarney, photo_offer, media_root
):
    colleague = token_client(make_staff("mary", killarney))
    mine, etag = edit_form(api, photo_offer, tag="Spa")
    theirs, their_etag = edit_form(colleague, photo_offer, title="Golf Break for two")
    assert etag == their_etag

    assert colleague.patch(detail(photo_offer), theirs, format="json", HTTP_IF_MATCH=their_etag).status_code == 200
    current = api.get(detail(photo_offer))
    before = state(photo_offer)

    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), mine, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert response.json() == current.json()  # the offer as it is now, as a GET gives it
    assert response.json()["title"] == "Golf Break for two"
    assert response["ETag"] == current["ETag"] != etag
    assert state(photo_offer) == before
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []

    # The frontend shows both versions; the user keeps theirs: saved with the new ETag.
    retry = api.patch(
        detail(photo_offer), {**mine, "title": "Golf Break for two"}, format="json", HTTP_IF_MATCH=response["ETag"]
    )
    assert retry.status_code == 200
    assert state(photo_offer)[0:3:2] == ("Golf Break for two", "Spa")


def test_a_stale_multipart_save_with_a_photo_is_412_and_stores_no_file(api, photo_offer, media_root):
    stale = api.get(detail(photo_offer))["ETag"]
    Offer.objects.filter(pk=photo_offer.pk).update(title="Renamed meanwhile")
    before = state(photo_offer)
    body = {"title": "Mine", "short_description": "x", "photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg")}

    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), body, format="multipart", HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert response.json()["title"] == "Renamed meanwhile"
    assert state(photo_offer) == before
    # Judged before the body is read: the upload was neither checked nor stored.
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_a_multipart_save_with_the_current_etag_replaces_the_photo(api, photo_offer, media_root):
    etag = api.get(detail(photo_offer))["ETag"]
    body = {"title": "Golf Break (new photo)", "photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg")}

    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), body, format="multipart", HTTP_IF_MATCH=etag)

    assert response.status_code == 200, response.content
    assert state(photo_offer)[0::6] == ("Golf Break (new photo)", "offers/new.jpg")
    assert stored_files(media_root) == ["offers/new.jpg"]
    assert response["ETag"] == api.get(detail(photo_offer))["ETag"] != etag
    assert sent.names == ["offer-updated", "offer-image-updated"]
    # The new ETag is the hash of the offer the event carried.
    assert response["ETag"] == etag_for(payload(sent[0])["offer"])


@pytest.mark.django_db(transaction=True)
def test_a_save_that_commits_during_the_upload_makes_it_412_and_the_new_file_is_deleted(
    api, killarney, photo_offer, media_root, monkeypatch
):
    """The conflict is found under the row lock (after the photo was stored), not only on the first read."""
    from hotel import uploads

    etag = api.get(detail(photo_offer))["ETag"]
    real_store = uploads.store_photo

    def store_while_a_colleague_saves(photo):
        name = real_store(photo)

        def colleague():  # another request, on its own connection, commits meanwhile
            try:
                offer = Offer.objects.get(pk=photo_offer.pk)
                offer.title = "Saved during the upload"
                offer.save()
            finally:
                connection.close()

        thread = threading.Thread(target=colleague)
        thread.start()
        thread.join()
        return name

    monkeypatch.setattr(uploads, "store_photo", store_while_a_colleague_saves)
    body = {"tag": "Mine", "photo": upload("mine.jpg", image_bytes("JPEG"), "image/jpeg")}

    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), body, format="multipart", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert response.json()["title"] == "Saved during the upload"
    assert state(photo_offer)[0:3:2] == ("Saved during the upload", "")
    assert state(photo_offer)[6] == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]  # mine.jpg was stored, then deleted again
    assert sent.names == ["offer-updated"]  # the colleague's save only
    assert sent[0].data["offer"]["title"] == "Saved during the upload"


def test_put_echoing_the_offer_with_its_etag_changes_nothing_and_keeps_the_etag(api, photo_offer):
    body, etag = edit_form(api, photo_offer)
    body["photo"] = api.get(detail(photo_offer)).json()["photo"]

    with capture_broadcasts() as sent:
        response = api.put(detail(photo_offer), body, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200, response.content
    assert response["ETag"] == etag
    assert list(sent) == []


def test_without_if_match_a_save_is_unconditional_as_before(api, spa_offer):
    body, _ = edit_form(api, spa_offer, tag="blind")
    Offer.objects.filter(pk=spa_offer.pk).update(title="Renamed meanwhile")

    response = api.patch(detail(spa_offer), {**FORM_JSON, **body}, format="json")

    assert response.status_code == 200
    assert state(spa_offer)[0:3:2] == ("Spa Weekend", "blind")  # the other change was overwritten
    assert response["ETag"] == api.get(detail(spa_offer))["ETag"]


# -- DELETE ----------------------------------------------------------------------------------


def test_delete_of_a_changed_offer_is_412_and_keeps_it_and_its_photo(api, photo_offer, media_root):
    stale = api.get(detail(photo_offer))["ETag"]
    Offer.objects.filter(pk=photo_offer.pk).update(is_active=False)

    with capture_broadcasts() as sent:
        response = api.delete(detail(photo_offer), HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert response.json()["is_active"] is False
    assert Offer.objects.filter(pk=photo_offer.pk).exists()
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_delete_with_the_current_etag_deletes_the_offer_and_its_photo(
    api, photo_offer, media_root, django_capture_on_commit_callbacks
):
    etag = api.get(detail(photo_offer))["ETag"]

    with capture_broadcasts() as sent:
        assert api.delete(detail(photo_offer), HTTP_IF_MATCH=etag).status_code == 204

    assert not Offer.objects.filter(pk=photo_offer.pk).exists()
    assert sent.names == ["offer-deleted"]


# -- requiring If-Match ----------------------------------------------------------------------


def test_with_hotel_offer_require_if_match_writes_without_it_are_428(api, photo_offer, settings, media_root):
    settings.HOTEL_OFFER_REQUIRE_IF_MATCH = True
    body, etag = edit_form(api, photo_offer, title="Changed")
    before = state(photo_offer)

    with capture_broadcasts() as sent:
        assert api.patch(detail(photo_offer), body, format="json").status_code == 428
        assert api.put(detail(photo_offer), body, format="json").status_code == 428
        multipart = {"title": "x", "photo": upload("n.png", image_bytes())}
        assert api.patch(detail(photo_offer), multipart, format="multipart").status_code == 428
        refused = api.delete(detail(photo_offer))

    assert refused.status_code == 428
    assert "If-Match" in refused.json()["detail"]
    assert state(photo_offer) == before
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []
    # With the header it goes through; creating and reading need none.
    assert api.patch(detail(photo_offer), body, format="json", HTTP_IF_MATCH=etag).status_code == 200
    assert api.post(LIST, {"title": "New", "short_description": "x"}, format="json").status_code == 201
    assert api.get(LIST).status_code == 200


def test_if_match_on_another_hotels_offer_is_404(api, seafood_offer, settings):
    settings.HOTEL_OFFER_REQUIRE_IF_MATCH = True
    for headers in ({}, {"HTTP_IF_MATCH": "*"}, {"HTTP_IF_MATCH": '"x"'}):
        assert api.patch(detail(seafood_offer), {"title": "x"}, format="json", **headers).status_code == 404
        assert api.delete(detail(seafood_offer), **headers).status_code == 404
    assert Offer.objects.get(pk=seafood_offer.pk).title == "Seafood Supper"


# -- OpenAPI -------------------------------------------------------------------------------


def test_schema_shows_if_match_etag_412_and_428():
    from rest_framework.test import APIClient

    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = schema["paths"]["/api/staff/hotel/{hotel_slug}/offers/{id}/"]

    for method in ("put", "patch", "delete"):
        headers = {p["name"]: p for p in operations[method]["parameters"] if p["in"] == "header"}
        assert set(headers) == {"If-Match"}, method
        assert headers["If-Match"].get("required", False) is False
        responses = operations[method]["responses"]
        assert {"412", "428"} <= set(responses), method
        assert "ETag" in responses["412"]["headers"]
        ref = responses["412"]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/OfferStaff")
    for method in ("put", "patch"):
        assert "ETag" in operations[method]["responses"]["200"]["headers"]
    assert "ETag" in operations["get"]["responses"]["200"]["headers"]
    assert not any(p["in"] == "header" for p in operations["get"]["parameters"])
