"""Refuse crafted input that would otherwise reach the database and fail there.

Two kinds, each answered with a 400 that says what was wrong, before any view runs:

- a NUL character anywhere in the path, the query string or a form: PostgreSQL cannot store
  or compare one and raises, where SQLite would quietly accept it;
- on any `ModelAdmin` URL (the portal's own and the libraries'), what the admin never offers
  but a person can type, where Django's admin would pass it to the database: a lookup its
  filters never produce (a regular expression the database fails to compile, `__range` split
  into characters, `__year` out of range...), a number no integer column holds, selected ids
  that are not ids, and a date-hierarchy date out of range (the admin computes the day after).
"""

from __future__ import annotations

from datetime import date

from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import BaseModelAdmin
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.core.validators import validate_ipv46_address
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

from portal.core.inputs import integer_fits

NUL = "\x00"
REGEX_LOOKUPS = {"regex", "iregex"}
# What the admin's own list filters put in a query string (`status__exact`, `term_end__gte`,
# `customer__id__exact`, ...), and the comparisons of the same kind.
OFFERED_LOOKUPS = {"exact", "iexact", "in", "isnull", "isempty", "gt", "gte", "lt", "lte"}


def _bad_request(message: str) -> HttpResponse:
    return HttpResponseBadRequest(
        f"Bad request: {message}\n", content_type="text/plain; charset=utf-8"
    )


def _nul_in(request: HttpRequest) -> str | None:
    """Where the request carries a NUL character, in words; None when it does not."""
    if NUL in request.path:
        return "the address contains a NUL character."
    sources = [("query parameter", request.GET)]
    if request.method == "POST" and request.content_type in {
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }:
        sources.append(("form field", request.POST))
    for label, data in sources:
        for key, values in data.lists():
            if NUL in key:
                return f"a {label} name contains a NUL character."
            if any(NUL in value for value in values):
                return f'the {label} "{key}" contains a NUL character.'
    return None


def _admin_refusal(request: HttpRequest, model_admin) -> str | None:
    """What in this admin request the admin does not offer, in words; None when all is fine."""
    hierarchy = getattr(model_admin, "date_hierarchy", None)
    browsing = {f"{hierarchy}{LOOKUP_SEP}{unit}" for unit in ("year", "month", "day")}
    for key, values in request.GET.lists():
        refusal = (
            None
            if hierarchy and key in browsing
            else _lookup_refusal(model_admin.model, key, values)
        )
        if refusal:
            return refusal
    if hierarchy:
        refusal = _date_hierarchy_refusal(request, hierarchy)
        if refusal:
            return refusal
    if request.method == "POST":
        pk = model_admin.model._meta.pk
        for value in request.POST.getlist(ACTION_CHECKBOX_NAME):
            try:
                pk.to_python(value)
            except ValidationError:
                fits = False
            else:
                fits = not isinstance(pk, models.IntegerField) or integer_fits(value)
            if not fits:
                return f'"{value[:40]}" is not the id of a {model_admin.model._meta.verbose_name}.'
    return None


def _lookup_refusal(model, key: str, values: list[str]) -> str | None:
    """Why a query parameter naming a field is refused: a lookup the admin's filters never
    produce, or a number no database column holds. Parameters that name no field (a custom
    filter's, the list's own `p`, `o`, `q`...) are left to the admin."""
    parts = key.split(LOOKUP_SEP)
    opts, field, used = model._meta, None, 0
    for part in parts:
        try:
            field = opts.get_field(part)
        except FieldDoesNotExist:
            break
        used += 1
        if not field.is_relation or field.related_model is None:
            break
        opts = field.related_model._meta
    if field is None:
        return None
    lookups = parts[used:]
    if REGEX_LOOKUPS & set(lookups):
        return f'filtering by a regular expression ("{key[:60]}") is not offered.'
    if len(lookups) > 1 or (lookups and lookups[0] not in OFFERED_LOOKUPS):
        return f'filtering by "{key[:60]}" is not offered.'
    if lookups and lookups[0] in {"isnull", "isempty"}:
        return None
    if field.is_relation:
        field = getattr(field, "target_field", None) or field.related_model._meta.pk
    if isinstance(field, models.IntegerField):
        for value in values:
            for number in value.split(",") if lookups == ["in"] else [value]:
                if not integer_fits(number):
                    return f'"{number[:40]}" in "{key[:60]}" is not a number the list holds.'
    if isinstance(field, models.GenericIPAddressField):
        # PostgreSQL's inet type refuses anything else before the query runs.
        for value in values:
            for address in value.split(",") if lookups == ["in"] else [value]:
                try:
                    validate_ipv46_address(address)
                except ValidationError:
                    return f'"{address[:40]}" in "{key[:60]}" is not an IP address.'
    return None


def _date_hierarchy_refusal(request: HttpRequest, field: str) -> str | None:
    parts = [request.GET.get(f"{field}{LOOKUP_SEP}{unit}") for unit in ("year", "month", "day")]
    if parts[0] is None:
        return None
    try:
        year, month, day = (int(part) if part is not None else 1 for part in parts)
        # The admin also needs the next day, month or year to exist, and the first and last
        # years overflow when shifted from DJANGO_TIME_ZONE to UTC.
        if not date.min.year < year < date.max.year:
            raise ValueError
        date(year, month, day)
    except ValueError:
        shown = "-".join(part for part in parts if part is not None)
        return f'"{shown[:40]}" is not a date the list can be browsed by.'
    return None


def model_admin_of(view_func) -> BaseModelAdmin | None:
    """The ModelAdmin a view belongs to: its standard URLs carry it as `model_admin`, the views
    an admin adds through `admin_site.admin_view(self.some_view)` wrap one of its methods."""
    while view_func is not None:
        for model_admin in (
            getattr(view_func, "model_admin", None),
            getattr(view_func, "__self__", None),
        ):
            if isinstance(model_admin, BaseModelAdmin):
                return model_admin
        view_func = getattr(view_func, "__wrapped__", None)
    return None


class CraftedInputMiddleware:
    """Answers 400, saying why, to input that can only have been crafted by hand."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refusal = _nul_in(request)
        if refusal:
            return _bad_request(refusal)
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs):
        model_admin = model_admin_of(view_func)
        if model_admin is None:
            return None
        refusal = _admin_refusal(request, model_admin)
        return _bad_request(refusal) if refusal else None
