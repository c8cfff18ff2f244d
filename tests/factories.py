"""One factory per model, with valid defaults. Objects start as a sales person creates them
(drafts); traits write a stored state directly, nothing sent to OneOffice:

    CustomerFactory(registered=True)
    OrderFactory(active=True, days_left=5)        # also suspended=, lapsed=, cancelled=
    RenewalFactory(parent=subscription)           # a confirmed renewal, the term moved on
    # Placed states come with the history the service records (SubscriptionChange).
    OrderFactory.store(100, customer=c, active=True)  # many rows in one INSERT

A test of the service places and renews through the service against the sandbox instead.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.models import Customer
from orders.models import (
    AutoRenewal,
    DiscountPolicy,
    Order,
    Price,
    ReminderRun,
    RenewalReminder,
    SubscriptionChange,
)
from orders.renewals import terms
from portal.models import (
    Batch,
    BatchItem,
    InFlightSlot,
    ProvisioningCall,
    TwoFactorEvent,
)

PASSWORD = "correct horse battery staple"
MONTHS = {Order.Duration.MONTHLY: 1, Order.Duration.YEARLY: 12}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@reseller.example")
    password = factory.django.Password(PASSWORD)
    is_staff = True


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    class Params:
        # What registering records from OneOffice's answer.
        registered = factory.Trait(
            status=Customer.Status.REGISTERED,
            oneoffice_id=factory.Sequence(lambda n: f"oo-{n:06d}"),
            partner="reseller",
            remote_created_at=factory.LazyFunction(timezone.now),
            is_active=True,
            onboarding_url=factory.LazyAttribute(
                lambda c: f"https://oneoffice.example/onboard/{c.code}"
            ),
        )

    code = factory.Sequence(lambda n: f"CUST-{n:05d}")
    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    admin_email = factory.Sequence(lambda n: f"admin{n}@company.example")
    admin_phone = "+30 210 555 0100"
    admin_display_name = "Isa Aswath"


def _term_end(order) -> object:
    return order.today + timedelta(days=order.days_left)


def _term_start(order) -> object:
    return terms.add_months(order.current_term_end, -MONTHS[order.duration])


def _currency(order) -> str:
    return "" if order.worth is None else order.currency_code


class OrderFactory(factory.django.DjangoModelFactory):
    """A first order (a subscription once placed). The state traits store its current term,
    ending `days_left` days after `today` (the local date by default), and, with `worth`, its
    value in `currency_code`. Related fields pass through: `customer__account_manager=user`."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    class Params:
        today = factory.LazyFunction(timezone.localdate)
        days_left = 30
        worth = None
        currency_code = "EUR"
        # Any placed state: a registered customer and a current term.
        placed = factory.Trait(
            customer=factory.SubFactory(CustomerFactory, registered=True),
            current_term_end=factory.LazyAttribute(_term_end),
            term_start=factory.LazyAttribute(_term_start),
            term_end=factory.SelfAttribute("current_term_end"),
            value=factory.SelfAttribute("worth"),
            currency=factory.LazyAttribute(_currency),
            current_value=factory.SelfAttribute("worth"),
            current_currency=factory.LazyAttribute(_currency),
        )
        active = factory.Trait(placed=True, status=Order.Status.ACTIVE)
        suspended = factory.Trait(placed=True, status=Order.Status.SUSPENDED)
        cancelled = factory.Trait(placed=True, status=Order.Status.CANCELLED)
        # Renewable, but the term ended before today and nobody renewed it.
        lapsed = factory.Trait(placed=True, status=Order.Status.ACTIVE, days_left=-3)
        # Placing was sent and its outcome is not known yet.
        pending = factory.Trait(status=Order.Status.PENDING, pending_action=Order.Action.PLACE)

    number = factory.Sequence(lambda n: f"ORD-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)
    product = Order.Product.OO_STD
    licenses = 20
    duration = Order.Duration.MONTHLY

    @factory.post_generation
    def history(order: Order, create: bool, extracted, **kwargs) -> None:
        """What the service records with a placed state: placed on the term's start, then
        suspended or cancelled on `history__on` (today by default). `history=False`: none."""
        if not create or extracted is False or order.term_start is None or order.parent_id:
            return
        Kind = SubscriptionChange.Kind
        SubscriptionChange.objects.create(
            subscription=order,
            kind=Kind.PLACED,
            status_before=Order.Status.DRAFT,
            status_after=Order.Status.ACTIVE,
            effective_on=order.term_start,
        )
        later = {Order.Status.SUSPENDED: Kind.SUSPENDED, Order.Status.CANCELLED: Kind.CANCELLED}
        if order.status in later:
            order.record_change(
                later[order.status],
                status_before=Order.Status.ACTIVE,
                effective_on=kwargs.get("on") or timezone.localdate(),
            )

    @classmethod
    def store(cls, count: int, *, prefix: str = "", **kwargs) -> list[Order]:
        """`count` orders written in one INSERT, for lists and selections too long to create
        one by one; numbered `prefix` + 000000, 000001, ... Pass `customer` (each would build
        its own, unsaved). A value may vary by row with `factory.Iterator`; otherwise every
        row is a copy of one built order, which keeps thousands of rows cheap."""
        if any(
            isinstance(value, factory.declarations.BaseDeclaration) for value in kwargs.values()
        ):
            orders = cls.build_batch(count, **kwargs)
        else:
            template = cls.build(**kwargs)
            values = {
                field.attname: getattr(template, field.attname)
                for field in Order._meta.concrete_fields
                if not field.primary_key
            }
            orders = [Order(**values) for _ in range(count)]
        prefix = prefix or f"{orders[0].number}-"
        for index, order in enumerate(orders):
            order.number = f"{prefix}{index:06d}"
        return Order.objects.bulk_create(orders)


class RenewalFactory(OrderFactory):
    """A confirmed renewal of `parent` (an active subscription by default): its term follows
    the subscription's current term, which moves on to the renewal's end, as renewing does.
    `pending=True`: a renewal sent whose outcome is not known, the subscription unchanged."""

    class Meta:
        model = Order
        skip_postgeneration_save = True

    class Params:
        pending = factory.Trait(
            status=Order.Status.PENDING,
            pending_action=Order.Action.RENEW,
            term_start=None,
            term_end=None,
        )

    number = factory.Sequence(lambda n: f"REN-{n:05d}")
    parent = factory.SubFactory(OrderFactory, active=True)
    customer = factory.SelfAttribute("parent.customer")
    product = factory.SelfAttribute("parent.product")
    licenses = factory.SelfAttribute("parent.licenses")
    duration = factory.SelfAttribute("parent.duration")
    discount_percent = factory.SelfAttribute("parent.discount_percent")
    status = Order.Status.ACTIVE
    value = factory.SelfAttribute("worth")
    currency = factory.LazyAttribute(_currency)
    term_start = factory.LazyAttribute(lambda o: o.parent.current_term_end or timezone.localdate())
    term_end = factory.LazyAttribute(lambda o: terms.term_end(o.term_start, o.duration))

    @factory.post_generation
    def history(renewal: Order, create: bool, extracted, **kwargs) -> None:
        """The subscription's current term is the renewal's, recorded as renewed on the
        term's start (`history=False`: the subscription is left as it was, nothing recorded)."""
        if extracted is False or renewal.status != Order.Status.ACTIVE:
            return
        subscription = renewal.parent
        before = subscription.status
        subscription.current_term_end = renewal.term_end
        subscription.current_value = renewal.value
        subscription.current_currency = renewal.currency
        if not create:
            return
        Order.objects.filter(pk=subscription.pk).update(
            current_term_end=renewal.term_end,
            current_value=renewal.value,
            current_currency=renewal.currency,
        )
        if subscription.term_start is not None:
            subscription.record_change(
                SubscriptionChange.Kind.RENEWED,
                status_before=before,
                effective_on=kwargs.get("on") or renewal.term_start,
                renewal=renewal,
            )


class SubscriptionChangeFactory(factory.django.DjangoModelFactory):
    """A change recorded by hand: a subscription brought in line with OneOffice today."""

    class Meta:
        model = SubscriptionChange

    subscription = factory.SubFactory(OrderFactory, active=True, history=False)
    kind = SubscriptionChange.Kind.ALIGNED
    status_before = Order.Status.SUSPENDED
    status_after = factory.SelfAttribute("subscription.status")
    effective_on = factory.LazyFunction(timezone.localdate)
    note = "OneOffice holds it active."


class PriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Price

    product = Order.Product.OO_STD
    duration = Order.Duration.MONTHLY
    unit_price = Decimal("10.0000")
    currency = "EUR"
    valid_from = factory.LazyFunction(timezone.localdate)


class DiscountPolicyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DiscountPolicy
        django_get_or_create = ["id"]

    id = 1
    max_discount_percent = Decimal("20")


class ReminderRunFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReminderRun

    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda r: r.started_at + timedelta(seconds=2))


class RenewalReminderFactory(factory.django.DjangoModelFactory):
    """A reminder sent about the subscription's current term."""

    class Meta:
        model = RenewalReminder

    subscription = factory.SubFactory(OrderFactory, active=True, days_left=10)
    term_end = factory.SelfAttribute("subscription.current_term_end")
    sent_at = factory.LazyFunction(timezone.now)
    recipients = factory.LazyAttribute(lambda r: r.subscription.customer.admin_email)


class BatchFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Batch

    kind = Batch.Kind.ORDER
    action = "renew"
    label = "Renew"


class BatchItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BatchItem
        skip_postgeneration_save = True

    class Params:
        subject = factory.SubFactory(OrderFactory, active=True)

    batch = factory.SubFactory(BatchFactory)
    position = factory.Sequence(lambda n: n)
    object_id = factory.SelfAttribute("subject.pk")
    object_label = factory.LazyAttribute(lambda i: str(i.subject))

    @factory.post_generation
    def counted(item: BatchItem, create: bool, extracted, **kwargs) -> None:
        if create:
            Batch.objects.filter(pk=item.batch_id).update(total=item.batch.items.count())


class AutoRenewalFactory(factory.django.DjangoModelFactory):
    """The claim of an automatic renewal of the subscription's current term."""

    class Meta:
        model = AutoRenewal

    subscription = factory.SubFactory(OrderFactory, active=True, days_left=2, auto_renew=True)
    term_end = factory.SelfAttribute("subscription.current_term_end")
    batch = factory.SubFactory(BatchFactory, action="renew", label="Auto-renew", job="auto-renew")


class ProvisioningCallFactory(factory.django.DjangoModelFactory):
    """A settled call that placed the order."""

    class Meta:
        model = ProvisioningCall

    order = factory.SubFactory(OrderFactory, active=True)
    customer = factory.SelfAttribute("order.customer")
    method = ProvisioningCall.Method.CREATE_FIRST_ORDER
    params = factory.LazyAttribute(lambda c: {"id": c.order.number})
    status_before = Order.Status.DRAFT
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.LazyAttribute(lambda c: c.started_at + timedelta(milliseconds=120))
    duration_ms = 120
    http_status = 200
    outcome = ProvisioningCall.Outcome.OK


class TwoFactorEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TwoFactorEvent

    user = factory.SubFactory(UserFactory)
    username = factory.SelfAttribute("user.username")
    kind = TwoFactorEvent.Kind.ENROLLED
    ip_address = "127.0.0.1"


class InFlightSlotFactory(factory.django.DjangoModelFactory):
    """A slot some process holds for a call on the wire."""

    class Meta:
        model = InFlightSlot
        django_get_or_create = ["number"]

    number = factory.Sequence(lambda n: n + 1)
    holder = factory.Sequence(lambda n: f"worker-{n}")
    held_until = factory.LazyFunction(lambda: timezone.now() + timedelta(seconds=30))
