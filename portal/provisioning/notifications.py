"""Emails the provisioning layer sends to people."""

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from customers.models import Customer
from orders.models import Order


def admin_url(obj: Customer | Order) -> str:
    opts = obj._meta
    path = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return settings.PORTAL_BASE_URL + path


def retries_exhausted(subject: Customer | Order) -> None:
    """One email to managers when automatic retries of a pending operation are used up."""
    kind = subject._meta.verbose_name
    send_mail(
        subject=f"OneOffice: {kind} {subject} needs attention",
        message=(
            f"The OneOffice call for {kind} {subject} is still unsettled after "
            f"{subject.attempts} attempts, and will not be retried automatically.\n\n"
            f"Last error: {subject.last_error or '(none recorded)'}\n\n"
            f"Open it, check the call log, and use Retry when OneOffice is reachable:\n"
            f"{admin_url(subject)}\n"
        ),
        from_email=None,
        recipient_list=[settings.MANAGERS_EMAIL],
    )
