from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Expression, Q
from django.utils import timezone

from portal.core.ids import new_id
from portal.oneoffice import api


def lease_free_q(*, now: datetime, prefix: str = "") -> Q:
    """No request holds the lease of the object (or of the one `prefix` leads to)."""
    return Q(**{f"{prefix}lease_until__isnull": True}) | Q(**{f"{prefix}lease_until__lt": now})


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

    # Set by each model: its id field (our id, sent to OneOffice) and the id's prefix.
    ID_FIELD: str
    ID_PREFIX: str
    # The fields a call sends: they may not change while a call about the object is unsettled.
    SENT_FIELDS: tuple[str, ...]
    # Which action may start from which status; every caller asks `can()`.
    TRANSITIONS: dict[str, frozenset[str]]

    if TYPE_CHECKING:
        # Each model declares its own `status` field with its own choices.
        status: str

        def get_status_display(self) -> str: ...

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        # The id must exist before the first vendor call, so a retry can reuse it.
        if self._ensure_id() and kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = {*kwargs["update_fields"], self.ID_FIELD}
        super().save(*args, **kwargs)
        self.remember_stored(kwargs.get("update_fields"))

    def save_edit(self, fields: list[str]) -> bool:
        """Save a person's edit of `fields`, in one conditional UPDATE.

        An edit that touches a field a call sends is saved only while the object is editable
        and no request holds its lease: nothing that is sent may change while a call about it
        is unsettled. Other fields (an account manager) are saved whatever the state. False,
        with nothing saved, when the object moved on in the meantime.
        """
        rows = type(self).objects.filter(pk=self.pk)
        if set(fields) & set(self.SENT_FIELDS):
            rows = rows.filter(self.editable_q(), lease_free_q(now=timezone.now()))
        values = {name: getattr(self, name) for name in fields}
        self.updated_at = timezone.now()
        saved = rows.update(**values, updated_at=self.updated_at) == 1
        if saved:
            self.remember_stored(fields)
        return saved

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        # Kept as given and read only when asked: this runs for every row a list loads.
        instance._loaded = (field_names, values)
        return instance

    @classmethod
    def _sent_attnames(cls) -> tuple[str, ...]:
        attnames = cls.__dict__.get("_sent_attnames_cache")
        if attnames is None:
            attnames = tuple(cls._meta.get_field(name).attname for name in cls.SENT_FIELDS)
            cls._sent_attnames_cache = attnames
        return attnames

    def _stored_values(self) -> dict:
        stored = self.__dict__.get("_stored")
        if stored is None:
            field_names, values = self.__dict__.get("_loaded", ((), ()))
            wanted = set(self._sent_attnames())
            stored = {n: v for n, v in zip(field_names, values, strict=False) if n in wanted}
            self._stored = stored
        return stored

    def remember_stored(self, names=None) -> None:
        """Note the sent fields' values as stored, to tell unsaved changes later."""
        stored = self._stored_values()
        for name, attname in zip(self.SENT_FIELDS, self._sent_attnames(), strict=True):
            if attname in self.__dict__ and (names is None or name in names):
                stored[attname] = self.__dict__[attname]
        self._stored = stored

    def unsaved_fields(self) -> list[str]:
        """The sent fields whose value in this instance differs from what it read or saved."""
        stored = self._stored_values()
        return [
            name
            for name, attname in zip(self.SENT_FIELDS, self._sent_attnames(), strict=True)
            if attname in stored and self.__dict__.get(attname) != stored[attname]
        ]

    def begin_attempt(self, *, retrying: bool, action: str = "") -> list[str]:
        """An attempt at `action` is about to be sent: the object is pending until it settles.
        A retry continues the pending operation's count. Returns the fields to save."""
        if not retrying:
            self.attempts = 0
            self.first_sent_at = None
        self.attempts += 1
        self.status = self.Status.PENDING
        return ["status", "attempts", "first_sent_at", "updated_at"]

    def end_attempts(self, status: str | None = None, *, error: str = "") -> list[str]:
        """The pending operation is over: done (its outcome sets the status), or ended in
        `status` (refused, or back to what it was). Returns the fields to save."""
        fields = ["last_error", "first_sent_at", "updated_at"]
        if status is not None:
            self.status = status
            fields.append("status")
        self.last_error = error
        self.first_sent_at = None
        return fields

    def clean(self):
        super().clean()
        self._ensure_id()

    def _ensure_id(self) -> bool:
        """Generate our id when blank; True when it did."""
        if getattr(self, self.ID_FIELD):
            return False
        setattr(self, self.ID_FIELD, new_id(self.ID_PREFIX))
        return True

    @staticmethod
    def label_expression() -> Expression:
        """`str(obj)` in SQL, for labels written by the database itself."""
        raise NotImplementedError

    @classmethod
    def states_allowing(cls, action: str) -> frozenset[str]:
        """The statuses from which `action` may start."""
        return cls.TRANSITIONS[action]

    def can(self, action: str) -> bool:
        """Whether `action` may start from the object's status."""
        return self.status in self.TRANSITIONS[action]

    def can_retry(self) -> bool:
        """Whether an operation is pending, so that Retry re-sends it."""
        return self.status == self.Status.PENDING

    @property
    def is_editable(self) -> bool:
        """Whether what a call sends may still change: nothing was sent, or it was refused."""
        return self.status in self.EDITABLE_STATES

    @classmethod
    def editable_q(cls) -> Q:
        return Q(status__in=cls.EDITABLE_STATES)

    @classmethod
    def needs_attention_q(cls, *, now: datetime) -> Q:
        """Pending with no request holding the lease: an unsettled or unsent call waits on it.

        The one definition of "needs attention": list filters, counts and the dashboard use it.
        """
        return Q(status=cls.Status.PENDING) & lease_free_q(now=now)


class ProvisioningCall(models.Model):
    """One attempt at one OneOffice call: written before the request, completed after it."""

    # OneOffice's methods, as the client names them.
    Method = api.Method

    class Outcome(models.TextChoices):
        IN_FLIGHT = "in-flight", "in flight"
        OK = "ok", "ok"
        REFUSED = "refused", "refused"
        UNKNOWN = "unknown", "outcome unknown"
        NOT_SENT = "not-sent", "not sent"
        # 429 or 408: OneOffice did not apply it and asked to be called again later.
        NOT_NOW = "not-now", "not now"
        # A refusal on a retry that may mean the earlier attempt landed, or not: a person decides.
        AMBIGUOUS = "ambiguous", "needs a decision"
        CONFIG_ERROR = "config-error", "configuration error"

    method = models.CharField(max_length=32, choices=[(name, name) for name in api.Method])
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


class TwoFactorEvent(models.Model):
    """One enrolment, reset, recovery-code use or wrong code of two-factor sign-in."""

    class Kind(models.TextChoices):
        ENROLLED = "enrolled", "enrolled"
        RESET = "reset", "devices reset"
        CODE_FAILED = "code-failed", "wrong code"
        RECOVERY_USED = "recovery-used", "recovery code used"
        RECOVERY_RENEWED = "recovery-renewed", "new recovery codes"

    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the user is deleted, so the record still says whose it was.
    username = models.CharField(max_length=150)
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who reset the devices.",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "two-factor event"
        verbose_name_plural = "two-factor log"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    kind__in=[
                        "enrolled",
                        "reset",
                        "code-failed",
                        "recovery-used",
                        "recovery-renewed",
                    ]
                ),
                name="twofactorevent_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.username}: {self.get_kind_display()}"


class InFlightSlot(models.Model):
    """One of the ONEOFFICE_MAX_IN_FLIGHT places a call to OneOffice must hold while on the wire.

    Taken by compare-and-set, so any number of processes on any number of machines share the
    cap through the database; `held_until` outlives any call, so a process that dies holding a
    slot frees it by expiry.
    """

    number = models.PositiveIntegerField(unique=True)
    holder = models.CharField(max_length=64, blank=True)
    held_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return f"in-flight slot {self.number}"


class Batch(models.Model):
    """One bulk provisioning action, worked in the background item by item."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", "customers"
        ORDER = "order", "orders"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    action = models.CharField(max_length=16)
    label = models.CharField(max_length=100, help_text="The action as the person chose it.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    job = models.CharField(
        max_length=32, blank=True, help_text="The scheduled job that started it, if not a person."
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    # OneOffice said "not now": no item of the batch is sent before this.
    paused_until = models.DateTimeField(null=True, blank=True)
    # A task works the batch until then; past it with items left, the task died and the
    # resume sweep starts another.
    worked_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "batches"
        indexes = [models.Index(fields=["finished_at", "worked_until"])]

    def __str__(self) -> str:
        return f"Batch {self.pk}: {self.label} ({self.total} {self.get_kind_display()})"

    @property
    def started_by_label(self) -> str:
        if self.created_by_id:
            return self.created_by.get_username()
        return self.job or "scheduler"


class BatchItem(models.Model):
    """One object of a batch, with its own state and result."""

    class State(models.TextChoices):
        QUEUED = "queued", "waiting its turn"
        RUNNING = "running", "being sent"
        DONE = "done", "done"
        REFUSED = "refused", "refused by OneOffice"
        REJECTED = "rejected", "refused by the portal"
        UNKNOWN = "unknown", "outcome unknown"
        NOT_NOW = "not-now", "OneOffice said not now"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    object_id = models.PositiveBigIntegerField()
    object_label = models.CharField(max_length=200)
    state = models.CharField(max_length=16, choices=State.choices, default=State.QUEUED)
    message = models.TextField(blank=True)
    # Set by the claim that took the item (a worker thread claims a few at once).
    claimed_by = models.CharField(max_length=32, blank=True, editable=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "position"]
        constraints = [
            models.UniqueConstraint(fields=["batch", "object_id"], name="batch_item_once"),
            models.UniqueConstraint(fields=["batch", "position"], name="batch_item_position"),
        ]
        indexes = [
            models.Index(fields=["batch", "state", "position"]),
            # The batches an object was in: batch search and the customer page's timeline.
            models.Index(fields=["object_id", "batch"], name="batch_item_object"),
        ]

    def __str__(self) -> str:
        return f"{self.object_label}: {self.get_state_display()}"
