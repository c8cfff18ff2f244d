"""The service's errors: each says what happened in words a sales person understands, and
how the admin reports it."""

from __future__ import annotations

import logging
from datetime import datetime


class ProvisioningError(Exception):
    """The operation did not go through; the message is written for a sales person.

    `level` (a `logging` level, as Django's messages use) and `summary()` say how the admin
    reports it, so each error decides that for itself.
    """

    level = logging.ERROR
    prefix = "{subject}: not sent. "
    # The status a refusal proved OneOffice holds the subscription in (see `classify`).
    proves = ""
    # OneOffice said "not now" (see `classify`): send it nothing more before `not_before`, the
    # time it named, when it named one.
    not_now = False
    not_before: datetime | None = None

    def summary(self, subject: object) -> str:
        return self.prefix.format(subject=subject) + str(self)


class InvalidInput(ProvisioningError):
    """Local validation failed; nothing was sent. `errors` maps field names to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


class NotAllowed(ProvisioningError):
    """The object's state (or the renewal window) does not allow this; nothing was sent."""


class Busy(ProvisioningError):
    """Another request about the same object is on the wire right now; nothing was sent."""


class VendorRefused(ProvisioningError):
    """OneOffice refused; the message is its own words."""

    prefix = ""


class ConfigurationProblem(ProvisioningError):
    """The portal's OneOffice settings are wrong; an administrator must fix them."""


class StillPending(ProvisioningError):
    """The operation is not settled yet; it stays pending and is retried automatically."""

    level = logging.WARNING
    prefix = "Not sent yet. "


class OutcomeUnknown(StillPending):
    """OneOffice may or may not have applied the call; a retry with the same ids settles it."""

    prefix = "Outcome unknown. "


class NeedsDecisionError(StillPending):
    """OneOffice's answer to a retry may mean the earlier attempt landed, or not; the object
    stays pending, is not retried, and a person resolves it (`order_resolve_renewal`)."""

    prefix = "Needs a decision. "
