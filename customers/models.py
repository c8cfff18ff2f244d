from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Value
from django.db.models.functions import Concat

from portal.core.ids import MAX_LENGTH, validate_remote_id
from portal.core.inputs import validate_plain_text
from portal.core.search import search_column
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


class CustomerQuerySet(models.QuerySet):
    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.search_text = obj.searchable_text()
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs, fields, *args, **kwargs):
        objs, fields = list(objs), list(fields)
        if set(fields) & set(Customer.SEARCHED_FIELDS):
            for obj in objs:
                obj.search_text = obj.searchable_text()
            fields.append("search_text")
        return super().bulk_update(objs, fields, *args, **kwargs)


class Customer(Provisioned):
    """A company we sell to, mirroring the customer OneOffice holds under `code`.

    `search_text` holds the searched fields folded (portal.core.search) for substring search
    on an index: saving, bulk creation and a person's edit keep it; a write that bypasses
    them (an UPDATE, raw SQL) must set it from `searchable_text()` too.
    """

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
    # What search finds a customer by: a word of any of them (accents and case aside).
    SEARCHED_FIELDS = ("code", "name", "admin_email", "admin_display_name")

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

    search_text = models.TextField(editable=False, blank=True, default="", db_default="")

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        ordering = ["name", "code"]
        permissions = [("register_customer", "Can register customers on OneOffice")]
        # The list's order. Search reads `search_text`, on a trigram index on PostgreSQL
        # (migration 0002; see portal.admin.changelists).
        indexes = [models.Index(fields=["name", "code"], name="customer_name_code")]
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

    def searchable_text(self) -> str:
        """The value `search_text` must hold for the customer's current fields."""
        return search_column(*(getattr(self, name) for name in self.SEARCHED_FIELDS))

    def save(self, *args, **kwargs):
        generated = self._ensure_id()
        self.search_text = self.searchable_text()
        fields = kwargs.get("update_fields")
        if fields is not None:
            fields = {*fields, self.ID_FIELD} if generated else set(fields)
            if fields & set(self.SEARCHED_FIELDS):
                fields.add("search_text")
            kwargs["update_fields"] = fields
        super().save(*args, **kwargs)

    def save_edit(self, fields: list[str]) -> bool:
        if set(fields) & set(self.SEARCHED_FIELDS):
            self.search_text = self.searchable_text()
            fields = [*fields, "search_text"]
        return super().save_edit(fields)

    @staticmethod
    def label_expression() -> Concat:
        """`str(customer)` in SQL, for labels written by the database itself."""
        return Concat("name", Value(" ("), "code", Value(")"))
