"""Bad input gets a clear error naming the field, before any vendor call, and loses nothing."""

from __future__ import annotations

import contextlib

import pytest
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from customers.models import Customer
from orders.models import MAX_LICENSES, Order
from portal import provisioning
from portal.models import ProvisioningCall
from tests.factories import CustomerFactory, OrderFactory

BAD_IDS = [
    ("with space", "A B"),
    ("single quote", "O'BRIEN"),
    ("double quote", 'AB"C'),
    ("unicode", "ÄBC"),
    ("emoji", "AB\N{SNOWMAN}"),
    ("65 characters", "A" * 65),
    ("sql", "A;DROP"),
    ("newline", "AB\nC"),
]


def _valid_customer_post(**overrides) -> dict:
    data = {
        "code": "ACME-1",
        "name": "Acme Ltd",
        "account_manager": "",
        "admin_email": "it@acme.example",
        "admin_phone": "+44 20 7946 0000",
        "admin_display_name": "Ada Admin",
        "_save": "Save",
    }
    return {**data, **overrides}


def _valid_order_post(owner: Customer, **overrides) -> dict:
    data = {
        "customer": str(owner.pk),
        "number": "ORD-1",
        "product": "oo-std",
        "licenses": "20",
        "duration": "monthly",
        "_save": "Save",
    }
    return {**data, **overrides}


def _field_error(response, field: str) -> str:
    """The errors the admin shows next to `field` (and checks they are on the page)."""
    assert response.status_code == 200, response.status_code
    errors = response.context["adminform"].form.errors
    assert field in errors, errors
    assert f'id="id_{field}_error"' in response.content.decode()
    return " ".join(errors[field])


# Admin add forms -------------------------------------------------------------------------------

CUSTOMER_FORM_CASES = [
    *[(f"code {label}", "code", value, "") for label, value in BAD_IDS],
    ("empty name", "name", "", "required"),
    ("blank name", "name", "   ", "required"),
    ("201-char name", "name", "N" * 201, "at most 200"),
    ("bad email", "admin_email", "not-an-email", "valid email"),
    ("email without domain", "admin_email", "it@", "valid email"),
    ("empty email", "admin_email", "", "required"),
    ("letters phone", "admin_phone", "call me", "phone"),
    ("short phone", "admin_phone", "12", "phone"),
    ("phone with letters", "admin_phone", "+44 20 ABCD", "phone"),
    ("empty display name", "admin_display_name", "", "required"),
    ("unknown account manager", "account_manager", "999999", "valid choice"),
    ("name with a newline", "name", "Acme\nLtd", "one line of visible characters"),
    ("name with a tab", "name", "Acme\tLtd", "U+0009"),
    ("name of control characters", "name", "\x01\x02\x7f", "U+0001, U+0002, U+007F"),
    ("name with a right-to-left override", "name", "Acme \u202eLtd", "text-direction"),
    ("name of zero-width spaces", "name", "\u200b\u200b", "U+200B"),
    ("name of combining marks", "name", "\u0301\u0301", "at least one visible"),
    ("name with a line separator", "name", "Acme\u2028Ltd", "U+2028"),
    ("display name with a newline", "admin_display_name", "Ada\nAdmin", "line breaks"),
    ("display name with an isolate", "admin_display_name", "Ada \u2067x\u2069", "U+2067"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [case[1:] for case in CUSTOMER_FORM_CASES],
    ids=[case[0] for case in CUSTOMER_FORM_CASES],
)
def test_customer_add_form_rejects_bad_input(client, sales_user, sandbox, field, value, message):
    client.force_login(sales_user)

    response = client.post(
        reverse("admin:customers_customer_add"), _valid_customer_post(**{field: value})
    )

    assert message.lower() in _field_error(response, field).lower()
    assert not Customer.objects.exists()
    assert sandbox.requests == []


@pytest.mark.django_db
def test_customer_add_form_rejects_a_taken_code(client, sales_user, sandbox):
    CustomerFactory(code="ACME-1")
    client.force_login(sales_user)

    response = client.post(reverse("admin:customers_customer_add"), _valid_customer_post())

    assert "already exists" in _field_error(response, "code")
    assert Customer.objects.count() == 1


@pytest.mark.django_db
def test_customer_add_form_accepts_valid_input_and_sends_nothing(client, sales_user, sandbox):
    client.force_login(sales_user)

    response = client.post(reverse("admin:customers_customer_add"), _valid_customer_post())

    assert response.status_code == 302
    assert Customer.objects.get().status == Customer.Status.DRAFT
    assert sandbox.requests == []


ORDER_FORM_CASES = [
    *[(f"number {label}", "number", value, "") for label, value in BAD_IDS],
    ("licenses 0", "licenses", "0", "greater than or equal to 1"),
    ("licenses -1", "licenses", "-1", "greater than or equal to"),
    (
        "licenses over max",
        "licenses",
        str(MAX_LICENSES + 1),
        f"less than or equal to {MAX_LICENSES}",
    ),
    ("licenses text", "licenses", "twenty", "whole number"),
    ("licenses decimal", "licenses", "1.5", "whole number"),
    ("licenses exponent", "licenses", "1e3", "whole number"),
    ("licenses empty", "licenses", "", "required"),
    ("licenses huge", "licenses", "9" * 30, "less than or equal"),
    ("licenses with underscores", "licenses", "1_000", "digits 0-9"),
    ("licenses in Arabic-Indic digits", "licenses", "\u0661\u0660", "digits 0-9"),
    ("licenses in full-width digits", "licenses", "\uff15", "digits 0-9"),
    ("licenses with a plus sign", "licenses", "+5", "digits 0-9"),
    ("unknown product", "product", "oo-gold", "valid choice"),
    ("empty product", "product", "", "required"),
    ("unknown duration", "duration", "weekly", "valid choice"),
    ("unknown customer", "customer", "999999", "valid choice"),
    ("empty customer", "customer", "", "required"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "message"),
    [case[1:] for case in ORDER_FORM_CASES],
    ids=[case[0] for case in ORDER_FORM_CASES],
)
def test_order_add_form_rejects_bad_input(
    client, sales_user, registered_customer, sandbox, field, value, message
):
    client.force_login(sales_user)
    sandbox.requests.clear()

    response = client.post(
        reverse("admin:orders_order_add"),
        _valid_order_post(registered_customer, **{field: value}),
    )

    assert message.lower() in _field_error(response, field).lower()
    assert not Order.objects.exists()
    assert sandbox.requests == []


@pytest.mark.django_db
def test_order_add_form_accepts_valid_input_and_sends_nothing(
    client, sales_user, registered_customer, sandbox
):
    client.force_login(sales_user)
    sandbox.requests.clear()

    response = client.post(
        reverse("admin:orders_order_add"), _valid_order_post(registered_customer)
    )

    assert response.status_code == 302
    order = Order.objects.get()
    assert (order.status, order.created_by) == (Order.Status.DRAFT, sales_user)
    assert sandbox.requests == []


# Service functions -----------------------------------------------------------------------------


def _stored(obj) -> dict:
    """Every column of the stored row, to show a refused call changed nothing."""
    return model_to_dict(
        type(obj).objects.get(pk=obj.pk), fields=[f.name for f in obj._meta.fields]
    )


def assert_refused_untouched(call, obj, sandbox, error, *words: str):
    before = _stored(obj)
    calls_before = ProvisioningCall.objects.count()
    sandbox.requests.clear()

    with pytest.raises(error) as raised:
        call()

    message = str(raised.value).lower()
    for word in words:
        assert word.lower() in message, message
    assert sandbox.requests == []
    assert _stored(obj) == before
    assert ProvisioningCall.objects.count() == calls_before
    return raised.value


SERVICE_CUSTOMER_CASES = [
    *[(f"code {label}", "code", value, "customer id") for label, value in BAD_IDS],
    ("empty name", "name", "", "name"),
    ("bad email", "admin_email", "not-an-email", "admin email"),
    ("bad phone", "admin_phone", "call me", "admin phone"),
    ("empty phone", "admin_phone", "", "admin phone"),
    ("empty display name", "admin_display_name", "", "admin display name"),
    ("name with a newline", "name", "Acme\nLtd", "name"),
    ("name of control characters", "name", "\x00\x1b", "name"),
    ("display name with a right-to-left override", "admin_display_name", "\u202eAda", "display"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "label"),
    [case[1:] for case in SERVICE_CUSTOMER_CASES],
    ids=[case[0] for case in SERVICE_CUSTOMER_CASES],
)
def test_customer_register_rejects_invalid_values(sandbox, field, value, label):
    customer = CustomerFactory()
    setattr(customer, field, value)

    error = assert_refused_untouched(
        lambda: provisioning.customer_register(customer=customer),
        customer,
        sandbox,
        provisioning.InvalidInput,
        label,
    )

    assert field in error.errors


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "label"),
    [("code", "A B", "customer id"), ("name", "", "name"), ("admin_phone", "x", "admin phone")],
)
def test_customer_register_rejects_invalid_values_already_stored(sandbox, field, value, label):
    customer = CustomerFactory()
    # Rows written around the forms (a shell, an import) are checked all the same.
    Customer.objects.filter(pk=customer.pk).update(**{field: value})

    assert_refused_untouched(
        lambda: provisioning.customer_register(customer=customer),
        customer,
        sandbox,
        provisioning.InvalidInput,
        label,
    )


@pytest.mark.django_db
def test_customer_register_refuses_a_registered_customer(sandbox, registered_customer):
    assert_refused_untouched(
        lambda: provisioning.customer_register(customer=registered_customer),
        registered_customer,
        sandbox,
        provisioning.NotAllowed,
        "registered",
    )


@pytest.mark.django_db
def test_customer_retry_refuses_when_nothing_is_pending(sandbox):
    customer = CustomerFactory()

    assert_refused_untouched(
        lambda: provisioning.customer_retry(customer=customer),
        customer,
        sandbox,
        provisioning.NotAllowed,
        "nothing pending",
    )


SERVICE_ORDER_CASES = [
    *[(f"number {label}", "number", value, "order id") for label, value in BAD_IDS],
    ("licenses 0", "licenses", 0, "licenses"),
    ("licenses -1", "licenses", -1, "licenses"),
    ("licenses over max", "licenses", MAX_LICENSES + 1, "licenses"),
    ("licenses text", "licenses", "twenty", "licenses"),
    ("licenses none", "licenses", None, "licenses"),
    ("licenses with underscores", "licenses", "1_000", "licenses"),
    ("licenses in Arabic-Indic digits", "licenses", "\u0661\u0660", "licenses"),
    ("unknown product", "product", "oo-gold", "product"),
    ("empty product", "product", "", "product"),
    ("unknown duration", "duration", "weekly", "duration"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value", "label"),
    [case[1:] for case in SERVICE_ORDER_CASES],
    ids=[case[0] for case in SERVICE_ORDER_CASES],
)
def test_order_place_rejects_invalid_values(sandbox, registered_customer, field, value, label):
    order = OrderFactory(customer=registered_customer)
    setattr(order, field, value)

    error = assert_refused_untouched(
        lambda: provisioning.order_place(order=order),
        order,
        sandbox,
        provisioning.InvalidInput,
        label,
    )

    assert field in error.errors


@pytest.mark.django_db
def test_order_place_rejects_an_unregistered_customer(sandbox):
    order = OrderFactory()

    assert_refused_untouched(
        lambda: provisioning.order_place(order=order),
        order,
        sandbox,
        provisioning.NotAllowed,
        "customer",
        "not registered",
    )


ORDER_STATE_CASES = [
    # (service, status of the subscription, words the message must contain)
    ("order_place", "active", ["active"]),
    ("order_place", "cancelled", ["cancelled"]),
    ("order_renew", "draft", ["draft", "active or suspended"]),
    ("order_renew", "failed", ["failed"]),
    ("order_renew", "cancelled", ["cancelled"]),
    ("order_cancel", "draft", ["draft"]),
    ("order_cancel", "cancelled", ["cancelled"]),
    ("order_cancel", "failed", ["failed"]),
    ("order_suspend", "draft", ["draft"]),
    ("order_suspend", "suspended", ["suspended"]),
    ("order_suspend", "cancelled", ["cancelled"]),
    ("order_retry", "active", ["nothing pending"]),
    ("order_retry", "draft", ["nothing pending"]),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("service", "status", "words"), ORDER_STATE_CASES)
def test_order_services_refuse_the_wrong_state(sandbox, service, status, words):
    order = OrderFactory(status=status, current_term_end=None)

    assert_refused_untouched(
        lambda: getattr(provisioning, service)(order=order),
        order,
        sandbox,
        provisioning.NotAllowed,
        *words,
    )


@pytest.mark.django_db
def test_order_renew_refuses_outside_the_window_naming_the_dates(sandbox, active_order):
    # A fresh monthly term has about 30 days left, more than the 15-day window.
    assert_refused_untouched(
        lambda: provisioning.order_renew(order=active_order),
        active_order,
        sandbox,
        provisioning.NotAllowed,
        "days left",
        "last 15 days",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("service", ["order_place", "order_renew", "order_cancel", "order_suspend"])
def test_order_services_refuse_a_renewal(sandbox, active_order, service):
    renewal = OrderFactory(
        customer=active_order.customer, parent=active_order, status=Order.Status.ACTIVE
    )

    assert_refused_untouched(
        lambda: getattr(provisioning, service)(order=renewal),
        renewal,
        sandbox,
        provisioning.NotAllowed,
        "renewal",
    )


@pytest.mark.django_db
@pytest.mark.parametrize("service", ["order_cancel", "order_suspend"])
def test_order_change_refused_while_a_renewal_is_unsettled(sandbox, active_order, service):
    OrderFactory(
        customer=active_order.customer,
        parent=active_order,
        status=Order.Status.PENDING,
        pending_action=Order.Action.RENEW,
    )

    assert_refused_untouched(
        lambda: getattr(provisioning, service)(order=active_order),
        active_order,
        sandbox,
        provisioning.NotAllowed,
        "renewal",
        "not settled",
    )


# Random input ----------------------------------------------------------------------------------

RANDOM = hypothesis_settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
anything = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"\A[A-Za-z0-9_-]{1,70}\Z"),
    st.integers().map(str),
    st.floats(allow_nan=True).map(str),
    st.sampled_from(["", " ", "oo-std", "monthly", "it@acme.example", "+30 210 555 0100"]),
)
# Valid values, drawn as often as anything: without them nothing reaches the vendor and what
# is sent is never checked.
visible_text = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]), min_size=1, max_size=60
).filter(str.strip)
valid_customer = {
    "code": st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
    "name": visible_text,
    "email": st.from_regex(r"\A[a-z0-9]{1,20}@[a-z]{1,20}\.example\Z"),
    "phone": st.from_regex(r"\A\+?[0-9][0-9 ()-]{4,28}[0-9]\Z"),
    "display": visible_text,
}
valid_order = {
    "number": st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z"),
    "product": st.sampled_from(Order.Product.values),
    "licenses": st.integers(min_value=1, max_value=MAX_LICENSES).map(str),
    "duration": st.sampled_from(Order.Duration.values),
}


def _mostly_valid(valid: dict, **extra_bad) -> st.SearchStrategy[dict]:
    """Valid values for every field, with anything in none, one or several of them: half the
    examples are entirely valid, so they reach the vendor."""
    bad = {name: st.one_of(anything, extra_bad.get(name, st.nothing())) for name in valid}
    spoilt = st.one_of(st.just({}), st.dictionaries(st.sampled_from(list(valid)), st.none()))
    return st.tuples(st.fixed_dictionaries(valid), spoilt).flatmap(
        lambda pair: st.fixed_dictionaries(
            {name: bad[name] if name in pair[1] else st.just(pair[0][name]) for name in valid}
        )
    )


def _model_valid(obj, *, unique: bool = True) -> bool:
    try:
        obj.full_clean(validate_unique=unique)
    except ValidationError:
        return False
    return True


SENT_CUSTOMER_FIELDS = ["code", "name", "admin_email", "admin_phone", "admin_display_name"]


def _sent_customer(params: dict) -> Customer:
    admin = params["admin"]
    return Customer(
        code=params["id"],
        name=params["name"],
        admin_email=admin["email"],
        admin_phone=admin["phone"],
        admin_display_name=admin["displayName"],
    )


@pytest.mark.django_db
def test_random_customer_input_never_reaches_the_vendor_unvalidated(client, sales_user, sandbox):
    client.force_login(sales_user)
    checked = []

    @RANDOM
    @given(_mostly_valid(valid_customer))
    def attempt(values):
        code, name, email, phone, display = (values[k] for k in valid_customer)
        sandbox.reset()
        ProvisioningCall.objects.all().delete()
        Customer.objects.all().delete()
        data = _valid_customer_post(
            code=code, name=name, admin_email=email, admin_phone=phone, admin_display_name=display
        )

        response = client.post(reverse("admin:customers_customer_add"), data)

        assert response.status_code < 500
        for customer in Customer.objects.all():
            assert _model_valid(customer)
            provisioning.customer_register(customer=customer)
            sent = _sent_customer(sandbox.requests[-1]["json"]["params"])
            assert model_to_dict(sent, fields=SENT_CUSTOMER_FIELDS) == model_to_dict(
                customer, fields=SENT_CUSTOMER_FIELDS
            )
        if not Customer.objects.exists():
            # The service on its own, given the raw values the form refused.
            direct = CustomerFactory()
            direct.code, direct.name, direct.admin_email = code, name, email
            direct.admin_phone, direct.admin_display_name = phone, display
            with contextlib.suppress(provisioning.InvalidInput):
                provisioning.customer_register(customer=direct)
        for request in sandbox.requests:
            # Sent ids are stored ones; uniqueness is not what this checks.
            assert _model_valid(_sent_customer(request["json"]["params"]), unique=False)
        checked.append(len(sandbox.requests))

    attempt()

    # Valid inputs did reach the vendor, so the checks on what was sent ran.
    assert sum(checked) >= 5


@pytest.mark.django_db
def test_random_order_input_never_reaches_the_vendor_unvalidated(client, sales_user, sandbox):
    client.force_login(sales_user)
    checked = []

    @RANDOM
    @given(_mostly_valid(valid_order, licenses=st.integers(-10, MAX_LICENSES + 10)))
    def attempt(values):
        number, product, licenses, duration = (values[k] for k in valid_order)
        ProvisioningCall.objects.all().delete()
        Order.objects.all().delete()
        Customer.objects.all().delete()
        sandbox.reset()
        registered_customer = provisioning.customer_register(customer=CustomerFactory())
        sandbox.requests.clear()
        data = _valid_order_post(
            registered_customer,
            number=number,
            product=product,
            licenses=licenses,
            duration=duration,
        )

        response = client.post(reverse("admin:orders_order_add"), data)

        assert response.status_code < 500
        for order in Order.objects.all():
            assert _model_valid(order)
            provisioning.order_place(order=order)
            sent = sandbox.requests[-1]["json"]["params"]
            assert (sent["id"], sent["product"], sent["licenses"], sent["duration"]) == (
                order.number,
                order.product,
                order.licenses,
                order.duration,
            )
        if not Order.objects.exists():
            # The service on its own, given the raw values the form refused.
            direct = OrderFactory(customer=registered_customer)
            direct.number, direct.product, direct.licenses, direct.duration = (
                number,
                product,
                licenses,
                duration,
            )
            with contextlib.suppress(provisioning.InvalidInput):
                provisioning.order_place(order=direct)
        for request in sandbox.requests:
            params = request["json"]["params"]
            sent = Order(
                number=params["id"],
                customer=registered_customer,
                product=params["product"],
                licenses=params["licenses"],
                duration=params["duration"],
            )
            assert _model_valid(sent, unique=False)
            assert isinstance(params["licenses"], int)
        checked.append(len(sandbox.requests))

    attempt()

    assert sum(checked) >= 5
