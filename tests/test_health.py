from unittest import mock

import pytest
from django.db.utils import OperationalError


@pytest.mark.django_db
def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.django_db
def test_healthz_503_when_the_database_is_down(client):
    with mock.patch("payments.views.health.connection.cursor", side_effect=OperationalError("down")):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"


@pytest.mark.django_db
def test_healthz_503_when_the_broker_is_down(client):
    broker = mock.Mock()
    broker.ping.side_effect = ConnectionError("refused")
    with mock.patch("payments.views.health.get_broker", return_value=broker):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "unreachable"}


@pytest.mark.django_db
def test_healthz_503_when_the_redis_broker_is_unreachable(client, settings):
    from django_q.brokers.redis_broker import Redis

    broker = Redis.__new__(Redis)
    broker.connection = mock.Mock()
    broker.connection.ping.side_effect = ConnectionError("refused")
    with mock.patch("payments.views.health.get_broker", return_value=broker):
        response = client.get("/healthz")
    assert response.status_code == 503
