"""A total deadline for one HTTP exchange over blocking sockets.

`timeout=` in requests (and urllib3) bounds each socket operation, not the
exchange: a receiver that sends one byte of its answer every second never
trips a 15 s read timeout and holds the worker for as long as it likes. A
`send_deadline(seconds)` bounds the whole exchange instead. Every socket the
exchange connects, or takes from the pool, is registered with it (the
webhook adapter does this); one watchdog thread per process shuts those
sockets down (`shutdown(2)` wakes a blocked `recv` or `send` at once) when the
deadline passes. The exchange then fails with a connection error, and
`deadline.expired` tells the caller that it was the deadline.

A registered socket is held through a duplicate of its descriptor, closed
when the exchange ends: shutting the connection down through it works
whatever wraps the original (TLS), and the watchdog never touches a
descriptor number that may have been reused.
"""

from __future__ import annotations

import heapq
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_local = threading.local()


class SendDeadline:
    """The deadline of one exchange and the sockets it must cut when it passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expires_at = time.monotonic() + seconds
        self.expired = False
        self._finished = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def watch(self, sock: socket.socket) -> None:
        """Register a connected socket of this exchange; cut it at once if the deadline has passed."""
        dup = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(sock.fileno()))
        with self._lock:
            if self._finished:
                dup.close()
                return
            self._sockets.append(dup)
            if self.expired:
                _cut(dup)

    def expire(self) -> None:
        """Cut every registered socket (the watchdog calls this when the deadline passes)."""
        with self._lock:
            if self._finished:
                return
            self.expired = True
            for sock in self._sockets:
                _cut(sock)

    def finish(self) -> None:
        with self._lock:
            self._finished = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


def _cut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # not connected any more (the peer closed it): there is nothing left to cut


class _Watchdog:
    """One daemon thread per process that expires deadlines in time order."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        # A forked worker starts with no thread and no lock held by a thread it did not inherit.
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, SendDeadline]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: SendDeadline) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="paydesk-send-deadlines", daemon=True)
                self._thread.start()
            heapq.heappush(self._heap, (deadline.expires_at, next(self._order), deadline))
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = []
                while self._heap and self._heap[0][0] <= now:
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
                    continue
            for deadline in due:
                deadline.expire()  # a no-op for an exchange that already finished


_watchdog = _Watchdog()


@contextmanager
def send_deadline(seconds: float) -> Iterator[SendDeadline]:
    """Bound everything done inside the block over registered sockets to `seconds` in total."""
    deadline = SendDeadline(seconds)
    _watchdog.add(deadline)
    _local.deadline = deadline
    try:
        yield deadline
    finally:
        _local.deadline = None
        deadline.finish()


def current_deadline() -> SendDeadline | None:
    """The deadline of the exchange this thread is in, if any."""
    return getattr(_local, "deadline", None)
