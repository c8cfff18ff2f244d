"""The call log admin, and the machinery customer and order admins share to run provisioning.

Admin code here only calls `portal.provisioning` and turns its errors into messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from portal import batches, provisioning
from portal.admin_batches import start_batch
from portal.models import ProvisioningCall


@dataclass(frozen=True)
class Provisioning:
    """One provisioning action as the admin offers it: a bulk action and a change-page button."""

    name: str
    label: str
    perms: tuple[str, ...]
    run: Callable[..., object]
    possible: Callable[[object], bool]
    confirm: Callable[[object], str] | None = None
    done: str = "done"
    # The permission one object needs, when it depends on the object (retry); else perms[0].
    object_perm: Callable[[object], str] | None = None

    def permission(self, obj) -> str:
        return self.object_perm(obj) if self.object_perm else self.perms[0]


def report(request: HttpRequest, modeladmin: admin.ModelAdmin, action: Provisioning, obj) -> bool:
    """Run one action on one object and tell the user what happened to it."""
    if not request.user.has_perm(action.permission(obj)):
        modeladmin.message_user(
            request, f"{obj}: not sent. You may not {action.label.lower()}.", messages.ERROR
        )
        return False
    try:
        result = action.run(obj, by=request.user)
    except provisioning.ProvisioningError as exc:
        # Each error says how it is reported, so no order of except clauses decides it.
        modeladmin.message_user(request, exc.summary(obj), exc.level)
    else:
        status = result.get_status_display()
        now = "" if status == action.done else f", now {status}"
        modeladmin.message_user(request, f"{result}: {action.done}{now}.", messages.SUCCESS)
        return True
    return False


class ProvisioningAdminMixin:
    """Adds bulk actions, change-page buttons and confirmation pages for `provisioning_actions`."""

    provisioning_actions: tuple[Provisioning, ...] = ()
    change_form_template = "admin/portal/provisioning_change_form.html"

    def get_actions(self, request):
        actions = super().get_actions(request)
        for action in self.provisioning_actions:
            if self._may_ever(request, action):
                actions[f"{action.name}_selected"] = (
                    self._bulk(action),
                    f"{action.name}_selected",
                    f"{action.label} (selected)",
                )
        return actions

    def _may_ever(self, request, action: Provisioning) -> bool:
        return any(request.user.has_perm(perm) for perm in action.perms)

    def _bulk(self, action: Provisioning):
        def run_selected(modeladmin, request, queryset):
            objects = list(queryset)
            if action.confirm and request.POST.get("post") != "yes":
                return self._confirmation(request, action, objects, bulk=True)
            if len(objects) > batches.sync_limit():
                return start_batch(request, modeladmin, action, objects)
            for obj in objects:
                report(request, modeladmin, action, obj)
            return None

        return run_selected

    def get_urls(self):
        opts = self.model._meta
        return [
            path(
                "<path:object_id>/oneoffice/<slug:name>/",
                self.admin_site.admin_view(self.provisioning_view),
                name=f"{opts.app_label}_{opts.model_name}_provision",
            ),
            *super().get_urls(),
        ]

    def provisioning_view(self, request, object_id: str, name: str):
        action = next((a for a in self.provisioning_actions if a.name == name), None)
        obj = get_object_or_404(self.get_queryset(request), pk=object_id)
        if action is None:
            raise PermissionDenied
        if not request.user.has_perm(action.permission(obj)):
            raise PermissionDenied
        if request.method == "GET" and action.confirm:
            return self._confirmation(request, action, [obj], bulk=False)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        report(request, self, action, obj)
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )

    def _confirmation(self, request, action: Provisioning, objects: list, *, bulk: bool):
        opts = self.model._meta
        return TemplateResponse(
            request,
            "admin/portal/confirm_provisioning.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{action.label}: are you sure?",
                "opts": opts,
                "action": action,
                "items": [(obj, action.confirm(obj)) for obj in objects],
                "bulk": bulk,
                "action_name": f"{action.name}_selected",
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
                "post_url": None
                if bulk
                else reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_provision",
                    args=[objects[0].pk, action.name],
                ),
            },
        )

    def save_model(self, request, obj, form, change):
        if not change:
            return super().save_model(request, obj, form, change)
        # Only what the form changed: status and mirrored fields belong to the provisioning
        # service, which may be writing them at this very moment; and what a call sends only
        # while no call about the object is unsettled.
        refused = form.changed_data and not obj.save_edit(form.changed_data)
        request._edit_refused = refused or bool(
            _sent_fields_posted_but_read_only(request, obj, form)
        )
        return None

    def log_change(self, request, obj, message):
        if not getattr(request, "_edit_refused", False):
            super().log_change(request, obj, message)

    def response_change(self, request, obj):
        if getattr(request, "_edit_refused", False):
            current = type(obj).objects.get(pk=obj.pk)
            self.message_user(
                request,
                f"{current}: nothing was saved. It is {current.get_status_display()} and was "
                "sent to OneOffice (or is being sent) while you edited it; what is sent cannot "
                "change now. Your changes were not applied: reload the page to see it as it is.",
                messages.ERROR,
            )
            opts = self.model._meta
            return HttpResponseRedirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            )
        return super().response_change(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        buttons = []
        if obj is not None:
            opts = self.model._meta
            for action in self.provisioning_actions:
                if action.possible(obj) and request.user.has_perm(action.permission(obj)):
                    url = reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_provision",
                        args=[obj.pk, action.name],
                    )
                    buttons.append({"action": action, "url": url})
        context["provisioning_buttons"] = buttons
        return super().render_change_form(request, context, add, change, form_url, obj)


def _sent_fields_posted_but_read_only(request, obj, form) -> list[str]:
    """Sent fields the person changed in a form opened while they were editable, which the
    object no longer lets change (a call started meanwhile): the form silently drops them."""
    return [
        name
        for name in obj.SENT_FIELDS
        if name in request.POST
        and name not in form.fields
        and request.POST[name] != str(getattr(obj, obj._meta.get_field(name).attname))
    ]


def call_log_link(obj, **filters) -> str:
    """A link to the call log, filtered to one customer or order."""
    query = "&".join(f"{key}={value}" for key, value in filters.items())
    url = reverse("admin:portal_provisioningcall_changelist") + "?" + query
    return format_html('<a href="{}">OneOffice calls</a>', url)


class NeedsAttentionFilter(admin.SimpleListFilter):
    """Pending objects no request is working on: an unsettled or unsent call waits on them."""

    title = "needs attention"
    parameter_name = "attention"

    def lookups(self, request, model_admin):
        return [("yes", "Needs attention")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(queryset.model.needs_attention_q(now=timezone.now()))
        return queryset


class ReadOnlyAdmin(admin.ModelAdmin):
    """A record kept by the system: people may look, never edit."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ProvisioningCall)
class ProvisioningCallAdmin(ReadOnlyAdmin):
    list_display = [
        "started_at",
        "method",
        "outcome",
        "customer",
        "order",
        "attempt",
        "http_status",
        "duration_ms",
        "triggered_by_label",
    ]
    list_filter = ["method", "outcome", "settled_earlier"]
    list_select_related = ["customer", "order", "triggered_by"]
    search_fields = ["customer__code", "customer__name", "order__number", "error"]
    date_hierarchy = "started_at"
    readonly_fields = [f.name for f in ProvisioningCall._meta.fields]

    @admin.display(description="triggered by")
    def triggered_by_label(self, obj):
        return obj.triggered_by_label
