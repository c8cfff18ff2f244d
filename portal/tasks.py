"""django-q2 tasks for provisioning: each takes ids and calls one service function."""

from datetime import datetime

from django_q.models import Schedule
from django_q.tasks import schedule

from customers.models import Customer
from orders.models import Order
from portal import provisioning


def customer_retry_task(customer_id: int, attempt: int) -> str:
    customer = Customer.objects.get(pk=customer_id)
    try:
        customer = provisioning.customer_retry(customer=customer, attempt=attempt)
    except provisioning.ProvisioningError as exc:
        return str(exc)
    return f"{customer}: {customer.status}"


def order_retry_task(order_id: int, attempt: int) -> str:
    order = Order.objects.select_related("parent", "customer").get(pk=order_id)
    try:
        order = provisioning.order_retry(order=order, attempt=attempt)
    except provisioning.ProvisioningError as exc:
        return str(exc)
    return f"{order}: {order.status}"


def retry_stranded_task() -> str:
    """The periodic sweep: retries nothing else would (see `provisioning.retry_stranded`)."""
    return f"{provisioning.retry_stranded()} stranded operation(s) scheduled for a retry"


def retry_name(subject: Customer | Order, *, call_id: int) -> str:
    kind = "customer" if isinstance(subject, Customer) else "order"
    return f"retry {kind} {subject.pk} after call {call_id}"


def schedule_retry(subject: Customer | Order, *, attempt: int, call_id: int, at: datetime) -> None:
    """One automatic retry of `subject` after the call `call_id`, run once by the cluster at `at`.

    Named after the call, so scheduling twice for one call is harmless and every new call can
    have its own; deleted by the cluster once it has run.
    """
    name = retry_name(subject, call_id=call_id)
    if Schedule.objects.filter(name=name).exists():
        return
    kind = "customer" if isinstance(subject, Customer) else "order"
    schedule(
        f"portal.tasks.{kind}_retry_task",
        subject.pk,
        attempt,
        name=name,
        schedule_type=Schedule.ONCE,
        next_run=at,
        repeats=-1,
    )
