"""ConditionalUpdateMixin on its own: minimal viewsets over the example's Offer with a plain serializer,
and over the test host's Deal (the real host's CloudinaryField photo).

No example code is used (no hotel.uploads locking, no photo checks): what is tested is
what the mixin itself does, so any DRF host gets it. Real concurrent requests are in
``tests/example/test_conditional_races.py``.
"""

from __future__ import annotations

import ast
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from rest_framework import permissions, serializers, viewsets
from rest_framework.routers import SimpleRouter
from rest_framework.test import APIClient

import offer_realtime.conditional
from hotel.models import Offer
from offer_realtime.conditional import ConditionalUpdateMixin, etag_for
from offer_realtime.testing import capture_broadcasts
from tests.pythonpath import child_pythonpath
from tests.testapp.models import Deal, Venue
from tests.testapp.serializers import DealSerializer

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def _offer_model():
    return Offer


class PlainOfferSerializer(serializers.ModelSerializer):
    """A plain ModelSerializer: ``photo`` is DRF's ImageField (an absolute URL when there is a request).

    ``details_html`` and ``sort_order`` are not shown.
    """

    class Meta:
        model = _offer_model()
        fields = ["id", "title", "short_description", "tag", "valid_to", "photo", "is_active"]
        read_only_fields = ["id"]


class OfferViewSet(ConditionalUpdateMixin, viewsets.ModelViewSet):
    """The mixin with everything else left to DRF."""

    serializer_class = PlainOfferSerializer
    permission_classes = [permissions.AllowAny]
    authentication_classes: list[Any] = []
    pagination_class = None

    def get_queryset(self):
        return _offer_model().objects.filter(hotel__slug="killarney").order_by("pk")

    def perform_create(self, serializer):
        from hotel.models import Hotel

        serializer.save(hotel=Hotel.objects.get(slug="killarney"))


class RequiredOfferViewSet(OfferViewSet):
    """Writes without If-Match are refused."""

    if_match_required = True


class InterleavedOfferViewSet(OfferViewSet):
    """Another staff member's save commits after this request read the offer, before it locks the row."""

    def get_object(self):
        instance = super().get_object()  # read, and compared early: still the client's version
        _offer_model().objects.filter(pk=instance.pk).update(title="Saved meanwhile")
        return instance


class CheckingSerializer(PlainOfferSerializer):
    """Locks the row itself and calls the view's check under that lock (like the example's serializer)."""

    def update(self, instance, validated_data):
        from django.db import transaction

        with transaction.atomic():
            locked = _offer_model().objects.select_for_update().get(pk=instance.pk)
            self.context["check_precondition"](locked)
            return super().update(locked, validated_data)


class SerializerLocksViewSet(OfferViewSet):
    serializer_class = CheckingSerializer
    serializer_checks_precondition = True


class ForgetfulViewSet(OfferViewSet):
    """Claims its serializer checks, but the plain serializer never does."""

    serializer_checks_precondition = True


class DealViewSet(ConditionalUpdateMixin, viewsets.ModelViewSet):
    """The real host's shape: photo a CloudinaryField (DRF's ModelField), photo_url its URL."""

    serializer_class = DealSerializer
    queryset = Deal.objects.order_by("pk")
    permission_classes = [permissions.AllowAny]
    authentication_classes: list[Any] = []


router = SimpleRouter()
router.register("offers", OfferViewSet, basename="offer")
router.register("required", RequiredOfferViewSet, basename="required")
router.register("interleaved", InterleavedOfferViewSet, basename="interleaved")
router.register("serializer-locks", SerializerLocksViewSet, basename="serializer-locks")
router.register("forgetful", ForgetfulViewSet, basename="forgetful")
router.register("deals", DealViewSet, basename="deal")
urlpatterns = [path("", include(router.urls))]


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def spa(hotel, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    offer = _offer_model().objects.create(hotel=hotel, title="Spa", short_description="Two nights", tag="new")
    offer.photo.save("spa.png", ContentFile(b"not checked here"), save=True)
    return offer


def url(offer, collection: str = "offers") -> str:
    return f"/{collection}/{offer.pk}/"


def representation(offer, request_host: str | None = "testserver") -> dict:
    """What the plain serializer gives for ``offer`` as it is in the database (absolute photo URL via the host)."""
    offer = _offer_model().objects.get(pk=offer.pk)
    data = dict(PlainOfferSerializer(offer).data)
    if request_host and data["photo"]:
        data["photo"] = f"http://{request_host}{data['photo']}"
    return data


def stored(offer) -> tuple:
    offer = _offer_model().objects.get(pk=offer.pk)
    return offer.title, offer.tag, offer.short_description, offer.photo.name


# -- the tag ---------------------------------------------------------------------------------


def test_etag_is_a_strong_hash_of_the_representation():
    assert etag_for({"id": 1, "title": "Spa"}) == etag_for({"title": "Spa", "id": 1})
    assert etag_for({"id": 1, "title": "Spa"}) != etag_for({"id": 1, "title": "Spa "})
    tag = etag_for({"id": 1})
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 66 and not tag.startswith("W/")


def test_retrieve_carries_the_etag_of_the_representation_and_the_list_none(client, spa):
    response = client.get(url(spa))

    assert response.status_code == 200
    assert response.json() == representation(spa)
    # Computed without the request: the relative photo URL, not the absolute one in the body.
    assert response["ETag"] == etag_for(representation(spa, request_host=None))
    assert client.head(url(spa))["ETag"] == response["ETag"]
    assert not client.get("/offers/").has_header("ETag")


def test_etag_does_not_depend_on_the_host_name_the_client_used(client, spa):
    first = client.get(url(spa), HTTP_HOST="localhost")
    second = client.get(url(spa), HTTP_HOST="127.0.0.1")

    assert first.json()["photo"] != second.json()["photo"]  # absolute URLs differ ...
    assert first["ETag"] == second["ETag"]  # ... the version does not


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Spa!"},
        {"short_description": "Three nights"},
        {"tag": ""},
        {"valid_to": "2026-12-31"},
        {"is_active": False},
        {"photo": "offers/other.png"},
        {"photo": None},
    ],
    ids=lambda change: next(iter(change)),
)
def test_etag_changes_with_every_field_the_api_shows_the_photo_included(client, spa, change):
    before = client.get(url(spa))["ETag"]
    _offer_model().objects.filter(pk=spa.pk).update(**change)

    assert client.get(url(spa))["ETag"] != before


def test_etag_ignores_fields_the_api_does_not_show(client, spa):
    before = client.get(url(spa))["ETag"]
    _offer_model().objects.filter(pk=spa.pk).update(details_html="<p>hidden</p>", sort_order=7)

    assert client.get(url(spa))["ETag"] == before


# -- writes with If-Match ----------------------------------------------------------------------


def test_patch_with_the_current_etag_is_written_and_answers_the_new_etag(client, spa):
    etag = client.get(url(spa))["ETag"]

    with capture_broadcasts() as sent:
        response = client.patch(url(spa), {"title": "Spa Deluxe"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 200, response.content
    assert stored(spa)[0] == "Spa Deluxe"
    assert response["ETag"] != etag
    assert response["ETag"] == client.get(url(spa))["ETag"]
    assert sent.names == ["offer-updated"]
    # The new tag is the one to send next.
    assert client.patch(url(spa), {"tag": "x"}, format="json", HTTP_IF_MATCH=response["ETag"]).status_code == 200


@pytest.mark.parametrize("method", ["patch", "put"])
def test_a_stale_etag_is_412_with_the_current_offer_and_changes_nothing(client, spa, method):
    stale = client.get(url(spa))["ETag"]
    _offer_model().objects.filter(pk=spa.pk).update(title="Renamed by a colleague")
    current = client.get(url(spa))
    before = stored(spa)

    with capture_broadcasts() as sent:
        response = getattr(client, method)(
            url(spa), {"title": "Mine", "short_description": "Mine"}, format="json", HTTP_IF_MATCH=stale
        )

    assert response.status_code == 412
    assert response.json() == current.json() == representation(spa)
    assert response["ETag"] == current["ETag"]
    assert stored(spa) == before
    assert list(sent) == []


def test_the_precondition_is_judged_before_the_body(client, spa):
    """RFC 9110 §13.2.2: a conflict is 412 even when the body is invalid."""
    stale = '"0000"'
    response = client.patch(url(spa), {"valid_to": "not a date"}, format="json", HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    fine = client.patch(url(spa), {"valid_to": "not a date"}, format="json", HTTP_IF_MATCH=client.get(url(spa))["ETag"])
    assert fine.status_code == 400


def test_the_comparison_is_made_with_the_locked_row_not_the_one_read_first(client, spa):
    """Another save commits between this request's read and its lock: 412, and that save is kept."""
    etag = client.get(url(spa))["ETag"]

    with capture_broadcasts() as sent:
        response = client.patch(url(spa, "interleaved"), {"tag": "mine"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert response.json()["title"] == "Saved meanwhile"
    assert stored(spa)[:2] == ("Saved meanwhile", "new")
    assert list(sent) == []


def test_the_lock_is_taken_before_the_row_is_read_and_compared(client, spa):
    etag = client.get(url(spa))["ETag"]

    with CaptureQueriesContext(connection) as queries:
        assert client.patch(url(spa), {"tag": "locked"}, format="json", HTTP_IF_MATCH=etag).status_code == 200

    sql = [query["sql"] for query in queries.captured_queries]
    update = next(i for i, q in enumerate(sql) if q.startswith("UPDATE") and '"tag"' in q)
    before_write = sql[:update]
    if connection.features.has_select_for_update:
        assert any("FOR UPDATE" in q for q in before_write), sql
    else:  # SQLite: the write lock is taken by a no-op UPDATE of the row before it is read under it
        noop = next(i for i, q in enumerate(before_write) if q.startswith("UPDATE"))
        assert 'SET "id" = "hotel_offer"."id"' in sql[noop], sql[noop]
        assert any(q.startswith("SELECT") for q in sql[noop + 1 : update])


def test_if_match_star_matches_any_existing_offer(client, spa):
    assert client.patch(url(spa), {"tag": "any"}, format="json", HTTP_IF_MATCH="*").status_code == 200
    assert stored(spa)[1] == "any"


def test_a_list_of_tags_matches_when_one_is_current(client, spa):
    etag = client.get(url(spa))["ETag"]
    response = client.patch(url(spa), {"tag": "listed"}, format="json", HTTP_IF_MATCH=f'"old", {etag}')

    assert response.status_code == 200


def test_a_weak_tag_never_matches_and_says_why_in_the_log(client, spa, caplog):
    etag = client.get(url(spa))["ETag"]

    with caplog.at_level(logging.WARNING, logger="offer_realtime.conditional"):
        response = client.patch(url(spa), {"tag": "weak"}, format="json", HTTP_IF_MATCH=f"W/{etag}")

    assert response.status_code == 412
    assert stored(spa)[1] == "new"
    assert "weak entity tag" in caplog.text


@pytest.mark.parametrize("header", ["abc", "W/abc", ","])
def test_a_malformed_if_match_is_400_and_changes_nothing(client, spa, header):
    response = client.patch(url(spa), {"tag": "bad"}, format="json", HTTP_IF_MATCH=header)

    assert response.status_code == 400
    assert "If-Match" in response.json()["detail"]
    assert stored(spa)[1] == "new"


def test_without_if_match_writes_are_unconditional_as_before(client, spa):
    _offer_model().objects.filter(pk=spa.pk).update(title="Renamed by a colleague")

    with capture_broadcasts() as sent:
        response = client.patch(url(spa), {"tag": "blind"}, format="json")

    assert response.status_code == 200
    assert response["ETag"] == client.get(url(spa))["ETag"]
    assert sent.names == ["offer-updated"]
    assert client.delete(url(spa)).status_code == 204


def test_a_missing_offer_is_404_whatever_the_precondition(client, hotel):
    for header in ({}, {"HTTP_IF_MATCH": "*"}, {"HTTP_IF_MATCH": '"x"'}):
        assert client.patch("/offers/999999/", {"tag": "x"}, format="json", **header).status_code == 404
        assert client.patch("/required/999999/", {"tag": "x"}, format="json", **header).status_code == 404


# -- DELETE --------------------------------------------------------------------------------


def test_delete_with_a_stale_etag_is_412_and_deletes_nothing(client, spa):
    stale = client.get(url(spa))["ETag"]
    _offer_model().objects.filter(pk=spa.pk).update(tag="changed")

    with capture_broadcasts() as sent:
        response = client.delete(url(spa), HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert response.json() == representation(spa)
    assert _offer_model().objects.filter(pk=spa.pk).exists()
    assert list(sent) == []


def test_delete_with_the_current_etag_deletes(client, spa):
    etag = client.get(url(spa))["ETag"]

    with capture_broadcasts() as sent:
        assert client.delete(url(spa), HTTP_IF_MATCH=etag).status_code == 204

    assert not _offer_model().objects.filter(pk=spa.pk).exists()
    assert sent.names == ["offer-deleted"]


# -- If-Match required -----------------------------------------------------------------------


def test_required_if_match_refuses_writes_without_it_with_428(client, spa):
    for method in ("patch", "put"):
        response = getattr(client, method)(
            url(spa, "required"), {"title": "x", "short_description": "y"}, format="json"
        )
        assert response.status_code == 428
        assert "If-Match" in response.json()["detail"]
    assert client.delete(url(spa, "required")).status_code == 428
    assert _offer_model().objects.filter(pk=spa.pk, title="Spa").exists()

    etag = client.get(url(spa, "required"))["ETag"]
    assert client.patch(url(spa, "required"), {"tag": "x"}, format="json", HTTP_IF_MATCH=etag).status_code == 200
    # Creating and reading need no precondition.
    assert client.post("/required/", {"title": "New", "short_description": "x"}, format="json").status_code == 201
    assert client.get("/required/").status_code == 200


# -- a serializer that locks the row itself ------------------------------------------------------


def test_a_serializer_can_take_the_lock_and_call_the_check_under_it(client, spa):
    etag = client.get(url(spa))["ETag"]
    _offer_model().objects.filter(pk=spa.pk).update(title="Saved meanwhile")
    assert (
        client.patch(url(spa, "serializer-locks"), {"tag": "x"}, format="json", HTTP_IF_MATCH=etag).status_code == 412
    )

    etag = client.get(url(spa))["ETag"]
    response = client.patch(url(spa, "serializer-locks"), {"tag": "x"}, format="json", HTTP_IF_MATCH=etag)
    assert response.status_code == 200
    assert stored(spa)[1] == "x"


def test_a_serializer_that_does_not_call_the_check_is_an_error_and_writes_nothing(client, spa):
    etag = client.get(url(spa))["ETag"]

    with pytest.raises(ImproperlyConfigured, match="check_precondition"):
        client.patch(url(spa, "forgetful"), {"tag": "unchecked"}, format="json", HTTP_IF_MATCH=etag)

    assert stored(spa)[1] == "new"
    # Without If-Match there is nothing to check: the write goes through as before.
    assert client.patch(url(spa, "forgetful"), {"tag": "plain"}, format="json").status_code == 200


# -- the module ------------------------------------------------------------------------------


def test_the_module_is_a_leaf_of_offer_realtime(tmp_path):
    """It imports no other offer_realtime module (no delivery, sender or receivers), at import or in a function."""
    tree = ast.parse(Path(offer_realtime.conditional.__file__).read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    assert not {name for name in imported if name and name.startswith("offer_realtime")}, imported

    # And importing it loads none of them (beyond the package's own __init__).
    code = (
        "import django, sys; from django.conf import settings; settings.configure(); django.setup(); "
        "import offer_realtime.conditional; "
        "print(sorted(m for m in sys.modules if m.startswith('offer_realtime')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": child_pythonpath()},
        cwd=tmp_path,  # see tests/pythonpath.py
    ).stdout
    assert out.strip() == "['offer_realtime', 'offer_realtime.conditional']"


def test_with_conditional_get_middleware_a_get_with_if_none_match_is_304(client, spa, settings):
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, "django.middleware.http.ConditionalGetMiddleware"]
    etag = client.get(url(spa))["ETag"]

    assert client.get(url(spa), HTTP_IF_NONE_MATCH=etag).status_code == 304
    _offer_model().objects.filter(pk=spa.pk).update(tag="changed")
    assert client.get(url(spa), HTTP_IF_NONE_MATCH=etag).status_code == 200


def test_behind_gzip_middleware_the_etag_turns_weak_and_never_matches(client, spa, settings):
    """Why the README says to keep compression layers from weakening the API's ETags."""
    settings.MIDDLEWARE = ["django.middleware.gzip.GZipMiddleware", *settings.MIDDLEWARE]
    _offer_model().objects.filter(pk=spa.pk).update(short_description="Two nights. " * 40)  # worth compressing
    weak = client.get(url(spa), HTTP_ACCEPT_ENCODING="gzip")["ETag"]
    assert weak.startswith('W/"')

    assert client.patch(url(spa), {"tag": "x"}, format="json", HTTP_IF_MATCH=weak).status_code == 412
    assert client.patch(url(spa), {"tag": "x"}, format="json", HTTP_IF_MATCH=weak[2:]).status_code == 200


# -- the real host's shape: a CloudinaryField photo ------------------------------------------------

STORED = "image/upload/v1700000000/offers/abc123.jpg"
OTHER = "image/upload/v1700000500/offers/def456.jpg"


@pytest.fixture
def cloud(monkeypatch):
    """The Cloudinary SDK configured with a cloud name, as a host configures it (no network)."""
    import cloudinary

    monkeypatch.delenv("CLOUDINARY_URL", raising=False)
    monkeypatch.setattr(cloudinary, "_config", cloudinary.Config())
    cloudinary.config(cloud_name="stub-cloud", api_key="123456789012345", api_secret="stub-secret", secure=True)


def deal_settings():
    """offer_realtime configured for the Deal model (so its saves are broadcast)."""
    from django.test import override_settings

    return override_settings(
        OFFER_REALTIME={
            "MODEL": "testapp.Deal",
            "SERIALIZER": "tests.testapp.serializers.DealSerializer",
            "HOTEL_SLUG": "venue.code",
            "CHANNEL": "venue-{hotel_slug}",
            "DELIVERY": "inline",
        }
    )


def test_with_a_cloudinary_photo_the_etag_follows_the_photo_and_a_stale_save_is_412(client, cloud):
    with deal_settings():
        deal = Deal.objects.create(venue=Venue.objects.create(code="harbour"), title="Sail", photo=STORED)
        first = client.get(f"/deals/{deal.pk}/")
        assert first.json()["photo_url"].endswith("/image/upload/v1700000000/offers/abc123.jpg")

        Deal.objects.filter(pk=deal.pk).update(photo=OTHER)  # a colleague's new photo (new version)
        current = client.get(f"/deals/{deal.pk}/")
        assert current["ETag"] != first["ETag"]

        with capture_broadcasts() as sent:
            stale = client.patch(f"/deals/{deal.pk}/", {"title": "Mine"}, format="json", HTTP_IF_MATCH=first["ETag"])
        assert stale.status_code == 412
        assert stale.json() == current.json()
        assert list(sent) == []

        with capture_broadcasts() as sent:
            fresh = client.patch(f"/deals/{deal.pk}/", {"title": "Mine"}, format="json", HTTP_IF_MATCH=current["ETag"])
        assert fresh.status_code == 200
        assert Deal.objects.get(pk=deal.pk).title == "Mine"
        assert sent.names == ["offer-updated"]
        assert fresh["ETag"] == client.get(f"/deals/{deal.pk}/")["ETag"]
