"""Bulk provisioning in the background: a batch records who asked for which action on which
objects, and the cluster works its items with several calls in flight at once.

Each item goes through the same public service function as a single click, so the lease, the
call log, unknown outcomes and automatic retries are exactly those of one click. On top:

- an item is claimed by compare-and-set (`queued` -> `running`), so two tasks, even on two
  clusters, never take the same one;
- a task works a bounded slice (BATCH_SLICE_SECONDS) and re-enqueues itself, well inside the
  cluster's task timeout; a task that died is noticed by `batch_resume_stalled` (a periodic
  schedule), which hands the batch to a new task; a `running` item whose claim expired is
  settled from the call log, never sent again by the batch;
- when OneOffice says "not now" (as `classify` decides it) the whole batch pauses until the
  time it named (`paused_until`) instead of trying item after item.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Window
from django.db.models.functions import Left, RowNumber
from django.utils import timezone
from django_q.tasks import async_task

from portal.core.sql import insert_select
from portal.models import Batch, BatchItem, Provisioned, ProvisioningCall
from portal.provisioning import errors
from portal.provisioning.holds import item_hold

logger = logging.getLogger(__name__)

State = BatchItem.State
UNSETTLED_STATES = (State.QUEUED, State.RUNNING)
# What did not go through: a person decides what to do about these.
NOT_THROUGH = (State.REFUSED, State.REJECTED, State.UNKNOWN, State.NOT_NOW)
# A task stops claiming items after this long and hands the rest to a new task. With the
# calls it has on the wire (each at most one call plus the wait for an in-flight place) it
# stays well inside the cluster's task timeout.
BATCH_SLICE_SECONDS = 20
# A pause shorter than this is waited out inside the task; a longer one ends the task and
# the resume sweep picks the batch up once it is over.
SHORT_PAUSE = timedelta(seconds=20)
# Never pause longer than this, whatever the vendor asks.
LONGEST_PAUSE = timedelta(hours=1)
# A batch nobody has started working this long after it was recorded is handed to a task
# again (its task was lost with its process or its queue).
START_GRACE = timedelta(minutes=2)
TASK = "portal.tasks.batch_work_task"
# A batch item's label is cut to this.
LABEL_LENGTH = 200
# The most items one thread claims at once.
CLAIM_MAX = 4


@dataclass(frozen=True)
class Operation:
    """What one bulk action runs on each object of `model`: `run(obj, by=...)`, a public
    service function; `done`, the word for it done."""

    model: type[Provisioned]
    run: Callable[..., Provisioned]
    done: str
    # The OneOffice method it calls: a batch item left running by a dead task is settled from
    # a call of this method only. Empty for a retry (whatever is pending) or a decision (none).
    method: str = ""
    # Relations each object is loaded with (a renewal's retry runs on its subscription).
    related: tuple[str, ...] = ()


# Which operation each (kind, action) runs, filled by the apps that own the operations when
# Django starts (their AppConfig.ready): a click, a small selection and a batch alike. The
# batch engine knows no operation by name.
OPERATIONS: dict[tuple[str, str], Operation] = {}
# What a scheduled job that started a batch does once the batch ends, by job name.
JOB_REPORTS: dict[str, Callable[[Batch], object]] = {}


def register(action: str, operation: Operation) -> None:
    """Offer `operation` as `action` on objects of its model (customers, orders)."""
    OPERATIONS[(_kind_of(operation.model), action)] = operation


def register_job(job: str, *, on_finished: Callable[[Batch], object]) -> None:
    """Have `on_finished(batch)` run when a batch started by `job` ends."""
    JOB_REPORTS[job] = on_finished


def operation(model: type[Provisioned], action: str) -> Operation:
    """What `action` runs on an object of `model`."""
    return OPERATIONS[(_kind_of(model), action)]


def _kind_of(model: type[Provisioned]) -> str:
    # A batch's kind is its objects' model name: "customer", "order".
    return str(model._meta.model_name)


def sync_limit() -> int:
    """Bulk actions on up to this many objects run in the request, as before."""
    return settings.BATCH_SYNC_MAX


# Starting ---------------------------------------------------------------------------------------


def batch_start(
    *,
    kind: str,
    action: str,
    label: str,
    objects: Iterable[Provisioned],
    by: AbstractBaseUser | None = None,
    job: str = "",
    rejected: dict[int, str] | None = None,
    claim: Callable[[Batch, list], list] | None = None,
) -> Batch | None:
    """Record a batch of `action` on `objects` and hand it to the cluster once committed.

    `rejected` maps object ids the portal refuses up front (no permission) to the reason;
    those items are settled at once and never sent. `claim`, in the same transaction, is
    given the new batch and the objects and returns those the batch may keep (a job's
    once-only claims); None, and no batch, when it keeps none. Nothing is sent here.
    """
    if (kind, action) not in OPERATIONS:
        raise ValueError(f"no batch action {action!r} for {kind}")
    rejected = rejected or {}
    now = timezone.now()
    if isinstance(objects, QuerySet) and claim is None and not rejected:
        # A whole list, however long: its items are written by the database itself.
        with transaction.atomic():
            batch = _create(kind, action, label, by, job, total=0, now=now)
            batch.total = _insert_items(batch, objects)
            batch.save(update_fields=["total"])
            tasks = _tasks_for(batch.total)
            transaction.on_commit(lambda: _enqueue_times(batch.pk, tasks))
        logger.info("%s recorded", batch)
        return batch
    objects = list(objects)
    with transaction.atomic():
        batch = _create(kind, action, label, by, job, total=len(objects), now=now)
        if claim is not None:
            objects = claim(batch, objects)
            if not objects:
                batch.delete()
                return None
            if len(objects) != batch.total:
                batch.total = len(objects)
                batch.save(update_fields=["total"])
        BatchItem.objects.bulk_create(
            BatchItem(
                batch=batch,
                position=position,
                object_id=obj.pk,
                object_label=str(obj)[:200],
                state=State.REJECTED if obj.pk in rejected else State.QUEUED,
                message=rejected.get(obj.pk, ""),
                finished_at=now if obj.pk in rejected else None,
            )
            for position, obj in enumerate(objects)
        )
        tasks = _tasks_for(batch.total - len(rejected))
        transaction.on_commit(lambda: _enqueue_times(batch.pk, tasks))
    logger.info("%s recorded", batch)
    return batch


def _create(kind, action, label, by, job, *, total: int, now: datetime) -> Batch:
    return Batch.objects.create(
        kind=kind,
        action=action,
        label=label,
        created_by=by if by is not None and by.pk else None,
        job=job,
        total=total,
        worked_until=now + START_GRACE,
    )


def _insert_items(batch: Batch, objects: QuerySet) -> int:
    """Queue one item per object of `objects`, in id order, in one INSERT ... SELECT (the
    admin's POST answers as fast for 10,000 objects as for 10). Returns how many."""
    model = objects.model
    label = model.label_expression()
    source = (
        # Each object once, whatever joins the list's own query made.
        model._base_manager.filter(pk__in=objects.order_by().values("pk"))
        .order_by()
        .values(
            item_object=F("pk"),
            item_label=Left(label, LABEL_LENGTH),
            item_position=Window(RowNumber(), order_by=F("pk").asc()),
        )
    )
    return insert_select(
        BatchItem,
        ["batch", "position", "object_id", "object_label", "state", "message", "claimed_by"],
        source,
        "%s, src.item_position - 1, src.item_object, src.item_label, %s, '', ''",
        [batch.pk, State.QUEUED],
    )


def _tasks_for(items: int) -> int:
    # One task per cluster worker shares a big batch, so the ORM work around the calls runs on
    # as many cores; each takes its share of the in-flight places as threads.
    workers = settings.Q_CLUSTER.get("workers", 1)
    return max(1, min(workers, -(-items // settings.ONEOFFICE_MAX_IN_FLIGHT)))


def _threads_per_task() -> int:
    return max(1, -(-settings.ONEOFFICE_MAX_IN_FLIGHT // settings.Q_CLUSTER.get("workers", 1)))


def _enqueue_times(batch_id: int, tasks: int) -> None:
    for _ in range(tasks):
        enqueue(batch_id)


def enqueue(batch_id: int) -> None:
    """Hand the batch to a cluster task (harmless when one is working it already)."""
    async_task(TASK, batch_id, group=f"batch {batch_id}")


# Working ----------------------------------------------------------------------------------------


def batch_work(*, batch_id: int) -> Batch:
    """Work the batch's queued items for one slice, several calls in flight at once.

    Re-enqueues itself while items are left, ends when the batch is paused for longer than a
    short wait (the resume sweep takes it up after the pause), and finishes the batch once no
    item is left queued or running. Safe to run twice at once: items are claimed by
    compare-and-set.
    """
    batch = Batch.objects.get(pk=batch_id)
    if batch.finished_at is not None:
        return batch
    started = time.monotonic()
    Batch.objects.filter(pk=batch_id).update(
        worked_until=timezone.now() + timedelta(seconds=BATCH_SLICE_SECONDS) + item_hold()
    )
    _recover_stale_items(batch)
    queued = batch.items.filter(state=State.QUEUED).count()
    threads = min(_threads_per_task(), queued)
    if threads:
        work = _Slice(
            batch=batch,
            deadline=started + BATCH_SLICE_SECONDS,
            claim_size=_claim_size(queued),
        )
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="batch") as pool:
            for future in [pool.submit(_worker, work) for _ in range(threads)]:
                future.result()
    batch.refresh_from_db()
    if _finish_if_settled(batch):
        return batch
    left = batch.items.filter(state=State.QUEUED).exists()
    if not left:
        # Items still running belong to another task, which finishes the batch.
        return batch
    if batch.paused_until and batch.paused_until > timezone.now() + SHORT_PAUSE:
        # The resume sweep hands it to a task when the pause is over.
        Batch.objects.filter(pk=batch_id).update(worked_until=batch.paused_until)
        return batch
    enqueue(batch_id)
    return batch


@dataclass
class _Slice:
    """What the threads of one task share while they work a batch."""

    batch: Batch
    deadline: float
    claim_size: int
    # Set when a thread learns the batch is paused: then no thread of this task sends more of
    # what it claimed.
    paused_until: datetime | None = None

    def may_send(self) -> bool:
        if time.monotonic() >= self.deadline:
            return False
        return self.paused_until is None or self.paused_until <= timezone.now()


def _claim_size(queued: int) -> int:
    # A thread claims a few items at once (one claim's statements shared by them) when the
    # batch is long; a short one is claimed one item at a time, so that no thread sits on
    # items others could be sending. At most CLAIM_MAX - 1 items wait at the very end.
    return max(1, min(CLAIM_MAX, queued // (2 * settings.ONEOFFICE_MAX_IN_FLIGHT)))


def _worker(work: _Slice) -> None:
    try:
        while time.monotonic() < work.deadline:
            claimed = _claim(work.batch, work.claim_size)
            if claimed is None:
                return
            if isinstance(claimed, datetime):
                wait = (claimed - timezone.now()).total_seconds()
                if time.monotonic() + wait > work.deadline:
                    return
                time.sleep(max(wait, 0))
                continue
            items, objects = claimed
            for index, item in enumerate(items):
                if not work.may_send():
                    # Past the slice, or paused: the rest go back to the queue (the next claim
                    # waits out the pause).
                    _unclaim(items[index:])
                    break
                _run(work, item, objects.get(item.object_id))
    finally:
        # Each thread has its own connection; the cluster worker would otherwise leak them.
        connections.close_all()


def _claim(
    batch: Batch, size: int
) -> tuple[list[BatchItem], dict[int, Provisioned]] | datetime | None:
    """Claim up to `size` queued items, first ones first, with their objects; or the end of the
    batch's pause; or None when no item is left queued."""
    batch_id = batch.pk
    queued = BatchItem.objects.filter(batch_id=batch_id, state=State.QUEUED)
    while True:
        now = timezone.now()
        token = secrets.token_hex(16)
        not_paused = Q(batch__paused_until__isnull=True) | Q(batch__paused_until__lte=now)
        first = queued.filter(not_paused).order_by("position").values("pk")[:size]
        # The subquery picks; the outer condition is checked again on each row, so of two
        # threads that picked the same items each item goes to one of them.
        taken = BatchItem.objects.filter(pk__in=Subquery(first), state=State.QUEUED).update(
            state=State.RUNNING,
            claimed_by=token,
            # No claimed item is started after the slice ends, and each is over within
            # `item_hold` of its start.
            claimed_until=now + timedelta(seconds=BATCH_SLICE_SECONDS) + item_hold(),
            started_at=now,
        )
        if taken:
            items = list(
                BatchItem.objects.filter(batch_id=batch_id, claimed_by=token, state=State.RUNNING)
            )
            items.sort(key=lambda item: item.position)
            return items, _load(batch, [item.object_id for item in items])
        state = (
            Batch.objects.filter(pk=batch_id)
            .annotate(left=Exists(queued))
            .values("paused_until", "left")
            .get()
        )
        if not state["left"]:
            return None
        if state["paused_until"] is not None and state["paused_until"] > now:
            return state["paused_until"]
        # Another thread took the items this one picked: pick again.


def _unclaim(items: list[BatchItem]) -> None:
    """Give claimed items that were not started back to the queue."""
    BatchItem.objects.filter(
        pk__in=[item.pk for item in items], claimed_by=items[0].claimed_by, state=State.RUNNING
    ).update(state=State.QUEUED, claimed_by="", claimed_until=None, started_at=None)


def _load(batch: Batch, object_ids: list[int]) -> dict[int, Provisioned]:
    operation = OPERATIONS[(batch.kind, batch.action)]
    objects = operation.model._base_manager.select_related(*operation.related)
    return dict(objects.in_bulk(object_ids))


def _run(work: _Slice, item: BatchItem, obj: Provisioned | None) -> None:
    state: str
    batch = work.batch
    operation = OPERATIONS[(batch.kind, batch.action)]
    pause_until = None
    if obj is None:
        state, message = State.REJECTED, f"{item.object_label} no longer exists; nothing was sent."
    else:
        try:
            result = operation.run(obj, by=batch.created_by)
        except errors.ProvisioningError as exc:
            pause_until = not_now_until(exc)
            state, message = _state_for(exc), exc.summary(obj)
        except Exception as exc:
            # A bug or a database failure must not stop the other items; whatever the service
            # left pending is settled by its retries.
            logger.exception("batch %s: %s failed", batch.pk, item.object_label)
            state = State.UNKNOWN
            message = f"{item.object_label}: unexpected error ({type(exc).__name__}); check it."
        else:
            status = result.get_status_display()
            now_status = "" if status == operation.done else f", now {status}"
            state, message = State.DONE, f"{result}: {operation.done}{now_status}."
    if pause_until is not None:
        pause(batch.pk, until=pause_until)
    _settle(work, item, state=state, message=message)


def _settle(work: _Slice, item: BatchItem, *, state: str, message: str) -> None:
    """Record the item's result, and learn in the same statement whether another thread or
    process paused the batch meanwhile (then this thread sends nothing more it claimed)."""
    now = timezone.now()
    result = {"state": state, "message": message, "finished_at": now, "claimed_until": None}
    # Only under this claim: an item settled and queued again meanwhile is not this one's.
    running = BatchItem.objects.filter(pk=item.pk, state=State.RUNNING, claimed_by=item.claimed_by)
    paused = Batch.objects.filter(pk=work.batch.pk, paused_until__gt=now)
    if running.filter(~Exists(paused)).update(**result):
        return
    # Paused, or the item was settled meanwhile from the call log: record it, see which.
    running.update(**result)
    until = Batch.objects.filter(pk=work.batch.pk).values_list("paused_until", flat=True).get()
    if until is not None and until > now:
        work.paused_until = max(until, work.paused_until or until)


def _state_for(exc: errors.ProvisioningError) -> str:
    if isinstance(exc, errors.VendorRefused):
        return State.REFUSED
    if isinstance(exc, errors.StillPending):
        return State.NOT_NOW if exc.not_now else State.UNKNOWN
    if isinstance(
        exc,
        errors.InvalidInput | errors.NotAllowed | errors.Busy | errors.ConfigurationProblem,
    ):
        return State.REJECTED
    # Any other failure may have left the object pending: never claim nothing happened.
    return State.UNKNOWN


def not_now_until(exc: errors.ProvisioningError) -> datetime | None:
    """When the service's error says OneOffice said "not now", the moment to send the batch's
    next item: the time OneOffice named, or BATCH_NOT_NOW_PAUSE_SECONDS from now when it named
    none; never further than LONGEST_PAUSE. None when it did not say "not now"."""
    if not exc.not_now:
        return None
    now = timezone.now()
    until = exc.not_before or now + timedelta(seconds=settings.BATCH_NOT_NOW_PAUSE_SECONDS)
    return min(until, now + LONGEST_PAUSE)


def pause(batch_id: int, *, until: datetime) -> None:
    """Send no item of the batch before `until`; a later pause already set stands."""
    Batch.objects.filter(pk=batch_id).filter(
        Q(paused_until__isnull=True) | Q(paused_until__lt=until)
    ).update(paused_until=until)
    logger.warning("batch %s paused until %s: OneOffice said not now", batch_id, until)


def _calls_about(kind: str, object_id: int):
    if kind == Batch.Kind.CUSTOMER:
        return ProvisioningCall.objects.filter(customer_id=object_id, order__isnull=True)
    # A renewal's calls are about the renewal row, whose parent is the subscription.
    return ProvisioningCall.objects.filter(Q(order_id=object_id) | Q(order__parent_id=object_id))


def _recover_stale_items(batch: Batch) -> None:
    """Settle items whose task died while running them, from the call log, without sending.

    A thread runs the items of one claim in order and settles each before starting the next,
    so of a dead claim's items still running only the first may have been started: the others
    are queued again at once. For that first one, no call of the batch's method since the
    claim means nothing was sent, so it is queued again; otherwise it takes the outcome of
    that call, and a call left in flight is an unknown outcome, which the service's retry
    sweep settles with the same ids.
    """
    now = timezone.now()
    method = OPERATIONS[(batch.kind, batch.action)].method
    stale = batch.items.filter(state=State.RUNNING, claimed_until__lt=now)
    seen: set[str] = set()
    for item in stale.order_by("claimed_by", "position"):
        # (An item with no claim token was claimed alone.)
        first_of_claim = not item.claimed_by or item.claimed_by not in seen
        seen.add(item.claimed_by)
        calls = _calls_about(batch.kind, item.object_id).filter(started_at__gte=item.started_at)
        if method:
            calls = calls.filter(method=method)
        call = calls.order_by("-started_at", "-id").first() if first_of_claim else None
        unsettled = BatchItem.objects.filter(pk=item.pk, state=State.RUNNING)
        if call is None:
            unsettled.update(state=State.QUEUED, claimed_by="", claimed_until=None, started_at=None)
            continue
        state, message = _state_from_call(call)
        unsettled.update(state=state, message=f"{item.object_label}: {message}", finished_at=now)


def _state_from_call(call: ProvisioningCall) -> tuple[str, str]:
    outcome = ProvisioningCall.Outcome
    if call.outcome == outcome.OK:
        return State.DONE, "done (recorded after the worker stopped)."
    if call.outcome == outcome.REFUSED:
        return State.REFUSED, call.error
    if call.outcome == outcome.IN_FLIGHT:
        return State.UNKNOWN, (
            "the worker stopped while the call was on the wire; the outcome is unknown and "
            "it is retried automatically with the same ids."
        )
    return State.UNKNOWN, call.error or call.get_outcome_display()


def _finish_if_settled(batch: Batch) -> bool:
    if batch.items.filter(state__in=UNSETTLED_STATES).exists():
        return False
    finished = Batch.objects.filter(pk=batch.pk, finished_at__isnull=True).update(
        finished_at=timezone.now(), worked_until=None
    )
    batch.refresh_from_db()
    if finished:
        logger.info("%s finished: %s", batch, counts(batch))
        if batch.job:
            _job_finished(batch)
    return True


def _job_finished(batch: Batch) -> None:
    report = JOB_REPORTS.get(batch.job)
    if report is not None:
        report(batch)


def batch_resume_stalled() -> int:
    """Hand every unfinished batch that no task is working to a new task.

    That is a batch whose task died (with its process, or lost from its queue) or whose
    pause is over. Its running items whose claim expired are settled by that task from the
    call log. Returns how many batches it handed on.
    """
    now = timezone.now()
    stalled = list(
        Batch.objects.filter(finished_at__isnull=True)
        .filter(Q(worked_until__isnull=True) | Q(worked_until__lt=now))
        .values_list("pk", flat=True)
    )
    for batch_id in stalled:
        # The new task claims the batch for its slice; until it starts, the next sweep
        # leaves it alone.
        Batch.objects.filter(pk=batch_id).update(worked_until=now + START_GRACE)
        enqueue(batch_id)
    return len(stalled)


# Reading ----------------------------------------------------------------------------------------


def counts(batch: Batch) -> dict[str, int]:
    """How many items are in each state (one query)."""
    rows = batch.items.values("state").annotate(n=Count("pk")).order_by()
    found = {row["state"]: row["n"] for row in rows}
    return {state: found.get(state, 0) for state in State.values}


def _fixed_later(batch: Batch) -> Exists | None:
    """Whether an item's object went through after the item ended: a later call of the batch's
    method about it succeeded (another batch, a click, an automatic retry). None for an
    operation that sends nothing (a person's decision)."""
    operation = OPERATIONS[(batch.kind, batch.action)]
    if not operation.method and batch.action != "retry":
        return None
    calls = ProvisioningCall.objects.filter(
        outcome=ProvisioningCall.Outcome.OK, started_at__gte=OuterRef("finished_at")
    )
    if operation.method:
        calls = calls.filter(method=operation.method)
    if batch.kind == Batch.Kind.CUSTOMER:
        calls = calls.filter(customer_id=OuterRef("object_id"), order__isnull=True)
    else:
        # A renewal's calls are about the renewal row, whose parent is the subscription.
        calls = calls.filter(
            Q(order_id=OuterRef("object_id")) | Q(order__parent_id=OuterRef("object_id"))
        )
    return Exists(calls)


def fixed_ids(batch: Batch) -> set[int]:
    """Objects whose item did not go through but that went through since: the batch page no
    longer counts them as not done, nor offers to send them again."""
    fixed = _fixed_later(batch)
    if fixed is None:
        return set()
    return set(
        batch.items.filter(state__in=NOT_THROUGH).filter(fixed).values_list("object_id", flat=True)
    )


def not_through_ids(batch: Batch, states: Iterable[str] = NOT_THROUGH) -> list[int]:
    """Ids of the objects whose item ended in one of `states` and that have not gone through
    since."""
    items = batch.items.filter(state__in=list(states))
    fixed = _fixed_later(batch)
    if fixed is not None:
        items = items.exclude(fixed)
    return list(items.order_by("position").values_list("object_id", flat=True))
