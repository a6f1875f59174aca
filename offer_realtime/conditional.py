"""Conflict-safe edits for DRF viewsets: ``ETag`` on reads, ``If-Match`` on writes (412 on a conflict).

Two staff members open the same offer, both edit it, both save: without this, the
second save silently overwrites the first. With :class:`ConditionalUpdateMixin` on the
viewset, a client sends back the ``ETag`` it got with the offer as ``If-Match``; a
write based on an offer that changed since is refused with ``412 Precondition Failed``
and the offer as it is now, and nothing is written::

    from offer_realtime.conditional import ConditionalUpdateMixin

    class StaffOfferViewSet(ConditionalUpdateMixin, viewsets.ModelViewSet):
        serializer_class = OfferStaffSerializer

What it does, per action:

- ``retrieve`` (GET/HEAD): the response carries ``ETag: "<sha256>"``, a strong entity
  tag of the offer's representation (:meth:`ConditionalUpdateMixin.get_etag`). The list
  carries none: an ``If-Match`` names one offer, so a client GETs the offer it opens.
- ``update``/``partial_update`` (PUT/PATCH) and ``destroy`` (DELETE) with ``If-Match``:
  the offer's row is locked (``SELECT ... FOR UPDATE``; on SQLite the transaction takes
  the database write lock first), its current ETag is compared with the header's, and
  only on a match is the write done, in the same transaction. A mismatch answers 412
  with the current representation in the body and its ETag in the header. Because the
  comparison and the write happen under one lock, of two writes sent with the same
  ``If-Match`` at most one succeeds: no update is silently lost.
- A successful PUT/PATCH response carries the new ``ETag``.
- ``If-Match: *`` matches any existing offer. A weak tag (``W/"..."``) never matches
  (If-Match uses RFC 9110's strong comparison), so a proxy or middleware that weakens
  ETags (``GZipMiddleware`` does, for compressed responses) makes every conditional write
  fail: keep the API's responses uncompressed by such layers, or let the client send the
  tag without ``W/``. A header without any valid entity tag is 400.
- Without ``If-Match`` a write behaves as before, unless :attr:`if_match_required` is set
  (or :meth:`requires_if_match` says so): then it is 428 Precondition Required.
- A missing offer is 404 whatever the header (RFC 9110 §13.2.2: preconditions are
  ignored when the request would fail without them).

This module is a leaf: it depends on Django and DRF only, not on the broadcasting
pipeline; a 412 writes nothing, so no event is sent for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ImproperlyConfigured, ObjectDoesNotExist
from django.db import connections, router, transaction
from django.db.models import F, Model
from django.http import Http404
from django.utils.http import parse_etags
from rest_framework import status
from rest_framework.exceptions import APIException, ParseError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.views import set_rollback

if TYPE_CHECKING:
    from rest_framework.viewsets import ModelViewSet

    _ViewBase = ModelViewSet[Any]
else:
    _ViewBase = object

__all__ = ["ConditionalUpdateMixin", "PreconditionFailed", "PreconditionRequired", "etag_for"]

logger = logging.getLogger("offer_realtime.conditional")

#: The serializer-context key of the check a serializer that locks the row itself calls.
CHECK_PRECONDITION = "check_precondition"


def etag_for(data: Any) -> str:
    """The strong entity tag (quoted) of a serializer representation ``data``.

    SHA-256 of its canonical JSON (keys sorted, no whitespace, DRF's JSON encoder for
    dates, decimals and the like): equal representations get equal tags, and any change
    of any value gives a new one.
    """
    canonical = json.dumps(data, cls=JSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return f'"{hashlib.sha256(canonical.encode("utf-8")).hexdigest()}"'


class PreconditionFailed(APIException):
    """412: ``If-Match`` names another version of the object than the current one.

    The response body is ``representation`` (the object as it is now, as a GET would
    give it) and its ``ETag`` header is ``etag``, so the client can show both versions and
    retry with the new tag.
    """

    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "The object was changed since you read it."
    default_code = "precondition_failed"

    def __init__(self, representation: Any, etag: str) -> None:
        super().__init__()
        self.representation = representation
        self.etag = etag


class PreconditionRequired(APIException):
    """428: the view requires ``If-Match`` on writes and the request carried none."""

    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = (
        "This request must carry an If-Match header with the ETag of the version it changes "
        "(GET the object first), or If-Match: * to change it whatever its version."
    )
    default_code = "precondition_required"


#: Answer to an If-Match header without any valid entity tag.
MALFORMED_IF_MATCH = 'If-Match must be "*" or one or more quoted entity tags, as the ETag header gave them.'


class ConditionalUpdateMixin(_ViewBase):
    """Adds ``ETag`` to ``retrieve`` and honours ``If-Match`` on ``update``, ``partial_update`` and ``destroy``.

    Put it before the DRF view class: ``class V(ConditionalUpdateMixin, viewsets.ModelViewSet)``.
    The view needs ``get_queryset()``, ``get_object()`` and ``get_serializer()`` and the
    update/destroy actions of DRF's model mixins. A host that overrides ``perform_update``
    or ``perform_destroy`` calls ``super()`` (or does what :meth:`perform_destroy` does).

    Hooks:

    - :meth:`get_etag`: the tag of an instance (default: :func:`etag_for` its representation
      without the request, so it is the same whatever host name or scheme the client used).
    - :meth:`lock_object`: read an instance afresh under a row lock (default: the view's
      queryset, ``select_for_update``; SQLite: the write lock first).
    - :attr:`if_match_required` / :meth:`requires_if_match`: 428 for writes without ``If-Match``.
    - :attr:`serializer_checks_precondition`: the serializer locks the row itself and calls
      the check under that lock (see the attribute).
    """

    #: Refuse PUT, PATCH and DELETE without ``If-Match`` with 428 (default: allowed, as before).
    if_match_required: bool = False

    #: Set this when the serializer's ``update()`` takes the row lock itself (e.g. to store a
    #: file before locking, so a slow upload holds no lock). The mixin then takes no lock of
    #: its own; the serializer must call ``self.context["check_precondition"](locked_instance)``
    #: right after locking, before writing. A conditional write whose serializer did not
    #: call it is rolled back with ``ImproperlyConfigured``.
    serializer_checks_precondition: bool = False

    _conditional_write = False
    _checked_under_lock = False

    # -- the tag -------------------------------------------------------------------------

    def get_etag(self, instance: Model) -> str:
        """The strong ETag (quoted) of ``instance`` as this view represents it.

        The hash of the serializer's representation (:func:`etag_for`), built with the
        view's serializer context less the request: fields the API shows change it
        (the photo too), while the host name a client used does not (a relative file URL
        instead of an absolute one). Override it when the serializer needs the request
        (e.g. hyperlinked fields), or when ``get_serializer_class()`` differs between
        ``retrieve`` and the writes: the tag must be computed alike for both, or no
        ``If-Match`` would ever match.
        """
        context = {key: value for key, value in self.get_serializer_context().items() if key != "request"}
        return etag_for(self.get_serializer_class()(instance, context=context).data)

    # -- the request's precondition ------------------------------------------------------

    def requires_if_match(self) -> bool:
        """True when writes without ``If-Match`` are refused (428); :attr:`if_match_required` by default."""
        return self.if_match_required

    def if_match_tags(self) -> list[str] | None:
        """The entity tags of the request's ``If-Match`` (``["*"]`` for any), or None without one.

        Raises ``ParseError`` (400) for a header without any valid entity tag.
        """
        header = self.request.META.get("HTTP_IF_MATCH")
        if header is None:
            return None
        tags: list[str] = parse_etags(header)
        if not tags:
            raise ParseError(MALFORMED_IF_MATCH)
        return tags

    def check_precondition(self, instance: Model) -> None:
        """Raise :class:`PreconditionFailed` unless ``If-Match`` matches ``instance``'s current ETag.

        Call it with the instance read under the row lock, before writing; it does
        nothing for a request without ``If-Match``. Strong comparison: a weak tag never
        matches.
        """
        tags = self.if_match_tags()
        if tags is None or tags == ["*"]:
            return
        current = self.get_etag(instance)
        if current in tags:
            return
        if any(tag.startswith("W/") for tag in tags):
            logger.warning(
                "If-Match carried a weak entity tag, which never matches (RFC 9110 strong comparison): %s. "
                "Is a proxy or GZipMiddleware weakening the API's ETags?",
                ", ".join(tags),
            )
        raise PreconditionFailed(self.get_serializer(instance).data, current)

    def _check_precondition_from_serializer(self, instance: Model) -> None:
        self.check_precondition(instance)
        self._checked_under_lock = True

    # -- locking -------------------------------------------------------------------------

    def lock_object(self, instance: Model) -> Model:
        """``instance`` read afresh from the view's queryset and locked until the transaction ends.

        Called inside ``transaction.atomic()``. PostgreSQL (and any database with row
        locks): ``SELECT ... FOR UPDATE`` of the row (``OF`` the row only, so a joined
        hotel row is not locked). SQLite has no row locks, and a transaction that read
        first cannot write after another connection committed: there a no-op ``UPDATE``
        of the row takes the database write lock before the read. Raises ``Http404``
        when the row is gone (deleted meanwhile, or no longer in the queryset).
        """
        model = type(instance)
        db = router.db_for_write(model, instance=instance)
        features = connections[db].features
        if not features.has_select_for_update:
            pk_name = model._meta.pk.attname
            if not model._base_manager.using(db).filter(pk=instance.pk).update(**{pk_name: F(pk_name)}):
                raise Http404(f"No {model._meta.object_name} matches the given query.")
        queryset = self.get_queryset().using(db)
        # OF the offer's row only: a select_related hotel row stays unlocked for other offers' writers.
        of = ("self",) if features.has_select_for_update_of else ()
        try:
            locked: Model = queryset.select_for_update(of=of).get(pk=instance.pk)
        except ObjectDoesNotExist:
            raise Http404(f"No {model._meta.object_name} matches the given query.") from None
        return locked

    # -- DRF hooks -----------------------------------------------------------------------

    def get_serializer_context(self) -> dict[str, Any]:
        """The view's context; plus ``"check_precondition"`` when :attr:`serializer_checks_precondition` is set."""
        context = dict(super().get_serializer_context())
        if self.serializer_checks_precondition:
            context[CHECK_PRECONDITION] = self._check_precondition_from_serializer
        return context

    def get_object(self) -> Any:
        """The object; for PUT, PATCH and DELETE, its preconditions are evaluated at once.

        Before the request body is read (so a conflict is 412 even if the body is
        invalid, and a stale upload is not stored): 428 when ``If-Match`` is required and
        missing, 412 when it names another version than the one just read. The
        authoritative check runs again under the row lock.
        """
        instance = super().get_object()
        if self._conditional_write:
            if self.if_match_tags() is None:
                if self.requires_if_match():
                    raise PreconditionRequired()
            else:
                self.check_precondition(instance)
        return instance

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """The object, with its ``ETag``."""
        response = super().retrieve(request, *args, **kwargs)
        return self._with_etag(response)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """PUT/PATCH: with ``If-Match``, written only if the object is still that version; answers its new ``ETag``."""
        self._conditional_write = True
        response = super().update(request, *args, **kwargs)
        return self._with_etag(response)

    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """DELETE: with ``If-Match``, deleted only if the object is still that version."""
        self._conditional_write = True
        return super().destroy(request, *args, **kwargs)

    def perform_update(self, serializer: BaseSerializer[Any]) -> None:
        """Save; with ``If-Match``, under the row lock and only if the locked row still matches."""
        if self.if_match_tags() is None:
            super().perform_update(serializer)
            return
        instance = serializer.instance
        assert isinstance(instance, Model)
        with transaction.atomic(using=router.db_for_write(type(instance), instance=instance)):
            if self.serializer_checks_precondition:
                self._checked_under_lock = False
                super().perform_update(serializer)
                if not self._checked_under_lock:
                    raise ImproperlyConfigured(
                        f"{type(self).__name__}.serializer_checks_precondition is set but the serializer did not "
                        f'call self.context["{CHECK_PRECONDITION}"](locked_instance) under its row lock.'
                    )
                return
            locked = self.lock_object(instance)
            self.check_precondition(locked)
            # The write starts from the locked row: it matches what the client read (same
            # ETag) and holds every field that is not shown as it is now.
            serializer.instance = locked
            super().perform_update(serializer)

    def perform_destroy(self, instance: Model) -> None:
        """Delete; with ``If-Match``, under the row lock and only if the locked row still matches."""
        if self.if_match_tags() is None:
            super().perform_destroy(instance)
            return
        with transaction.atomic(using=router.db_for_write(type(instance), instance=instance)):
            locked = self.lock_object(instance)
            self.check_precondition(locked)
            super().perform_destroy(locked)

    def handle_exception(self, exc: Exception) -> Response:
        """412 is answered with the current representation as the body and its ``ETag``."""
        if isinstance(exc, PreconditionFailed):
            # Whatever ran in an outer (ATOMIC_REQUESTS) transaction is not committed.
            set_rollback()
            return Response(exc.representation, status=exc.status_code, headers={"ETag": exc.etag})
        return super().handle_exception(exc)

    def _with_etag(self, response: Response) -> Response:
        # The serializer's data keeps a link to its serializer (DRF's ReturnDict), and so to
        # the instance the body shows: the tag is computed from that very instance.
        serializer = getattr(response.data, "serializer", None)
        instance = getattr(serializer, "instance", None)
        if response.status_code == status.HTTP_200_OK and isinstance(instance, Model):
            response["ETag"] = self.get_etag(instance)
        return response
