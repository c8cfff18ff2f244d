"""The batch pages: a bulk action on many objects starts a batch, and its page shows how far it
got, item by item, until it is finished."""

from __future__ import annotations

from collections import Counter

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from customers.models import Customer
from orders.models import Order
from portal.admin import changelists
from portal.models import Batch, BatchItem
from portal.provisioning import batches

ITEMS_PER_PAGE = 100
# The list of objects that did not go through is a link with their ids; past this many the
# link would be too long for a browser, so it shows the first ones.
LINKED_IDS = 300
REFRESH_SECONDS = 3
State = BatchItem.State
# What a finished batch offers for the items that did not go through: their states, and the
# action that sends them (empty: the batch's own).
AGAIN = {
    "retry": ((State.UNKNOWN, State.NOT_NOW), "retry"),
    "same": ((State.REFUSED, State.REJECTED), ""),
}


def start_batch(request, modeladmin, action, objects):
    """Record a batch of the admin's `action` on `objects` (a list, or a whole queryset) and
    send the person to its page."""
    rejected = {}
    if not all(request.user.has_perm(perm) for perm in action.perms):
        # Allowed on some objects only (a retry needs the permission of what is pending):
        # each one is checked, and those refused are settled at once, never sent.
        objects = list(objects)
        rejected = {
            obj.pk: action.forbidden(obj) for obj in objects if not action.allows(request.user, obj)
        }
    batch = batches.batch_start(
        kind=modeladmin.model._meta.model_name,
        action=action.name,
        label=action.label,
        objects=objects,
        by=request.user,
        rejected=rejected,
    )
    modeladmin.message_user(
        request,
        f"{action.label}: {batch.total} {modeladmin.model._meta.verbose_name_plural} are being "
        "sent to OneOffice in the background. This page shows each result as it lands.",
        messages.SUCCESS,
    )
    return HttpResponseRedirect(reverse("admin:portal_batch_change", args=[batch.pk]))


def _not_through_url(batch: Batch, ids: list[int]) -> str:
    if not ids:
        return ""
    return f"{_changelist(batch)}?{urlencode({'id__in': ','.join(map(str, ids))})}"


def _changelist(batch: Batch) -> str:
    app = "customers" if batch.kind == Batch.Kind.CUSTOMER else "orders"
    return reverse(f"admin:{app}_{batch.kind}_changelist")


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["__str__", "started_by", "created_at", "progress", "finished_at"]
    list_filter = ["action", "job"]
    list_select_related = ["created_by"]
    search_fields = ["label"]
    date_hierarchy = None
    show_full_result_count = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_search_results(self, request, queryset, search_term):
        """A batch by its number, or the batches that held a customer or an order found as
        their own lists find them."""
        term = changelists.search_term(search_term)
        if not term:
            return queryset, False
        customers = changelists.matching_customers(term)
        orders = Order.objects.filter(
            Q(pk__in=changelists.order_ids(term)) | Q(customer__in=customers)
        ).values("pk")
        items = BatchItem.objects.filter(
            Q(batch__kind=Batch.Kind.CUSTOMER, object_id__in=customers)
            | Q(batch__kind=Batch.Kind.ORDER, object_id__in=orders)
        )
        matches = Q(pk__in=items.values("batch"))
        if term.isascii() and term.isdigit() and len(term) < 19:
            matches |= Q(pk=int(term))
        return queryset.filter(matches), False

    @admin.display(description="started by")
    def started_by(self, obj):
        return obj.started_by_label

    def get_queryset(self, request):
        # Each batch's counts in the list's own query (two index probes per row).
        items = BatchItem.objects.filter(batch=OuterRef("pk")).order_by().values("batch")

        def count(of):
            return Coalesce(Subquery(of.annotate(n=Count("pk")).values("n")), 0)

        return (
            super()
            .get_queryset(request)
            .annotate(
                done_count=count(items.filter(state=State.DONE)),
                open_count=count(items.filter(state__in=batches.UNSETTLED_STATES)),
            )
        )

    @admin.display(description="progress")
    def progress(self, obj):
        if obj.finished_at is None:
            paused = ", paused" if obj.paused_until else ""
            return f"{obj.total - obj.open_count} of {obj.total} settled{paused}"
        if obj.done_count == obj.total:
            return f"all {obj.total} done"
        missed = obj.total - obj.done_count
        return format_html(
            '{} of {} done<small class="below">{} did not go through</small>',
            obj.done_count,
            obj.total,
            missed,
        )

    def get_urls(self):
        return [
            path(
                "<int:batch_id>/again/<slug:which>/",
                self.admin_site.admin_view(self.again_view),
                name="portal_batch_again",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        batch = self.get_object(request, unquote(object_id))
        if batch is None:
            raise Http404(f"No batch with id {object_id[:40]!r}.")
        counts = batches.counts(batch)
        settled = batch.total - counts[State.QUEUED] - counts[State.RUNNING]
        page = Paginator(batch.items.order_by("position"), ITEMS_PER_PAGE).get_page(
            request.GET.get("p")
        )
        fixed = batches.fixed_ids(batch) if batch.finished_at else set()
        fixed_states = Counter(
            batch.items.filter(object_id__in=fixed).values_list("state", flat=True)
        )
        not_through = {
            "refused": counts[State.REFUSED]
            + counts[State.REJECTED]
            - fixed_states[State.REFUSED]
            - fixed_states[State.REJECTED],
            "unsettled": counts[State.UNKNOWN]
            + counts[State.NOT_NOW]
            - fixed_states[State.UNKNOWN]
            - fixed_states[State.NOT_NOW],
            "fixed": len(fixed),
        }
        ids = batches.not_through_ids(batch)[:LINKED_IDS] if batch.finished_at else []
        # Buttons only for what this person may do.
        may = {which: self._again_action(request, batch, which) is not None for which in AGAIN}
        context = {
            **self.admin_site.each_context(request),
            "title": str(batch),
            "opts": self.model._meta,
            "batch": batch,
            "counts": [
                (State(state).label, n) for state, n in counts.items() if n or state == "done"
            ],
            "settled": settled,
            "percent": int(100 * settled / batch.total) if batch.total else 100,
            "page": page,
            "fixed": fixed,
            "refresh": None if batch.finished_at else REFRESH_SECONDS,
            "not_through": not_through,
            "not_through_url": _not_through_url(batch, ids),
            "may_retry": may["retry"],
            "may_send_again": may["same"],
        }
        return TemplateResponse(request, "admin/portal/batch.html", context)

    def again_view(self, request, batch_id: int, which: str):
        """Start a new batch for the items of a finished one that did not go through: Retry for
        those left unsettled, the same action again for those refused."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        batch = get_object_or_404(Batch, pk=batch_id, finished_at__isnull=False)
        action = self._again_action(request, batch, which)
        if action is None:
            raise PermissionDenied
        model_admin = self.admin_site._registry[_model(batch)]
        states = AGAIN[which][0]
        candidates = list(
            model_admin.get_queryset(request).filter(pk__in=batches.not_through_ids(batch, states))
        )
        # What the portal would refuse again (the service's own check, the object's state) is
        # not sent again: nobody fixed it, and nobody can by sending it.
        objects = [obj for obj in candidates if action.possible(obj) and not action.refused(obj)]
        left_out = len(candidates) - len(objects)
        if left_out:
            self.message_user(
                request,
                f"{left_out} of them not sent again: the portal would refuse them as they "
                "stand (see each one's page).",
                messages.WARNING,
            )
        if not objects:
            self.message_user(request, "Nothing to send: no item is in that state.", messages.INFO)
            return HttpResponseRedirect(reverse("admin:portal_batch_change", args=[batch.pk]))
        return start_batch(request, model_admin, action, objects)

    def _again_action(self, request, batch: Batch, which: str):
        """The admin action that sends `which` items of `batch` again, if this person may."""
        if which not in AGAIN:
            return None
        action_name = AGAIN[which][1] or batch.action
        if which == "same" and batch.job:
            # A job's renewal is sent again as a person's Renew.
            action_name = "renew"
        model_admin = self.admin_site._registry[_model(batch)]
        action = next((a for a in model_admin.provisioning_actions if a.name == action_name), None)
        if action is None or not model_admin._may_ever(request, action):
            return None
        return action


def _model(batch: Batch):
    return Customer if batch.kind == Batch.Kind.CUSTOMER else Order
