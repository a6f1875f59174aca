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
    return Change(Action.UPDATED, pk, at(t), fields_changed=fields, photo_changed=photo, hotel_changed=True,
                  previous_hotel=previous)


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
