"""Factories with valid defaults; objects start as drafts, as a sales person creates them."""

from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from customers.models import Customer
from orders.models import Order


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@reseller.example")
    password = factory.django.Password("correct horse battery staple")
    is_staff = True


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    code = factory.Sequence(lambda n: f"CUST-{n:05d}")
    name = factory.Sequence(lambda n: f"Company {n} Ltd")
    admin_email = factory.Sequence(lambda n: f"admin{n}@company.example")
    admin_phone = "+30 210 555 0100"
    admin_display_name = "Isa Aswath"


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    number = factory.Sequence(lambda n: f"ORD-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)
    product = Order.Product.OO_STD
    licenses = 20
    duration = Order.Duration.MONTHLY


def active_subscriptions(
    customer: Customer,
    n: int,
    *,
    prefix: str,
    days_left: int = 30,
    duration: str = Order.Duration.MONTHLY,
) -> list[Order]:
    """`n` active subscriptions stored at once (one INSERT, nothing sent), their terms ending
    `days_left` days from today: for lists and selections too long to place one by one."""
    today = timezone.localdate()
    end = today + timedelta(days=days_left)
    start = end - timedelta(days=365 if duration == Order.Duration.YEARLY else 30)
    return Order.objects.bulk_create(
        Order(
            number=f"O-{prefix}{i:06d}",
            customer=customer,
            product=Order.Product.OO_STD,
            licenses=1,
            duration=duration,
            status=Order.Status.ACTIVE,
            term_start=start,
            term_end=end,
            current_term_end=end,
        )
        for i in range(n)
    )
