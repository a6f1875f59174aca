"""Audiences (issue 13): staff get every offer on the private channel, guests get active
offers only, built with the public serializer, on the public channel; one trigger per change."""

from __future__ import annotations

import pytest
from django.core.checks import run_checks
from django.db import transaction
from django.test import override_settings

import offer_realtime
from hotel.models import Hotel, Offer
from hotel.public_views import OfferPublicSerializer as PublicAPISerializer
from hotel.serializers import OfferPublicSerializer, OfferStaffSerializer
from offer_realtime import events, sender
from offer_realtime.changes import Action, Change
from offer_realtime.events import to_json_data
from offer_realtime.tasks import event_from_json, event_to_json
from offer_realtime.testing import capture_broadcasts
from tests.conftest import make_image
from tests.pusher_stub import PusherStub

AUDIENCES = {
    "DELIVERY": "inline",
    "CHANNEL": "private-hotel-{hotel_slug}",
    "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
}
STAFF, PUBLIC = "private-hotel-killarney", "hotel-killarney"
STAFF2, PUBLIC2 = "private-hotel-galway", "hotel-galway"

C, U, D, IMG = "offer-created", "offer-updated", "offer-deleted", "offer-image-updated"


@pytest.fixture
def audiences(db):
    with override_settings(OFFER_REALTIME=AUDIENCES):
        yield


def make(hotel, *, active=True, photo=False):
    return Offer.objects.create(
        hotel=hotel,
        title="Spa weekend",
        short_description="Two nights",
        is_active=active,
        photo=make_image("old.png") if photo else None,
    )


# -- every transition: (name, starts active, starts with photo, what to do, staff, public) --


def create_active(offer, galway):
    return Offer.objects.create(hotel=offer.hotel, title="New", short_description="x", is_active=True)


def create_inactive(offer, galway):
    return Offer.objects.create(hotel=offer.hotel, title="New", short_description="x", is_active=False)


def set_active(value):
    def action(offer, galway):
        offer.is_active = value
        offer.save()

    return action


def edit(offer, galway):
    offer.title = "Golf weekend"
    offer.save()


def delete(offer, galway):
    offer.delete()


def set_photo(offer, galway):
    offer.photo = make_image("new.png")
    offer.save()


def clear_photo(offer, galway):
    offer.photo = None
    offer.save()


def move(offer, galway):
    offer.hotel = galway
    offer.save()


def move_and(value):
    def action(offer, galway):
        offer.hotel = galway
        offer.is_active = value
        offer.save()

    return action


def activate_with_photo(offer, galway):
    offer.is_active = True
    offer.photo = make_image("new.png")
    offer.save()


def in_one_transaction(*steps):
    def action(offer, galway):
        with transaction.atomic():
            for step in steps:
                result = step(offer, galway)
        return result

    return action


def create_inactive_then_activate(offer, galway):
    with transaction.atomic():
        new = create_inactive(offer, galway)
        new.is_active = True
        new.save()
    return new


def bypass_update(value):
    def action(offer, galway):
        with transaction.atomic():
            Offer.objects.filter(pk=offer.pk).update(is_active=value, title="Bulk")
            offer_realtime.broadcast(Offer.objects.get(pk=offer.pk), "updated")

    action.state_unknown = True  # what guests saw before is unknown
    return action


def delete_deferred(offer, galway):
    # (photo loaded too: the example's post_delete receiver reads it)
    Offer.objects.only("id", "title", "hotel", "photo").get(pk=offer.pk).delete()


delete_deferred.state_unknown = True

TRANSITIONS = [
    # name, active, photo, action, staff events, public events
    ("create active", True, False, create_active, [(C, STAFF)], [(C, PUBLIC)]),
    ("create inactive", True, False, create_inactive, [(C, STAFF)], []),
    ("activate", False, False, set_active(True), [(U, STAFF)], [(C, PUBLIC)]),
    ("deactivate", True, False, set_active(False), [(U, STAFF)], [(D, PUBLIC)]),
    ("edit while inactive", False, False, edit, [(U, STAFF)], []),
    ("edit while active", True, False, edit, [(U, STAFF)], [(U, PUBLIC)]),
    ("delete active", True, False, delete, [(D, STAFF)], [(D, PUBLIC)]),
    ("delete inactive", False, False, delete, [(D, STAFF)], []),
    ("photo set while active", True, False, set_photo, [(IMG, STAFF)], [(IMG, PUBLIC)]),
    ("photo replaced while active", True, True, set_photo, [(IMG, STAFF)], [(IMG, PUBLIC)]),
    ("photo cleared while active", True, True, clear_photo, [(U, STAFF)], [(U, PUBLIC)]),
    ("photo set while inactive", False, False, set_photo, [(IMG, STAFF)], []),
    ("photo replaced while inactive", False, True, set_photo, [(IMG, STAFF)], []),
    ("photo cleared while inactive", False, True, clear_photo, [(U, STAFF)], []),
    ("move active", True, False, move, [(D, STAFF), (C, STAFF2)], [(D, PUBLIC), (C, PUBLIC2)]),
    ("move inactive", False, False, move, [(D, STAFF), (C, STAFF2)], []),
    ("move and deactivate", True, False, move_and(False), [(D, STAFF), (C, STAFF2)], [(D, PUBLIC)]),
    ("move and activate", False, False, move_and(True), [(D, STAFF), (C, STAFF2)], [(C, PUBLIC2)]),
    ("activate with a new photo", False, False, activate_with_photo, [(U, STAFF), (IMG, STAFF)], [(C, PUBLIC)]),
    (
        "deactivate, then delete",
        True,
        False,
        in_one_transaction(set_active(False), delete),
        [(D, STAFF)],
        [(D, PUBLIC)],
    ),
    ("activate, then delete", False, False, in_one_transaction(set_active(True), delete), [(D, STAFF)], []),
    ("create inactive, then activate", True, False, create_inactive_then_activate, [(C, STAFF)], [(C, PUBLIC)]),
    (
        "activate, then deactivate",
        False,
        False,
        in_one_transaction(set_active(True), set_active(False)),
        [(U, STAFF)],
        [],
    ),
    (
        "deactivate, then activate",
        True,
        False,
        in_one_transaction(set_active(False), set_active(True)),
        [(U, STAFF)],
        [(U, PUBLIC)],
    ),
    (
        "deactivate, then move",
        True,
        False,
        in_one_transaction(set_active(False), move),
        [(D, STAFF), (C, STAFF2)],
        [(D, PUBLIC)],
    ),
    ("bypassing signals, now active", False, False, bypass_update(True), [(U, STAFF)], [(U, PUBLIC)]),
    ("bypassing signals, now inactive", True, False, bypass_update(False), [(U, STAFF)], [(D, PUBLIC)]),
    ("delete with is_active deferred", False, False, delete_deferred, [(D, STAFF)], [(D, PUBLIC)]),
]


@pytest.mark.parametrize(
    ("active", "photo", "action", "staff", "public"), [t[1:] for t in TRANSITIONS], ids=[t[0] for t in TRANSITIONS]
)
def test_events_per_audience(audiences, hotel, other_hotel, active, photo, action, staff, public):
    offer = make(hotel, active=active, photo=photo)
    title = offer.title
    with capture_broadcasts() as sent:
        result = action(offer, other_hotel)
    offer_id = result.pk if isinstance(result, Offer) else offer.pk
    got_staff = [(e.name, e.channel) for e in sent if e.channel.startswith("private-")]
    got_public = [(e.name, e.channel) for e in sent if not e.channel.startswith("private-")]
    assert (got_staff, got_public) == (staff, public)
    # A change's events: every audience's, staff first, all with distinct ids.
    assert [(e.name, e.channel) for e in sent] == staff + public
    assert len({e.data["event_id"] for e in sent}) == len(sent)
    row = Offer.objects.filter(pk=offer_id).first()
    for event in sent:
        data = event.without_identity()
        if event.name in (C, U):
            serializer = OfferStaffSerializer if event.channel.startswith("private-") else OfferPublicSerializer
            assert data["offer"] == to_json_data(serializer(row).data)
            if not event.channel.startswith("private-"):
                assert data["offer"]["is_active"] is True
                assert set(data["offer"]) == set(OfferPublicSerializer.Meta.fields)
        elif event.name == D and not event.channel.startswith("private-"):
            # The title only when guests saw the offer (see test_public_deleted_title_only_when_it_was_shown).
            assert data["offer_title"] == ("" if getattr(action, "state_unknown", False) else title)
        elif event.name == IMG:
            assert data["photo_url"] == row.photo.url


def test_public_deleted_title_only_when_it_was_shown(audiences, hotel):
    shown, hidden = make(hotel), make(hotel, active=False)
    with capture_broadcasts() as sent:
        shown.is_active = False
        shown.save()
        Offer.objects.only("id", "title", "hotel", "photo").get(pk=hidden.pk).delete()  # active state unknown
    public = [e.without_identity() for e in sent if e.channel == PUBLIC]
    assert public == [
        {"offer_id": shown.pk, "offer_title": "Spa weekend", "action": "deleted"},
        {"offer_id": hidden.pk, "offer_title": "", "action": "deleted"},
    ]


def test_public_events_hold_no_staff_only_field(audiences, hotel):
    with capture_broadcasts() as sent:
        offer = Offer.objects.create(hotel=hotel, title="t", short_description="s", photo=make_image())
    public = next(e for e in sent if e.channel == PUBLIC)
    assert "photo" not in public.data["offer"]  # the stored name: staff serializer only
    assert set(public.data["offer"]) == set(PublicAPISerializer.Meta.fields) | {"is_active"}
    assert public.data["offer"]["photo_url"] == offer.photo.url


def test_is_active_added_when_the_public_serializer_has_none(db, hotel):
    conf = {**AUDIENCES, "PUBLIC_SERIALIZER": "hotel.public_views.OfferPublicSerializer"}
    with override_settings(OFFER_REALTIME=conf), capture_broadcasts() as sent:
        Offer.objects.create(hotel=hotel, title="t", short_description="s")
    public = next(e for e in sent if e.channel == PUBLIC)
    assert public.data["offer"]["is_active"] is True
    assert set(public.data["offer"]) == set(PublicAPISerializer.Meta.fields) | {"is_active"}


def test_a_custom_active_field(db, hotel):
    # The example's sort_order stands in for another boolean-ish field: 0 is "not shown".
    conf = {**AUDIENCES, "ACTIVE_FIELD": "sort_order"}
    with override_settings(OFFER_REALTIME=conf):
        with capture_broadcasts() as created:
            offer = Offer.objects.create(hotel=hotel, title="t", short_description="s", sort_order=0)
        with capture_broadcasts() as shown:
            offer.sort_order = 3
            offer.save()
    assert [(e.name, e.channel) for e in created] == [(C, STAFF)]
    assert [(e.name, e.channel) for e in shown] == [(U, STAFF), (C, PUBLIC)]


def test_without_the_setting_nothing_changes(db, hotel):
    with override_settings(OFFER_REALTIME={"DELIVERY": "inline"}):
        with capture_broadcasts() as sent:
            offer = make(hotel, active=False)
        with capture_broadcasts() as activated:
            offer.is_active = True
            offer.save()
    # One audience, as before: the staff serializer's data of the inactive offer on the public channel.
    assert [(e.name, e.channel, e.group) for e in [*sent, *activated]] == [(C, PUBLIC, None), (U, PUBLIC, None)]
    assert sent[0].data["offer"] == to_json_data(OfferStaffSerializer(offer).data) | {"is_active": False}


def test_oversize_is_offers_updated_per_audience(db, hotel):
    offer = make(hotel)
    with override_settings(OFFER_REALTIME={**AUDIENCES, "MAX_PAYLOAD_BYTES": 1500}), capture_broadcasts() as sent:
        offer.details_text = "x" * 2000
        offer.save()
    assert [(e.name, e.channel) for e in sent] == [("offers-updated", STAFF), ("offers-updated", PUBLIC)]
    assert sent[0].data["event_id"] != sent[1].data["event_id"]
    assert all(e.without_identity() == {"action": "sync", "offer_id": offer.pk, "reason": "too-large"} for e in sent)


def test_one_audience_failing_to_build_leaves_the_other(db, hotel, caplog):
    conf = {**AUDIENCES, "PUBLIC_SERIALIZER": "hotel.serializers.NoSuchSerializer"}
    with override_settings(OFFER_REALTIME=conf), capture_broadcasts() as sent:
        Offer.objects.create(hotel=hotel, title="t", short_description="s")
    assert [(e.name, e.channel) for e in sent] == [(C, STAFF)]
    assert "public audience" in caplog.text


def test_changes_keep_the_active_state_through_task_arguments():
    change = Change(
        Action.UPDATED,
        7,
        __import__("django.utils.timezone").utils.timezone.now(),
        active_changed=True,
        was_active=True,
    )
    assert Change.from_json(change.to_json()).signature() == change.signature()
    event = events.Event(C, PUBLIC, {"a": 1}, 7, group="k:7")
    assert event_from_json(event_to_json(event)).group == "k:7"


def test_batches_keep_groups_whole():
    def ev(group):
        return events.Event(C, PUBLIC, {}, group=group)

    stream = [ev(f"g{i // 4}") for i in range(12)] + [ev(None), ev(None)]
    sizes = [[e.group for e in chunk] for chunk in events.batches(stream, 10)]
    assert [len(chunk) for chunk in sizes] == [8, 6]
    assert sizes[0] == ["g0"] * 4 + ["g1"] * 4
    assert [len(c) for c in events.batches([ev("big")] * 12, 10)] == [10, 2]


# -- one Pusher call per change, in every delivery mode --------------------------------


@pytest.fixture
def stub():
    with PusherStub() as running:
        yield running
    sender.reset_sender()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("mode", ["inline", "background", "task"])
def test_both_audiences_in_one_trigger_batch_per_change(stub, hotel, mode):
    conf = {**AUDIENCES, "DELIVERY": mode, "RETRY_BASE_DELAY": 0.01}
    with override_settings(**stub.settings(), OFFER_REALTIME=conf):
        with transaction.atomic():
            # Four changes of four events each (moved and photo set: deleted + created per
            # audience) cannot share a batch of ten whole: each call holds whole changes.
            galway = Hotel.objects.create(name="Galway", slug="galway")
            offers = [make(hotel) for _ in range(4)]
        with transaction.atomic():
            for offer in offers:
                offer.hotel = galway
                offer.save()
        if mode == "background":
            assert sender.get_sender().flush(5)
    calls = [r["body"]["batch"] for r in stub.requests if r["status"] == 200]
    moves = [call for call in calls if any(entry["name"] == D for entry in call)]
    assert sum(len(call) for call in moves) == 16
    for call in moves:
        names = [(entry["name"], entry["channel"]) for entry in call]
        assert len(names) % 4 == 0
        for start in range(0, len(names), 4):
            assert names[start : start + 4] == [(D, STAFF), (C, STAFF2), (D, PUBLIC), (C, PUBLIC2)]


# -- system checks ---------------------------------------------------------------------


def check_ids(**conf):
    with override_settings(OFFER_REALTIME=conf):
        return {m.id for m in run_checks(include_deployment_checks=True) if m.id.startswith("offer_realtime.")}


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"PUBLIC_SERIALIZER": "hotel.serializers.Nope", "CHANNEL": "private-hotel-{hotel_slug}"}, "E030"),
        (
            {
                "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
                "CHANNEL": "private-hotel-{hotel_slug}",
                "PUBLIC_CHANNEL": "private-guests-{hotel_slug}",
            },
            "E031",
        ),
        (
            {
                "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
                "CHANNEL": "private-hotel-{hotel_slug}",
                "PUBLIC_CHANNEL": "presence-guests-{hotel_slug}",
            },
            "E031",
        ),
        ({"PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer"}, "E032"),  # CHANNEL == PUBLIC_CHANNEL
        (
            {
                "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
                "CHANNEL": "private-hotel-{hotel_slug}",
                "PUBLIC_CHANNEL": "guests",
            },
            "E032",
        ),
        (
            {
                "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
                "CHANNEL": "private-hotel-{hotel_slug}",
                "PUBLIC_CHANNEL": "guests {hotel_slug}",
            },
            "E032",
        ),
        (
            {
                "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
                "CHANNEL": "private-hotel-{hotel_slug}",
                "PUBLIC_CHANNEL": "g-{slug}",
            },
            "E032",
        ),
        (
            {
                "PUBLIC_SERIALIZER": "hotel.serializers.OfferPublicSerializer",
                "CHANNEL": "private-hotel-{hotel_slug}",
                "ACTIVE_FIELD": "published",
            },
            "E033",
        ),
    ],
)
def test_checks_name_each_problem(db, conf, expected):
    ids = check_ids(**conf)
    assert f"offer_realtime.{expected}" in ids
    assert not ids & ({f"offer_realtime.E03{n}" for n in range(4)} - {f"offer_realtime.{expected}"})


def test_audiences_satisfy_w003_and_pass_every_check(db):
    assert "offer_realtime.W003" in check_ids()
    ids = check_ids(**{k: v for k, v in AUDIENCES.items() if k != "DELIVERY"})
    assert not {i for i in ids if ".E" in i or i == "offer_realtime.W003"}


# -- the example's pages ---------------------------------------------------------------


def test_guest_page_listens_on_the_public_channel_and_the_board_on_the_private(db, hotel):
    from hotel.board_views import board_config
    from hotel.public_views import guest_config

    with override_settings(OFFER_REALTIME=AUDIENCES, PUSHER_KEY="k"):
        assert guest_config("killarney")["channel"] == PUBLIC
        board = board_config(__import__("django.test").test.RequestFactory().get("/"), "killarney")
        assert (board["channel"], board["private"]) == (STAFF, True)
    with override_settings(OFFER_REALTIME={"CHANNEL": "private-hotel-{hotel_slug}"}, PUSHER_KEY="k"):
        assert guest_config("killarney")["channel"] is None  # as before: no public channel


def test_write_path_runs_no_extra_query(transactional_db, hotel):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    offer = make(hotel)
    with override_settings(OFFER_REALTIME={**AUDIENCES, "BACKEND": "null", "DELIVERY": "background"}):
        with CaptureQueriesContext(connection) as queries:
            offer.is_active = False
            offer.save()
            offer.delete()
        assert sender.get_sender().flush(5)
    # UPDATE; the delete's cascade lookups, DELETE: nothing read for the audiences.
    assert not [q for q in queries if "is_active" in q["sql"] and q["sql"].startswith("SELECT")]


def test_a_retry_maps_public_events_back_to_their_change(audiences, hotel):
    """The background sender and the task worker retry only the events still to send,
    found again by event id: a public event's id must lead back to its change."""
    from django.utils import timezone

    from offer_realtime import building

    offer = make(hotel)
    change = Change(Action.CREATED, offer.pk, timezone.now())
    public = [e for e in building.build_events([change], "default") if e.channel == PUBLIC]
    changes, ids = building.still_to_send([change], public)
    assert changes == [change] and ids == {public[0].data["event_id"]}
    assert building.only_events(building.build_events(changes, "default"), ids) == public
