"""The provisioning service: the only code that calls OneOffice, and the only writer of status
and of the fields that mirror what OneOffice holds.

Every operation has the same shape:

1. take the object's lease, a compare-and-set in a short transaction, so a double click, a
   second worker or a task delivered twice cannot put the same call on the wire twice;
2. check state and input locally; a `ProvisioningError` here means nothing was sent;
3. commit the pending state and a call-log row (first transaction);
4. call OneOffice, outside any transaction;
5. record the outcome and the mirrored state (second transaction).

When the outcome is unknown the object stays `pending`. Calling the same function again on a
pending object (by hand, or the automatic retry task) re-sends the same call with the same
ids; a refusal saying "that id exists" then proves the earlier attempt landed.

The rules (`classify` decides each failed call; the README's "Reliability rules" say the same):

- Nothing that is sent changes while a call about it is unsettled. The service sends what is
  stored and refuses an object with unsaved changes; an edit form saves a field that is sent
  only in a conditional UPDATE (editable state, lease free: `Provisioned.save_edit`).
- Proof that an earlier attempt landed, on a retry after an unknown outcome: "duplicate key" /
  "already exists" on our id (not on the email) for the create methods, "already cancelled" for
  cancelOrder, "already suspended" for suspendOrder. The operation is recorded as done.
- Ambiguous: a renewal retry refused as "more than N days left". It is true after a renewal
  that landed, and also when OneOffice's term end is later than ours. The renewal stays
  pending with the call outcome "needs a decision", under Needs attention, is not retried, and
  a person records it as renewed or not (`order_resolve_renewal`).
- Not now: 429 and 408 were not applied. The object stays pending and is retried after the
  vendor's Retry-After or the back-off, whichever is later; never final, and after an unknown
  outcome it stays unknown. A 5xx with Retry-After stays an unknown outcome, retried no earlier
  than asked. Both are "not now": the error the service raises says so and when to come back
  (`not_now`, `not_before`), and a batch pauses on that.
- Proof of OneOffice's state: a refusal such as "already cancelled" to a cancel, "already
  suspended" to a suspend, on any attempt, proves the status OneOffice holds. It changes
  nothing by itself: the subscription remembers the proof (`oneoffice_status`) and a person
  may accept it (`order_bring_in_line`, which sends nothing and records the change).
- Terms are dated on OneOffice's calendar (`terms.vendor_date`, ONEOFFICE_TIME_ZONE): a term
  starts on the vendor's date of the first attempt that may have landed, so a retry that
  crosses midnight does not move it.
"""

from portal.provisioning.errors import (
    Busy,
    ConfigurationProblem,
    InvalidInput,
    NeedsDecisionError,
    NotAllowed,
    OutcomeUnknown,
    ProvisioningError,
    StillPending,
    VendorRefused,
)
from portal.provisioning.lifecycle import client
from portal.provisioning.operations import (
    customer_register,
    customer_retry,
    order_bring_in_line,
    order_bring_in_line_refusal,
    order_cancel,
    order_needs_decision,
    order_permission_for,
    order_place,
    order_renew,
    order_renew_refusal,
    order_resolve_renewal,
    order_retry,
    order_suspend,
)
from portal.provisioning.outcomes import Decision, Settle, classify

__all__ = [
    "Busy",
    "ConfigurationProblem",
    "Decision",
    "InvalidInput",
    "NeedsDecisionError",
    "NotAllowed",
    "OutcomeUnknown",
    "ProvisioningError",
    "Settle",
    "StillPending",
    "VendorRefused",
    "classify",
    "client",
    "customer_register",
    "customer_retry",
    "order_bring_in_line",
    "order_bring_in_line_refusal",
    "order_cancel",
    "order_needs_decision",
    "order_permission_for",
    "order_place",
    "order_renew",
    "order_renew_refusal",
    "order_resolve_renewal",
    "order_retry",
    "order_suspend",
]
