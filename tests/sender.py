"""One process sending to OneOffice from several threads, as a web server and a cluster do:
places the first orders it is given, then runs the automatic retries they leave behind, as the
cluster runs them, until nothing is left pending.

Run by tests/test_inflight_cap.py as `python -m tests.sender IDS THREADS SECONDS` with the
environment of a real process (see `cluster_env`); it prints "ready" once Django is set up
and starts sending when it reads a line on its standard input.
"""

from __future__ import annotations

import ast
import contextlib
import sys
import threading
import time

import django

RETRY_TASK = "portal.tasks.order_retry_task"


def main() -> None:
    django.setup()
    # Models can only be imported once Django is set up.
    from django.db import connections
    from django.utils import timezone
    from django_q.models import Schedule

    from orders.models import Order
    from portal import provisioning, tasks

    todo = [int(pk) for pk in sys.argv[1].split(",")]
    threads = int(sys.argv[2])
    deadline = time.monotonic() + float(sys.argv[3])
    lock = threading.Lock()

    def next_order() -> int | None:
        with lock:
            return todo.pop(0) if todo else None

    def run_a_due_retry() -> bool:
        due = (
            Schedule.objects.filter(func=RETRY_TASK, next_run__lte=timezone.now())
            .order_by("next_run")
            .first()
        )
        if due is None:
            return False
        # Deleting the schedule claims it: of two processes only one deletes it.
        if Schedule.objects.filter(pk=due.pk).delete()[0]:
            tasks.order_retry_task(*ast.literal_eval(due.args))
        return True

    def unsettled() -> bool:
        return (
            Schedule.objects.filter(func=RETRY_TASK).exists()
            or Order.objects.filter(status=Order.Status.PENDING).exists()
        )

    def work() -> None:
        try:
            while (order_id := next_order()) is not None:
                order = Order.objects.select_related("customer").get(pk=order_id)
                with contextlib.suppress(provisioning.ProvisioningError):
                    provisioning.order_place(order=order)
            while time.monotonic() < deadline:
                if not run_a_due_retry():
                    if not unsettled():
                        return
                    time.sleep(0.02)
        finally:
            connections.close_all()

    print("ready", flush=True)
    sys.stdin.readline()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("done", flush=True)


if __name__ == "__main__":
    main()
