"""django-q2 tasks for batches: each takes ids and calls one function of `portal.batches`."""

from portal import batches


def batch_work_task(batch_id: int) -> str:
    """One slice of a batch's items (it re-enqueues itself while items are left)."""
    batch = batches.batch_work(batch_id=batch_id)
    done = batch.total - sum(batches.counts(batch)[state] for state in batches.UNSETTLED_STATES)
    return f"{batch}: {done} of {batch.total} settled"


def batch_resume_stalled_task() -> str:
    """The periodic sweep: batches whose task died or whose pause is over get a new task."""
    return f"{batches.batch_resume_stalled()} batch(es) handed to a new task"
