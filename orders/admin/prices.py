"""The price list and the discount policy in the admin, kept by managers.

A price line whose date has come is history: it is shown, never changed or deleted; a new line
from a later date replaces it. Sales staff read prices and change neither.
"""

from django.contrib import admin
from django.db.models import Exists, OuterRef, Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from orders.models import DiscountPolicy, Duration, Price, Product
from orders.money.pricing import format_money

IN_FORCE = "today"
SCHEDULED = "scheduled"
REPLACED = "replaced"


def price_list_in_force_q(*, today) -> Q:
    """Lines in force on `today`: dated on or before it, with no later such line."""
    return Q(valid_from__lte=today) & ~Q(Exists(_newer_in_force(today=today)))


def _newer_in_force(*, today):
    return Price.objects.filter(
        product=OuterRef("product"),
        duration=OuterRef("duration"),
        currency=OuterRef("currency"),
        valid_from__gt=OuterRef("valid_from"),
        valid_from__lte=today,
    )


class InForceFilter(admin.SimpleListFilter):
    title = "in force"
    parameter_name = "in_force"

    def lookups(self, request, model_admin):
        return [(IN_FORCE, "Today"), (SCHEDULED, "From a later date"), (REPLACED, "Replaced")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        in_force = price_list_in_force_q(today=today)
        if self.value() == IN_FORCE:
            return queryset.filter(in_force)
        if self.value() == SCHEDULED:
            return queryset.filter(valid_from__gt=today)
        if self.value() == REPLACED:
            return queryset.filter(valid_from__lte=today).exclude(in_force)
        return queryset


@admin.register(Price)
class PriceAdmin(admin.ModelAdmin):
    list_display = [
        "product",
        "duration",
        "unit_price_display",
        "valid_from",
        "state",
        "created_by",
        "created_at",
    ]
    list_filter = [InForceFilter, "product", "duration"]
    list_select_related = ["created_by"]
    date_hierarchy = "valid_from"
    fields = ["product", "duration", "unit_price", "currency", "valid_from", "created_by"]
    readonly_fields = ["currency", "created_by"]

    def get_queryset(self, request):
        newer = _newer_in_force(today=timezone.localdate())
        return super().get_queryset(request).annotate(replaced=Exists(newer))

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.is_history:
            return self.fields
        return self.readonly_fields

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_history:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_history:
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request):
        # Bulk delete would bypass the per-line rule that history is never deleted.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="unit price", ordering="unit_price")
    def unit_price_display(self, obj):
        return format_money(obj.unit_price, obj.currency)

    @admin.display(description="in force")
    def state(self, obj):
        if obj.valid_from > timezone.localdate():
            return "from a later date"
        return "replaced" if getattr(obj, "replaced", False) else "today"

    def changelist_view(self, request, extra_context=None):
        today = timezone.localdate()
        in_force = {
            (price.product, price.duration): price
            for price in Price.objects.filter(price_list_in_force_q(today=today))
        }
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
