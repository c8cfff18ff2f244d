"""How long a call to OneOffice keeps things taken, defined once.

The object's lease is one call; an in-flight place is one call and then as long as OneOffice
may go on working on it; a batch item's claim is the wait for an in-flight place and one call.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings

# Room for the statements around one call (the attempt before it, the outcome after it), and
# for a process paused between them.
MARGIN = timedelta(seconds=30)


def call_hold() -> timedelta:
    """The longest one call keeps anything taken: the connection's and the answer's timeouts,
    and the margin. Nothing held for a call lapses while the call is live."""
    return (
        timedelta(seconds=settings.ONEOFFICE_CONNECT_TIMEOUT + settings.ONEOFFICE_TIMEOUT) + MARGIN
    )


def after_timeout() -> timedelta:
    """How long OneOffice may go on working on a call the portal stopped waiting for
    (ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS)."""
    return timedelta(seconds=settings.ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS)


def in_flight_hold() -> timedelta:
    """An in-flight place taken for a call: a process that dies mid-call frees it only once
    OneOffice may be done with that call too."""
    return call_hold() + after_timeout()


def item_hold() -> timedelta:
    """A batch item from its start: the wait for an in-flight place, then one call."""
    return timedelta(seconds=settings.ONEOFFICE_IN_FLIGHT_WAIT_SECONDS) + call_hold()
