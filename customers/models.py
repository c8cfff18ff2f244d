from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Upper

from portal.ids import MAX_LENGTH, new_id, validate_remote_id
from portal.models import Provisioned

validate_phone = RegexValidator(
    r"\A\+?[0-9][0-9 ()-]{4,28}[0-9]\Z",
    "Enter a phone number of digits, optionally starting with '+', "
    "with spaces, '-' or brackets between them.",
    code="invalid_phone",
)


class Customer(Provisioned):
    """A company we sell to, mirroring the customer OneOffice holds under `code`."""

    class Status(models.TextChoices):
        DRAFT = "draft", "draft"
        PENDING = "pending", "pending"
        REGISTERED = "registered", "registered"
        FAILED = "failed", "failed"

    code = models.CharField(
        "customer id",
        max_length=MAX_LENGTH,
        unique=True,
        blank=True,
        validators=[validate_remote_id],
        help_text="Sent to OneOffice as the customer's id. Left blank, one is generated.",
    )
    name = models.CharField(max_length=200)
    admin_email = models.EmailField("admin email")
    admin_phone = models.CharField("admin phone", max_length=32, validators=[validate_phone])
    admin_display_name = models.CharField("admin display name", max_length=200)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        limit_choices_to={"is_staff": True},
        related_name="managed_customers",
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

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "code"]
        permissions = [("register_customer", "Can register customers on OneOffice")]
        # The list's order, and search by name prefix (see portal.changelists).
        indexes = [
            models.Index(fields=["name", "code"], name="customer_name_code"),
            models.Index(Upper("name"), name="customer_name_upper"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "pending", "registered", "failed"]),
                name="customer_status_valid",
            ),
            models.CheckConstraint(condition=~models.Q(code=""), name="customer_code_not_blank"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    def save(self, *args, **kwargs):
        # The id must exist before the first vendor call, so a retry can reuse it.
        if not self.code:
            self.code = new_id("C")
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "code"}
        super().save(*args, **kwargs)

    def clean(self):
        super().clean()
        if not self.code:
            self.code = new_id("C")

    @property
    def is_editable(self) -> bool:
        """Whether what we send on registration may still change."""
        return self.status in {self.Status.DRAFT, self.Status.FAILED}
