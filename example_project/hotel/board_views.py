"""The staff live offer board: one page per hotel kept current by the offer events.

``/staff/<slug>/offers/live/`` lists the hotel's offers from the staff API and then
follows ``offer-created``, ``offer-updated``, ``offer-image-updated``, ``offer-deleted``
and ``offers-updated`` on the hotel's channel (public or private, as ``OFFER_REALTIME``
says). In private mode it also joins the hotel's presence channel
(``OFFER_REALTIME["PRESENCE_CHANNEL"]``): who is online, "X is editing" markers, and
conflict-safe edits through the staff API's ``ETag``/``If-Match``
(``hotel/static/hotel/collab.js``). All the logic lives in ``hotel/static/hotel/offers_live.js`` (shared with the
guest page of ``hotel/public_views.py``) and ``board.js``; the views here only check who
may look, hand the page its Pusher connection settings, and serve pusher-js from
``example_project/node_modules`` (``npm ci --prefix example_project``), for both pages.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET
from django.views.static import serve

from hotel.permissions import staff_hotel
from offer_realtime.events import InvalidChannelName, channel_for
from offer_realtime.settings import get_pusher_credentials, get_settings

#: Where ``npm ci --prefix example_project`` puts the browser build of pusher-js.
PUSHER_JS_DIR = Path(__file__).resolve().parent.parent / "node_modules" / "pusher-js" / "dist" / "web"


def board_config(request: HttpRequest, hotel_slug: str) -> dict[str, Any]:
    """What ``board.js`` needs, rendered into the page as a JSON script tag.

    The Pusher settings are the ones offer_realtime sends with, so the page always
    listens where the events go. ``key`` is None when Pusher is not configured
    (events are only logged); the page then shows the list without live updates.
    """
    credentials = get_pusher_credentials()
    conf = get_settings()
    try:
        channel = channel_for(conf.channel, hotel_slug)
    except InvalidChannelName:
        # offer_realtime logs and skips events for such a channel; nothing to listen to.
        channel = None
    presence = None
    if channel and conf.private and conf.presence_channel:
        # Who is online and "X is editing" (client events): the channel-auth view signs it for staff.
        try:
            presence = channel_for(conf.presence_channel, hotel_slug)
        except InvalidChannelName:
            presence = None
    return {
        "hotelSlug": hotel_slug,
        "key": credentials.key if channel else None,
        "cluster": credentials.cluster or "mt1",
        "host": credentials.host,
        "port": credentials.port,
        "ssl": credentials.ssl,
        "channel": channel,
        "private": conf.private,
        "presenceChannel": presence,
        "authEndpoint": reverse("offer_realtime:channel-auth") if conf.private else None,
        "socketIdHeader": conf.socket_id_header,
        "csrfToken": get_token(request),
        "apiUrl": reverse("staff-offer-list", kwargs={"hotel_slug": hotel_slug}),
    }


@login_required
@require_GET
def offer_board(request: HttpRequest, hotel_slug: str) -> HttpResponse:
    """The live board of one hotel, for that hotel's staff only.

    Anonymous users are sent to the login page; anyone else who is not staff of this
    hotel gets 403, whether or not the hotel exists, as the staff API answers.
    """
    hotel = staff_hotel(request.user)
    if hotel is None or hotel.slug != hotel_slug:
        raise PermissionDenied("You can only see the offers of your own hotel.")
    return render(request, "hotel/board.html", {"hotel": hotel, "config": board_config(request, hotel_slug)})


@login_required
@require_GET
def staff_home(request: HttpRequest) -> HttpResponse:
    """Send a staff member to their own hotel's board (where the login page lands)."""
    hotel = staff_hotel(request.user)
    if hotel is None:
        raise PermissionDenied("You are not a member of any hotel's staff.")
    return HttpResponseRedirect(reverse("offer-board", kwargs={"hotel_slug": hotel.slug}))


@require_GET
def pusher_js(request: HttpRequest) -> HttpResponse:
    """``pusher.min.js`` straight from node_modules, so no copy or CDN is involved.

    ``django.views.static.serve`` answers conditional requests (304) and sets the
    content type; it is fine here because it serves exactly one known file.
    """
    if not (PUSHER_JS_DIR / "pusher.min.js").is_file():
        raise Http404("pusher-js is not installed: run `npm ci --prefix example_project`.")
    return serve(request, "pusher.min.js", document_root=str(PUSHER_JS_DIR))
