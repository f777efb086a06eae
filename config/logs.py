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


# What an account number looks like in free text: 8 or more digits (spaces allowed between them,
# as cards and Chinese bank accounts are written) or an IBAN. Dates and times (dashes, colons) and
# public ids (`pay_...`) do not match.
ACCOUNT_LIKE = re.compile(r"\b\d(?: ?\d){7,}\b|\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){10,30}\b")


def mask_accounts(text: str) -> str:
    """Replace every account-like run in `text` with `•••• <last four>`."""
    return ACCOUNT_LIKE.sub(lambda m: "\u2022\u2022\u2022\u2022 " + m.group(0).replace(" ", "")[-4:], text)


class AccountNumbersMasked(logging.Filter):
    """Mask account and card numbers in every record (message, arguments, traceback).

    Attached to the handlers, so it sees records of every logger, PayDesk's and libraries' alike:
    logs never carry a beneficiary's full account number (docs/privacy.md).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_accounts(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_accounts(record.exc_text)
        return True
