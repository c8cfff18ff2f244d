"""Factories with valid defaults; objects start as drafts, as a sales person creates them."""

import factory
from django.contrib.auth import get_user_model

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
