"""django-q2 tasks for provisioning: each takes ids and calls one service function."""

from customers.models import Customer
from orders.models import Order
from portal import provisioning, retries


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
    """The periodic sweep: retries nothing else would (see `retries.retry_stranded`)."""
    return f"{retries.retry_stranded()} stranded operation(s) scheduled for a retry"
