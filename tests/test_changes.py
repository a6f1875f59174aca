"""Coalescing rules, as a pure function over recorded changes."""

import datetime

import pytest

from offer_realtime.changes import Action, Change, coalesce

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def created(pk=1, t=0):
    return Change(Action.CREATED, pk, at(t))


def updated(pk=1, t=0, fields=True, photo=False):
    return Change(Action.UPDATED, pk, at(t), fields_changed=fields, photo_changed=photo)


def deleted(pk=1, t=0):
    return Change(Action.DELETED, pk, at(t), offer_title="x", channel="hotel-a")


def summary(changes):
    return [(c.offer_id, c.action.value, c.fields_changed, c.photo_changed) for c in changes]


def test_create_then_updates_is_one_create_at_the_last_change_time():
    result = coalesce([created(t=0), updated(t=1), updated(t=2, fields=False, photo=True)])
    assert summary(result) == [(1, "created", False, False)]
    assert result[0].changed_at == at(2)


def test_several_updates_are_one_update_with_flags_merged():
    result = coalesce([updated(t=0), updated(t=1, fields=False, photo=True), updated(t=2)])
    assert summary(result) == [(1, "updated", True, True)]
    assert result[0].changed_at == at(2)


def test_photo_only_updates_stay_photo_only():
    result = coalesce([updated(fields=False, photo=True), updated(fields=False, photo=True)])
    assert summary(result) == [(1, "updated", False, True)]


def test_create_then_delete_is_nothing():
    assert coalesce([created(), updated(), deleted()]) == []


@pytest.mark.parametrize("before", [[updated()], [updated(), updated(photo=True)], []])
def test_anything_then_delete_is_one_delete(before):
    assert summary(coalesce([*before, deleted()])) == [(1, "deleted", False, False)]


def test_offers_are_kept_apart_in_first_change_order():
    result = coalesce([updated(pk=2), created(pk=1), updated(pk=2, photo=True), deleted(pk=3)])
    assert summary(result) == [(2, "updated", True, True), (1, "created", False, False), (3, "deleted", False, False)]


def test_delete_then_create_under_the_same_key_keeps_both():
    assert [c.action for c in coalesce([deleted(), created()])] == [Action.DELETED, Action.CREATED]


def moved(pk=1, t=0, previous=10, fields=False, photo=False):
    return Change(
        Action.UPDATED,
        pk,
        at(t),
        fields_changed=fields,
        photo_changed=photo,
        hotel_changed=True,
        previous_hotel=previous,
    )


def move_summary(changes):
    return [(c.action.value, c.fields_changed, c.photo_changed, c.hotel_changed, c.previous_hotel) for c in changes]


def test_a_move_keeps_the_hotel_the_transaction_started_from():
    assert move_summary(coalesce([moved(previous=10), moved(previous=20)])) == [("updated", False, False, True, 10)]
    assert move_summary(coalesce([updated(), moved(previous=10, photo=True)])) == [("updated", True, True, True, 10)]
    assert move_summary(coalesce([moved(previous=10), updated(fields=False, photo=True)])) == [
        ("updated", False, True, True, 10)
    ]


def test_moved_then_deleted_is_deleted_from_the_first_hotel():
    assert move_summary(coalesce([updated(), moved(previous=10), deleted()])) == [("deleted", False, False, True, 10)]
    assert move_summary(coalesce([updated(), deleted()])) == [("deleted", False, False, False, None)]


def test_created_then_moved_is_a_create():
    assert move_summary(coalesce([created(), moved(previous=10)])) == [("created", False, False, False, None)]


def test_the_signature_tells_a_move_apart():
    assert coalesce([updated()])[0].signature() != coalesce([updated(), moved()])[0].signature()


# -- Named constructors and the one JSON form (task arguments) ----------------------


def test_the_named_constructors_record_what_happened():
    created = Change.created(1, socket_id="1.2")
    updated = Change.updated(1, photo_changed=True)
    deleted = Change.deleted(1, title="Spa", channel="hotel-a", was_active=True)
    assert (created.action, created.socket_id) == (Action.CREATED, "1.2")
    assert (updated.action, updated.fields_changed, updated.photo_changed) == (Action.UPDATED, False, True)
    assert (deleted.action, deleted.offer_title, deleted.channel, deleted.was_active) == (
        Action.DELETED,
        "Spa",
        "hotel-a",
        True,
    )


def test_json_carries_every_field_but_the_commit_bookkeeping():
    import dataclasses
    import json

    change = Change.updated(
        7,
        hotel_changed=True,
        previous_hotel=3,
        active_changed=True,
        was_active=False,
        socket_id="1.2",
        changed_by={"id": "4", "name": "Máire “Mo” Ní Bhriain 🙂"},
    )
    data = json.loads(json.dumps(change.to_json()))
    assert set(data) == {f.name for f in dataclasses.fields(Change)} - {"committed"}
    assert Change.from_json(data) == change


def test_json_of_an_older_version_without_moves_or_audiences_is_read():
    old = {
        "action": "updated",
        "offer_id": 7,
        "changed_at": "2026-01-02T03:04:05+00:00",
        "fields_changed": True,
        "photo_changed": False,
        "offer_title": None,
        "channel": None,
        "socket_id": None,
        "transaction_key": "abc",
    }
    change = Change.from_json(old)
    assert (change.hotel_changed, change.previous_hotel, change.active_changed, change.was_active) == (
        False,
        None,
        False,
        None,
    )
    assert (change.action, change.transaction_key, change.changed_at.year) == (Action.UPDATED, "abc", 2026)
