import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Run everything in one terminal: the OneOffice sandbox (unless ONEOFFICE_URL is set), "
        "the django-q2 cluster and the web server on 127.0.0.1:8000. Ctrl-C stops them all."
    )

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr, **options):
        # Ctrl-C, a closed terminal or a `kill` all stop the children (SIGINT too: a shell may
        # have started us with it ignored).
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.default_int_handler)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = []
        if settings.ONEOFFICE_SANDBOX:
            commands.append(("sandbox", [*manage, "oneoffice_sandbox"]))
        commands.append(("cluster", [*manage, "qcluster"]))
        commands.append(("web", [*manage, "runserver", addr]))

        processes = []
        for name, command in commands:
            self.stdout.write(f"starting {name}: {' '.join(command[1:])}")
            processes.append((name, subprocess.Popen(command, start_new_session=True)))
            if name == "sandbox":
                time.sleep(0.5)
        self.stdout.write(self.style.SUCCESS(f"Portal: http://{addr}/admin/  (Ctrl-C stops all)"))
        try:
            while all(process.poll() is None for _, process in processes):
                time.sleep(0.5)
            stopped = [name for name, process in processes if process.poll() is not None]
            self.stderr.write(f"{', '.join(stopped)} stopped; stopping the rest.")
        except KeyboardInterrupt:
            self.stdout.write("\nstopping...")
        finally:
            for name, process in processes:
                if process.poll() is None:
                    # The cluster stops its own workers; the web server's reloader child and
                    # the sandbox go with their process group.
                    if name == "cluster":
                        process.terminate()
                    else:
                        os.killpg(process.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for _, process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
