"""Who an Event fans out to: a merchant's enabled webhook endpoints and notification preferences.

Read on every state change (inside the changing transaction), so both come
from one query whose SQL is built once per number of merchants; rows come
back as small frozen records carrying what the fan-out needs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection

from merchants.models import NotificationPreference, WebhookEndpoint


@dataclass(frozen=True)
class _Endpoint:
    """What the fan-out needs of an enabled WebhookEndpoint."""

    pk: int
    merchant_id: int
    url: str
    events: list

    subscribes_to = WebhookEndpoint.subscribes_to


@dataclass(frozen=True)
class _Preference:
    """What the fan-out needs of an enabled NotificationPreference."""

    merchant_id: int
    channel: str
    events: list
    recipients: list
    enabled: bool = True

    subscribes_to = NotificationPreference.subscribes_to


def fanout_targets(
    merchant_ids: list[int],
) -> tuple[dict[int, list[_Endpoint]], dict[int, list[_Preference]]]:
    """The merchants' enabled webhook endpoints (by pk) and enabled preferences, in one query."""
    endpoints: dict[int, list[_Endpoint]] = defaultdict(list)
    prefs: dict[int, list[_Preference]] = defaultdict(list)
    params = [*merchant_ids, WebhookEndpoint.Status.ENABLED, *merchant_ids, True]
    decode = WebhookEndpoint._meta.get_field("events").from_db_value
    with connection.cursor() as cursor:
        cursor.execute(_fanout_sql(len(merchant_ids)), params)
        for kind, pk, merchant_id, url, events, recipients in cursor.fetchall():
            events = decode(events, None, connection) or []
            if kind == "":
                endpoints[merchant_id].append(_Endpoint(pk, merchant_id, url, events))
            else:
                recipients = decode(recipients, None, connection) or []
                prefs[merchant_id].append(_Preference(merchant_id, kind, events, recipients))
    return endpoints, prefs


# Endpoints first, then preferences, each by pk; a row's kind is '' (endpoint) or the preference's channel.
_FANOUT_SQL = """
SELECT kind, pk, merchant_id, url, events, recipients FROM (
    SELECT '' AS kind, {e_id} AS pk, {e_merchant} AS merchant_id, {e_url} AS url, {e_events} AS events,
           NULL AS recipients, 0 AS part
    FROM {endpoints} WHERE {e_merchant} IN ({ids}) AND {e_status} = %s
    UNION ALL
    SELECT {p_channel}, {p_id}, {p_merchant}, '', {p_events}, {p_recipients}, 1
    FROM {prefs} WHERE {p_merchant} IN ({ids}) AND {p_enabled} = %s
) AS targets ORDER BY part, pk
"""


@lru_cache(maxsize=64)
def _fanout_sql(n_merchants: int) -> str:
    q = connection.ops.quote_name
    endpoint, pref = WebhookEndpoint._meta, NotificationPreference._meta
    return _FANOUT_SQL.format(
        ids=", ".join(["%s"] * n_merchants),
        endpoints=q(endpoint.db_table),
        prefs=q(pref.db_table),
        **{f"e_{f.name}": q(f.column) for f in endpoint.concrete_fields},
        **{f"p_{f.name}": q(f.column) for f in pref.concrete_fields},
    )
