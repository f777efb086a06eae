"""`make run`: Django's development server and one django-q2 worker, stopped together by Ctrl-C or SIGTERM.

Each child runs in a process group of its own, so the terminal's Ctrl-C
reaches only this command, which then stops each child once: the worker's
cluster gets one SIGTERM and stops its worker processes itself (a signal to
every one of its processes at once re-enters django-q2's handler until Python
overflows its stack, which is what `make run` used to print), the web server a
SIGINT. Whatever still runs after `--grace` seconds is killed with its group;
the sweeper re-enqueues any work it had claimed.

Start-up ends once the web server answers /healthz and a worker has run a
task, with one block: where PayDesk is served, the demo logins and API key,
and how to stop.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django_q.tasks import async_task, result

from merchants.models import Merchant
from payments.demo import ADMIN_USERNAME, DEMO_PASSWORD, DEMO_SLUG, USERS, demo_api_key

MANAGE = Path(settings.BASE_DIR) / "manage.py"
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In a child, before exec: get SIGTERM when this supervisor dies, however it dies (Linux)."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Command(BaseCommand):
    help = "Run the web server and one worker for local development; Ctrl-C or SIGTERM stops both."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument(
            "--grace", type=float, default=10, help="Seconds the children get to stop before being killed."
        )
        parser.add_argument(
            "--ready-timeout", type=float, default=90, help="Seconds to wait for the server and the worker."
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError(
                "run_demo runs Django's development server, for DEBUG only; in production run gunicorn "
                "and manage.py qcluster (docs/operations.md)."
            )
        self.stop_signal: int | None = None
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._request_stop)
        host, port = options["host"], options["port"]
        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - only compared
        url = f"http://{local}:{port}/"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        # The sandbox sends its callbacks to PAYDESK_PUBLIC_URL: this server, unless told otherwise.
        env.setdefault("PAYDESK_PUBLIC_URL", url.rstrip("/"))
        children = {
            "web server": self._spawn(["runserver", f"{host}:{port}", "--noreload"], env),
            "worker": self._spawn(["qcluster"], env),
        }
        try:
            if self._wait_until_ready(children, url, options["ready_timeout"]):
                self.stdout.write(self._ready_block(url))
                self.stdout.flush()
                while self.stop_signal is None:
                    self._check_alive(children)
                    time.sleep(0.2)
        finally:
            self._stop(children, options["grace"])

    # Children -------------------------------------------------------------------------------
    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - our own manage.py with fixed arguments
            [sys.executable, str(MANAGE), *args],
            env=env,
            process_group=0,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def _request_stop(self, signum: int, frame) -> None:
        # The first signal decides; more (make forwards SIGTERM, a second Ctrl-C) change nothing,
        # and --grace bounds how long stopping takes.
        if self.stop_signal is None:
            self.stop_signal = signum

    def _check_alive(self, children: dict[str, subprocess.Popen]) -> None:
        for name, child in children.items():
            if child.poll() is not None:
                raise CommandError(f"The {name} stopped (exit status {child.returncode}); stopping PayDesk.")

    def _wait_until_ready(self, children: dict[str, subprocess.Popen], url: str, timeout: float) -> bool:
        """Wait for /healthz to answer and for a worker to run a task; False if a stop came first."""
        deadline = time.monotonic() + timeout
        while self.stop_signal is None:
            self._check_alive(children)
            try:
                if requests.get(url + "healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise CommandError(f"The web server did not answer {url}healthz within {timeout:g} s.")
            time.sleep(0.3)
        task = async_task("payments.tasks.worker_ping_task")
        while self.stop_signal is None:
            self._check_alive(children)
            if result(task, wait=300) == "pong":
                break
            if time.monotonic() > deadline:
                raise CommandError(f"The worker ran no task within {timeout:g} s.")
        connections.close_all()
        return self.stop_signal is None

    def _stop(self, children: dict[str, subprocess.Popen], grace: float) -> None:
        running = {name: child for name, child in children.items() if child.poll() is None}
        if not running:
            return
        self.stdout.write("Stopping the web server and the worker...")
        self.stdout.flush()
        for name, child in running.items():
            # One signal to the cluster's main process only: it stops its own workers.
            child.send_signal(signal.SIGTERM if name == "worker" else signal.SIGINT)
        deadline = time.monotonic() + grace
        for name, child in running.items():
            try:
                child.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
                self.stderr.write(
                    f"The {name} was still busy after {grace:g} s and was killed; the sweeper "
                    "picks its work up again."
                )
        self.stdout.write("PayDesk stopped.")

    # The start-up block ---------------------------------------------------------------------
    def _ready_block(self, url: str) -> str:
        rule = "=" * 78
        lines = ["", rule, f" PayDesk is running at {url}"]
        lines += [f"   Dashboard  {url}", f"   Admin      {url}admin/", f"   API docs   {url}api/docs/"]
        if Merchant.objects.filter(slug=DEMO_SLUG).exists():
            key, _ = demo_api_key()
            logins = [email for email, _ in USERS]
            lines += [
                f"   Logins     {', '.join(logins[:2])},",
                f"              {logins[2]}; {ADMIN_USERNAME} for the admin",
                f"   Password   {DEMO_PASSWORD} (every demo login)",
                f"   API key    {key}",
            ]
        else:
            lines.append("   No demo data yet: `manage.py seed_demo` creates logins and an API key.")
        lines += [" Stop with Ctrl-C (it stops the web server and the worker).", rule, ""]
        connections.close_all()
        return "\n".join(lines)
