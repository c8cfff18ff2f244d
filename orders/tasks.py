"""django-q2 tasks for orders."""

from orders.renewals.autorenew import auto_renew_due
from orders.renewals.reminders import send_renewal_reminders


def renewal_reminders_task() -> str:
    """The daily reminder job; the result the cluster records is a one-line summary."""
    run = send_renewal_reminders()
    summary = (
        f"{run.due_count} due, {run.lapsed_count} lapsed: {run.sent_count} reminded "
        f"in {run.emails_sent} emails"
    )
    if run.error:
        summary += f"; errors: {run.error}"
    return summary


def auto_renew_task() -> str:
    """The daily auto-renewal job: one batch of the auto-renew subscriptions due."""
    batch = auto_renew_due()
    return f"{batch}" if batch is not None else "no auto-renew subscription due"
