from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Value
from django.db.models.functions import Concat, Upper

from portal.core.ids import MAX_LENGTH, validate_remote_id
from portal.core.inputs import validate_plain_text
from portal.models import Provisioned

validate_phone = RegexValidator(
    r"\A\+?[0-9][0-9 ()-]{4,28}[0-9]\Z",
    "Enter a phone number of digits, optionally starting with '+', "
    "with spaces, '-' or brackets between them.",
    code="invalid_phone",
)


class CustomerStatus(models.TextChoices):
    DRAFT = "draft", "draft"
    PENDING = "pending", "pending"
    REGISTERED = "registered", "registered"
    FAILED = "failed", "failed"


class CustomerAction(models.TextChoices):
    REGISTER = "register", "register"


class Customer(Provisioned):
    """A company we sell to, mirroring the customer OneOffice holds under `code`."""

    Status = CustomerStatus
    Action = CustomerAction
    # Which action may start from which status. Pending objects are only retried (`can_retry`).
    TRANSITIONS = {Action.REGISTER: frozenset({Status.DRAFT, Status.FAILED})}
    # What registration sends may change only while nothing is (or was successfully) sent.
    EDITABLE_STATES = TRANSITIONS[Action.REGISTER]
    SENT_FIELDS = ("code", "name", "admin_email", "admin_phone", "admin_display_name")
    # What registering records from OneOffice's answer (or that it is unknown).
    MIRRORED_FIELDS = (
        "details_unknown",
        "oneoffice_id",
        "partner",
        "remote_created_at",
        "is_active",
        "onboarding_url",
    )
    ID_FIELD = "code"
    ID_PREFIX = "C"

    code = models.CharField(
        "customer id",
        max_length=MAX_LENGTH,
        unique=True,
        blank=True,
        validators=[validate_remote_id],
        help_text="Sent to OneOffice as the customer's id. Left blank, one is generated.",
    )
    name = models.CharField(max_length=200, validators=[validate_plain_text])
    admin_email = models.EmailField("admin email")
    admin_phone = models.CharField("admin phone", max_length=32, validators=[validate_phone])
    admin_display_name = models.CharField(
        "admin display name", max_length=200, validators=[validate_plain_text]
    )
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        limit_choices_to={"is_staff": True},
        related_name="managed_customers",
    )
    auto_renew_default = models.BooleanField(
        "auto-renew new orders",
        default=False,
        help_text="New orders of this customer are marked auto-renew.",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, editable=False, db_index=True
    )
    # What OneOffice returned on registration.
    oneoffice_id = models.CharField("OneOffice id", max_length=64, blank=True, editable=False)
    partner = models.CharField(max_length=64, blank=True, editable=False)
    remote_created_at = models.DateTimeField(
        "created on OneOffice", null=True, blank=True, editable=False
    )
    is_active = models.BooleanField("active on OneOffice", null=True, editable=False)
    onboarding_url = models.URLField(max_length=500, blank=True, editable=False)
    details_unknown = models.BooleanField(
        "OneOffice details unknown",
        default=False,
        editable=False,
        help_text="Registration was settled by a duplicate-id answer to a retry: OneOffice "
        "holds the customer, but its id, partner and onboarding link were never returned.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "code"]
        permissions = [("register_customer", "Can register customers on OneOffice")]
        # The list's order, and search by name prefix (see portal.admin.changelists).
        indexes = [
            models.Index(fields=["name", "code"], name="customer_name_code"),
            models.Index(Upper("name"), name="customer_name_upper"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=CustomerStatus.values),
                name="customer_status_valid",
            ),
            models.CheckConstraint(condition=~models.Q(code=""), name="customer_code_not_blank"),
        ]

    def mark_registered(self, details: dict | None) -> list[str]:
        """OneOffice holds the customer: registered, with the `details` its reply gave
        (MIRRORED_FIELDS but `details_unknown`), or None when no reply with them came back
        (a duplicate-id answer settled it). Returns the fields to save."""
        self.status = CustomerStatus.REGISTERED
        # Say the details are unknown rather than show blanks as if OneOffice had sent none.
        self.details_unknown = details is None
        if details is None:
            return ["status", "details_unknown"]
        for name, value in details.items():
            setattr(self, name, value)
        return ["status", *self.MIRRORED_FIELDS]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @staticmethod
    def label_expression() -> Concat:
        """`str(customer)` in SQL, for labels written by the database itself."""
        return Concat("name", Value(" ("), "code", Value(")"))
