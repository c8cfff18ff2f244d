"""django-q2 tasks for orders."""

from orders.reminders import send_renewal_reminders


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
