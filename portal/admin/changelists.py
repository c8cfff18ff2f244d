"""Change lists that stay fast at a million rows: the date hierarchy, the count and search.

Django's admin draws the date hierarchy's links from a DISTINCT over every row, counts the table
twice per page, and searches with a case-insensitive substring match over every search field
(a full scan of each table joined). Here the links come from the indexed column's first and last
value, a page counts once, and search matches ids exactly on their unique indexes and words
anywhere in a stored, folded column (portal.core.search) that a trigram index serves on
PostgreSQL.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib import admin
from django.contrib.admin.views.main import IGNORED_PARAMS
from django.core.exceptions import ValidationError
from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from customers.models import Customer
from orders.models import Order
from portal.core.ids import validate_remote_id
from portal.core.search import search_words

# A drill-down to days spanning more than this falls back to Django's own DISTINCT.
MAX_DAYS_LISTED = 62
# Customers matched by a search before the list falls back to a subquery.
MAX_CUSTOMER_IDS = 1000
# Rows matched by a search before the list falls back to filtering by the search itself.
MAX_ROW_IDS = 5000


class DateRangeQuerySet(QuerySet):
    """`dates()` and `datetimes()` for the admin's date hierarchy from the first and last
    value of the column (two index probes) instead of a DISTINCT over every row. Years,
    months or days in between are listed even when no row falls in them."""

    def dates(self, field_name, kind, order="ASC"):
        listed = self._spanned(field_name, kind, order, tzinfo=None)
        return super().dates(field_name, kind, order) if listed is None else listed

    def datetimes(self, field_name, kind, order="ASC", tzinfo=None, **kwargs):
        tzinfo = tzinfo or timezone.get_current_timezone()
        listed = self._spanned(field_name, kind, order, tzinfo=tzinfo)
        if listed is None:
            return super().datetimes(field_name, kind, order, tzinfo, **kwargs)
        return [timezone.make_aware(datetime.combine(day, time()), tzinfo) for day in listed]

    def aggregate(self, *args, **kwargs):
        field_name = _bounds_of(kwargs) if not args else None
        if field_name is None:
            return super().aggregate(*args, **kwargs)
        # The date hierarchy's first and last value. As two ORDER BY ... LIMIT 1 each is one
        # index probe; as MIN and MAX in one query SQLite reads every row.
        known = self.__dict__.setdefault("_bounds", {})
        if field_name not in known and not self.__dict__.get("probe_bounds"):
            # Narrowed by a search or filter: its own index finds the few rows, and probing
            # the date's index in order could walk most of the table to reach them.
            known[field_name] = super().aggregate(**kwargs)
        if field_name not in known:
            ordered = self.filter(**{f"{field_name}__isnull": False}).values_list(
                field_name, flat=True
            )
            known[field_name] = {
                "first": ordered.order_by(field_name).first(),
                "last": ordered.order_by(f"-{field_name}").first(),
            }
        return dict(known[field_name])

    def _spanned(self, field_name, kind, order, *, tzinfo):
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        first, last = bounds["first"], bounds["last"]
        if first is None or last is None:
            return []
        if tzinfo is not None:
            first = timezone.localtime(first, tzinfo).date()
            last = timezone.localtime(last, tzinfo).date()
        if kind == "year":
            listed = [date(year, 1, 1) for year in range(first.year, last.year + 1)]
        elif kind == "month":
            listed = []
            month = first.replace(day=1)
            while month <= last:
                listed.append(month)
                month = (month + timedelta(days=32)).replace(day=1)
        elif kind == "day" and (last - first).days <= MAX_DAYS_LISTED:
            listed = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        else:
            return None
        return listed[::-1] if order == "DESC" else listed


def _bounds_of(aggregates: dict) -> str | None:
    """The field when `aggregates` is exactly {first: Min(field), last: Max(field)}."""
    first, last = aggregates.get("first"), aggregates.get("last")
    if set(aggregates) != {"first", "last"}:
        return None
    if not (isinstance(first, Min) and isinstance(last, Max)):
        return None
    names = {getattr(agg.source_expressions[0], "name", None) for agg in (first, last)}
    return names.pop() if len(names) == 1 else None


def with_date_ranges(queryset: QuerySet) -> QuerySet:
    """The same queryset, with the date hierarchy's cheap `dates()`/`datetimes()`."""
    return DateRangeQuerySet(model=queryset.model, query=queryset.query.chain(), using=queryset._db)


def id_variants(term: str, prefix: str = "") -> list[str]:
    """The ids a search term may mean: as typed, in capitals (generated ids are capitals) and,
    typed without it, with the model's prefix (`7QK4M2XZ9P` for `C-7QK4M2XZ9P`); none when it
    cannot be an id."""
    try:
        validate_remote_id(term)
    except ValidationError:
        return []
    variants = {term, term.upper()}
    if prefix and not term.upper().startswith(f"{prefix}-"):
        variants.add(f"{prefix}-{term.upper()}")
    return sorted(variants)


def words_q(field: str, term: str) -> Q:
    """Every word of the term somewhere in `field`, a column folded as the words are
    (portal.core.search): a substring match, which a trigram index serves on PostgreSQL."""
    words = search_words(term)
    if not words:
        return Q(pk__in=[])
    return Q(*(Q(**{f"{field}__contains": word}) for word in words))


class LargeListAdminMixin:
    """For a ModelAdmin whose list grows without bound: a page counts its rows once, and the
    date hierarchy reads two index probes. A filtered page offers "Show all" instead of a
    second count of the whole table; an unfiltered page's count is the total."""

    show_full_result_count = False

    def get_queryset(self, request):
        return with_date_ranges(super().get_queryset(request))

    def get_changelist_instance(self, request):
        changelist = super().get_changelist_instance(request)
        dated = f"{changelist.date_hierarchy}__" if changelist.date_hierarchy else None
        narrowed = changelist.query or any(
            key not in IGNORED_PARAMS and not (dated and key.startswith(dated))
            for key in changelist.params
        )
        queryset = changelist.queryset
        if isinstance(queryset, DateRangeQuerySet):
            queryset.probe_bounds = not narrowed
            field = changelist.date_hierarchy
            if narrowed and field and "__" not in field and not changelist.multi_page:
                # Every matching row is on this page: its dates are the bounds. SQLite
                # would otherwise read every subscription to find the few a search picked.
                values = [getattr(obj, field) for obj in changelist.result_list]
                values = [value for value in values if value is not None]
                queryset.__dict__.setdefault("_bounds", {})[field] = {
                    "first": min(values, default=None),
                    "last": max(values, default=None),
                }
        if not narrowed and not any(key.startswith(dated or "\0") for key in changelist.params):
            changelist.full_result_count = changelist.result_count
        return changelist


def customer_search_q(term: str) -> Q:
    """Customers a search term names: by customer id (with or without its prefix), or by a
    word anywhere in the id, name, admin email or admin name, accents and case aside."""
    return Q(code__in=id_variants(term, Customer.ID_PREFIX)) | words_q("search_text", term)


def matching_customers(term: str) -> list[int] | QuerySet:
    """The primary keys of the customers a search term names: a short list lets the database
    combine it with other indexed conditions; a long one (a common word) stays a subquery."""
    # Unordered: sorting by name would walk the whole name index to the first match.
    matching = Customer.objects.filter(customer_search_q(term)).order_by()
    ids = list(matching.values_list("pk", flat=True)[: MAX_CUSTOMER_IDS + 1])
    return matching.values("pk") if len(ids) > MAX_CUSTOMER_IDS else ids


def customer_ids_q(field: str, term: str) -> Q:
    """`field` (a customer foreign key) points at a customer the term names."""
    return Q(**{f"{field}__in": matching_customers(term)})


def order_ids(term: str, *, subscriptions: bool = False) -> list[int]:
    """Orders whose id is the term (with or without its prefix); with `subscriptions`, a
    renewal's subscription in its place. Read on the unique index."""
    found = Order.objects.filter(number__in=id_variants(term, Order.ID_PREFIX)).values_list(
        "pk", "parent_id"
    )
    return sorted({parent if subscriptions and parent else pk for pk, parent in found})


def search_term(text: str) -> str:
    """The search box's text as one term: spaces trimmed and collapsed."""
    return " ".join(text.split())


def matching_ids_q(model, matches: Q) -> Q:
    """Rows of `model` that `matches` (an id or a customer condition, ORed), as a list of
    primary keys found first: SQLite answers "id = x OR customer IN (...)" next to the list's
    own filters by reading every row, but each half alone from its index."""
    pks = list(
        model._default_manager.filter(matches)
        .order_by()
        .values_list("pk", flat=True)[: MAX_ROW_IDS + 1]
    )
    if len(pks) > MAX_ROW_IDS:
        return matches
    return Q(pk__in=pks)


def subscription_search_q(term: str, *, prefix: str = "") -> Q:
    """Subscriptions (through `prefix`, a path to one) a search term names: by their id or a
    renewal's, or by their customer."""
    return Q(**{f"{prefix}pk__in": order_ids(term, subscriptions=True)}) | customer_ids_q(
        f"{prefix}customer", term
    )


def subscriptions_found_q(term: str) -> Q:
    """Subscriptions a search term names, for a list of them: as primary keys found first
    (see `matching_ids_q`) when few customers match; as the conditions themselves when many
    do (a common word), where listing the rows first would read most of them twice."""
    customers = matching_customers(term)
    matches = Q(pk__in=order_ids(term, subscriptions=True)) | Q(customer__in=customers)
    if isinstance(customers, QuerySet):
        return matches
    return matching_ids_q(Order, matches)


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
