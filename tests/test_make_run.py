"""`make run` as a newcomer meets it: it says what it does, serves on PORT, and stops cleanly on a signal.

The test starts `make run` in a process group of its own, as a terminal does,
and signals the whole group, as Ctrl-C does. Before: a ~350-line RecursionError
from django-q2's signal handler and `make: *** Segmentation fault`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MakeRun:
    """`make run` on a scratch SQLite database; its output collected line by line."""

    def __init__(self, tmp: Path, port: int) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "REDIS_URL", "PAYDESK_PUBLIC_URL")}
        env.update(DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3", MEDIA_ROOT=str(tmp / "media"), PORT=str(port))
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "run"],  # noqa: S607 - make from PATH, as a newcomer runs it
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            process_group=0,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never came; output:\n{self.output}")
            time.sleep(0.2)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_run_says_what_it_does_serves_on_port_and_stops_cleanly(tmp_path, signum):
    port = free_port()
    run = MakeRun(tmp_path, port)
    try:
        run.wait_for(" Stop with Ctrl-C", timeout=240)
        url = f"http://127.0.0.1:{port}/"
        for step in (
            "==> Migrating the database",
            "==> Seeding the demo merchant",
            "==> Starting the web server",
        ):
            assert step in run.output
        block = run.output[run.output.index(" PayDesk is running at") :]
        assert block.startswith(f" PayDesk is running at {url}\n")
        assert f"Admin      {url}admin/" in block and "Password   paydesk-demo" in block
        assert "API key    pdk_" in block
        assert requests.get(url + "healthz", timeout=5).status_code == 200
        assert requests.get(url + "accounts/login/", timeout=5).status_code == 200

        started = time.monotonic()
        os.killpg(run.process.pid, signum)
        status = run.process.wait(timeout=20)
        stopped_in = time.monotonic() - started
        run.reader.join(timeout=5)
    finally:
        run.kill()

    # A shell shows a death by SIGINT as exit status 130; make exits so when Ctrl-C reached it too.
    assert status in (0, -signum), (status, run.output)
    assert stopped_in < 10, stopped_in
    assert "PayDesk stopped." in run.output
    for symptom in ("Traceback", "RecursionError", "Segmentation fault", "was still busy"):
        assert symptom not in run.output, run.output
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "healthz", timeout=2)
