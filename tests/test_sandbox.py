"""The fake OneOffice vendor, exercised over real HTTP on a loopback port (no Django, no mocks)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import time_machine

from portal.oneoffice.sandbox import DURATIONS, FAULTS, PRODUCTS, Sandbox

KEY = "sandbox-test-key-5f1c9a"
ADMIN = {"email": "admin@abc.example", "phone": "111111111", "displayName": "Isa Aswath"}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    sb = Sandbox(api_key=KEY, state_path=tmp_path / "state" / "sandbox.json").start()
    yield sb
    sb.stop()


def call(
    sb: Sandbox, method: str, params: Any, *, key: str | None = KEY, timeout: float = 5
) -> requests.Response:
    headers = {"x-api-key": key} if key is not None else {}
    return requests.request(
        "GET",
        sb.url,
        json={"method": method, "params": params},
        headers=headers,
        timeout=timeout,
        allow_redirects=False,
    )


def add_customer(sb: Sandbox, cid: str = "ABC", *, key: str | None = KEY) -> requests.Response:
    params = {"id": cid, "name": f"{cid} Company", "admin": ADMIN}
    return call(sb, "createCustomer", params, key=key)


def add_order(
    sb: Sandbox, oid: str = "O1", customer: str = "ABC", timeout: float = 5, **overrides: Any
) -> requests.Response:
    params = {"customer": customer, "id": oid, "product": "oo-lite", "licenses": 20}
    params = {**params, "duration": "monthly", **overrides}
    return call(sb, "createFirstOrder", params, timeout=timeout)


def renew(sb: Sandbox, parent: str = "O1", oid: str = "R1") -> requests.Response:
    return call(sb, "createRenewalOrder", {"parent": parent, "id": oid})


def monthly_orders_from_june_1(sb: Sandbox, *oids: str) -> None:
    """Customer ABC with monthly orders running 2027-06-01 to 2027-07-01."""
    assert add_customer(sb).ok
    with on(date(2027, 6, 1)):
        for oid in oids:
            assert add_order(sb, oid).ok


IN_WINDOW = date(2027, 6, 20)  # 11 days left on the June term


def on(day: date, hour: int = 12) -> time_machine.travel:
    return time_machine.travel(datetime(day.year, day.month, day.day, hour, tzinfo=UTC))


def refusal(response: requests.Response) -> str:
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"] == "application/json"
    return response.json()


def caused_by_refused_connection(exc: BaseException) -> bool:
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None))
        todo += [e for e in (*linked, *current.args) if isinstance(e, BaseException)]
    return False


# -- transport ------------------------------------------------------------------------------------


def test_constants_match_the_vendor_page() -> None:
    assert PRODUCTS == ("oo-lite", "oo-std", "oo-ent", "erp-std", "erp-admin", "erp-lim")
    assert DURATIONS == ("monthly", "yearly")
    assert len(FAULTS) == 13


def test_url_and_port_are_the_bound_loopback_port(sandbox: Sandbox) -> None:
    assert sandbox.port > 0
    assert sandbox.url == f"http://127.0.0.1:{sandbox.port}/"


@pytest.mark.parametrize("key", [None, "", "wrong-key"])
def test_wrong_or_missing_key_is_401(sandbox: Sandbox, key: str | None) -> None:
    response = add_customer(sandbox, key=key)
    assert response.status_code == 401
    assert response.json() == "invalid API key"
    assert sandbox.snapshot()["customers"] == {}


def test_key_is_checked_before_the_body(sandbox: Sandbox) -> None:
    response = requests.get(sandbox.url, data=b"not json", timeout=5)
    assert response.status_code == 401
    assert response.json() == "invalid API key"


@pytest.mark.parametrize("http_method", ["POST", "PUT", "DELETE"])
def test_non_get_is_405(sandbox: Sandbox, http_method: str) -> None:
    body = {"method": "createCustomer", "params": {"id": "ABC", "name": "A", "admin": ADMIN}}
    response = requests.request(
        http_method, sandbox.url, json=body, headers={"x-api-key": KEY}, timeout=5
    )
    assert response.status_code == 405
    assert response.json() == "method not allowed"
    assert sandbox.snapshot()["customers"] == {}


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"createCustomer"', b'{"params": {}}', b'{"method": 5}',
     b'{"method": "cancelOrder", "params": ["O1"]}', b""],
)  # fmt: skip
def test_malformed_envelope_is_400(sandbox: Sandbox, body: bytes) -> None:
    headers = {"x-api-key": KEY, "Content-Type": "application/json"}
    response = requests.get(sandbox.url, data=body, headers=headers, timeout=5)
    assert refusal(response) == "invalid request body"


def test_any_path_and_extra_envelope_keys_are_accepted(sandbox: Sandbox) -> None:
    body = {"jsonrpc": "2.0", "method": "createCustomer", "id": 7,
            "params": {"id": "ABC", "name": "ABC Company", "admin": ADMIN}}  # fmt: skip
    response = requests.get(
        sandbox.url + "some/path?x=1", json=body, headers={"x-api-key": KEY}, timeout=5
    )
    assert response.status_code == 200
    assert response.json()["remoteId"] == "ABC"


def test_unknown_method_is_400(sandbox: Sandbox) -> None:
    assert refusal(call(sandbox, "resumeOrder", {"id": "O1"})) == 'unknown method "resumeOrder"'


# -- createCustomer --------------------------------------------------------------------------------


def test_create_customer_old_style_response(sandbox: Sandbox) -> None:
    before = int(time.time())
    first, second = add_customer(sandbox, "ABC"), add_customer(sandbox, "XYZ")
    assert first.status_code == second.status_code == 200
    assert first.headers["Content-Type"] == "application/json"
    body = first.json()
    assert set(body) == {"name", "partner", "createdAt", "id", "isActive", "admin", "remoteId"}
    assert body["name"] == "ABC Company"
    assert body["partner"] == 0
    assert body["id"] == 1 and second.json()["id"] == 2
    assert body["isActive"] is True
    assert body["admin"] == {"email": ADMIN["email"]}
    assert body["remoteId"] == "ABC"
    assert before <= body["createdAt"] <= int(time.time())
    stored = sandbox.snapshot()["customers"]["ABC"]
    assert stored["name"] == "ABC Company" and stored["admin"] == ADMIN
    assert stored["vendor_id"] == 1 and stored["isActive"] is True
    assert stored["createdAt"] == body["createdAt"]


def test_create_customer_new_style_response(sandbox: Sandbox) -> None:
    sandbox.response_style = "new"
    body = add_customer(sandbox).json()
    assert isinstance(body["id"], str) and body["id"]
    assert isinstance(body["partner"], str) and body["partner"]
    assert body["url"] == f"https://onboarding.oneoffice.invalid/{body['id']}"
    assert body["remoteId"] == "ABC"
    assert sandbox.snapshot()["customers"]["ABC"]["vendor_id"] == body["id"]


def test_response_style_is_validated() -> None:
    with pytest.raises(ValueError):
        Sandbox(api_key=KEY, response_style="newest")


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({"name": "N", "admin": ADMIN}, "id"),
        ({"id": "", "name": "N", "admin": ADMIN}, "id"),
        ({"id": "ABC", "admin": ADMIN}, "name"),
        ({"id": "ABC", "name": "N"}, "admin"),
        ({"id": "ABC", "name": "N", "admin": {**ADMIN, "email": ""}}, "admin.email"),
        (
            {"id": "ABC", "name": "N", "admin": {"email": "a@b.c", "displayName": "D"}},
            "admin.phone",
        ),
        (
            {"id": "ABC", "name": "N", "admin": {"email": "a@b.c", "phone": "1"}},
            "admin.displayName",
        ),
    ],
)
def test_create_customer_missing_parameter(sandbox: Sandbox, params: dict, missing: str) -> None:
    assert refusal(call(sandbox, "createCustomer", params)) == f'missing parameter "{missing}"'
    assert sandbox.snapshot()["customers"] == {}


def test_create_customer_duplicate_id(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    assert refusal(add_customer(sandbox)) == (
        'duplicate key value violates unique constraint "customers_remote_id_key"'
    )
    assert list(sandbox.snapshot()["customers"]) == ["ABC"]


# -- createFirstOrder ------------------------------------------------------------------------------


def test_create_first_order(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    with on(date(2027, 6, 1)):
        response = add_order(sandbox, product="erp-std", licenses=3)
    assert response.status_code == 200
    assert response.json() is True
    assert sandbox.snapshot()["orders"]["O1"] == {
        "id": "O1",
        "customer": "ABC",
        "parent": None,
        "product": "erp-std",
        "licenses": 3,
        "duration": "monthly",
        "status": "active",
        "term_start": "2027-06-01",
        "term_end": "2027-07-01",
        "current_term_end": "2027-07-01",
    }


@pytest.mark.parametrize(
    ("order_body", "raw"), [({}, b"{}"), ("ok", b'"ok"'), (None, b""), (True, b"true")]
)
def test_order_body_is_what_the_four_order_methods_return(
    sandbox: Sandbox, order_body: object, raw: bytes
) -> None:
    sandbox.order_body = order_body
    add_customer(sandbox)
    with on(date(2027, 6, 1)):
        responses = [add_order(sandbox)]
    with on(IN_WINDOW):
        responses.append(renew(sandbox))
    responses.append(call(sandbox, "suspendOrder", {"id": "O1"}))
    responses.append(call(sandbox, "cancelOrder", {"id": "O1"}))
    for response in responses:
        assert response.status_code == 200
        assert response.content == raw
    assert sandbox.snapshot()["orders"]["O1"]["status"] == "cancelled"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"customer": "NOPE"}, "customer NOPE not found"),
        ({"product": "oo-max"}, 'invalid product "oo-max"'),
        ({"duration": "weekly"}, 'invalid duration "weekly"'),
        ({"licenses": "20"}, 'invalid licenses "20"'),
        ({"licenses": 0}, 'invalid licenses "0"'),
        ({"licenses": -3}, 'invalid licenses "-3"'),
        ({"licenses": 2.5}, 'invalid licenses "2.5"'),
        ({"licenses": True}, 'invalid licenses "true"'),
        ({"customer": ""}, 'missing parameter "customer"'),
        ({"id": None}, 'missing parameter "id"'),
        ({"product": ""}, 'missing parameter "product"'),
        ({"licenses": None}, 'missing parameter "licenses"'),
        ({"duration": None}, 'missing parameter "duration"'),
    ],
)
def test_create_first_order_refused(sandbox: Sandbox, overrides: dict, message: str) -> None:
    add_customer(sandbox)
    assert refusal(add_order(sandbox, **overrides)) == message
    assert sandbox.snapshot()["orders"] == {}


def test_duplicate_order_ids_are_refused_across_first_and_renewal_orders(sandbox: Sandbox) -> None:
    duplicate = 'duplicate key value violates unique constraint "orders_remote_id_key"'
    monthly_orders_from_june_1(sandbox, "O1")
    with on(IN_WINDOW):
        assert renew(sandbox, "O1", "R1").ok
        assert refusal(add_order(sandbox, "O1")) == duplicate
        assert refusal(add_order(sandbox, "R1")) == duplicate
        assert refusal(call(sandbox, "createRenewalOrder", {"parent": "O1", "id": "R1"})) == (
            duplicate
        )
        assert refusal(call(sandbox, "createRenewalOrder", {"parent": "O1", "id": "O1"})) == (
            duplicate
        )
    assert sorted(sandbox.snapshot()["orders"]) == ["O1", "R1"]


# -- createRenewalOrder ----------------------------------------------------------------------------


def test_renewal_window_boundary(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    with on(date(2027, 6, 1)):
        add_order(sandbox, "O1")
    with on(date(2027, 6, 15)):  # 16 days left
        assert refusal(renew(sandbox)) == "cannot renew: more than 15 days left on current term"
    assert "R1" not in sandbox.snapshot()["orders"]
    with on(date(2027, 6, 16)):  # exactly 15 days left
        assert renew(sandbox).status_code == 200
    orders = sandbox.snapshot()["orders"]
    assert orders["R1"]["term_start"] == "2027-07-01"
    assert orders["R1"]["term_end"] == "2027-08-01"
    assert orders["O1"]["current_term_end"] == "2027-08-01"


def test_renewal_window_is_configurable(tmp_path: Path) -> None:
    sb = Sandbox(api_key=KEY, state_path=tmp_path / "s.json", renewal_window_days=5).start()
    try:
        add_customer(sb)
        with on(date(2027, 6, 1)):
            add_order(sb)
        with on(date(2027, 6, 25)):
            assert refusal(renew(sb)) == "cannot renew: more than 5 days left on current term"
        with on(date(2027, 6, 26)):
            assert renew(sb).status_code == 200
    finally:
        sb.stop()


def test_renewal_before_expiry_starts_at_current_end_and_keeps_the_terms(
    sandbox: Sandbox,
) -> None:
    add_customer(sandbox)
    with on(date(2027, 6, 1)):
        add_order(sandbox, product="oo-ent", licenses=7, duration="yearly")
    with on(date(2028, 5, 20)):
        assert renew(sandbox, oid="R1").ok
    with on(date(2029, 5, 25)):
        assert renew(sandbox, oid="R2").ok
    orders = sandbox.snapshot()["orders"]
    assert orders["R1"] == {
        "id": "R1",
        "customer": "ABC",
        "parent": "O1",
        "product": "oo-ent",
        "licenses": 7,
        "duration": "yearly",
        "status": "active",
        "term_start": "2028-06-01",
        "term_end": "2029-06-01",
    }
    assert (orders["R2"]["term_start"], orders["R2"]["term_end"]) == ("2029-06-01", "2030-06-01")
    assert orders["O1"]["current_term_end"] == "2030-06-01"
    assert orders["O1"]["term_end"] == "2028-06-01"


def test_renewal_after_expiry_starts_today(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    with on(date(2027, 6, 1)):
        add_order(sandbox)
    with on(date(2027, 8, 10)):
        assert renew(sandbox).ok
    orders = sandbox.snapshot()["orders"]
    assert (orders["R1"]["term_start"], orders["R1"]["term_end"]) == ("2027-08-10", "2027-09-10")
    assert orders["O1"]["current_term_end"] == "2027-09-10"


def test_renewal_on_the_last_day_continues_without_gap(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    with on(date(2027, 6, 1)):
        add_order(sandbox)
    with on(date(2027, 7, 1)):
        assert renew(sandbox).ok
    assert sandbox.snapshot()["orders"]["R1"]["term_start"] == "2027-07-01"


@pytest.mark.parametrize(
    ("start", "duration", "end"),
    [
        (date(2028, 1, 31), "monthly", "2028-02-29"),
        (date(2027, 1, 31), "monthly", "2027-02-28"),
        (date(2027, 3, 31), "monthly", "2027-04-30"),
        (date(2027, 12, 15), "monthly", "2028-01-15"),
        (date(2028, 2, 29), "yearly", "2029-02-28"),
        (date(2027, 6, 1), "yearly", "2028-06-01"),
    ],
)
def test_terms_are_calendar_months_and_years_clamped_to_month_end(
    sandbox: Sandbox, start: date, duration: str, end: str
) -> None:
    add_customer(sandbox)
    with on(start):
        add_order(sandbox, duration=duration)
    assert sandbox.snapshot()["orders"]["O1"]["term_end"] == end


def test_a_clamped_end_is_the_next_term_start(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    with on(date(2028, 1, 31)):
        add_order(sandbox)
    with on(date(2028, 2, 20)):
        assert renew(sandbox).ok
    renewal = sandbox.snapshot()["orders"]["R1"]
    assert (renewal["term_start"], renewal["term_end"]) == ("2028-02-29", "2028-03-29")


def test_today_is_taken_in_the_configured_time_zone(tmp_path: Path) -> None:
    sb = Sandbox(api_key=KEY, tz="Pacific/Auckland").start()
    try:
        add_customer(sb)
        with on(date(2027, 6, 1), hour=20):  # already June 2 in Auckland
            add_order(sb)
        assert sb.snapshot()["orders"]["O1"]["term_start"] == "2027-06-02"
    finally:
        sb.stop()


def test_renewal_refusals(sandbox: Sandbox) -> None:
    monthly_orders_from_june_1(sandbox, "O1", "O2")
    with on(IN_WINDOW):
        assert renew(sandbox, "O1", "R1").ok
        assert call(sandbox, "cancelOrder", {"id": "O2"}).ok
        assert refusal(renew(sandbox, "NOPE", "R2")) == "order NOPE not found"
        assert refusal(renew(sandbox, "R1", "R2")) == "order R1 is not a first order"
        assert refusal(renew(sandbox, "O2", "R2")) == "order O2 is cancelled"
        assert refusal(call(sandbox, "createRenewalOrder", {"id": "R2"})) == (
            'missing parameter "parent"'
        )
        assert refusal(call(sandbox, "createRenewalOrder", {"parent": "O1"})) == (
            'missing parameter "id"'
        )
    assert sorted(sandbox.snapshot()["orders"]) == ["O1", "O2", "R1"]


def test_suspend_then_renew_reactivates(sandbox: Sandbox) -> None:
    monthly_orders_from_june_1(sandbox, "O1")
    with on(IN_WINDOW):
        assert call(sandbox, "suspendOrder", {"id": "O1"}).ok
        assert sandbox.snapshot()["orders"]["O1"]["status"] == "suspended"
        assert renew(sandbox).ok
    assert sandbox.snapshot()["orders"]["O1"]["status"] == "active"


# -- cancelOrder / suspendOrder --------------------------------------------------------------------


def test_cancel_order(sandbox: Sandbox) -> None:
    monthly_orders_from_june_1(sandbox, "O1")
    with on(IN_WINDOW):
        assert renew(sandbox).ok
    assert call(sandbox, "cancelOrder", {"id": "O1"}).json() is True
    assert sandbox.snapshot()["orders"]["O1"]["status"] == "cancelled"
    assert refusal(call(sandbox, "cancelOrder", {"id": "O1"})) == "order O1 is already cancelled"
    assert refusal(call(sandbox, "cancelOrder", {"id": "R1"})) == "order R1 is not a first order"
    assert refusal(call(sandbox, "cancelOrder", {"id": "NOPE"})) == "order NOPE not found"
    assert refusal(call(sandbox, "cancelOrder", {})) == 'missing parameter "id"'


def test_cancel_a_suspended_order(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    add_order(sandbox)
    call(sandbox, "suspendOrder", {"id": "O1"})
    assert call(sandbox, "cancelOrder", {"id": "O1"}).ok
    assert sandbox.snapshot()["orders"]["O1"]["status"] == "cancelled"


def test_suspend_order(sandbox: Sandbox) -> None:
    monthly_orders_from_june_1(sandbox, "O1", "O2")
    with on(IN_WINDOW):
        assert renew(sandbox).ok
    assert call(sandbox, "cancelOrder", {"id": "O2"}).ok
    assert call(sandbox, "suspendOrder", {"id": "O1"}).json() is True
    assert sandbox.snapshot()["orders"]["O1"]["status"] == "suspended"
    assert refusal(call(sandbox, "suspendOrder", {"id": "O1"})) == "order O1 is already suspended"
    assert refusal(call(sandbox, "suspendOrder", {"id": "O2"})) == "order O2 is cancelled"
    assert refusal(call(sandbox, "suspendOrder", {"id": "R1"})) == "order R1 is not a first order"
    assert refusal(call(sandbox, "suspendOrder", {"id": "NOPE"})) == "order NOPE not found"
    assert refusal(call(sandbox, "suspendOrder", {"id": ""})) == 'missing parameter "id"'


# -- state ----------------------------------------------------------------------------------------


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "new-dir" / "sandbox.json"
    first = Sandbox(api_key=KEY, state_path=path).start()
    try:
        add_customer(first)
        add_order(first)
        first.inject("*", "500-before")
    finally:
        first.stop()
    assert json.loads(path.read_text())["orders"]["O1"]["customer"] == "ABC"
    assert [p.name for p in path.parent.iterdir()] == ["sandbox.json"]  # no temp files left

    second = Sandbox(api_key=KEY, state_path=path).start()
    try:
        assert second.snapshot() == first.snapshot()
        assert second.requests == []
        assert refusal(add_customer(second)).startswith("duplicate key")  # fault not persisted
        assert add_customer(second, "XYZ").json()["id"] == 2  # the vendor sequence continues
    finally:
        second.stop()


def test_snapshot_is_a_deep_copy(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    copy = sandbox.snapshot()
    copy["customers"]["ABC"]["admin"]["email"] = "changed@example.com"
    assert sandbox.snapshot()["customers"]["ABC"]["admin"]["email"] == ADMIN["email"]


def test_reset_forgets_everything_and_persists(sandbox: Sandbox, tmp_path: Path) -> None:
    add_customer(sandbox)
    sandbox.inject("createCustomer", "500-before")
    sandbox.reset()
    assert sandbox.snapshot() == {"customers": {}, "orders": {}}
    assert sandbox.requests == []
    assert json.loads((tmp_path / "state" / "sandbox.json").read_text()) == sandbox.snapshot()
    assert add_customer(sandbox).status_code == 200  # the fault was forgotten too


def test_concurrent_calls_are_all_applied(sandbox: Sandbox) -> None:
    results: list[int] = []

    def create(cid: str) -> None:
        results.append(add_customer(sandbox, cid).json()["id"])

    threads = [threading.Thread(target=create, args=(f"C{i}",)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == list(range(1, 21))
    assert len(sandbox.snapshot()["customers"]) == 20


def test_request_log_records_every_request(sandbox: Sandbox) -> None:
    add_customer(sandbox)
    requests.post(sandbox.url + "x", data=b"raw", timeout=5)
    logged, posted = sandbox.requests
    assert logged["http_method"] == "GET"
    assert logged["path"] == "/"
    assert logged["headers"]["x-api-key"] == KEY
    assert logged["headers"]["content-type"] == "application/json"
    assert logged["rpc_method"] == "createCustomer"
    assert logged["json"]["params"]["admin"] == ADMIN
    assert json.loads(logged["body"]) == logged["json"]
    assert (posted["http_method"], posted["path"], posted["body"]) == ("POST", "/x", b"raw")
    assert posted["json"] is None and posted["rpc_method"] is None


def test_log_lines_name_the_call_but_never_the_key(
    sandbox: Sandbox, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="portal.oneoffice.sandbox"):
        add_customer(sandbox)
        add_customer(sandbox)
        add_customer(sandbox, key="wrong")
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.oneoffice.sandbox"]
    assert lines == [
        "createCustomer id=ABC -> 200",
        "createCustomer id=ABC -> 400",
        "createCustomer id=ABC -> 401",
    ]
    assert all(KEY not in line and "wrong" not in line for line in lines)


# -- faults ---------------------------------------------------------------------------------------


def test_500_before_does_not_apply(sandbox: Sandbox) -> None:
    sandbox.inject("createCustomer", "500-before")
    response = add_customer(sandbox)
    assert response.status_code == 500
    assert response.json() == "internal server error"
    assert sandbox.snapshot()["customers"] == {}
    assert add_customer(sandbox).status_code == 200


def test_500_after_applies(sandbox: Sandbox) -> None:
    sandbox.inject("createCustomer", "500-after")
    response = add_customer(sandbox)
    assert (response.status_code, response.json()) == (500, "internal server error")
    assert "ABC" in sandbox.snapshot()["customers"]
    assert refusal(add_customer(sandbox)).startswith("duplicate key")


def test_500_after_a_refused_call_changes_nothing(sandbox: Sandbox) -> None:
    sandbox.inject("createFirstOrder", "500-after")
    assert add_order(sandbox, customer="NOPE").status_code == 500
    assert sandbox.snapshot()["orders"] == {}


def test_hang_after_applies_then_times_out(sandbox: Sandbox) -> None:
    sandbox.hang_seconds = 1
    add_customer(sandbox)
    sandbox.inject("createFirstOrder", "hang-after")
    with pytest.raises(requests.ReadTimeout):
        add_order(sandbox, timeout=0.3)
    assert sandbox.snapshot()["orders"]["O1"]["status"] == "active"


@pytest.mark.parametrize(("fault", "applied"), [("drop-before", False), ("drop-after", True)])
def test_drop_closes_without_response(sandbox: Sandbox, fault: str, applied: bool) -> None:
    sandbox.inject("createCustomer", fault)
    with pytest.raises(requests.ConnectionError) as raised:
        add_customer(sandbox)
    assert not caused_by_refused_connection(raised.value)
    assert ("ABC" in sandbox.snapshot()["customers"]) is applied


def test_html_502_does_not_apply(sandbox: Sandbox) -> None:
    sandbox.inject("createCustomer", "html-502")
    response = add_customer(sandbox)
    assert response.status_code == 502
    assert response.headers["Content-Type"] == "text/html"
    assert "Bad Gateway" in response.text
    assert sandbox.snapshot()["customers"] == {}


def test_garbage_200_applies_with_an_unreadable_body(sandbox: Sandbox) -> None:
    sandbox.inject("createCustomer", "garbage-200")
    response = add_customer(sandbox)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        response.json()
    assert "ABC" in sandbox.snapshot()["customers"]


def test_slow_applies_and_answers_normally(sandbox: Sandbox) -> None:
    sandbox.slow_seconds = 0.2
    sandbox.inject("createCustomer", "slow")
    started = time.monotonic()
    response = add_customer(sandbox)
    assert time.monotonic() - started >= 0.2
    assert response.json()["remoteId"] == "ABC"
    assert "ABC" in sandbox.snapshot()["customers"]


def test_redirect_does_not_apply(sandbox: Sandbox) -> None:
    sandbox.inject("createCustomer", "redirect")
    response = add_customer(sandbox)
    assert response.status_code == 302
    assert response.headers["Location"] == "http://127.0.0.1:9/elsewhere"
    assert response.content == b""
    assert sandbox.snapshot()["customers"] == {}


@pytest.mark.parametrize(
    ("options", "status", "content", "content_type", "applied"),
    [
        ({}, 200, b"", "application/json", False),
        ({"status": 403, "body": '"forbidden"'}, 403, b'"forbidden"', "application/json", False),
        ({"status": 400, "body": b'{"message": "x"}', "apply": True}, 400, b'{"message": "x"}',
         "application/json", True),
        ({"status": 503, "body": "busy", "content_type": "text/plain"}, 503, b"busy",
         "text/plain", False),
    ],
)  # fmt: skip
def test_respond_sends_exactly_what_was_asked(
    sandbox: Sandbox, options: dict, status: int, content: bytes, content_type: str, applied: bool
) -> None:
    sandbox.inject("createCustomer", "respond", **options)
    response = add_customer(sandbox)
    assert response.status_code == status
    assert response.content == content
    assert response.headers["Content-Type"] == content_type
    assert ("ABC" in sandbox.snapshot()["customers"]) is applied


def test_a_fault_applies_times_then_stops(sandbox: Sandbox) -> None:
    sandbox.inject("createCustomer", "500-before", times=2)
    codes = [add_customer(sandbox).status_code for _ in range(3)]
    assert codes == [500, 500, 200]


def test_a_fault_only_matches_its_method_or_star(sandbox: Sandbox) -> None:
    sandbox.inject("createFirstOrder", "500-before")
    assert add_customer(sandbox).status_code == 200
    assert add_order(sandbox).status_code == 500
    sandbox.inject("*", "html-502", times=2)
    assert add_order(sandbox).status_code == 502
    assert call(sandbox, "cancelOrder", {"id": "O1"}).status_code == 502
    assert add_order(sandbox).status_code == 200


def test_faults_skip_unauthenticated_and_malformed_requests(sandbox: Sandbox) -> None:
    sandbox.inject("*", "500-before")
    assert call(sandbox, "createCustomer", {}, key="wrong").status_code == 401
    malformed = requests.get(sandbox.url, data=b"{", headers={"x-api-key": KEY}, timeout=5)
    assert malformed.status_code == 400
    assert add_customer(sandbox).status_code == 500
    assert add_customer(sandbox).status_code == 200


def test_clear_faults(sandbox: Sandbox) -> None:
    sandbox.inject("*", "500-before", times=5)
    sandbox.clear_faults()
    assert add_customer(sandbox).status_code == 200


@pytest.mark.parametrize(
    ("method", "fault", "kwargs"),
    [("createCustomer", "explode", {}), ("createcustomer", "500-before", {}),
     ("*", "500-before", {"times": 0}), ("*", "slow", {"status": 200}),
     ("*", "respond", {"bogus": 1})],
)  # fmt: skip
def test_inject_rejects_typos(sandbox: Sandbox, method: str, fault: str, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        sandbox.inject(method, fault, **kwargs)


def test_refuse_then_accept_connections_on_the_same_port(sandbox: Sandbox) -> None:
    port = sandbox.port
    sandbox.refuse_connections()
    with pytest.raises(requests.ConnectionError) as raised:
        add_customer(sandbox)
    assert caused_by_refused_connection(raised.value)
    assert sandbox.requests == []
    sandbox.accept_connections()
    assert sandbox.port == port
    assert add_customer(sandbox).status_code == 200
    assert "ABC" in sandbox.snapshot()["customers"]


def test_stop_works_while_refusing_and_twice(tmp_path: Path) -> None:
    sb = Sandbox(api_key=KEY).start()
    sb.refuse_connections()
    sb.stop()
    sb.stop()
    with pytest.raises(requests.ConnectionError) as raised:
        add_customer(sb)
    assert caused_by_refused_connection(raised.value)


def test_serve_forever_blocks_until_stop() -> None:
    sb = Sandbox(api_key=KEY)
    thread = threading.Thread(target=sb.serve_forever, daemon=True)
    thread.start()
    assert add_customer(sb).status_code == 200
    sb.stop()
    thread.join(timeout=2)
    assert not thread.is_alive()
