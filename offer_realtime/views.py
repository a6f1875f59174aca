"""The channel-authorization endpoint for private and presence offer channels.

Opt in with ``OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}"}`` (or
``"presence-hotel-{hotel_slug}"``) and include ``offer_realtime.urls``; point pusher-js's
``channelAuthorization.endpoint`` at it. It signs a subscription (with the ``pusher``
library) only for an authenticated user who is staff of the channel's hotel, by
``OFFER_REALTIME["USER_HOTEL_SLUG"]``. It also signs the hotel's presence channel
``OFFER_REALTIME["PRESENCE_CHANNEL"]`` (default ``presence-hotel-{hotel_slug}``, None: off)
for the same staff, public or private events alike. On a presence channel the answer also
carries the member's identity (``channel_data``), from ``OFFER_REALTIME["PRESENCE_USER"]``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import pusher
from rest_framework import permissions, serializers
from rest_framework.exceptions import ParseError, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from offer_realtime.backends.pusher import make_client
from offer_realtime.building import resolve_attribute_path
from offer_realtime.events import (
    CHANNEL_NAME_MAX_LENGTH,
    channel_name_problem,
    hotel_slug_from_channel,
)
from offer_realtime.identity import member, presence_user
from offer_realtime.middleware import is_socket_id
from offer_realtime.settings import (
    PusherCredentials,
    get_pusher_credentials,
    get_settings,
)

logger = logging.getLogger("offer_realtime")

PRESENCE_PREFIX = "presence-"

__all__ = ["PRESENCE_PREFIX", "ChannelAuthSerializer", "ChannelAuthView", "channel_auth", "presence_user"]


@functools.lru_cache(maxsize=4)
def _signing_client(credentials: PusherCredentials) -> pusher.Pusher:
    # Signing is local (HMAC with the secret); no HTTP call is made here.
    return make_client(credentials, timeout=get_settings().timeout)


class _StrictCharField(serializers.CharField):
    """A JSON/form string as sent: numbers, lists and objects are refused, not converted."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class ChannelAuthSerializer(serializers.Serializer[Any]):
    """What pusher-js posts: the connection's ``socket_id`` and the ``channel_name``."""

    socket_id = _StrictCharField(trim_whitespace=False, max_length=64)
    channel_name = _StrictCharField(trim_whitespace=False, max_length=CHANNEL_NAME_MAX_LENGTH)

    def validate_socket_id(self, value: str) -> str:
        """Pusher's format: two runs of ASCII digits joined by a dot."""
        if not is_socket_id(value):
            raise serializers.ValidationError("Not a Pusher socket id (digits, a dot, digits).")
        return value

    def validate_channel_name(self, value: str) -> str:
        """Pusher's channel name rules."""
        problem = channel_name_problem(value)
        if problem:
            raise serializers.ValidationError(f"Not a valid Pusher channel name: {problem}.")
        return value


class ChannelAuthView(APIView):
    """POST ``socket_id`` and ``channel_name`` (what pusher-js sends); get ``{"auth": ...}``.

    Accepts pusher-js's form post and JSON whatever the host's ``DEFAULT_PARSER_CLASSES``,
    and answers JSON. 401/403 for anonymous users (as DRF's authentication classes
    decide), 403 ``{"detail": ...}`` for a channel that is not one of ours or a user who is
    not staff of its hotel, 400 with DRF's field errors for malformed input. On a presence
    channel the answer adds ``channel_data`` (see :meth:`presence_member`).
    Override :meth:`hotel_slugs_for` for rules other than one hotel per user.
    """

    permission_classes = (permissions.IsAuthenticated,)
    # Set here, not inherited from the host's DRF settings: pusher-js posts a form (a
    # FormData post is multipart) and reads the answer as JSON.
    parser_classes = (FormParser, MultiPartParser, JSONParser)
    renderer_classes = (JSONRenderer,)
    # A Pusher protocol endpoint that pusher-js calls, not part of a host's API: kept
    # out of OpenAPI schemas (DRF's and drf-spectacular's generators skip schema=None).
    schema = None

    def hotel_slugs_for(self, user: Any) -> set[str]:
        """Slugs of the hotels whose offer channels ``user`` may read."""
        try:
            slug = resolve_attribute_path(user, get_settings().user_hotel_slug.split("."))
        except Exception:  # noqa: BLE001 - no profile (ObjectDoesNotExist) and the like: not staff
            return set()
        return {str(slug)} if slug else set()

    def presence_member(self, request: Request) -> dict[str, Any]:
        """``channel_data`` for a presence channel: ``{"user_id": str, "user_info": dict}``.

        From ``OFFER_REALTIME["PRESENCE_USER"]`` (default
        :func:`~offer_realtime.identity.presence_user`).
        """
        user_id, user_info = member(request)
        return {"user_id": user_id, "user_info": user_info}

    def post(self, request: Request) -> Response:
        """Sign the subscription, or refuse it."""
        serializer = ChannelAuthSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        socket_id = serializer.validated_data["socket_id"]
        channel = serializer.validated_data["channel_name"]
        conf = get_settings()
        slug = hotel_slug_from_channel(conf.channel, channel) if conf.private else None
        if slug is None and conf.presence_channel and channel.startswith(PRESENCE_PREFIX):
            # The staff's presence channel (who is online, editing markers): the same staff rule.
            slug = hotel_slug_from_channel(conf.presence_channel, channel)
        if slug is None:
            raise PermissionDenied("Not a private offer channel.")
        if slug not in self.hotel_slugs_for(request.user):
            logger.info("Refused %s to user %s: not staff of that hotel.", channel, request.user.pk)
            raise PermissionDenied("You are not staff of this hotel.")
        member = self.presence_member(request) if channel.startswith(PRESENCE_PREFIX) else None
        try:
            auth = _signing_client(get_pusher_credentials()).authenticate(
                channel=channel, socket_id=socket_id, custom_data=member
            )
        except ValueError as exc:  # the pusher library's word on input validated above; kept as a 400
            raise ParseError(str(exc)) from exc
        return Response(auth)


channel_auth = ChannelAuthView.as_view()
