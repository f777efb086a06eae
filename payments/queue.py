"""Enqueueing work for django-q2 workers.

The database is the record of pending work; the broker only speeds it up, so
a lost enqueue is recovered by the sweeper. Tests may set
PAYDESK_RUN_TASKS_INLINE to run a task in the caller, exceptions included.
"""

import logging
import threading

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string
from django_q.brokers import get_broker
from django_q.tasks import async_task

logger = logging.getLogger(__name__)
_local = threading.local()


def _broker():
    # One broker (and Redis connection) per thread instead of one per call.
    broker = getattr(_local, "broker", None)
    if broker is None:
        broker = _local.broker = get_broker()
    return broker


def enqueue(func: str, *args, **kwargs) -> None:
    """Queue `func(*args)` for a worker; a broker failure is logged, the sweeper retries."""
    if getattr(settings, "PAYDESK_RUN_TASKS_INLINE", False):
        import_string(func)(*args, **kwargs)
        return
    try:
        async_task(func, *args, broker=_broker(), **kwargs)
    except Exception:
        # The unit of work is in the database; the periodic sweeper will find it.
        logger.exception("enqueue of %s failed; left for the sweeper", func)
        _local.broker = None


def enqueue_on_commit(func: str, *args) -> None:
    transaction.on_commit(lambda: enqueue(func, *args))
