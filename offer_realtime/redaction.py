"""Keeping Pusher's signed query strings out of logs and signal payloads.

The ``pusher`` library signs every HTTP API call in its query string (``auth_key``,
``auth_timestamp``, ``body_md5``, ``auth_signature``), and ``requests``/``urllib3`` put that
URL in their error messages ("Max retries exceeded with url: /apps/1/events?auth_key=...")
and on the exception (``exc.request.url``). A signature is replayable until it expires and
the key names the app, so neither belongs in a log line or in an error reporter.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

REDACTED = "[redacted]"

# A query string that carries Pusher's signing parameters: all of it goes.
_SIGNED_QUERY = re.compile(r"\?(?=[^\s'\"<>]*\b(?:auth_key|auth_signature)=)[^\s'\"<>)]*")
# Any signing parameter left outside such a query string (e.g. a URL cut in two).
_SIGNED_PARAM = re.compile(r"\b(auth_key|auth_signature|auth_timestamp|body_md5)=[^&\s'\"<>)]*")


def redact(text: str) -> str:
    """``text`` with every Pusher-signed query string replaced by ``?[redacted]``."""
    text = _SIGNED_QUERY.sub("?" + REDACTED, text)
    return _SIGNED_PARAM.sub(lambda match: f"{match.group(1)}={REDACTED}", text)


def redact_exception(exc: BaseException) -> BaseException:
    """Remove signed query strings from ``exc`` and the exceptions it carries, in place.

    Covers the exception's ``args`` (hence ``str(exc)``), the URL that ``requests`` and
    ``urllib3`` keep on it (``request.url``, ``response.url``, ``url``), its cause and
    context, and ``urllib3``'s ``reason``. Returns ``exc``, so its type is unchanged.
    """
    pending: list[Any] = [exc]
    seen: set[int] = set()
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        current.args = tuple(_redact_arg(arg, pending) for arg in current.args)
        holders: tuple[Any, ...] = (current, getattr(current, "request", None), getattr(current, "response", None))
        for holder in holders:
            url = getattr(holder, "url", None)
            if isinstance(url, str):
                with contextlib.suppress(AttributeError):  # a read-only property: nothing to do there
                    holder.url = redact(url)
        pending.extend((current.__cause__, current.__context__, getattr(current, "reason", None)))
    return exc


def _redact_arg(arg: Any, pending: list[Any]) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    if isinstance(arg, BaseException):
        pending.append(arg)  # redacted in place, keeping its type
        return arg
    text = str(arg) if arg is not None else ""
    redacted = redact(text)
    return redacted if redacted != text else arg
