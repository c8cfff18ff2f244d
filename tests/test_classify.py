"""The pure classification of a failed OneOffice call, as a table."""

from datetime import UTC, datetime

import pytest

from portal import provisioning
from portal.models import ProvisioningCall
from portal.oneoffice import api
from portal.provisioning import Settle

M = ProvisioningCall.Method
Out = ProvisioningCall.Outcome
DUPLICATE = 'duplicate key value violates unique constraint "orders_remote_id_key"'
EMAIL = 'duplicate key value violates unique constraint "users_email"'


def refused(message: str) -> api.VendorError:
    return api.VendorRefusedError(message, status=400)


@pytest.mark.parametrize(
    ("method", "exc", "landed", "outcome", "settle", "retry", "error", "proves"),
    [
        (M.CREATE_CUSTOMER, refused(DUPLICATE), True, Out.OK, Settle.DONE, False, None, ""),
        (M.CREATE_CUSTOMER, refused(DUPLICATE), False, Out.REFUSED, Settle.REFUSED, False,
         provisioning.VendorRefused, ""),
        (M.CREATE_CUSTOMER, refused(EMAIL), True, Out.REFUSED, Settle.REFUSED, False,
         provisioning.VendorRefused, ""),
        (M.CREATE_FIRST_ORDER, refused(DUPLICATE), True, Out.OK, Settle.DONE, False, None, ""),
        (M.CANCEL_ORDER, refused("order X is already cancelled"), True, Out.OK, Settle.DONE,
         False, None, ""),
        (M.SUSPEND_ORDER, refused("order X is already suspended"), True, Out.OK, Settle.DONE,
         False, None, ""),
        (M.SUSPEND_ORDER, refused("order X is already cancelled"), True, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, "cancelled"),
        # On a first attempt, the same words prove OneOffice's state; they settle nothing.
        (M.CANCEL_ORDER, refused("order X is already cancelled"), False, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, "cancelled"),
        (M.SUSPEND_ORDER, refused("order X is already suspended"), False, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, "suspended"),
        (M.SUSPEND_ORDER, refused("order X is cancelled"), False, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, "cancelled"),
        (M.CREATE_RENEWAL_ORDER, refused("order X is cancelled"), False, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, "cancelled"),
        (M.CANCEL_ORDER, refused("order X is not cancelled yet"), False, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, ""),
        (M.CANCEL_ORDER, refused("order X is already suspended"), False, Out.REFUSED,
         Settle.REFUSED, False, provisioning.VendorRefused, ""),
        # Ambiguous answers prove nothing, whatever they say.
        (M.CREATE_RENEWAL_ORDER, refused("more than 15 days left on current term"), False,
         Out.REFUSED, Settle.REFUSED, False, provisioning.VendorRefused, ""),
        (M.CREATE_RENEWAL_ORDER, refused("more than 15 days left on current term"), True,
         Out.AMBIGUOUS, Settle.PENDING, False, provisioning.NeedsDecisionError, ""),
        (M.CREATE_RENEWAL_ORDER, refused(DUPLICATE), True, Out.OK, Settle.DONE, False, None, ""),
        (M.CREATE_CUSTOMER, api.VendorConfigError("bad key", status=401), False,
         Out.CONFIG_ERROR, Settle.RESTORE, False, provisioning.ConfigurationProblem, ""),
        (M.CREATE_CUSTOMER, api.VendorConfigError("bad key", status=401), True,
         Out.CONFIG_ERROR, Settle.PENDING, False, provisioning.ConfigurationProblem, ""),
        (M.CANCEL_ORDER, api.VendorNotSentError("refused"), False, Out.NOT_SENT,
         Settle.PENDING, True, provisioning.StillPending, ""),
        (M.CANCEL_ORDER, api.VendorNotSentError("refused"), True, Out.NOT_SENT,
         Settle.PENDING, True, provisioning.OutcomeUnknown, ""),
        (M.CREATE_FIRST_ORDER, api.VendorOutcomeUnknownError("500", status=500), False,
         Out.UNKNOWN, Settle.PENDING, True, provisioning.OutcomeUnknown, ""),
    ],
)  # fmt: skip
def test_classify_decides_each_failure(method, exc, landed, outcome, settle, retry, error, proves):
    decision = provisioning.classify(method=method, exc=exc, may_have_landed=landed)

    assert decision == provisioning.Decision(
        outcome, settle, retry=retry, error=error, proves=proves
    )


LATER = datetime(2027, 3, 1, 12, 5, tzinfo=UTC)


@pytest.mark.parametrize(
    ("exc", "landed", "outcome", "error", "not_now", "not_before"),
    [
        (api.VendorNotNowError("429", status=429, retry_after=LATER), False, Out.NOT_NOW,
         provisioning.StillPending, True, LATER),
        (api.VendorNotNowError("408", status=408), False, Out.NOT_NOW,
         provisioning.StillPending, True, None),
        (api.VendorNotNowError("429", status=429), True, Out.NOT_NOW,
         provisioning.OutcomeUnknown, True, None),
        # An answer that may have been applied and names a Retry-After: unknown, and not now.
        (api.VendorOutcomeUnknownError("503", status=503, retry_after=LATER), False, Out.UNKNOWN,
         provisioning.OutcomeUnknown, True, LATER),
        (api.VendorOutcomeUnknownError("500", status=500, retry_after=LATER), True, Out.UNKNOWN,
         provisioning.OutcomeUnknown, True, LATER),
        (api.VendorOutcomeUnknownError("503", status=503), False, Out.UNKNOWN,
         provisioning.OutcomeUnknown, False, None),
        (api.VendorNotSentError("refused"), False, Out.NOT_SENT, provisioning.StillPending,
         False, None),
    ],
)  # fmt: skip
def test_classify_decides_what_not_now_means_and_until_when(
    exc, landed, outcome, error, not_now, not_before
):
    decision = provisioning.classify(method=M.CREATE_FIRST_ORDER, exc=exc, may_have_landed=landed)

    assert decision == provisioning.Decision(
        outcome,
        Settle.PENDING,
        retry=True,
        error=error,
        not_now=not_now,
        not_before=not_before,
    )


def test_classify_knows_every_method_of_the_client():
    for method in api.Method:
        decision = provisioning.classify(
            method=method, exc=refused("nothing it knows"), may_have_landed=True
        )
        assert decision.outcome == Out.REFUSED
