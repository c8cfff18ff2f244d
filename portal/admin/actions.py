"""What customer and order admins share to run provisioning: bulk actions, change-page
buttons and confirmations.

Admin code here only calls `portal.provisioning` and turns its errors into messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from portal import provisioning
from portal.admin.batches import start_batch
from portal.provisioning import batches


@dataclass(frozen=True)
class Provisioning:
    """One provisioning action as the admin offers it: a bulk action and a change-page button.

    `name` is the action's name in `batches.OPERATIONS`, with the admin's model: one table
    says which service function an action runs and what it is called when done, whether a
    click, a small selection or a batch runs it.
    """

    name: str
    label: str
    perms: tuple[str, ...]
    possible: Callable[[object], bool]
    confirm: Callable[[object], str] | None = None
    # The permission one object needs, when it depends on the object (retry); else perms[0].
    object_perm: Callable[[object], str] | None = None
    # The service's own check before sending: why it would refuse the object now ("" when it
    # would send). What it refuses is said up front and not offered.
    refusal: Callable[[object], str] | None = None

    def permission(self, obj) -> str:
        return self.object_perm(obj) if self.object_perm else self.perms[0]

    def allows(self, user, obj) -> bool:
        """Whether `user` may run this action on `obj`: what its button, its confirmation, a
        small selection and a batch (started, retried or sent again) each ask first."""
        return user.has_perm(self.permission(obj))

    def forbidden(self, obj) -> str:
        """What a person is told about an object `allows` refused them."""
        return f"{obj}: not sent. You may not {self.label.lower()}."

    def refused(self, obj) -> str:
        """Why the service would refuse `obj` now; "" when it would send it."""
        return self.refusal(obj) if self.refusal else ""


# A bulk confirmation lists this many of the objects, then says how many more.
CONFIRM_LISTED = 50
# The most objects one confirmation may cover: its ids come back as query parameters, and
# SQLite takes at most 32,766 in one statement.
CONFIRM_MAX = 20_000


def confirmed_ids(value: str) -> list[int] | None:
    """The ids a bulk confirmation posted back ("12,13,40"), or None when it is not that."""
    parts = value.split(",")
    if not all(part.isascii() and part.isdigit() and len(part) <= 18 for part in parts):
        return None
    return [int(part) for part in parts]


def report(request: HttpRequest, modeladmin: admin.ModelAdmin, action: Provisioning, obj) -> bool:
    """Run one action on one object and tell the user what happened to it."""
    if not action.allows(request.user, obj):
        modeladmin.message_user(request, action.forbidden(obj), messages.ERROR)
        return False
    operation = batches.operation(modeladmin.model, action.name)
    try:
        result = operation.run(obj, by=request.user)
    except provisioning.ProvisioningError as exc:
        # Each error says how it is reported, so no order of except clauses decides it.
        modeladmin.message_user(request, _with_way_back(modeladmin, request, exc, obj), exc.level)
    else:
        status = result.get_status_display()
        now = "" if status == operation.done else f", now {status}"
        modeladmin.message_user(request, f"{result}: {operation.done}{now}.", messages.SUCCESS)
        return True
    return False


def _with_way_back(modeladmin, request, exc: provisioning.ProvisioningError, obj):
    """The error's summary; when OneOffice's refusal proved the object's state there, with a
    link to bring the record in line, for a person who may."""
    summary = exc.summary(obj)
    align = next(
        (a for a in getattr(modeladmin, "provisioning_actions", ()) if a.name == "align"), None
    )
    if not exc.proves or align is None:
        return summary
    obj.refresh_from_db()
    if not align.possible(obj) or not request.user.has_perm(align.permission(obj)):
        return summary
    opts = modeladmin.model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_provision", args=[obj.pk, "align"])
    return format_html('{} <a href="{}">{}</a>', summary, url, f"{align.label}…")


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
            if request.POST.get("post") == "yes" and "confirmed_ids" in request.POST:
                # Exactly what the confirmation listed, of what the list still holds.
                ids = confirmed_ids(request.POST["confirmed_ids"])
                if ids is None or len(ids) > CONFIRM_MAX:
                    unreadable = "The confirmation could not be read; nothing was sent."
                    modeladmin.message_user(request, unreadable, messages.ERROR)
                    return None
                queryset = queryset.filter(pk__in=ids)
            if action.confirm and request.POST.get("post") != "yes":
                selected = queryset.count()
                if not selected:
                    gone = "None of the selected objects is in the list any more; nothing was sent."
                    modeladmin.message_user(request, gone, messages.WARNING)
                    return None
                if selected > CONFIRM_MAX:
                    too_many = (
                        f"{action.label} asks for a confirmation of each object: select at "
                        f"most {CONFIRM_MAX:,} at a time (narrow the list with its filters). "
                        "Nothing was sent."
                    )
                    modeladmin.message_user(request, too_many, messages.ERROR)
                    return None
                return self._confirmation(request, action, list(queryset), bulk=True)
            if queryset.count() > batches.sync_limit():
                return start_batch(request, modeladmin, action, queryset)
            for obj in queryset:
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
        obj = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(f"No {self.model._meta.verbose_name} with id {object_id[:40]!r}.")
        if action is None or not action.allows(request.user, obj):
            raise PermissionDenied
        if request.method == "GET" and action.confirm:
            return self._confirmation(request, action, [obj], bulk=False)
        if request.method != "POST":
            return self._not_allowed(request, action, obj)
        report(request, self, action, obj)
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )

    def _not_allowed(self, request, action: Provisioning, obj):
        """A button's URL opened by hand: say where the button is, inside the admin's frame."""
        opts = self.model._meta
        response = TemplateResponse(
            request,
            "admin/portal/method_not_allowed.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{action.label}: use the button",
                "opts": opts,
                "action": action,
                "object": obj,
                "change_url": reverse(
                    f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]
                ),
            },
            status=405,
        )
        response["Allow"] = "POST"
        return response

    def response_post_save_add(self, request, obj):
        # A new object's next step (register, place) is a button on its own page.
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
        )

    def _confirmation(self, request, action: Provisioning, objects: list, *, bulk: bool):
        opts = self.model._meta
        confirm = action.confirm or str
        described = [(obj, confirm(obj), action.refused(obj)) for obj in objects]
        # Those the portal will refuse first (the sort keeps the list's order otherwise): they
        # are said up front and not sent, so the confirmation carries the others only.
        items = sorted(described, key=lambda item: not item[2])
        offered = [obj for obj, _, refusal in items if not refusal]
        return TemplateResponse(
            request,
            "admin/portal/confirm_provisioning.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{action.label}: are you sure?",
                "opts": opts,
                "action": action,
                "items": items[:CONFIRM_LISTED],
                "more": max(0, len(items) - CONFIRM_LISTED),
                "refused": len(items) - len(offered),
                "offered": len(offered),
                # Posted back as one field, however many: a form field per object would pass
                # Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (1,000) on a large selection.
                "confirmed_ids": ",".join(str(obj.pk) for obj in offered),
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
        buttons, not_offered = [], []
        if obj is not None:
            opts = self.model._meta
            for action in self.provisioning_actions:
                if action.possible(obj) and action.allows(request.user, obj):
                    refusal = action.refused(obj)
                    if refusal:
                        # Not offered: the page says why, and when it will be.
                        not_offered.append({"action": action, "refusal": refusal})
                        continue
                    url = reverse(
                        f"admin:{opts.app_label}_{opts.model_name}_provision",
                        args=[obj.pk, action.name],
                    )
                    # A flag, not the callable: templates call callables, and `confirm`
                    # needs an argument.
                    buttons.append(
                        {"action": action, "url": url, "confirm": action.confirm is not None}
                    )
            adminform = context.get("adminform")
            if adminform is not None and not adminform.form.fields:
                # Every field is read-only: a Save button would save nothing.
                context.update(
                    show_save=False, show_save_and_continue=False, show_save_and_add_another=False
                )
        context["provisioning_buttons"] = buttons
        context["provisioning_not_offered"] = not_offered
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


def attempts_label(obj) -> str:
    """Attempts, worded for the object's state: a settled object has nothing pending."""
    if obj.attempts == 0:
        return "-"
    if obj.status == "pending":
        return f"{obj.attempts} so far at the pending operation"
    return f"{obj.attempts} at the last operation"
