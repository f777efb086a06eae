import logging

from django.db import connection
from django.http import JsonResponse
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM

logger = logging.getLogger(__name__)


def healthz(request):
    """200 when the database and the task broker answer, 503 otherwise."""
    checks = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        checks["database"] = "ok"
    except Exception as exc:  # report, do not crash: this is the health check
        logger.warning("healthz database check failed: %s", exc)
        checks["database"] = "unreachable"
    try:
        broker = get_broker()
        ok = broker.ping()
        if ok and isinstance(broker, ORM):
            broker.queue_size()  # the ORM broker's ping() is always True; touch its table
        checks["broker"] = "ok" if ok else "unreachable"
    except Exception as exc:
        logger.warning("healthz broker check failed: %s", exc)
        checks["broker"] = "unreachable"
    healthy = all(v == "ok" for v in checks.values())
    return JsonResponse(
        {"status": "ok" if healthy else "unavailable", "checks": checks},
        status=200 if healthy else 503,
    )
