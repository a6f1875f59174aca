"""Pluggable backends that send events, chosen by ``OFFER_REALTIME["BACKEND"]``.

The backend is built once from the setting and rebuilt when the setting changes.
:func:`use_backend` swaps in another instance for a while (the testing helpers use it);
it is process-wide on purpose, so events sent from a live-server thread are seen too.
Only what is delivered inline while it is in force goes to it: the background sender
and the task worker always send with :func:`configured_backend`, so the events of
writes made before an override started never land in it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.utils.module_loading import import_string

from offer_realtime.backends.base import BaseBackend
from offer_realtime.settings import WATCHED_SETTINGS, get_settings

__all__ = [
    "BaseBackend",
    "configured_backend",
    "get_backend",
    "load_backend",
    "overridden",
    "reset_backend",
    "use_backend",
]

_lock = threading.Lock()
_configured: BaseBackend | None = None
_overrides: list[BaseBackend] = []


def load_backend(path: str) -> BaseBackend:
    """Instantiate the backend class at dotted ``path``."""
    try:
        backend_class = import_string(path)
    except ImportError as exc:
        raise ImproperlyConfigured(f"OFFER_REALTIME['BACKEND'] {path!r} cannot be imported: {exc}") from exc
    backend: BaseBackend = backend_class()
    return backend


def get_backend() -> BaseBackend:
    """The backend events are sent with right now: an override, else the configured one."""
    if _overrides:
        return _overrides[-1]
    return configured_backend()


def configured_backend() -> BaseBackend:
    """The backend ``OFFER_REALTIME["BACKEND"]`` selects, whatever override is in force."""
    global _configured
    backend = _configured  # one read: reset_backend() may clear it meanwhile
    if backend is None:
        with _lock:
            if _configured is None:
                _configured = load_backend(get_settings().backend)
            backend = _configured
    return backend


def overridden() -> bool:
    """Whether :func:`use_backend` is in force (the testing helpers deliver inline then)."""
    return bool(_overrides)


def reset_backend() -> None:
    """Forget the configured backend; the next send builds it from the settings again."""
    global _configured
    with _lock:
        old, _configured = _configured, None
    if old is not None:
        old.close()


def _reset_on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # BACKEND and the PUSHER_* credentials decide which backend is built, and how.
    if setting in WATCHED_SETTINGS:
        reset_backend()


setting_changed.connect(_reset_on_setting_changed, dispatch_uid="offer_realtime.backends.reset")


@contextlib.contextmanager
def use_backend(backend: BaseBackend) -> Iterator[BaseBackend]:
    """Send every event through ``backend`` inside the block (all threads)."""
    _overrides.append(backend)
    try:
        yield backend
    finally:
        _overrides.remove(backend)
