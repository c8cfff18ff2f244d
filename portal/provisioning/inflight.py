"""The cap on calls in flight to OneOffice, shared by every process through the database.

The cap is for OneOffice: a place stays taken while OneOffice may still be working on its call.
ONEOFFICE_MAX_IN_FLIGHT rows of `InFlightSlot` are the places; a call takes a free one with a
compare-and-set UPDATE before it is sent, and frees it once OneOffice answered or the request
never reached it. A call the portal stopped waiting for (a timeout, a dropped connection)
keeps its place ONEOFFICE_IN_FLIGHT_AFTER_TIMEOUT_SECONDS more, and a process that dies holding
a place frees it by expiry, after the longest call and that time again. The same two
statements work on SQLite and PostgreSQL: no advisory locks, no Redis.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from portal.models import InFlightSlot
from portal.oneoffice import api
from portal.provisioning import holds


class NoSlot(api.VendorNotSentError):
    """No slot came free within ONEOFFICE_IN_FLIGHT_WAIT_SECONDS: the call was not sent, and the
    service treats it as any call that never left (pending, retried automatically)."""


def _free_q(now) -> Q:
    return Q(held_until__isnull=True) | Q(held_until__lt=now)


def _ensure_slots(cap: int) -> None:
    InFlightSlot.objects.bulk_create(
        [InFlightSlot(number=number) for number in range(cap)], ignore_conflicts=True
    )


def _take(cap: int, holder: str) -> bool:
    now = timezone.now()
    free = InFlightSlot.objects.filter(_free_q(now), number__lt=cap)
    # The subquery picks a free slot; the outer condition is checked again on the row itself,
    # so of two processes that picked the same slot only one gets it.
    chosen = free.order_by("?").values("pk")[:1]
    taken = InFlightSlot.objects.filter(_free_q(now), pk__in=chosen).update(
        holder=holder, held_until=now + holds.in_flight_hold()
    )
    return taken == 1


@contextmanager
def slot() -> Iterator[None]:
    """Hold one of the ONEOFFICE_MAX_IN_FLIGHT places for the duration of one call, and
    longer when the call ends while OneOffice may still be working on it.

    Waits, polling, while all are taken, at most ONEOFFICE_IN_FLIGHT_WAIT_SECONDS, then raises
    `NoSlot`. Must run outside any transaction, like the call it guards.
    """
    cap = settings.ONEOFFICE_MAX_IN_FLIGHT
    holder = secrets.token_hex(16)
    deadline = time.monotonic() + settings.ONEOFFICE_IN_FLIGHT_WAIT_SECONDS
    pause = 0.005
    ensured = False
    misses = 0
    while True:
        if _take(cap, holder):
            break
        misses += 1
        if misses < 3:
            # Most misses are another process taking the slot picked at the same moment, with
            # others still free: try again at once.
            continue
        if not ensured:
            # Slots are created on first need, and again when the setting grows.
            ensured = True
            if InFlightSlot.objects.filter(number__lt=cap).count() < cap:
                _ensure_slots(cap)
                continue
        if time.monotonic() >= deadline:
            raise NoSlot(
                f"{cap} calls to OneOffice were already in flight for "
                f"{settings.ONEOFFICE_IN_FLIGHT_WAIT_SECONDS} s (ONEOFFICE_MAX_IN_FLIGHT); "
                "nothing was sent."
            )
        time.sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 0.05)
    answered = False
    try:
        yield
        answered = True
    except api.VendorError as exc:
        answered = not exc.abandoned
        raise
    finally:
        # Only our own hold: one that expired under us may belong to someone else by now.
        ours = InFlightSlot.objects.filter(holder=holder)
        if answered:
            ours.update(holder="", held_until=None)
        else:
            # OneOffice may still be working on the call (or whatever stopped it is unknown):
            # the place stays taken until it may be done, then frees by expiry.
            ours.update(held_until=timezone.now() + holds.after_timeout())
