"""django-q2 tasks for provisioning: each takes ids and calls one service function."""

from customers.models import Customer
from orders.models import Order
from portal import provisioning
from portal.provisioning import batches, retries


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


def batch_work_task(batch_id: int) -> str:
    """One slice of a batch's items (it re-enqueues itself while items are left)."""
    batch = batches.batch_work(batch_id=batch_id)
    done = batch.total - sum(batches.counts(batch)[state] for state in batches.UNSETTLED_STATES)
    return f"{batch}: {done} of {batch.total} settled"


def batch_resume_stalled_task() -> str:
    """The periodic sweep: batches whose task died or whose pause is over get a new task."""
    return f"{batches.batch_resume_stalled()} batch(es) handed to a new task"
