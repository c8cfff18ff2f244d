from django.conf import settings
from django.db import models
from django.utils import timezone


class Provisioned(models.Model):
    """Bookkeeping the provisioning service keeps on every object it sends to OneOffice."""

    last_error = models.TextField(blank=True, editable=False)
    attempts = models.PositiveSmallIntegerField(
        default=0, editable=False, help_text="Attempts at the operation now pending."
    )
    # When an attempt at the pending operation may first have reached OneOffice; null while
    # nothing can have landed. It dates a term that is confirmed only later, and it tells
    # whether a refusal on a retry ("duplicate id") proves the earlier attempt landed.
    first_sent_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Set while one process has a vendor call about this object on the wire; a second click,
    # task or worker that finds it set does nothing. It expires, so a crashed worker cannot
    # hold it forever.
    lease_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True


class ProvisioningCall(models.Model):
    """One attempt at one OneOffice call: written before the request, completed after it."""

    class Method(models.TextChoices):
        CREATE_CUSTOMER = "createCustomer", "createCustomer"
        CREATE_FIRST_ORDER = "createFirstOrder", "createFirstOrder"
        CREATE_RENEWAL_ORDER = "createRenewalOrder", "createRenewalOrder"
        CANCEL_ORDER = "cancelOrder", "cancelOrder"
        SUSPEND_ORDER = "suspendOrder", "suspendOrder"

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in-flight", "in flight"
        OK = "ok", "ok"
        REFUSED = "refused", "refused"
        UNKNOWN = "unknown", "outcome unknown"
        NOT_SENT = "not-sent", "not sent"
        CONFIG_ERROR = "config-error", "configuration error"

    method = models.CharField(max_length=32, choices=Method.choices)
    params = models.JSONField(help_text="The params sent, exactly.")
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.PROTECT, related_name="calls"
    )
    order = models.ForeignKey(
        "orders.Order", null=True, blank=True, on_delete=models.PROTECT, related_name="calls"
    )
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    attempt = models.PositiveSmallIntegerField(default=1)
    status_before = models.CharField(max_length=16, blank=True)
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="Raw, capped.")
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, default=Outcome.IN_FLIGHT, db_index=True
    )
    error = models.TextField(blank=True)
    settled_earlier = models.BooleanField(
        default=False,
        help_text="The vendor's refusal showed that an earlier attempt had already landed.",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "OneOffice call"
        verbose_name_plural = "OneOffice call log"
        indexes = [
            models.Index(fields=["method", "outcome"]),
            # The call log's order, newest first, without sorting the whole log.
            models.Index(fields=["started_at", "id"], name="call_started_id"),
        ]

    def __str__(self) -> str:
        return f"{self.method} #{self.attempt} ({self.get_outcome_display()})"

    @property
    def triggered_by_label(self) -> str:
        return self.triggered_by.get_username() if self.triggered_by_id else "scheduler"
