"""The search box in every admin page's header: customers, orders and OneOffice calls found as
their own lists find them, on one page grouped by kind, showing only what the person may open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.http import urlencode

from customers.models import Customer
from orders.models import Order
from portal.admin import changelists
from portal.core.people import display_name
from portal.models import ProvisioningCall

# Rows shown per kind; the kind's own list has the rest.
SHOWN = 10


@dataclass
class Found:
    """One object found: its label linking to its page, and what tells it apart."""

    url: str
    label: str
    status: str = ""
    status_label: str = ""
    details: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.details = [detail for detail in self.details if detail]


@dataclass
class Group:
    key: str
    title: str
    rows: list[Found]
    more: bool
    list_url: str
    list_name: str


def _customer(customer: Customer) -> Found:
    manager = customer.account_manager
    return Found(
        url=reverse("admin:customers_customer_change", args=[customer.pk]),
        label=f"{customer.name} ({customer.code})",
        status=customer.status,
        status_label=customer.get_status_display(),
        details=[
            customer.admin_email,
            f"account manager {display_name(manager)}" if manager else "no account manager",
        ],
    )


def _order(order: Order) -> Found:
    details = [
        order.customer.name,
        f"{order.product}, {order.licenses} licences, {order.get_duration_display()}",
    ]
    if order.parent_id:
        details.append(f"renewal of {order.parent.number}")
    elif order.current_term_end:
        details.append(f"term ends {order.current_term_end:%Y-%m-%d}")
    return Found(
        url=reverse("admin:orders_order_change", args=[order.pk]),
        label=order.number,
        status=order.status,
        status_label=order.get_status_display(),
        details=details,
    )


def _call(call: ProvisioningCall) -> Found:
    about = call.order.number if call.order_id else call.customer.name if call.customer_id else ""
    outcome = call.get_outcome_display()
    return Found(
        url=reverse("admin:portal_provisioningcall_change", args=[call.pk]),
        label=f"{call.method} #{call.attempt}",
        status=f"call-{call.outcome}",
        status_label=outcome,
        details=[
            date_format(timezone.localtime(call.started_at), "DATETIME_FORMAT"),
            about,
            f"by {call.triggered_by_label}",
        ],
    )


# The kinds searched, in the order the page shows them: (key, title, model, the rows' related
# objects, how one row reads, the list that has them all).
KINDS = [
    ("customers", "Customers", Customer, ["account_manager"], _customer, "the customer list"),
    ("orders", "Orders", Order, ["customer", "parent"], _order, "the order list"),
    (
        "calls",
        "OneOffice calls",
        ProvisioningCall,
        ["order", "customer", "triggered_by"],
        _call,
        "the call log",
    ),
]


def _found(request, model_admin, model, term: str, related: list[str]) -> tuple[list, bool]:
    queryset = model_admin.get_queryset(request)
    found, _ = model_admin.get_search_results(request, queryset, term)
    if model is Order:
        # The order list's subscriptions, and a renewal whose own id was typed.
        exact = queryset.filter(pk__in=changelists.order_ids(term))
        found = found.filter(parent__isnull=True) | exact
    ordering = model_admin.get_ordering(request) or model._meta.ordering
    objects = list(found.select_related(*related).order_by(*ordering)[: SHOWN + 1])
    return objects[:SHOWN], len(objects) > SHOWN


def search_groups(request: HttpRequest, site: admin.AdminSite, term: str) -> list[Group]:
    """What `term` finds of each kind the person may view; within a kind, only the objects
    the kind's admin lets them open."""
    groups = []
    for key, title, model, related, describe, list_name in KINDS:
        model_admin = site._registry.get(model)
        if model_admin is None or not model_admin.has_view_permission(request):
            continue
        objects, more = _found(request, model_admin, model, term, related)
        rows = [describe(obj) for obj in objects if model_admin.has_view_permission(request, obj)]
        opts = model._meta
        groups.append(
            Group(
                key=key,
                title=title,
                rows=rows,
                more=more,
                list_url=reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
                + "?"
                + urlencode({"q": term}),
                list_name=list_name,
            )
        )
    return groups


def search_view(request: HttpRequest, site: admin.AdminSite) -> TemplateResponse:
    term = changelists.search_term(request.GET.get("q", ""))[:200]
    groups = search_groups(request, site, term) if term else []
    context = {
        **site.each_context(request),
        "title": f"Search: {term}" if term else "Search",
        "q": term,
        "global_q": term,
        "groups": groups,
        "shown": SHOWN,
        "searchable": any(
            model in site._registry and site._registry[model].has_view_permission(request)
            for _, _, model, _, _, _ in KINDS
        ),
    }
    return TemplateResponse(request, "admin/search.html", context)
