"""At INFO the logs show PayDesk's work; django-q2's per-task lines only at DEBUG (config/logs.py)."""

from __future__ import annotations

import logging

import pytest
from django_q.tasks import async_task

from config.logs import TaskChatterToDebug

pytestmark = pytest.mark.django_db

PER_TASK = ("processing", "Processed", "Enqueued")


def django_q_lines(caplog) -> list[tuple[str, str]]:
    return [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "django-q"]


def run_tasks() -> None:
    """One task through django-q2's own worker and monitor (sync), one onto the ORM broker's queue."""
    async_task("payments.tasks.worker_ping_task", sync=True)
    async_task("payments.tasks.worker_ping_task")


def test_at_info_django_q_keeps_its_start_and_stop_lines_but_not_its_per_task_lines(caplog):
    caplog.set_level(logging.INFO)
    run_tasks()
    lines = django_q_lines(caplog)
    assert any("ready for work" in message for _, message in lines), lines  # a worker's start
    assert not [m for _, m in lines if any(word in m for word in PER_TASK)], lines


def test_at_debug_the_per_task_lines_show_as_debug(caplog):
    caplog.set_level(logging.DEBUG)
    run_tasks()
    chatter = [(level, m) for level, m in django_q_lines(caplog) if any(word in m for word in PER_TASK)]
    assert {word for word in PER_TASK if any(word in m for _, m in chatter)} == set(PER_TASK), chatter
    assert {level for level, _ in chatter} == {"DEBUG"}


def test_a_failed_task_keeps_its_error_level():
    record = logging.LogRecord(
        "django-q",
        logging.ERROR,
        "/site-packages/django_q/monitor.py",
        60,
        "Failed 'f' (t) - boom",
        None,
        None,
        func="monitor",
    )
    assert TaskChatterToDebug().filter(record) is True
    assert record.levelname == "ERROR"
