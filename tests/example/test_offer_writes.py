"""The main offer endpoint as the real staff frontend calls it: JSON or multipart, with or without a photo.

The frontend (see shared/REAL-CLIENT.md) creates with POST and edits with PATCH, either
as JSON with every form field (``""`` for empty dates and URLs, the read-only
``photo_url`` sent back) or as multipart with the non-empty fields and a ``photo`` file.
A photo sent this way is checked exactly like ``upload-image``'s, stored before the
transaction, and the replaced or removed file is deleted once the change commits.
"""

from __future__ import annotations

import datetime

import pytest
from django.db import DatabaseError, transaction

from hotel import uploads
from hotel.models import Offer
from offer_realtime.testing import capture_broadcasts
from tests.example.conftest import image_bytes, payload, stored_files, upload
from tests.example.test_staff_api import offer_json
from tests.example.test_uploads import BAD_UPLOADS

pytestmark = pytest.mark.django_db

LIST = "/api/staff/hotel/killarney/offers/"


def detail(offer) -> str:
    return f"{LIST}{offer.pk}/"


def fresh(body: dict) -> dict:
    """``body`` with new copies of its files (BAD_UPLOADS' files are shared with other tests)."""
    copies = {}
    for key, value in body.items():
        if hasattr(value, "read"):
            value.seek(0)
            data = value.read()
            value.seek(0)
            value = upload(value.name, data, value.content_type)
        copies[key] = value
    return copies


#: What the frontend's form sends as JSON, every field, empty ones as "".
FORM_JSON = {
    "title": "Spa Weekend",
    "tag": "",
    "short_description": "Two nights",
    "details_text": "",
    "valid_from": "",
    "valid_to": "",
    "photo_url": "",
    "book_now_url": "",
    "is_active": True,
}


# -- create --------------------------------------------------------------------------------


def test_create_with_the_frontends_json_form(api, killarney):
    with capture_broadcasts() as sent:
        response = api.post(LIST, {**FORM_JSON, "valid_to": "2026-12-31"}, format="json")

    assert response.status_code == 201, response.content
    offer = Offer.objects.get()
    assert (offer.valid_from, offer.valid_to, offer.book_now_url, offer.tag) == (
        None,
        datetime.date(2026, 12, 31),
        "",
        "",
    )
    assert offer.photo.name in ("", None)
    assert response.json() == offer_json(offer)
    assert [payload(e) for e in sent] == [{"offer": offer_json(offer), "action": "created"}]


def test_create_with_the_frontends_multipart_form_and_a_photo(api, killarney, media_root):
    data = image_bytes("JPEG")
    body = {
        "title": "Golf Break",
        "short_description": "Three nights",
        "valid_from": "2026-12-01",
        "book_now_url": "https://example.com/book",
        "is_active": "true",
        "photo": upload("golf.jpg", data, "image/jpeg"),
    }
    with capture_broadcasts() as sent:
        response = api.post(LIST, body, format="multipart")

    assert response.status_code == 201, response.content
    offer = Offer.objects.get()
    assert offer.photo.name == "offers/golf.jpg"
    assert (media_root / "offers/golf.jpg").read_bytes() == data
    assert (offer.valid_from, offer.valid_to, offer.is_active) == (datetime.date(2026, 12, 1), None, True)
    assert response.json()["photo_url"] == "/media/offers/golf.jpg"
    assert response.json()["photo"] == "http://testserver/media/offers/golf.jpg"
    # One event: the new offer, photo included (no separate offer-image-updated).
    created = {"offer": offer_json(offer, photo="/media/offers/golf.jpg"), "action": "created"}
    assert [payload(e) for e in sent] == [created]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("body", "message"),
    [(case[1], case[3]) for case in BAD_UPLOADS if case[2] == "multipart" and "photo" in case[1]],
    ids=[case[0] for case in BAD_UPLOADS if case[2] == "multipart" and "photo" in case[1]],
)
def test_create_with_a_bad_photo_is_400_and_creates_nothing(api, killarney, media_root, body, message):
    if message == uploads.NO_PHOTO:  # a text value, not a file
        message = "Send the photo as a file upload (multipart/form-data), or null to remove it."
    with capture_broadcasts() as sent:
        response = api.post(LIST, {"title": "Spa", "short_description": "x", **fresh(body)}, format="multipart")

    assert response.status_code == 400, response.content
    assert response.json() == {"photo": [message]}
    assert not Offer.objects.exists()
    assert stored_files(media_root) == []
    assert list(sent) == []


def test_create_with_invalid_fields_stores_no_photo(api, killarney, media_root):
    with capture_broadcasts() as sent:
        response = api.post(LIST, {"short_description": "no title", "photo": upload("a.png", image_bytes())})

    assert response.status_code == 400
    assert response.json() == {"title": ["This field is required."]}
    assert stored_files(media_root) == []
    assert list(sent) == []


def test_create_storage_failure_is_502_and_creates_nothing(api, killarney, media_root, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    def disk_full(self, name, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    with capture_broadcasts() as sent:
        response = api.post(LIST, {"title": "Spa", "short_description": "x", "photo": upload("a.png", image_bytes())})

    assert response.status_code == 502
    assert response.json() == {"error": uploads.STORAGE_UNAVAILABLE}
    assert not Offer.objects.exists()
    assert list(sent) == []


def test_create_database_failure_after_storing_deletes_the_new_file(api, killarney, media_root, monkeypatch):
    def failing_save(self, *args, **kwargs):
        raise DatabaseError("simulated failure while saving the offer")

    monkeypatch.setattr(Offer, "save", failing_save)
    with capture_broadcasts() as sent:
        with pytest.raises(DatabaseError):
            api.post(LIST, {"title": "Spa", "short_description": "x", "photo": upload("a.png", image_bytes())})
    monkeypatch.undo()

    assert not Offer.objects.exists()
    assert stored_files(media_root) == []
    assert list(sent) == []


# -- edit ----------------------------------------------------------------------------------


def test_edit_with_the_frontends_json_form_keeps_the_photo(api, photo_offer, media_root):
    """Every field, "" for empty ones, and photo_url (with the frontend's cache-buster) sent back."""
    body = {
        **FORM_JSON,
        "title": "Golf Break (edited)",
        "short_description": photo_offer.short_description,
        "photo_url": "/media/offers/old.png?t=1764000000000",
    }
    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), body, format="json")

    assert response.status_code == 200, response.content
    photo_offer.refresh_from_db()
    assert photo_offer.title == "Golf Break (edited)"
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert [payload(e) for e in sent] == [
        {"offer": offer_json(photo_offer, photo="/media/offers/old.png"), "action": "updated"}
    ]


def test_edit_with_a_new_photo_replaces_and_deletes_the_old_after_commit(
    api, photo_offer, media_root, django_capture_on_commit_callbacks
):
    body = {
        "title": photo_offer.title,
        "short_description": photo_offer.short_description,
        "photo_url": "/media/offers/old.png",
        "photo": upload("new.jpg", image_bytes("JPEG"), "image/jpeg"),
    }
    with capture_broadcasts() as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = api.patch(detail(photo_offer), body, format="multipart")
        assert response.status_code == 200, response.content
        # Not committed yet: the old file is still there for a rollback.
        assert stored_files(media_root) == ["offers/new.jpg", "offers/old.png"]
        for callback in callbacks:
            callback()

    assert stored_files(media_root) == ["offers/new.jpg"]
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/new.jpg"
    assert response.json()["photo_url"] == "/media/offers/new.jpg"
    assert [(e.name, e.data["photo_url"]) for e in sent] == [("offer-image-updated", "/media/offers/new.jpg")]


def test_edit_of_fields_and_photo_sends_updated_then_image_updated(api, photo_offer, media_root):
    with capture_broadcasts() as sent:
        response = api.patch(
            detail(photo_offer),
            {"title": "Renamed", "photo": upload("new.png", image_bytes("PNG", (9, 9)))},
            format="multipart",
        )

    assert response.status_code == 200, response.content
    assert sent.names == ["offer-updated", "offer-image-updated"]
    assert sent[0].data["offer"]["title"] == "Renamed"
    assert sent[1].data["photo_url"] == "/media/offers/new.png"
    assert stored_files(media_root) == ["offers/new.png"]


def test_put_with_a_photo(api, spa_offer, media_root):
    body = {"title": "Spa Week", "short_description": "Five nights", "photo": upload("spa.webp", image_bytes("WEBP"))}
    with capture_broadcasts() as sent:
        response = api.put(detail(spa_offer), body, format="multipart")

    assert response.status_code == 200, response.content
    spa_offer.refresh_from_db()
    assert (spa_offer.title, spa_offer.photo.name) == ("Spa Week", "offers/spa.webp")
    assert sent.names == ["offer-updated", "offer-image-updated"]


def test_put_echoing_the_whole_offer_as_read_changes_nothing(api, photo_offer, media_root):
    """A PUT of what a GET returned (the photo as its absolute URL) keeps the photo and sends nothing."""
    current = api.get(detail(photo_offer)).json()
    assert current["photo"] == "http://testserver/media/offers/old.png"
    body = {key: value for key, value in current.items() if key not in ("id", "created_at")}

    with capture_broadcasts() as sent:
        response = api.put(detail(photo_offer), body, format="json")

    assert response.status_code == 200, response.content
    assert response.json() == current
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


@pytest.mark.parametrize("value", ["", "offers/old.png", "/media/offers/old.png"], ids=["empty", "name", "url"])
def test_photo_given_as_empty_or_current_value_is_unchanged(api, photo_offer, media_root, value):
    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), {"title": "Renamed", "photo": value}, format="multipart")

    assert response.status_code == 200, response.content
    photo_offer.refresh_from_db()
    assert photo_offer.photo.name == "offers/old.png"
    assert stored_files(media_root) == ["offers/old.png"]
    assert sent.names == ["offer-updated"]


def test_json_null_removes_the_photo_and_deletes_the_file_after_commit(
    api, photo_offer, media_root, django_capture_on_commit_callbacks
):
    with capture_broadcasts() as sent:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            response = api.patch(detail(photo_offer), {"photo": None}, format="json")
        assert response.status_code == 200, response.content
        assert stored_files(media_root) == ["offers/old.png"]  # until the commit
        for callback in callbacks:
            callback()

    assert response.json()["photo"] is None and response.json()["photo_url"] is None
    photo_offer.refresh_from_db()
    assert not photo_offer.photo
    assert stored_files(media_root) == []
    assert sent.names == ["offer-updated"]


def test_json_null_removal_is_broadcast_as_offer_updated(api, photo_offer):
    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), {"photo": None}, format="json")

    assert response.status_code == 200
    photo_offer.refresh_from_db()
    # Never offer-image-updated with photo_url null (the frontend would show "null?t=...").
    assert [payload(e) for e in sent] == [{"offer": offer_json(photo_offer), "action": "updated"}]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize(
    ("body", "message"),
    [(case[1], case[3]) for case in BAD_UPLOADS if case[2] == "multipart" and "photo" in case[1]],
    ids=[case[0] for case in BAD_UPLOADS if case[2] == "multipart" and "photo" in case[1]],
)
def test_edit_with_a_bad_photo_is_400_and_changes_nothing(api, photo_offer, media_root, body, message):
    if message == uploads.NO_PHOTO:
        message = "Send the photo as a file upload (multipart/form-data), or null to remove it."
    row = Offer.objects.filter(pk=photo_offer.pk).values().get()
    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), {"title": "Renamed", **fresh(body)}, format="multipart")

    assert response.status_code == 400, response.content
    assert response.json() == {"photo": [message]}
    assert Offer.objects.filter(pk=photo_offer.pk).values().get() == row
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


@pytest.mark.parametrize("method", ["post", "patch"])
def test_oversized_multipart_is_refused_from_content_length_before_reading_it(
    api, photo_offer, media_root, settings, monkeypatch, method
):
    from rest_framework.parsers import MultiPartParser

    def must_not_parse(*args, **kwargs):
        raise AssertionError("the body was read")

    settings.HOTEL_OFFER_PHOTO_MAX_BYTES = 4096
    monkeypatch.setattr(MultiPartParser, "parse", must_not_parse)
    url = LIST if method == "post" else detail(photo_offer)
    body = {"title": "Big", "short_description": "x", "photo": upload("big.png", b"\0" * 80_000)}
    with capture_broadcasts() as sent:
        response = getattr(api, method)(url, body, format="multipart")

    assert response.status_code == 400
    assert response.json() == {"photo": ["The photo is too large: the limit is 4 KB."]}
    assert Offer.objects.count() == 1
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_photo_just_over_the_size_limit_is_checked_on_the_file(api, photo_offer, media_root, settings):
    settings.HOTEL_OFFER_PHOTO_MAX_BYTES = 4096
    data = image_bytes("PNG", (400, 400), noise=True)[:4097]
    response = api.patch(detail(photo_offer), {"photo": upload("big.png", data)}, format="multipart")

    assert response.status_code == 400
    assert response.json() == {"photo": ["The photo is too large: the limit is 4 KB."]}
    assert stored_files(media_root) == ["offers/old.png"]


def test_edit_storage_failure_is_502_and_changes_nothing(api, photo_offer, media_root, monkeypatch):
    from django.core.files.storage import FileSystemStorage

    def disk_full(self, name, content):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(FileSystemStorage, "_save", disk_full)
    with capture_broadcasts() as sent:
        response = api.patch(
            detail(photo_offer), {"title": "Renamed", "photo": upload("new.png", image_bytes())}, format="multipart"
        )

    assert response.status_code == 502
    assert response.json() == {"error": uploads.STORAGE_UNAVAILABLE}
    photo_offer.refresh_from_db()
    assert (photo_offer.title, photo_offer.photo.name) == ("Golf Break", "offers/old.png")
    assert stored_files(media_root) == ["offers/old.png"]
    assert list(sent) == []


def test_photo_of_another_hotels_offer_is_404_and_stores_nothing(api, seafood_offer, media_root):
    with capture_broadcasts() as sent:
        response = api.patch(detail(seafood_offer), {"photo": upload("a.png", image_bytes())}, format="multipart")

    assert response.status_code == 404
    assert stored_files(media_root) == []
    assert list(sent) == []


# -- a write racing a delete or another write (deterministic; tests/example/test_races.py races for real) --


def _run_before_saving(monkeypatch, action):
    """Run ``action`` after the request validated its body, just before it writes (another request's turn)."""
    from hotel.serializers import OfferStaffSerializer

    real_save = OfferStaffSerializer.save

    def save(self, **kwargs):
        action()
        return real_save(self, **kwargs)

    monkeypatch.setattr(OfferStaffSerializer, "save", save)


@pytest.mark.parametrize("with_photo", [False, True], ids=["json", "multipart-photo"])
def test_edit_of_an_offer_deleted_meanwhile_is_404_and_never_recreates_it(
    api, photo_offer, media_root, monkeypatch, with_photo
):
    offer_id = photo_offer.pk
    _run_before_saving(monkeypatch, lambda: Offer.objects.get(pk=offer_id).delete())
    body = {"title": "Renamed"}
    if with_photo:
        body["photo"] = upload("new.png", image_bytes())
    with capture_broadcasts() as sent:
        response = api.patch(detail(photo_offer), body, format="multipart" if with_photo else "json")

    assert response.status_code == 404
    assert not Offer.objects.filter(pk=offer_id).exists()
    assert stored_files(media_root) == []  # the old photo with its offer, the new one never kept
    assert sent.names == ["offer-deleted"]


def test_edit_does_not_write_back_a_photo_replaced_meanwhile(api, photo_offer, media_root, monkeypatch):
    """The PATCH read the offer with old.png; an upload replaced it before the PATCH wrote."""

    def upload_meanwhile():
        checked = uploads.check_photo(upload("meanwhile.png", image_bytes("PNG", (5, 5))))
        uploads.replace_offer_photo(Offer.objects.get(pk=photo_offer.pk), checked)

    _run_before_saving(monkeypatch, upload_meanwhile)
    with capture_broadcasts():
        response = api.patch(detail(photo_offer), {"title": "Renamed"}, format="json")

    assert response.status_code == 200
    photo_offer.refresh_from_db()
    assert (photo_offer.title, photo_offer.photo.name) == ("Renamed", "offers/meanwhile.png")
    assert response.json()["photo_url"] == "/media/offers/meanwhile.png"
    assert stored_files(media_root) == ["offers/meanwhile.png"]


def test_delete_removes_the_photo_the_offer_has_now(api, photo_offer, media_root, monkeypatch):
    """The DELETE read the offer with old.png; an upload replaced it before the DELETE ran."""
    from hotel.staff_views import StaffOfferViewSet

    real_destroy = StaffOfferViewSet.perform_destroy

    def perform_destroy(self, instance):
        checked = uploads.check_photo(upload("meanwhile.png", image_bytes("PNG", (5, 5))))
        uploads.replace_offer_photo(Offer.objects.get(pk=instance.pk), checked)
        real_destroy(self, instance)

    monkeypatch.setattr(StaffOfferViewSet, "perform_destroy", perform_destroy)
    with capture_broadcasts():
        response = api.delete(detail(photo_offer))

    assert response.status_code == 204
    assert stored_files(media_root) == []


def test_delete_of_an_offer_deleted_meanwhile_is_404(api, photo_offer, monkeypatch):
    from hotel.staff_views import StaffOfferViewSet

    real_destroy = StaffOfferViewSet.perform_destroy

    def perform_destroy(self, instance):
        Offer.objects.filter(pk=instance.pk).delete()
        real_destroy(self, instance)

    monkeypatch.setattr(StaffOfferViewSet, "perform_destroy", perform_destroy)
    with capture_broadcasts() as sent:
        response = api.delete(detail(photo_offer))

    assert response.status_code == 404
    assert sent.names == ["offer-deleted"]


# -- the model itself ------------------------------------------------------------------------


def test_saving_a_stale_instance_of_a_deleted_offer_never_recreates_it(photo_offer):
    """Admin, shell or any code: Django's UPDATE-then-INSERT would bring the offer back with its id."""
    stale = Offer.objects.get(pk=photo_offer.pk)
    Offer.objects.filter(pk=photo_offer.pk).delete()
    stale.title = "Renamed"

    with capture_broadcasts() as sent:
        with pytest.raises(DatabaseError, match="did not affect any rows"), transaction.atomic():
            stale.save()

    assert not Offer.objects.filter(pk=photo_offer.pk).exists()
    assert list(sent) == []


def test_new_offers_and_explicit_ids_still_insert(killarney):
    offer = Offer(hotel=killarney, title="New", short_description="x")
    offer.save()
    explicit = Offer(pk=offer.pk + 100, hotel=killarney, title="Explicit id", short_description="x")
    explicit.save()
    assert Offer.objects.filter(pk__in=[offer.pk, explicit.pk]).count() == 2


@pytest.mark.django_db(transaction=True)
def test_lock_offer_needs_a_transaction(photo_offer):
    from django.db.transaction import TransactionManagementError

    with pytest.raises(TransactionManagementError):
        uploads.lock_offer(photo_offer.pk)
