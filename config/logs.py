"""Logging filters referenced by settings.LOGGING."""

from __future__ import annotations

import logging
import re

# django-q2 (1.11) logs one INFO line when a task is enqueued, one when a worker starts it, one
# when the monitor records it, and one per schedule run: four lines per unit of work, which bury
# what PayDesk itself reports. (module, function) of each such line, and the pattern of its
# message where that function also logs the cluster's start and stop.
PER_TASK_LINES: dict[tuple[str, str], re.Pattern[str] | None] = {
    ("tasks", "async_task"): None,
    ("scheduler", "scheduler"): None,
    ("worker", "worker"): re.compile(r" processing "),
    ("monitor", "monitor"): re.compile(r"^Processed "),
}


def is_task_chatter(record: logging.LogRecord) -> bool:
    if record.levelno != logging.INFO or (record.module, record.funcName) not in PER_TASK_LINES:
        return False
    pattern = PER_TASK_LINES[(record.module, record.funcName)]
    return pattern is None or pattern.search(record.getMessage()) is not None


class TaskChatterToDebug(logging.Filter):
    """Log django-q2's per-task INFO lines at DEBUG: shown only when the logger is at DEBUG.

    Start, stop and failure lines keep their level. Attach it to the `django-q` logger.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not is_task_chatter(record):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
