"""Signals for observability: hook metrics, alerting or Sentry to broadcast outcomes.

Both are sent by the thread that sent the events (a request thread in ``inline``
mode, the sender thread in ``background`` mode, the task worker in ``task`` mode).
Receivers must be quick and must not raise: exceptions they raise are logged and
ignored (``send_robust``).
"""

from django.dispatch import Signal

#: Sent after a batch of events was accepted by the backend.
#: Arguments: ``events`` (list of :class:`~offer_realtime.events.Event`), ``attempt``
#: (1 for the first try), ``backend`` (the backend instance).
broadcast_sent = Signal()

#: Sent after a batch of events failed.
#: Arguments: ``events``, ``attempt``, ``backend``, ``error`` (the exception), and
#: ``final`` (True when the events are given up; False when they will be retried).
broadcast_failed = Signal()
