"""The price list and the discount policy in the admin, kept by managers.

A price line that priced a sale, or whose date has come (OneOffice's calendar), is shown and
never changed or deleted; a new line from a later date replaces it, and a mistake in a line
from today or later is corrected by a new line that supersedes it, with who and why. Sales
staff read prices and change neither.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from orders.models import DiscountPolicy, Duration, Order, Price, Product
from orders.money.pricing import format_money
from orders.renewals.terms import vendor_date

IN_FORCE = "today"
SCHEDULED = "scheduled"
REPLACED = "replaced"
CORRECTED = "corrected"
CORRECTS = "corrects"


def price_list_in_force_q(*, today) -> Q:
    """Lines in force on `today`: dated on or before it, not corrected, with no later such
    line."""
    return Q(valid_from__lte=today, correction__isnull=True) & ~Q(
        Exists(_newer_in_force(today=today))
    )


def _newer_in_force(*, today):
    return Price.objects.filter(
        product=OuterRef("product"),
        duration=OuterRef("duration"),
        currency=OuterRef("currency"),
        valid_from__gt=OuterRef("valid_from"),
        valid_from__lte=today,
        correction__isnull=True,
    )


class InForceFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [
            (IN_FORCE, "Today"),
            (SCHEDULED, "From a later date"),
            (REPLACED, "Replaced"),
            (CORRECTED, "Corrected"),
        ]

    def queryset(self, request, queryset):
        today = vendor_date()
        in_force = price_list_in_force_q(today=today)
        if self.value() == IN_FORCE:
            return queryset.filter(in_force)
        if self.value() == SCHEDULED:
            return queryset.filter(valid_from__gt=today, correction__isnull=True)
        if self.value() == REPLACED:
            return queryset.filter(valid_from__lte=today, correction__isnull=True).exclude(in_force)
        if self.value() == CORRECTED:
            return queryset.filter(correction__isnull=False)
        return queryset


def _line_to_correct(request) -> Price | None:
    """The line named by `?corrects=` on the add form, when there is one."""
    value = request.GET.get(CORRECTS, "")
    if not value.isascii() or not value.isdigit():
        return None
    return Price.objects.filter(pk=int(value)).first()


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = [
        "product",
        "duration",
        "unit_price_display",
        "valid_from",
        "state",
        "sold_display",
        "created_by",
        "created_at",
    ]
    list_filter = [InForceFilter, "product", "duration", "currency"]
    list_select_related = ["created_by", "corrects"]
    date_hierarchy = "valid_from"
    fields = ["product", "duration", "unit_price", "currency", "valid_from", "created_by"]
    readonly_fields = ["currency", "created_by"]
    correction_fields = ["corrected_line", "unit_price", "reason"]
    change_form_template = "admin/orders/price/change_form.html"

    def get_queryset(self, request):
        newer = _newer_in_force(today=vendor_date())
        return (
            super()
            .get_queryset(request)
            .annotate(
                replaced=Exists(newer),
                sold=Exists(Order.objects.filter(price=OuterRef("pk"))),
                corrected=Exists(Price.objects.filter(corrects=OuterRef("pk"))),
            )
        )

    def get_fields(self, request, obj=None):
        if obj is None and _line_to_correct(request) is not None:
            return self.correction_fields
        if obj is not None and (obj.corrects_id or obj.reason):
            return [*self.fields, "corrects", "reason"]
        return self.fields

    def get_readonly_fields(self, request, obj=None):
        if obj is None and _line_to_correct(request) is not None:
            return ["corrected_line"]
        if obj is not None and obj.is_locked:
            return self.get_fields(request, obj)
        return self.readonly_fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        wrong = _line_to_correct(request) if obj is None else None
        if wrong is None:
            return form

        class CorrectionForm(form):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                # Set before validation: the model's clean checks the correction against it.
                self.instance.corrects = wrong
                self.fields["reason"].required = True

        return CorrectionForm

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_locked:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_locked:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Bulk delete would bypass the per-line rule that a locked line is never deleted.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            super().save_model(request, obj, form, change)
            return
        # The line is locked while it is checked and saved: a sale recorded at it meanwhile
        # (which locks it too) either comes first, and the change is refused, or waits.
        with transaction.atomic():
            stored = Price.objects.select_for_update().get(pk=obj.pk)
            if stored.is_locked:
                request._price_refused = stored.locked_reason()
                return
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj):
        with transaction.atomic():
            stored = Price.objects.select_for_update().get(pk=obj.pk)
            if stored.is_locked:
                request._price_refused = stored.locked_reason()
                return
            super().delete_model(request, obj)

    def _refused(self, request, obj):
        reason = getattr(request, "_price_refused", None)
        if reason is None:
            return None
        self.message_user(
            request,
            f"Not saved: the price {obj} {reason} meanwhile, so it is not changed or deleted. "
            "Correct it with a new line instead.",
            messages.ERROR,
        )
        return HttpResponseRedirect(reverse("admin:orders_price_change", args=[obj.pk]))

    def response_change(self, request, obj):
        return self._refused(request, obj) or super().response_change(request, obj)

    def response_delete(self, request, obj_display, obj_id):
        refused = getattr(request, "_price_refused", None)
        if refused is not None:
            obj = Price.objects.get(pk=obj_id)
            return self._refused(request, obj)
        return super().response_delete(request, obj_display, obj_id)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = dict(extra_context or {})
        line = Price.objects.filter(pk=object_id).first() if object_id.isdigit() else None
        if line is not None and self._correctable(request, line):
            extra_context["correct_url"] = (
                reverse("admin:orders_price_add") + f"?{CORRECTS}={line.pk}"
            )
        if line is not None and line.is_locked:
            extra_context["locked_reason"] = line.locked_reason()
        return super().change_view(request, object_id, form_url, extra_context)

    def add_view(self, request, form_url="", extra_context=None):
        wrong = _line_to_correct(request)
        if request.GET.get(CORRECTS) and (wrong is None or not self._correctable(request, wrong)):
            self.message_user(
                request,
                "Only a price from today or later that was not corrected already can be "
                "corrected; add a new line from the date the new price starts instead.",
                messages.ERROR,
            )
            return HttpResponseRedirect(reverse("admin:orders_price_changelist"))
        extra_context = dict(extra_context or {})
        if wrong is not None:
            extra_context["title"] = f"Correct the price {wrong}"
        return super().add_view(request, form_url, extra_context)

    def _correctable(self, request, line: Price) -> bool:
        return (
            self.has_add_permission(request)
            and line.valid_from >= vendor_date()
            and not Price.objects.filter(corrects=line).exists()
        )

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        wrong = None if change else _line_to_correct(request)
        if wrong is not None:
            obj.corrects = wrong
        return obj

    @admin.display(description="corrects")
    def corrected_line(self, obj):
        # The add form's instance: the correction form set the line it corrects.
        return str(obj.corrects) if obj is not None and obj.corrects_id else "-"

    @admin.display(description="unit price", ordering="unit_price")
    def unit_price_display(self, obj):
        return format_money(obj.unit_price, obj.currency)

    @admin.display(description="sold at", boolean=True)
    def sold_display(self, obj):
        return getattr(obj, "sold", False)

    @admin.display(description="in force")
    def state(self, obj):
        if getattr(obj, "corrected", False):
            return "corrected"
        label = "today"
        if obj.valid_from > vendor_date():
            label = "from a later date"
        elif getattr(obj, "replaced", False):
            label = "replaced"
        if obj.corrects_id:
            return format_html("{} <span class='help'>(corrects {})</span>", label, obj.corrects)
        return label

    def changelist_view(self, request, extra_context=None):
        today = vendor_date()
        currency = settings.PORTAL_CURRENCY
        lines = Price.objects.filter(price_list_in_force_q(today=today), currency=currency)
        in_force = {(price.product, price.duration): price for price in lines}
        grid = [
            {
                "product": label,
                "prices": [in_force.get((product, duration)) for duration in Duration.values],
            }
            for product, label in Product.choices
        ]
        extra_context = {
            **(extra_context or {}),
            "price_grid": grid,
            "price_durations": Duration.labels,
            "price_currency": currency,
            "today": today,
        }
        return super().changelist_view(request, extra_context)


@admin.register(DiscountPolicy)
class DiscountPolicyAdmin(admin.ModelAdmin):
    list_display = ["__str__", "max_discount_percent", "updated_by", "updated_at"]
    fields = ["max_discount_percent", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    def add_view(self, request, form_url="", extra_context=None):
        # One policy: once it exists, "add" opens it. Checked here, not in
        # has_add_permission, which every admin page's sidebar asks.
        if DiscountPolicy.objects.filter(pk=1).exists():
            return HttpResponseRedirect(reverse("admin:orders_discountpolicy_change", args=[1]))
        return super().add_view(request, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)
