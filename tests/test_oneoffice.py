"""The OneOffice client over real HTTP against the sandbox on a loopback port."""

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from portal.oneoffice import api
from tests.conftest import API_KEY

ACME = api.create_customer(
    customer_id="ACME",
    name="ACME Ltd",
    email="it@acme.example",
    phone="+30 210 555 0100",
    display_name="Isa Aswath",
)


def _order(order_id: str = "ORD-1") -> api.Request:
    return api.create_first_order(
        customer_id="ACME", order_id=order_id, product="oo-std", licenses=20, duration="monthly"
    )


@pytest.fixture
def client(sandbox) -> Iterator[api.OneOfficeClient]:
    # A short read timeout keeps the "hang" tests quick; the sandbox hangs longer than this.
    sandbox.hang_seconds = 1.0
    client = api.OneOfficeClient(
        url=sandbox.url, api_key=API_KEY, connect_timeout=1.0, read_timeout=0.3
    )
    yield client
    client.close()


@pytest.fixture
def customer_on_sandbox(client):
    client.send(ACME)


@pytest.fixture
def order_on_sandbox(client, customer_on_sandbox):
    client.send(_order())


def _refusal(client, sandbox, *, status=400, body="", content_type="application/json"):
    sandbox.inject("createCustomer", "respond", status=status, body=body, content_type=content_type)
    with pytest.raises(api.VendorError) as caught:
        client.send(ACME)
    return caught.value


# The wire format ------------------------------------------------------------------------------


def test_client_send_uses_the_vendor_wire_format(client, sandbox):
    client.send(ACME)

    [request] = sandbox.requests
    assert request["http_method"] == "GET"
    assert request["path"] == "/"
    assert request["headers"]["x-api-key"] == API_KEY
    assert request["headers"]["content-type"] == "application/json"
    assert "authorization" not in request["headers"]
    assert json.loads(request["body"]) == {
        "method": "createCustomer",
        "params": {
            "id": "ACME",
            "name": "ACME Ltd",
            "admin": {
                "email": "it@acme.example",
                "phone": "+30 210 555 0100",
                "displayName": "Isa Aswath",
            },
        },
    }


def test_client_send_puts_every_call_on_the_same_url(client, sandbox, customer_on_sandbox):
    client.send(_order("ORD-1"))
    client.send(api.suspend_order(order_id="ORD-1"))
    client.send(api.cancel_order(order_id="ORD-1"))

    assert {(r["http_method"], r["path"]) for r in sandbox.requests} == {("GET", "/")}
    assert [r["rpc_method"] for r in sandbox.requests] == [
        "createCustomer",
        "createFirstOrder",
        "suspendOrder",
        "cancelOrder",
    ]


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (
            api.create_first_order(
                customer_id="ABC",
                order_id="REMOTEORDER1",
                product="oo-lite",
                licenses=20,
                duration="monthly",
            ),
            {
                "method": "createFirstOrder",
                "params": {
                    "customer": "ABC",
                    "id": "REMOTEORDER1",
                    "product": "oo-lite",
                    "licenses": 20,
                    "duration": "monthly",
                },
            },
        ),
        (
            api.create_renewal_order(parent_id="REMOTEORDER1", order_id="REMOTEORDER2"),
            {
                "method": "createRenewalOrder",
                "params": {"parent": "REMOTEORDER1", "id": "REMOTEORDER2"},
            },
        ),
        (
            api.cancel_order(order_id="REMOTEORDER1"),
            {"method": "cancelOrder", "params": {"id": "REMOTEORDER1"}},
        ),
        (
            api.suspend_order(order_id="REMOTEORDER1"),
            {"method": "suspendOrder", "params": {"id": "REMOTEORDER1"}},
        ),
    ],
)
def test_client_send_body_is_exactly_method_and_params(client, sandbox, request_, expected):
    # The vendor may refuse (nothing exists yet); the body on the wire is what matters here.
    with contextlib.suppress(api.VendorRefusedError):
        client.send(request_)

    [request] = sandbox.requests
    assert request["json"] == expected
    assert isinstance(request["json"]["params"].get("licenses", 1), int)


# Success bodies -------------------------------------------------------------------------------


def test_read_customer_reads_the_old_response_with_integer_ids(client, sandbox):
    sandbox.response_style = "old"

    reply = client.send(ACME)

    remote = api.read_customer(reply.data)
    assert reply.status == 200
    assert reply.data["remoteId"] == "ACME"
    assert isinstance(reply.data["id"], int)
    assert remote.vendor_id == str(reply.data["id"])
    assert remote.partner == "0"
    assert remote.created_at == datetime.fromtimestamp(reply.data["createdAt"], tz=UTC)
    assert remote.is_active is True
    assert remote.onboarding_url == ""


def test_read_customer_reads_the_new_response_with_string_ids_and_url(client, sandbox):
    sandbox.response_style = "new"

    reply = client.send(ACME)

    remote = api.read_customer(reply.data)
    held = sandbox.snapshot()["customers"]["ACME"]
    assert remote.vendor_id == held["vendor_id"]
    assert remote.partner == held["partner"]
    assert isinstance(held["vendor_id"], str)
    assert remote.onboarding_url == reply.data["url"]
    assert remote.onboarding_url.startswith("https://")
    assert remote.created_at == datetime.fromtimestamp(held["createdAt"], tz=UTC)


def test_read_customer_reads_the_vendor_page_example():
    remote = api.read_customer(
        {
            "name": "ABC Company",
            "partner": 0,
            "createdAt": 1684313717,
            "id": 1,
            "isActive": True,
            "admin": {"email": "test3@example.com"},
            "remoteId": "ABC",
        }
    )
    assert remote == api.RemoteCustomer(
        vendor_id="1",
        partner="0",
        created_at=datetime(2023, 5, 17, 8, 55, 17, tzinfo=UTC),
        is_active=True,
        onboarding_url="",
    )


@pytest.mark.parametrize(
    "data",
    [
        None,
        True,
        "ok",
        [],
        {},
        {"id": None, "isActive": "yes", "createdAt": "soon", "partner": True},
    ],
)
def test_read_customer_gives_blanks_for_unexpected_shapes(data):
    remote = api.read_customer(data)
    assert remote == api.RemoteCustomer("", "", None, None, "")


@pytest.mark.parametrize(
    ("order_body", "raw", "data"),
    [(True, "true", True), ({}, "{}", {}), ("ok", '"ok"', "ok"), (None, "", None)],
)
def test_client_send_accepts_any_order_reply_body(
    client, sandbox, customer_on_sandbox, order_body, raw, data
):
    sandbox.order_body = order_body

    reply = client.send(_order())

    assert (reply.status, reply.body, reply.data) == (200, raw, data)
    assert sandbox.snapshot()["orders"]["ORD-1"]["status"] == "active"


def test_client_send_accepts_a_plain_text_success(client, sandbox):
    sandbox.inject("createCustomer", "respond", status=200, body="OK\n", content_type="text/plain")

    reply = client.send(ACME)

    assert reply.data == "OK"


def test_client_send_accepts_any_2xx_status(client, sandbox):
    sandbox.inject("createCustomer", "respond", status=204, body="")

    assert client.send(ACME).status == 204


def test_client_send_follows_the_vendor_rules_for_order_calls(client, sandbox, order_on_sandbox):
    client.send(api.suspend_order(order_id="ORD-1"))
    assert sandbox.snapshot()["orders"]["ORD-1"]["status"] == "suspended"

    client.send(api.cancel_order(order_id="ORD-1"))
    assert sandbox.snapshot()["orders"]["ORD-1"]["status"] == "cancelled"


# Refusals -------------------------------------------------------------------------------------


def test_client_send_raises_refused_with_the_vendors_json_string(client, sandbox):
    client.send(ACME)

    with pytest.raises(api.VendorRefusedError) as caught:
        client.send(ACME)

    assert caught.value.status == 400
    assert caught.value.message == (
        'duplicate key value violates unique constraint "customers_remote_id_key"'
    )
    assert caught.value.body == json.dumps(caught.value.message)


def test_client_send_refusal_of_an_unknown_parent_is_refused(client, sandbox):
    with pytest.raises(api.VendorRefusedError, match="order NOPE not found"):
        client.send(api.create_renewal_order(parent_id="NOPE", order_id="R-1"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('"licenses must be at most 500"', "licenses must be at most 500"),
        ('{"message": "licenses must be at most 500"}', "licenses must be at most 500"),
        ('{"error": "customer is blocked"}', "customer is blocked"),
        ('{"error": {"message": "nested words"}, "code": 17}', "nested words"),
        ('{"detail": "no such product"}', "no such product"),
        ('{"errors": ["first problem", "second problem"]}', "first problem; second problem"),
        ('{"code": 17}', '{"code": 17}'),
        ("null", "HTTP 422"),
        ("", "HTTP 422"),
    ],
)
def test_client_send_reads_the_refusal_message_from_json(client, sandbox, body, message):
    exc = _refusal(client, sandbox, status=422, body=body)

    assert isinstance(exc, api.VendorRefusedError)
    assert exc.message == message
    assert exc.status == 422


def test_client_send_reads_a_plain_text_refusal(client, sandbox):
    exc = _refusal(client, sandbox, body="  Customer quota\n exceeded  ", content_type="text/plain")

    assert isinstance(exc, api.VendorRefusedError)
    assert exc.message == "Customer quota exceeded"


def test_client_send_reads_an_html_refusal(client, sandbox):
    page = (
        "<html><head><title>400 Bad Request</title><style>p{}</style></head>"
        "<body><h1>Bad &amp; wrong</h1></body></html>"
    )
    exc = _refusal(client, sandbox, body=page, content_type="text/html")

    assert isinstance(exc, api.VendorRefusedError)
    assert exc.message == "400 Bad Request"
    assert exc.body == page


def test_client_send_reads_an_html_refusal_without_a_title(client, sandbox):
    page = "<html><body><script>x()</script><p>Quota &amp; limits\n reached</p></body></html>"
    exc = _refusal(client, sandbox, body=page, content_type="text/html")

    assert exc.message == "Quota & limits reached"


def test_client_send_caps_the_body_and_the_message(client, sandbox):
    exc = _refusal(client, sandbox, body="x" * 50_000, content_type="text/plain")

    assert len(exc.body) == api.BODY_CAP
    assert len(exc.message) == api.MESSAGE_CAP


def test_client_send_leaves_the_sandbox_unchanged_on_a_refusal(client, sandbox):
    _refusal(client, sandbox, body='"no"')

    assert sandbox.snapshot()["customers"] == {}


# Configuration errors -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_client_send_raises_configuration_error_when_the_key_is_refused(client, sandbox, status):
    exc = _refusal(client, sandbox, status=status, body='"invalid API key"')

    assert isinstance(exc, api.VendorConfigError)
    assert exc.status == status
    assert "ONEOFFICE_API_KEY" in exc.message


def test_client_send_with_a_wrong_key_is_a_configuration_error_without_the_key(sandbox):
    wrong = api.OneOfficeClient(url=sandbox.url, api_key="wrong-key-123")

    with pytest.raises(api.VendorConfigError) as caught:
        wrong.send(ACME)

    assert caught.value.status == 401
    assert "invalid API key" in caught.value.message
    assert "wrong-key-123" not in str(caught.value) + caught.value.body
    assert sandbox.snapshot()["customers"] == {}


@pytest.mark.parametrize(
    ("url", "key", "names"),
    [("", API_KEY, "ONEOFFICE_URL"), ("http://127.0.0.1:1/", "", "ONEOFFICE_API_KEY")],
)
def test_client_without_url_or_key_is_a_configuration_error(url, key, names):
    with pytest.raises(api.VendorConfigError, match=names):
        api.OneOfficeClient(url=url, api_key=key)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "not a url", "http://"])
def test_client_send_to_an_unusable_url_is_a_configuration_error(url):
    client = api.OneOfficeClient(url=url, api_key=API_KEY)

    with pytest.raises(api.VendorConfigError, match="ONEOFFICE_URL"):
        client.send(ACME)


def test_client_send_does_not_follow_the_sandbox_redirect(client, sandbox):
    sandbox.inject("createCustomer", "redirect")

    with pytest.raises(api.VendorConfigError) as caught:
        client.send(ACME)

    assert caught.value.status == 302
    assert "127.0.0.1:9" in caught.value.message
    assert len(sandbox.requests) == 1


class _Redirector(BaseHTTPRequestHandler):
    target = ""
    hits = 0

    def do_GET(self):
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def redirector(sandbox):
    """A server that redirects every call to the sandbox, where the key would then arrive."""
    handler = type("Redirector", (_Redirector,), {"target": sandbox.url, "hits": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_client_send_never_delivers_to_the_redirect_location(sandbox, redirector):
    host, port = redirector.server_address[:2]
    client = api.OneOfficeClient(url=f"http://{host}:{port}/", api_key=API_KEY)

    with pytest.raises(api.VendorConfigError, match="not followed"):
        client.send(ACME)

    assert redirector.RequestHandlerClass.hits == 1
    assert sandbox.requests == []
    assert sandbox.snapshot()["customers"] == {}


# Outcome unknown ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "landed"),
    [
        ("500-before", 500, False),
        ("500-after", 500, True),
        ("html-502", 502, False),
        ("garbage-200", 200, True),
        ("drop-after", None, True),
        # The client cannot tell a drop before applying from one after it.
        ("drop-before", None, False),
        ("hang-after", None, True),
    ],
)
def test_client_send_raises_outcome_unknown_when_it_may_have_landed(
    client, sandbox, fault, status, landed
):
    sandbox.inject("createCustomer", fault)

    with pytest.raises(api.VendorOutcomeUnknownError) as caught:
        client.send(ACME)

    assert caught.value.status == status
    assert "may have been applied" in caught.value.message
    assert ("ACME" in sandbox.snapshot()["customers"]) is landed


def test_client_send_reports_the_502_page_title(client, sandbox):
    sandbox.inject("createCustomer", "html-502")

    with pytest.raises(api.VendorOutcomeUnknownError, match="502 Bad Gateway"):
        client.send(ACME)


def test_client_send_treats_an_html_200_as_unreadable(client, sandbox):
    sandbox.inject(
        "createCustomer",
        "respond",
        status=200,
        body="<html>Welcome</html>",
        content_type="text/html",
    )

    with pytest.raises(api.VendorOutcomeUnknownError) as caught:
        client.send(ACME)

    assert caught.value.body == "<html>Welcome</html>"


def test_client_send_times_out_on_a_hang(client, sandbox):
    sandbox.inject("createCustomer", "hang-after")

    with pytest.raises(api.VendorOutcomeUnknownError, match="did not answer in time") as caught:
        client.send(ACME)

    # The sandbox would have answered 200 after its hang: the read timeout ended the wait,
    # and the time waited is recorded.
    assert caught.value.duration_ms >= 300


def test_client_send_waits_for_a_slow_answer_within_the_timeout(client, sandbox):
    sandbox.slow_seconds = 0.05
    sandbox.inject("createCustomer", "slow")

    reply = client.send(ACME)

    assert reply.data["remoteId"] == "ACME"


def test_client_send_recovers_after_a_fault(client, sandbox):
    sandbox.inject("createCustomer", "drop-after")
    with pytest.raises(api.VendorOutcomeUnknownError):
        client.send(ACME)

    with pytest.raises(api.VendorRefusedError, match="duplicate key"):
        client.send(ACME)


# Not sent -------------------------------------------------------------------------------------


def test_client_send_raises_not_sent_when_connections_are_refused(client, sandbox):
    sandbox.refuse_connections()

    with pytest.raises(api.VendorNotSentError) as caught:
        client.send(ACME)

    assert caught.value.status is None
    sandbox.accept_connections()
    assert sandbox.requests == []
    assert client.send(ACME).status == 200


def test_error_message_reads_json_strings_objects_and_text():
    assert api.error_message('"bad"') == "bad"
    assert api.error_message('{"msg": "worse"}') == "worse"
    assert api.error_message("<title>Gone</title>") == "Gone"
    assert api.error_message("plain words") == "plain words"
    assert api.error_message("42") == "42"
