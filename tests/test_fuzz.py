"""Crafted ids and query strings on every admin URL the portal adds or customises.

The URLs come from the URL resolver and the filters from each admin's own change list, so a URL
or filter added later is fuzzed without touching this file. Whatever is sent, the answer is
never a server error: a page, a redirect with the admin's message, a 404, or a 400 saying why.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlencode

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import models
from django.test import RequestFactory
from django.urls import URLResolver, get_resolver, reverse

from portal.models import ProvisioningCall
from portal.ops.middleware import model_admin_of
from tests.factories import OrderFactory, ProvisioningCallFactory, RenewalFactory

OUR_APPS = {"portal", "customers", "orders"}
NUL = "\x00"

# Ids typed into an address where the admin expects one.
CRAFTED_IDS = ["abc", "1.5", "%00", "99999999999999999999", "-1", "0", "%E2%80%AE7", "1%27--"]
CRAFTED_INTS = ["0", "99999999999999999999"]
# Values typed into a filter or a form field.
CRAFTED_VALUES = ["(", "abc", "99999999999999999999", "1.5", "-1", ""]
CRAFTED_SELECTION = ["abc", "1.5", "99999999999999999999", "-1", "", "1 OR 1=1"]
# Lookups a person can type on any field, with values that once reached the database; those
# the admin does not offer are refused whatever the value, so one value is enough for them.
FIELD_LOOKUPS = {
    "exact": ["abc", "99999999999999999999"],
    "in": ["abc,(", "1,99999999999999999999"],
    "gt": ["abc", "99999999999999999999"],
    "regex": ["("],
    "range": ["abc"],
    "contains": ["("],
}
DATE_LOOKUPS = {
    "exact": ["2026-02-30"],
    "gte": ["abc", "99999-01-01"],
    "year": ["99999"],
    "date": ["abc"],
    "range": ["abc"],
}
HIERARCHY_DATES = [
    {"year": "abc"},
    {"year": "0"},
    {"year": "1"},
    {"year": "9999"},
    {"year": "10000"},
    {"year": "99999999999999999999"},
    {"year": "2026", "month": "13"},
    {"year": "2026", "month": "0"},
    {"year": "9999", "month": "12"},
    {"year": "9999", "month": "12", "day": "31"},
    {"year": "2026", "month": "2", "day": "30"},
    {"year": "2026", "month": "1", "day": "abc"},
]
GENERIC_QUERIES = [
    {"p": "abc"},
    {"p": "99999999999999999999"},
    {"o": "abc"},
    {"o": "99.-1"},
    {"q": "("},
    {"q": "%"},
    {"e": "1"},
    {"_to_field": "abc"},
    {"_popup": "1", "_to_field": "password"},
    {"all": ""},
    {"state": "abc"},
]
CONVERTER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")


@dataclass(frozen=True)
class AdminUrl:
    route: str  # with converters, as the resolver has it
    name: str
    model_admin: admin.ModelAdmin | None

    @property
    def parameters(self) -> list[tuple[str, str]]:
        return [(m["converter"] or "str", m["name"]) for m in CONVERTER.finditer(self.route)]

    def fill(self, values: dict[str, str]) -> str:
        return "/" + CONVERTER.sub(lambda m: values[m["name"]], self.route)


def _walk(patterns, prefix: str = "") -> Iterator[tuple[str, object]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _ours(callback, model_admin) -> bool:
    if model_admin is not None:
        return model_admin.model._meta.app_label in OUR_APPS
    return callback.__module__.split(".")[0] in OUR_APPS


def admin_urls() -> list[AdminUrl]:
    """Every admin URL the portal adds or customises, and the autocomplete our forms use."""
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("admin/") or route.startswith("admin/^"):
            continue
        callback = pattern.callback
        model_admin = model_admin_of(callback)
        if _ours(callback, model_admin) or pattern.name == "autocomplete":
            found.append(AdminUrl(route, pattern.name or "", model_admin))
    return found


ADMIN_URLS = admin_urls()


def _needs_object(url: AdminUrl) -> bool:
    return bool(url.parameters)


def _ids(url: AdminUrl) -> str:
    return url.name or url.route


def _admins() -> list[admin.ModelAdmin]:
    return [a for m, a in admin.site._registry.items() if m._meta.app_label in OUR_APPS]


@pytest.fixture
def existing(superuser):
    """An object of each kind in a few states, so real ids are fuzzed beside crafted ones.
    Written directly: what is fuzzed is the address and the query, not the vendor."""
    subscription = OrderFactory(active=True)
    OrderFactory(customer=subscription.customer)
    pending = OrderFactory(pending=True, customer=subscription.customer)
    RenewalFactory(parent=subscription)
    ProvisioningCallFactory(order=subscription)
    ProvisioningCallFactory(order=pending, outcome=ProvisioningCall.Outcome.UNKNOWN)
    return subscription


def _check(client, method: str, url: str, data=None) -> str | None:
    """None when the answer is clear; else what was wrong with it."""
    send = client.get if method == "GET" else client.post
    try:
        response = send(url, data or {})
    except Exception as exc:  # a view that raises is a server error in production
        return f"{method} {url!r} {data!r}: raised {type(exc).__name__}: {exc}"
    status = response.status_code
    if status >= 500:
        return f"{method} {url!r} {data!r}: {status}"
    if status == 400:
        body = b"".join(response) if response.streaming else response.content
        if not body.strip():
            return f"{method} {url!r} {data!r}: 400 without a word"
    if status == 302 and "e=1" not in response["Location"]:
        # A redirect away from what was asked says why, in the admin's messages.
        target = response["Location"].split("?")[0]
        same_place = unquote(target).startswith(unquote(url.split("?")[0]))
        if not same_place and not list(get_messages(response.wsgi_request)):
            return f"{method} {url!r} {data!r}: redirected to {target} without a message"
    return None


def _assert_clear(problems: list[str | None]) -> None:
    problems = [problem for problem in problems if problem]
    assert not problems, f"{len(problems)} unclear answers:\n" + "\n".join(problems)


def test_fuzz_finds_every_kind_of_admin_url():
    names = {url.name for url in ADMIN_URLS}

    for expected in [
        "orders_order_provision",
        "customers_customer_provision",
        "orders_order_export",
        "orders_renewaldue_changelist",
        "orders_renewaldue_resend",
        "dashboard",
        "autocomplete",
        "orders_order_change",
        "orders_order_history",
        "orders_order_delete",
        "portal_provisioningcall_changelist",
        "orders_reminderrun_changelist",
    ]:
        assert expected in names


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in ADMIN_URLS if _needs_object(u)], ids=_ids)
def test_crafted_ids_in_admin_urls_get_a_clear_answer(client, superuser, existing, url):
    client.force_login(superuser)
    real_ids = []
    if url.model_admin is not None:
        manager = url.model_admin.model._default_manager
        real_ids = [str(pk) for pk in manager.values_list("pk", flat=True)[:4]]
    names = [a.name for a in getattr(url.model_admin, "provisioning_actions", ())] + ["abc"]
    candidates: dict[str, list[str]] = {
        "path": CRAFTED_IDS + real_ids,
        "str": CRAFTED_IDS + real_ids,
        "int": CRAFTED_INTS + real_ids,
        "slug": names,
    }
    problems = []
    cases = [{}]
    for converter, name in url.parameters:
        cases = [{**case, name: value} for case in cases for value in candidates[converter]]

    for case in cases:
        address = url.fill(case)
        for method in ("GET", "POST"):
            problems.append(_check(client, method, address))

    _assert_clear(problems)
    assert len(cases) >= len(CRAFTED_INTS)


def _filter_parameters(model_admin, user) -> list[str]:
    """What each of the list's filters reads from the query string."""
    request = RequestFactory().get("/")
    request.user = user
    changelist = model_admin.get_changelist_instance(request)
    return [param for spec in changelist.filter_specs for param in spec.expected_parameters()]


def _field_lookups(model) -> list[tuple[str, list[str]]]:
    lookups = []
    for field in model._meta.concrete_fields:
        dated = isinstance(field, models.DateField)  # DateTimeField included
        for lookup, values in (DATE_LOOKUPS if dated else FIELD_LOOKUPS).items():
            lookups.append((f"{field.name}__{lookup}", values))
    return lookups


def _query_cases(url: AdminUrl, user) -> list[dict[str, str]]:
    """Generic crafted parameters, and for a model's URLs every filter of its list, a set of
    lookups on each of its fields, bare field names (add forms read them as initial values)
    and its date hierarchy."""
    cases = [dict(query) for query in GENERIC_QUERIES]
    model_admin = url.model_admin
    if model_admin is None:
        return cases
    if url.name.endswith(("_changelist", "_export")):
        for param in _filter_parameters(model_admin, user):
            cases += [{param: value} for value in CRAFTED_VALUES]
        for key, values in _field_lookups(model_admin.model):
            cases += [{key: value} for value in values]
    for field in model_admin.model._meta.concrete_fields:
        cases += [{field.name: value} for value in ["(", "abc", "99999999999999999999"]]
    hierarchy = model_admin.date_hierarchy
    if hierarchy:
        cases += [{f"{hierarchy}__{unit}": v for unit, v in d.items()} for d in HIERARCHY_DATES]
    return cases


def _as(user):
    request = RequestFactory().get("/")
    request.user = user
    return request


@pytest.mark.django_db
@pytest.mark.parametrize("url", [u for u in ADMIN_URLS if not _needs_object(u)], ids=_ids)
def test_crafted_query_strings_on_admin_urls_get_a_clear_answer(client, superuser, existing, url):
    client.force_login(superuser)
    problems = []
    cases = _query_cases(url, superuser)

    for query in cases:
        problems.append(_check(client, "GET", f"/{url.route}?{urlencode(query)}"))

    _assert_clear(problems)


NUL_CASES = [
    ("orders_order_changelist", {"status__exact": f"active{NUL}"}),
    ("orders_order_changelist", {"status__in": f"active,{NUL}"}),
    ("orders_order_changelist", {"q": NUL}),
    ("orders_order_changelist", {f"status{NUL}": "x"}),
    ("orders_order_export", {"status__exact": NUL}),
    ("portal_provisioningcall_changelist", {"outcome__exact": NUL}),
    ("autocomplete", {"term": NUL, "app_label": "orders", "model_name": "order"}),
    ("orders_renewaldue_changelist", {"p": NUL}),
    ("dashboard", {"x": NUL}),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "query"), NUL_CASES)
def test_nul_characters_are_refused_naming_where(client, superuser, name, query):
    client.force_login(superuser)
    url = next(u for u in ADMIN_URLS if u.name == name)

    response = client.get(f"/{url.route}?{urlencode(query)}")

    assert response.status_code == 400
    assert "NUL character" in response.content.decode()


@pytest.mark.django_db
def test_nul_in_an_address_or_a_form_is_refused(client, superuser, active_order):
    client.force_login(superuser)

    in_path = client.get("/admin/orders/order/%00/oneoffice/place/")
    in_form = client.post("/admin/orders/order/add/", {"customer": NUL, "number": "A"})
    in_login = client.post("/admin/login/", {"username": f"root{NUL}", "password": "x"})

    for response in (in_path, in_form, in_login):
        assert response.status_code == 400
        assert "NUL character" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("/admin/orders/order/", "number__regex"),
        ("/admin/orders/order/", "customer__name__iregex"),
        ("/admin/orders/order/export/", "number__regex"),
        ("/admin/customers/customer/", "name__regex"),
        ("/admin/portal/provisioningcall/", "error__regex"),
    ],
)
def test_regex_lookups_are_refused_as_not_offered(client, superuser, url, key):
    client.force_login(superuser)

    response = client.get(f"{url}?{urlencode({key: '('})}")

    assert response.status_code == 400
    assert "regular expression" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize("model_admin", _admins(), ids=lambda a: a.model._meta.label)
def test_bulk_actions_with_crafted_selections_get_a_clear_answer(
    client, superuser, existing, model_admin
):
    client.force_login(superuser)
    opts = model_admin.model._meta
    url = f"/admin/{opts.app_label}/{opts.model_name}/"
    actions = list(model_admin.get_actions(_as(superuser)))
    problems = []

    for action in actions:
        for selected in CRAFTED_SELECTION:
            data = {"action": action, "index": "0", ACTION_CHECKBOX_NAME: selected}
            problems.append(_check(client, "POST", url, data))
        data = {"action": action, "index": "abc", "select_across": "abc"}
        problems.append(_check(client, "POST", url, data))

    _assert_clear(problems)


@pytest.mark.django_db
@pytest.mark.parametrize("model_admin", _admins(), ids=lambda a: a.model._meta.label)
def test_crafted_form_values_get_field_errors(client, superuser, existing, model_admin):
    client.force_login(superuser)
    opts = model_admin.model._meta
    if not model_admin.has_add_permission(_as(superuser)):
        pytest.skip("no add form")
    url = f"/admin/{opts.app_label}/{opts.model_name}/add/"
    form = model_admin.get_form(_as(superuser))
    problems = []

    for field in form.base_fields:
        for value in [*CRAFTED_VALUES, "-" * 300, "1_000", "\N{ARABIC-INDIC DIGIT ONE}"]:
            problems.append(_check(client, "POST", url, {field: value, "_save": "Save"}))

    _assert_clear(problems)


AUTOCOMPLETE = {"app_label": "orders", "model_name": "order", "field_name": "customer"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query",
    [
        {**AUTOCOMPLETE, "term": "("},
        {**AUTOCOMPLETE, "term": "%"},
        {**AUTOCOMPLETE, "term": "x" * 5000},
        {**AUTOCOMPLETE, "page": "abc"},
        {**AUTOCOMPLETE, "page": "99999999999999999999"},
        {**AUTOCOMPLETE, "field_name": "abc"},
        {**AUTOCOMPLETE, "model_name": "abc"},
        {**AUTOCOMPLETE, "app_label": "abc"},
        {"term": "a"},
    ],
)
def test_autocomplete_with_crafted_queries_gets_a_clear_answer(client, superuser, query):
    client.force_login(superuser)

    assert _check(client, "GET", f"/admin/autocomplete/?{urlencode(query)}") is None


@pytest.mark.django_db
@pytest.mark.parametrize("customer", ["abc", "1.5", "99999999999999999999", "-1", quote("(")])
def test_order_form_with_a_crafted_customer_says_so(client, superuser, customer):
    client.force_login(superuser)

    response = client.post(
        "/admin/orders/order/add/",
        {"customer": customer, "product": "oo-std", "licenses": "1", "duration": "monthly"},
    )

    assert response.status_code == 200
    assert "customer" in response.context["adminform"].form.errors


def _listed(model_admin) -> bool:
    """Whether the admin shows Django's own change list (Renewals due has a page of its own)."""
    return not model_admin.model._meta.proxy


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model_admin", [a for a in _admins() if _listed(a)], ids=lambda a: a.model._meta.label
)
def test_every_filter_link_the_admin_offers_still_works(client, superuser, existing, model_admin):
    # The control: the refusals above must not catch what the admin's own links send.
    client.force_login(superuser)
    opts = model_admin.model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    request = RequestFactory().get(url)
    request.user = superuser
    changelist = model_admin.get_changelist_instance(request)
    queries = [
        choice["query_string"]
        for spec in changelist.filter_specs
        for choice in spec.choices(changelist)
    ]
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        queries += [
            f"?{field}__year=2026",
            f"?{field}__year=2026&{field}__month=12",
            f"?{field}__year=2024&{field}__month=2&{field}__day=29",
            f"?{field}__year=9998&{field}__month=12&{field}__day=31",
        ]
    queries += ["?q=Company", "?o=1", "?p=1", "?all="]

    for query in queries:
        response = client.get(url + query)
        assert response.status_code == 200, (query, response.status_code)
        assert "?e=1" not in response.get("Location", "")
    assert len(queries) > 4 or not model_admin.list_filter


@pytest.mark.django_db
def test_call_log_links_from_customers_and_orders_still_work(client, superuser, active_order):
    client.force_login(superuser)
    calls = reverse("admin:portal_provisioningcall_changelist")

    for query in [
        f"order__id__exact={active_order.pk}",
        f"customer__id__exact={active_order.customer_id}",
    ]:
        response = client.get(f"{calls}?{query}")
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) >= 1
