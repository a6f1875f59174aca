"""The channel-authorization endpoint for private offer channels.

Opt in with ``OFFER_REALTIME = {"CHANNEL": "private-hotel-{hotel_slug}"}`` and include
``offer_realtime.urls``; point pusher-js's ``channelAuthorization.endpoint`` at it.
It signs a subscription (with the ``pusher`` library) only for an authenticated user who
is staff of the channel's hotel, by ``OFFER_REALTIME["USER_HOTEL_SLUG"]``.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import pusher
from rest_framework import permissions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from offer_realtime.backends.pusher import make_client
from offer_realtime.delivery import resolve_attribute_path
from offer_realtime.events import hotel_slug_from_channel
from offer_realtime.settings import PusherCredentials, get_pusher_credentials, get_settings

logger = logging.getLogger("offer_realtime")


@functools.lru_cache(maxsize=4)
def _signing_client(credentials: PusherCredentials) -> pusher.Pusher:
    # Signing is local (HMAC with the secret); no HTTP call is made here.
    return make_client(credentials, timeout=get_settings().timeout)


class ChannelAuthView(APIView):
    """POST ``socket_id`` and ``channel_name`` (what pusher-js sends); get ``{"auth": ...}``.

    401/403 for anonymous users (as DRF's authentication classes decide), 403 for a
    user who is not staff of the channel's hotel, 400 for a malformed request.
    Override :meth:`hotel_slugs_for` for rules other than one hotel per user.
    """

    permission_classes = [permissions.IsAuthenticated]
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

    def post(self, request: Request) -> Response:
        """Sign the subscription, or refuse it."""
        socket_id = request.data.get("socket_id")
        channel = request.data.get("channel_name")
        if not socket_id or not channel:
            return Response({"error": "socket_id and channel_name are required."}, status=status.HTTP_400_BAD_REQUEST)
        conf = get_settings()
        slug = hotel_slug_from_channel(conf.channel, channel)
        if slug is None or not conf.private:
            return Response({"error": "Not a private offer channel."}, status=status.HTTP_403_FORBIDDEN)
        if slug not in self.hotel_slugs_for(request.user):
            logger.info("Refused %s to user %s: not staff of that hotel.", channel, request.user.pk)
            return Response({"error": "You are not staff of this hotel."}, status=status.HTTP_403_FORBIDDEN)
        try:
            auth = _signing_client(get_pusher_credentials()).authenticate(channel=channel, socket_id=socket_id)
        except ValueError as exc:  # the pusher library's word on a malformed socket id or channel
            return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(auth)


channel_auth = ChannelAuthView.as_view()
