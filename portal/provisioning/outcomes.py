"""What a failed call means: `classify` is a pure function of the method, the error and whether
an earlier attempt may have landed. The recording of its decision is in `lifecycle`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from orders.models import Order
from portal.models import ProvisioningCall
from portal.oneoffice import api
from portal.provisioning.errors import (
    ConfigurationProblem,
    NeedsDecisionError,
    OutcomeUnknown,
    ProvisioningError,
    StillPending,
    VendorRefused,
)

Outcome = ProvisioningCall.Outcome

# Refusals that, on a retry after an unknown outcome, prove the earlier attempt landed.
# A duplicate on another column (the vendor's documented "users_email") says nothing about our id.
_ID_EXISTS = r"^(?!.*email)(?=.*(duplicate key|already exists))"
# Keyed by the method: `classify` gets its name from the call log as a plain string.
_SETTLES: dict[str, re.Pattern[str]] = {
    api.Method.CREATE_CUSTOMER: re.compile(_ID_EXISTS, re.I | re.S),
    api.Method.CREATE_FIRST_ORDER: re.compile(_ID_EXISTS, re.I | re.S),
    api.Method.CREATE_RENEWAL_ORDER: re.compile(_ID_EXISTS, re.I | re.S),
    api.Method.CANCEL_ORDER: re.compile(r"already cancel", re.I),
    api.Method.SUSPEND_ORDER: re.compile(r"already suspend", re.I),
}
# Refusals that, on a retry after an unknown outcome, may or may not mean the earlier attempt
# landed. "Too early to renew" is true after a renewal that landed, but also when OneOffice's
# term end is later than ours (its "today" in another zone, a retry that crossed midnight).
_AMBIGUOUS: dict[str, re.Pattern[str]] = {
    api.Method.CREATE_RENEWAL_ORDER: re.compile(r"more than \d+ days|days left", re.I)
}

# Refusals that prove which status OneOffice holds the subscription in, on any attempt: the
# customer cancelled directly, or another system suspended it. Nothing changes on its own; the
# call remembers the proof and a person may bring the record in line. "Too early to renew"
# proves nothing of the kind, and neither does any other refusal.
_CANCELLED = re.compile(r"already cancel|\bis cancell?ed\b", re.I)
_PROVES: dict[str, tuple[tuple[re.Pattern[str], str], ...]] = {
    api.Method.CANCEL_ORDER: ((_CANCELLED, Order.Status.CANCELLED),),
    api.Method.SUSPEND_ORDER: (
        (re.compile(r"already suspend", re.I), Order.Status.SUSPENDED),
        (_CANCELLED, Order.Status.CANCELLED),
    ),
    api.Method.CREATE_RENEWAL_ORDER: ((_CANCELLED, Order.Status.CANCELLED),),
}


def proven_status(method: str, message: str) -> str:
    """The status OneOffice's refusal `message` to `method` proves it holds; "" when none."""
    if re.search(r"\bnot\b", message, re.I):
        return ""
    for pattern, status in _PROVES.get(method, ()):
        if pattern.search(message):
            return status
    return ""


class Settle:
    """What becomes of the object after a failed call (see `Decision`)."""

    DONE = "done"  # the refusal proves an earlier attempt landed
    REFUSED = "refused"  # final: the operation's refused state
    RESTORE = "restore"  # final: nothing can have landed; back to the state before
    PENDING = "pending"  # unsettled: stays pending


@dataclass(frozen=True)
class Decision:
    """How one failed call is recorded: the call's outcome, the object's fate, whether a retry
    is scheduled, and the error the caller gets (None when the operation is done)."""

    outcome: str
    settle: str
    retry: bool
    error: type[ProvisioningError] | None
    # A refusal that proves the subscription's status at OneOffice: that status.
    proves: str = ""
    # OneOffice asked to be called again later: nothing more is sent to it before `not_before`
    # (the time it named, if it named one).
    not_now: bool = False
    not_before: datetime | None = None


def classify(*, method: str, exc: api.VendorError, may_have_landed: bool) -> Decision:
    """The decision for a failed call of `method`, given whether an earlier attempt at the same
    operation may have reached OneOffice. Pure: no database, no clock."""
    if isinstance(exc, api.VendorRefusedError):
        if may_have_landed and _SETTLES[method].search(exc.message):
            return Decision(Outcome.OK, Settle.DONE, retry=False, error=None)
        if may_have_landed and method in _AMBIGUOUS and _AMBIGUOUS[method].search(exc.message):
            return Decision(
                Outcome.AMBIGUOUS, Settle.PENDING, retry=False, error=NeedsDecisionError
            )
        return Decision(
            Outcome.REFUSED,
            Settle.REFUSED,
            retry=False,
            error=VendorRefused,
            proves=proven_status(method, exc.message),
        )
    if isinstance(exc, api.VendorConfigError):
        # A person fixes the settings, then retries by hand; an earlier attempt that may have
        # landed keeps the object pending until then.
        settle = Settle.PENDING if may_have_landed else Settle.RESTORE
        return Decision(Outcome.CONFIG_ERROR, settle, retry=False, error=ConfigurationProblem)
    if isinstance(exc, api.VendorNotSentError | api.VendorNotNowError):
        # Not applied, and never final: an earlier attempt may still have landed.
        error = OutcomeUnknown if may_have_landed else StillPending
        if isinstance(exc, api.VendorNotSentError):
            return Decision(Outcome.NOT_SENT, Settle.PENDING, retry=True, error=error)
        return Decision(
            Outcome.NOT_NOW,
            Settle.PENDING,
            retry=True,
            error=error,
            not_now=True,
            not_before=exc.retry_after,
        )
    # Any other answer that names a Retry-After (a 503 in practice) says "not now" too, though
    # the call may have been applied all the same.
    return Decision(
        Outcome.UNKNOWN,
        Settle.PENDING,
        retry=True,
        error=OutcomeUnknown,
        not_now=exc.retry_after is not None,
        not_before=exc.retry_after,
    )
