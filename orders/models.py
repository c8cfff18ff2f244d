from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orders.renewals import terms
from orders.renewals.terms import vendor_date
from portal.core.ids import MAX_LENGTH, validate_remote_id
from portal.core.inputs import AsciiPositiveIntegerField
from portal.models import Provisioned, lease_free_q

MAX_LICENSES = 100_000
MONEY = {"max_digits": 14, "decimal_places": 2}


class OrderStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    PENDING = "pending", "pending"
    ACTIVE = "active", "active"
    SUSPENDED = "suspended", "suspended"
    CANCELLED = "cancelled", "cancelled"
    FAILED = "failed", "failed"


class Product(models.TextChoices):
    OO_LITE = "oo-lite", "OneOffice Lite (oo-lite)"
    OO_STD = "oo-std", "OneOffice Standard (oo-std)"
    OO_ENT = "oo-ent", "OneOffice Enterprise (oo-ent)"
    ERP_STD = "erp-std", "ERP Standard (erp-std)"
    ERP_ADMIN = "erp-admin", "ERP Admin (erp-admin)"
    ERP_LIM = "erp-lim", "ERP Limited (erp-lim)"


class Duration(models.TextChoices):
    MONTHLY = "monthly", "monthly"
    YEARLY = "yearly", "yearly"


class Action(models.TextChoices):
    PLACE = "place", "place"
    RENEW = "renew", "renew"
    CANCEL = "cancel", "cancel"
    SUSPEND = "suspend", "suspend"
    # Nothing is sent: the portal's record takes the status OneOffice is proven to hold.
    ALIGN = "align", "bring in line with OneOffice"


# Which action may start from which status of a subscription (first order). Renewals are rows
# of their own that are only retried; a pending object is only retried (`can_retry`).
TRANSITIONS = {
    Action.PLACE: frozenset({OrderStatus.DRAFT, OrderStatus.FAILED}),
    Action.RENEW: frozenset({OrderStatus.ACTIVE, OrderStatus.SUSPENDED}),
    Action.SUSPEND: frozenset({OrderStatus.ACTIVE}),
    Action.CANCEL: frozenset({OrderStatus.ACTIVE, OrderStatus.SUSPENDED}),
    # A placed subscription with no call unsettled: pending ones wait for their outcome.
    Action.ALIGN: frozenset({OrderStatus.ACTIVE, OrderStatus.SUSPENDED, OrderStatus.CANCELLED}),
}
# What each status OneOffice can be proven to hold is brought in line by: the permission of
# the action that would have made it so (whoever may cancel may record that it is cancelled).
ALIGN_PERMISSIONS = {
    OrderStatus.CANCELLED: "cancel_order",
    OrderStatus.SUSPENDED: "suspend_order",
    OrderStatus.ACTIVE: "renew_order",
}


class Order(Provisioned):
    """An order as OneOffice holds it under `number`.

    A first order (no parent) is also the subscription: every later call names it, and it
    carries the subscription's status and `current_term_end`. A renewal points at it.
    """

    Status = OrderStatus
    Product = Product
    Duration = Duration
    Action = Action
    TRANSITIONS = TRANSITIONS
    # What placing sends may change only while nothing is (or was successfully) sent.
    EDITABLE_STATES = TRANSITIONS[Action.PLACE]
    SENT_FIELDS = ("number", "customer", "product", "licenses", "duration")
    ID_FIELD = "number"
    ID_PREFIX = "O"

    number = models.CharField(
        "order id",
        max_length=MAX_LENGTH,
        unique=True,
        blank=True,
        validators=[validate_remote_id],
        help_text="Sent to OneOffice as the order's id. Left blank, one is generated.",
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="orders"
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="renewals",
        editable=False,
        help_text="The first order this renews; empty for a first order.",
    )
    product = models.CharField(max_length=16, choices=Product.choices)
    licenses = AsciiPositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(MAX_LICENSES)]
    )
    duration = models.CharField(max_length=16, choices=Duration.choices)
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False, db_index=True
    )
    pending_action = models.CharField(
        max_length=16, choices=Action.choices, blank=True, editable=False
    )
    term_start = models.DateField(null=True, blank=True, editable=False)
    term_end = models.DateField(null=True, blank=True, editable=False)
    current_term_end = models.DateField(
        null=True,
        blank=True,
        editable=False,
        db_index=True,
        help_text="End of the subscription's latest confirmed term (first orders only).",
    )
    discount_percent = models.DecimalField(
        "discount %",
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        blank=True,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Off the price list, within the maximum managers allow. Renewals keep it.",
    )
    # Recorded when the term is confirmed, from the price list on the day the term starts, and
    # never recomputed: a later price change leaves this order as it was sold.
    unit_price = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, editable=False
    )
    currency = models.CharField(max_length=3, blank=True, editable=False)
    price = models.ForeignKey(
        "orders.Price",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="orders",
        editable=False,
        help_text="The price-list line this term was sold at.",
    )
    value = models.DecimalField(
        **MONEY,
        null=True,
        blank=True,
        editable=False,
        help_text="Licenses × unit price × (1 − discount), rounded once; empty: no price.",
    )
    current_value = models.DecimalField(
        "current term value",
        **MONEY,
        null=True,
        blank=True,
        editable=False,
        help_text="Value of the subscription's latest confirmed term (first orders only).",
    )
    current_currency = models.CharField(max_length=3, blank=True, editable=False)
    # What OneOffice's answer proved it holds when that differs from our status (a refusal
    # such as "already cancelled"), and the call that said so. Bring in line with OneOffice
    # settles it; any later change of status makes it stale, and clears it.
    oneoffice_status = models.CharField(
        "OneOffice holds it as",
        max_length=16,
        choices=Status.choices,
        blank=True,
        editable=False,
    )
    oneoffice_status_call = models.ForeignKey(
        "portal.ProvisioningCall",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    auto_renew = models.BooleanField(
        "auto-renew",
        default=False,
        help_text="Renew automatically shortly before each term ends (subscriptions only). "
        "Left unticked on a new order, it takes the customer's default.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [
            ("place_order", "Can place orders on OneOffice"),
            ("renew_order", "Can renew subscriptions on OneOffice"),
            ("suspend_order", "Can suspend subscriptions on OneOffice"),
            ("cancel_order", "Can cancel subscriptions on OneOffice"),
            ("export_order", "Can export the order list"),
        ]
        # The order list's first page: subscriptions (parent IS NULL), newest first. SQLite
        # serves it from the composite index, PostgreSQL only from the partial one; without
        # them, every page sorts all subscriptions.
        indexes = [
            models.Index(fields=["parent", "created_at"], name="order_subscription_created"),
            models.Index(
                fields=["created_at", "id"],
                condition=Q(parent__isnull=True),
                name="order_subscription_newest",
            ),
            # The date hierarchy's first and last term end among subscriptions.
            models.Index(fields=["parent", "current_term_end"], name="order_subscription_term"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(licenses__gte=1, licenses__lte=MAX_LICENSES),
                name="order_licenses_in_range",
            ),
            models.CheckConstraint(
                condition=Q(product__in=Product.values), name="order_product_valid"
            ),
            models.CheckConstraint(
                condition=Q(duration__in=Duration.values), name="order_duration_valid"
            ),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="order_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(status=OrderStatus.PENDING) | Q(pending_action=""),
                name="order_pending_action_only_when_pending",
            ),
            models.CheckConstraint(
                condition=Q(parent__isnull=True) | Q(current_term_end__isnull=True),
                name="order_current_term_end_on_first_orders",
            ),
            models.CheckConstraint(condition=~Q(parent=F("id")), name="order_not_own_parent"),
            models.CheckConstraint(condition=~Q(number=""), name="order_number_not_blank"),
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0, discount_percent__lte=100),
                name="order_discount_in_range",
            ),
            # One renewal in flight per subscription: a second click cannot make a second one.
            models.UniqueConstraint(
                fields=["parent"],
                condition=Q(status=OrderStatus.PENDING),
                name="order_one_pending_renewal",
                violation_error_message="A renewal of this subscription is already in progress.",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    @staticmethod
    def label_expression() -> F:
        """`str(order)` in SQL, for labels written by the database itself."""
        return F("number")

    def clean(self):
        super().clean()
        if self.parent_id is not None:
            if self.parent.parent_id is not None:
                raise ValidationError({"parent": "A renewal must point at a first order."})
            if self.customer_id != self.parent.customer_id:
                raise ValidationError(
                    {"parent": "A renewal belongs to its first order's customer."}
                )
        if self.discount_percent is None:
            self.discount_percent = Decimal("0")
        # Only while the order may still change: a later, lower maximum binds new sales, not
        # the subscriptions already sold.
        if self.is_editable and self.discount_percent is not None:
            limit = DiscountPolicy.max_discount()
            if self.discount_percent > limit:
                raise ValidationError(
                    {
                        "discount_percent": f"At most {limit}% discount is allowed "
                        "(set by managers under Discount policy)."
                    }
                )

    @property
    def is_first_order(self) -> bool:
        return self.parent_id is None

    def record_change(
        self,
        kind: str,
        *,
        status_before: str,
        effective_on: date,
        call=None,
        by=None,
        renewal: "Order | None" = None,
        note: str = "",
    ) -> "SubscriptionChange":
        """Record, in the caller's transaction, a change this subscription just went through;
        its status after is the one it holds now. `by` defaults to whoever started `call`."""
        if by is None and call is not None:
            by_id = call.triggered_by_id
        else:
            by_id = by.pk if by is not None and by.pk else None
        return SubscriptionChange.objects.create(
            subscription=self,
            kind=kind,
            status_before=status_before,
            status_after=self.status,
            effective_on=effective_on,
            call=call,
            by_id=by_id,
            renewal=renewal,
            note=note,
        )

    def move_to(
        self,
        status: str,
        *,
        kind: str,
        effective_on: date,
        status_before: str | None = None,
        call=None,
        by=None,
        renewal: "Order | None" = None,
        note: str = "",
    ) -> list[str]:
        """The subscription takes `status`, and the change is recorded (`record_change`, in
        the caller's transaction). Returns the fields the caller saves with its outcome.

        `status_before` is the status the change started from when the row holds another
        (pending, while the call was unsettled). Whatever OneOffice's earlier answer proved is
        settled by the change, and forgotten.
        """
        before = self.status if status_before is None else status_before
        self.status = status
        self.oneoffice_status = ""
        self.oneoffice_status_call = None
        self.record_change(
            kind,
            status_before=before,
            effective_on=effective_on,
            call=call,
            by=by,
            renewal=renewal,
            note=note,
        )
        return ["status", "oneoffice_status", "oneoffice_status_call"]

    def begin_attempt(self, *, retrying: bool, action: str = "") -> list[str]:
        fields = super().begin_attempt(retrying=retrying, action=action)
        self.pending_action = action or self.pending_action
        return [*fields, "pending_action"]

    def end_attempts(self, status: str | None = None, *, error: str = "") -> list[str]:
        self.pending_action = ""
        return [*super().end_attempts(status, error=error), "pending_action"]

    def confirm_term(self, start: date) -> list[str]:
        """OneOffice confirmed this order's term from `start`: it is active, for one term of
        its duration (a first order also starts its subscription's term end there). Returns
        the fields to save."""
        self.status = OrderStatus.ACTIVE
        self.term_start = start
        self.term_end = terms.term_end(start, self.duration)
        fields = ["status", "term_start", "term_end"]
        if self.is_first_order:
            self.current_term_end = self.term_end
            fields.append("current_term_end")
        return fields

    def extend_to(self, term_end: date) -> list[str]:
        """A confirmed renewal moves the subscription's term end on to `term_end`; OneOffice
        reactivates a suspended subscription that is renewed. Returns the fields to save; the
        caller records the change (`record_change`) once the row is written, since under a
        lapsed lease it re-reads the row and extends that instead."""
        self.current_term_end = term_end
        if self.status == OrderStatus.SUSPENDED:
            self.status = OrderStatus.ACTIVE
        self.oneoffice_status = ""
        self.oneoffice_status_call = None
        return ["current_term_end", "status", "oneoffice_status", "oneoffice_status_call"]

    def note_oneoffice_status(self, status: str, call) -> list[str]:
        """Remember that OneOffice's answer in `call` proves it holds this subscription as
        `status`; nothing changes until a person brings the record in line. Returns the fields
        to save (none when the portal already agrees)."""
        if status == self.status or not self.is_first_order:
            return []
        self.oneoffice_status = status
        self.oneoffice_status_call = call
        return ["oneoffice_status", "oneoffice_status_call"]

    @property
    def out_of_line(self) -> bool:
        """Whether OneOffice is proven to hold this subscription in another status."""
        return bool(self.oneoffice_status) and self.oneoffice_status != self.status

    def can(self, action: str) -> bool:
        """Whether `action` may start: on a subscription (first order), from its status."""
        return self.is_first_order and super().can(action)

    @property
    def is_editable(self) -> bool:
        """Whether what placing sends may still change (first orders not yet placed)."""
        return self.is_first_order and super().is_editable

    @classmethod
    def editable_q(cls) -> Q:
        return Q(parent__isnull=True) & super().editable_q()

    @classmethod
    def needs_attention_q(cls, *, now: datetime) -> Q:
        """Pending with no request working on it. A renewal's call runs under its
        subscription's lease, so a renewal on the wire does not need attention."""
        return super().needs_attention_q(now=now) & (
            Q(parent__isnull=True) | lease_free_q(now=now, prefix="parent__")
        )


class Price(models.Model):
    """One line of the price list: from `valid_from` on, a product's unit price for one term.

    The line in force on a day is the newest one whose `valid_from` is on or before it, unless
    a correction supersedes it. A line that priced a sale, or whose date has come, is never
    changed or deleted: every order points at the line it was sold at. A typo in a line already
    in force is corrected by a new line from the same date that supersedes it (`corrects`),
    recorded with who made it and why.
    """

    product = models.CharField(max_length=16, choices=Product.choices)
    duration = models.CharField(max_length=16, choices=Duration.choices)
    unit_price = models.DecimalField(
        "unit price",
        max_digits=12,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Per license, per term (one month or one year), before any discount.",
    )
    currency = models.CharField(max_length=3, editable=False)
    valid_from = models.DateField(
        "valid from",
        help_text="Applies to terms starting on or after this date (OneOffice's calendar).",
    )
    corrects = models.OneToOneField(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="correction",
        editable=False,
        help_text="The line this one corrects: from the same date, it is no longer in force.",
    )
    reason = models.TextField(
        blank=True, help_text="Why the line it corrects was wrong (required for a correction)."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["product", "duration", "-valid_from", "-id"]
        verbose_name = "price"
        verbose_name_plural = "price list"
        constraints = [
            models.UniqueConstraint(
                fields=["product", "duration", "currency", "valid_from"],
                condition=Q(corrects__isnull=True),
                name="price_one_per_day",
                violation_error_message="This product and duration already has a price from "
                "that date.",
            ),
            models.CheckConstraint(condition=Q(unit_price__gte=0), name="price_not_negative"),
            models.CheckConstraint(
                condition=Q(corrects__isnull=True) | ~Q(reason=""),
                name="price_correction_has_reason",
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.product} {self.duration}: {self.unit_price} {self.currency} "
            f"from {self.valid_from:%Y-%m-%d}"
        )

    def save(self, *args, **kwargs):
        if not self.currency:
            self.currency = settings.PORTAL_CURRENCY
        super().save(*args, **kwargs)

    @property
    def is_history(self) -> bool:
        """Whether the line's date has come on OneOffice's calendar, the one terms start on."""
        return self.valid_from is not None and self.valid_from <= vendor_date()

    @property
    def is_sold(self) -> bool:
        """Whether an order was sold at this line."""
        return self.pk is not None and self.orders.exists()

    @property
    def is_locked(self) -> bool:
        """Neither changed nor deleted: in force or past, sold at, or corrected."""
        return (
            self.is_history
            or self.is_sold
            or (self.pk is not None and Price.objects.filter(corrects=self.pk).exists())
        )

    def clean(self):
        super().clean()
        today = vendor_date()
        if self.pk is not None:
            stored = Price.objects.filter(pk=self.pk).first()
            if stored is not None and stored.is_locked:
                raise ValidationError(
                    f"This price {stored.locked_reason()}: it is not changed. "
                    "Correct it with a new line instead."
                )
        if self.corrects_id is not None:
            self._clean_correction(today)
            return
        if self.valid_from is not None and self.valid_from < today:
            raise ValidationError(
                {"valid_from": "A new price starts today or later; the past is not rewritten."}
            )
        # The form leaves out the currency, so Django would not check this constraint itself.
        same_day = Price.objects.filter(
            product=self.product,
            duration=self.duration,
            currency=self.currency or settings.PORTAL_CURRENCY,
            valid_from=self.valid_from,
            corrects__isnull=True,
        ).exclude(pk=self.pk)
        if same_day.exists():
            raise ValidationError(
                {
                    "valid_from": "This product and duration already has a price from that "
                    "date. To fix a mistake in it, open it and choose Correct this price."
                }
            )

    def _clean_correction(self, today: date) -> None:
        wrong = self.corrects
        if wrong is None:
            return
        if Price.objects.filter(corrects=wrong).exclude(pk=self.pk).exists():
            raise ValidationError("This line was already corrected: correct the correction.")
        if wrong.valid_from < today:
            raise ValidationError(
                f"Only a price from today or later is corrected; this one applies since "
                f"{wrong.valid_from:%d %b %Y}. Add a new line from the date the new price starts."
            )
        if not self.reason.strip():
            raise ValidationError({"reason": "Say why the price is corrected."})
        self.product, self.duration = wrong.product, wrong.duration
        self.currency, self.valid_from = wrong.currency, wrong.valid_from

    def locked_reason(self) -> str:
        if self.pk is not None and Price.objects.filter(corrects=self.pk).exists():
            return "was corrected by a later line"
        if self.is_sold:
            return "priced a sale"
        return f"applies since {self.valid_from:%d %b %Y}"


class DiscountPolicy(models.Model):
    """What managers allow sales staff: one row, the largest discount on an order."""

    max_discount_percent = models.DecimalField(
        "maximum discount %",
        max_digits=5,
        decimal_places=2,
        default=Decimal("0"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))],
        help_text="Sales staff may give at most this discount per order; 0 allows none.",
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "discount policy"
        verbose_name_plural = "discount policy"
        constraints = [
            models.CheckConstraint(condition=Q(pk=1), name="discount_policy_single_row"),
            models.CheckConstraint(
                condition=Q(max_discount_percent__gte=0, max_discount_percent__lte=100),
                name="discount_policy_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"at most {self.max_discount_percent}% discount"

    def save(self, *args, **kwargs):
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def max_discount(cls) -> Decimal:
        """The largest discount allowed now; none until managers set one."""
        limit = cls.objects.filter(pk=1).values_list("max_discount_percent", flat=True).first()
        return limit if limit is not None else Decimal("0")


class ReminderRun(models.Model):
    """One run of the daily renewal reminder job: what it found and what it sent."""

    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    due_count = models.PositiveIntegerField("due", default=0)
    lapsed_count = models.PositiveIntegerField("lapsed", default=0)
    sent_count = models.PositiveIntegerField(
        "reminders sent", default=0, help_text="Subscriptions reminded by this run."
    )
    emails_sent = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = "reminder run"

    def __str__(self) -> str:
        return f"reminder run {timezone.localtime(self.started_at):%Y-%m-%d %H:%M}"


class RenewalReminder(models.Model):
    """A renewal reminder for one subscription's term.

    The row is written before the email is sent, and only one regular (not forced) reminder may
    exist per subscription and term: that is what stops two runs, even on two clusters at
    once, from reminding the same term twice. Forced re-sends from the admin are extra rows.
    """

    subscription = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="reminders")
    term_end = models.DateField(help_text="The term end this reminder was about.")
    run = models.ForeignKey(
        ReminderRun,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reminders",
        help_text="Empty for a re-send from the admin.",
    )
    sent_at = models.DateTimeField(
        null=True, blank=True, help_text="Empty while the email has not gone out."
    )
    recipients = models.TextField(blank=True)
    forced = models.BooleanField(
        "re-sent by hand", default=False, help_text="Sent again from the admin."
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        permissions = [("resend_reminder", "Can re-send renewal reminders")]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "term_end"],
                condition=Q(forced=False),
                name="renewal_reminder_once_per_term",
            ),
        ]
        indexes = [
            models.Index(fields=["subscription", "sent_at"]),
            models.Index(fields=["created_at", "id"], name="reminder_created_id"),
        ]

    def __str__(self) -> str:
        return f"reminder for {self.subscription_id} (term ends {self.term_end:%Y-%m-%d})"


class AutoRenewal(models.Model):
    """The claim of one automatic renewal of one subscription's term.

    Written, with its batch, before anything is sent; one per subscription and term end, so
    two runs of the job, two clusters or a run after a crash can never renew a term twice.
    """

    subscription = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="auto_renewals")
    term_end = models.DateField(help_text="The term end this renewal was about.")
    batch = models.ForeignKey(
        "portal.Batch", on_delete=models.PROTECT, related_name="auto_renewals"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription", "term_end"], name="auto_renewal_once_per_term"
            ),
        ]

    def __str__(self) -> str:
        return f"auto-renewal of {self.subscription_id} (term ends {self.term_end:%Y-%m-%d})"


class SubscriptionChange(models.Model):
    """One change of a subscription, recorded when it happened: what, the day it took effect
    on OneOffice's calendar, who, and on what grounds.

    The provisioning service writes one with every outcome that changes a subscription
    (placed, renewed, suspended, cancelled); bringing a record in line with what OneOffice
    holds, and importing it, write theirs. Money figures read here when a subscription started
    or stopped counting; timelines read what happened.
    """

    class Kind(models.TextChoices):
        PLACED = "placed", "placed"
        RENEWED = "renewed", "renewed"
        SUSPENDED = "suspended", "suspended"
        CANCELLED = "cancelled", "cancelled"
        ALIGNED = "aligned", "brought in line with OneOffice"
        IMPORTED = "imported", "imported"

    subscription = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="changes")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status_before = models.CharField(max_length=16, choices=OrderStatus.choices, blank=True)
    status_after = models.CharField(max_length=16, choices=OrderStatus.choices)
    effective_on = models.DateField(help_text="The day it took effect, on OneOffice's calendar.")
    recorded_at = models.DateTimeField(default=timezone.now)
    renewal = models.ForeignKey(
        Order,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The renewal order that made this change.",
    )
    call = models.ForeignKey(
        "portal.ProvisioningCall",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The OneOffice call whose outcome this is; empty when nothing was sent.",
    )
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True, help_text="What OneOffice said, or where it came from.")

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [
            models.Index(fields=["subscription", "recorded_at"], name="change_subscription_at"),
            models.Index(fields=["kind", "effective_on"], name="change_kind_on"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    kind__in=["placed", "renewed", "suspended", "cancelled", "aligned", "imported"]
                ),
                name="subscription_change_kind_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subscription_id}: {self.get_kind_display()} on {self.effective_on:%Y-%m-%d}"


class RenewalDue(Order):
    """Subscriptions due for renewal, as the admin's "Renewals due" page lists them."""

    class Meta:
        proxy = True
        default_permissions = ()
        verbose_name = "renewal due"
        verbose_name_plural = "renewals due"
