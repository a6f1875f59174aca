"""Who a staff member is (offer_realtime.identity): changed_by on private staff events, never on public ones."""

from __future__ import annotations

import datetime
import logging

import pytest
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from django.utils.functional import SimpleLazyObject
from rest_framework.test import APIClient

from hotel.models import Offer
from offer_realtime.changes import Action, Change, coalesce
from offer_realtime.middleware import SocketIdMiddleware
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_staff
from tests.pusher_stub import PusherStub

pytestmark = pytest.mark.django_db

PRIVATE = {"DELIVERY": "inline", "CHANNEL": "private-hotel-{hotel_slug}"}
URL = "/api/staff/hotel/killarney/offers/"


def maire(hotel):
    """Máire, staff of ``hotel``, with a name as people have them; returns (client, user)."""
    token = make_staff("maire", hotel, first_name="Máire", last_name="Ní “Bhriain” 🙂")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client, token.user


def write_create_update_delete(client):
    """Create, update and delete an offer, each its own commit; returns the events sent."""
    sent = []
    with capture_broadcasts() as captured:
        created = client.post(URL, {"title": "Spa", "short_description": "Two nights"}, format="json")
    assert created.status_code == 201, created.content
    sent += captured
    pk = created.json()["id"]
    with capture_broadcasts() as captured:
        assert client.patch(f"{URL}{pk}/", {"title": "Spa “weekend”"}, format="json").status_code == 200
    sent += captured
    with capture_broadcasts() as captured:
        assert client.delete(f"{URL}{pk}/").status_code == 204
    return sent + list(captured)


def test_staff_events_on_a_private_channel_say_who_made_the_change(hotel):
    client, user = maire(hotel)
    with override_settings(OFFER_REALTIME=PRIVATE):
        sent = write_create_update_delete(client)
    who = {"id": str(user.pk), "name": "Máire Ní “Bhriain” 🙂"}
    assert [(e.name, e.channel, e.data.get("changed_by")) for e in sent] == [
        ("offer-created", "private-hotel-killarney", who),
        ("offer-updated", "private-hotel-killarney", who),
        ("offer-deleted", "private-hotel-killarney", who),
    ]


def test_presence_channels_carry_it_with_the_presence_member_id(hotel):
    client, _ = maire(hotel)
    settings = {
        **PRIVATE,
        "CHANNEL": "presence-hotel-{hotel_slug}",
        "PRESENCE_USER": "tests.test_private_channels.desk_member",
    }
    with override_settings(OFFER_REALTIME=settings), capture_broadcasts() as sent:
        client.post(URL, {"title": "Spa", "short_description": "x"}, format="json")
    # The same hook as the presence member: the board matches it to the person it lists online.
    assert [e.data["changed_by"] for e in sent] == [{"id": "desk-maire", "name": "maire"}]


def test_public_channels_never_carry_it(hotel):
    client, _ = maire(hotel)
    sent = write_create_update_delete(client)  # the default: public hotel-{hotel_slug}
    assert [e.channel for e in sent] == ["hotel-killarney"] * 3
    assert all("changed_by" not in e.data for e in sent)


def test_with_audiences_only_the_staff_events_carry_it(hotel):
    client, user = maire(hotel)
    audiences = {**PRIVATE, "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer"}
    with override_settings(OFFER_REALTIME=audiences):
        sent = write_create_update_delete(client)
    staff = [e for e in sent if e.channel == "private-hotel-killarney"]
    public = [e for e in sent if e.channel == "hotel-killarney"]
    assert len(staff) == 3 and len(public) == 3
    assert {e.data["changed_by"]["id"] for e in staff} == {str(user.pk)}
    assert all("changed_by" not in e.data for e in public)


def test_writes_outside_a_request_carry_none(hotel):
    with override_settings(OFFER_REALTIME=PRIVATE), capture_broadcasts() as sent:
        Offer.objects.create(hotel=hotel, title="From a script")
    assert [("changed_by" in e.data) for e in sent] == [False]


def test_a_failing_hook_never_fails_the_write(hotel, caplog):
    client, _ = maire(hotel)
    settings = {**PRIVATE, "PRESENCE_USER": "tests.test_identity.broken_member"}
    with override_settings(OFFER_REALTIME=settings), capture_broadcasts() as sent:
        response = client.post(URL, {"title": "Spa", "short_description": "x"}, format="json")
    assert response.status_code == 201
    assert [(e.name, "changed_by" in e.data) for e in sent] == [("offer-created", False)]
    assert any("PRESENCE_USER" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def broken_member(request):
    """A PRESENCE_USER hook with a bug."""
    raise KeyError("staff_profile")


def test_a_user_the_view_never_loaded_is_not_loaded_for_it(hotel):
    """A session user nobody touched stays unloaded: changed_by costs the write no query."""
    loaded = []

    def load():
        loaded.append(True)
        raise AssertionError("the lazy user was loaded")

    def view(request):
        Offer.objects.create(hotel=hotel, title="From a plain view")
        return HttpResponse()

    request = RequestFactory().post("/")
    request.user = SimpleLazyObject(load)
    with override_settings(OFFER_REALTIME=PRIVATE), capture_broadcasts() as sent:
        SocketIdMiddleware(view)(request)
    assert loaded == []
    assert [("changed_by" in e.data) for e in sent] == [False]


def test_the_last_writer_of_a_transaction_is_named(hotel):
    seán, máire = {"id": "1", "name": "Seán"}, {"id": "2", "name": "Máire"}
    now = datetime.datetime.now(datetime.timezone.utc)
    [merged] = coalesce(
        [Change(Action.UPDATED, 1, now, True, changed_by=seán), Change(Action.UPDATED, 1, now, True, changed_by=máire)]
    )
    assert merged.changed_by == máire
    [created] = coalesce([Change.created(1, changed_by=seán), Change.updated(1, fields_changed=True, changed_by=máire)])
    assert (created.action, created.changed_by) == (Action.CREATED, máire)
    # A different writer is a different event: the outbox must not take one for the other.
    assert Change.updated(1, changed_by=seán).signature() != Change.updated(1, changed_by=máire).signature()


@pytest.mark.django_db(transaction=True)
def test_it_survives_task_mode(hotel):
    """Task arguments are JSON in the task store: changed_by goes through them to the worker's events."""
    from django.core.management import call_command
    from django_tasks_db.models import DBTaskResult

    client, user = maire(hotel)
    with (
        PusherStub() as stub,
        override_settings(**stub.settings(), OFFER_REALTIME={**PRIVATE, "DELIVERY": "task", "TASK_BACKEND": "db"}),
    ):
        response = client.post(URL, {"title": "Spa", "short_description": "x"}, format="json")
        assert response.status_code == 201
        [task] = DBTaskResult.objects.all()
        assert stub.requests == []  # the worker sends, not the request
        call_command("db_worker", "--batch", "--backend", "db", verbosity=0)
    who = {"id": str(user.pk), "name": "Máire Ní “Bhriain” 🙂"}
    assert task.args_kwargs["args"][0][0]["changed_by"] == who
    assert [(e["name"], e["data"].get("changed_by")) for e in stub.events()] == [("offer-created", who)]
