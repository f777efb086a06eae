"""dashboard: server time of the main dashboard pages over 10^6 payments, against each page's minimal query.

Creates its own PostgreSQL database (on the server of DATABASE_URL, or
127.0.0.1:5432), migrates it, and seeds one merchant with `--payments`
payments (default 1,000,000) by COPY: statuses, methods and currencies spread
as a live merchant's are, created over 90 days, about 60 % of them in a few
hundred completed batches (the latest one a payroll of 5 % of all payments),
events for the most recent 5 %, a feed of in-app notifications; then VACUUM
ANALYZE, as autovacuum would have done on a table that old.

Each page is requested with Django's test client in-process, signed in as an
operator of the merchant, through the whole middleware stack (DEBUG off): home
(7 and 30 days, from the rollup), the CSV and XLSX exports (the failed
payments, and all of them, streamed), the payment list (first page, filtered by status, searched
by reference, a deep page), a payment detail, the batch list, the latest (and
largest) batch's detail and its payments, the notification feed. The baseline
of a page is the minimal query for what the page must show (the same rows with
`.values()`, ordered the same way, or one row by public id) rendered with a
trivial template string, measured in the same rounds; the ratio (lower is
better) is what the page costs over the data it needs. Each figure is the
median of `--rounds` rounds after a warm-up; the SQL statements of one request
of each page are counted (CaptureQueriesContext) and timed. The database is
dropped at the end, also on failure (unless `--keep-db`)."""

from __future__ import annotations

import base64
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from payments.benchmarks import ratio_line, server_execute, server_url, with_database

BASE_DIR = Path(__file__).resolve().parents[2]
SLUG = "bench-dashboard"
OPERATOR = "operator@bench.local"
APPROVER = "approver@bench.local"
DAYS = 90
BATCH_SHARE = 0.6
MEAN_BATCH = 2000
BATCH_ACCOUNTS = ["GB29NWBK60161331926819", "DE89370400440532013000", "FR1420041010050500013M02606"]

# Out of 1,000, by a hash of the payment's position (deterministic, evenly spread).
REALTIME_STATUSES = [
    ("succeeded", 780),
    ("failed", 80),
    ("cancelled", 30),
    ("refunded", 30),
    ("processing", 20),
    ("partially_refunded", 20),
    ("on_hold", 15),
    ("created", 10),
    ("reversed", 10),
    ("requires_action", 5),
]
BATCH_STATUSES = [("succeeded", 930), ("failed", 50), ("refunded", 10), ("reversed", 10)]
METHODS = [("card", 450), ("alipay", 150), ("wechat_pay", 150), ("paypal", 150), ("bank_transfer", 100)]
CURRENCIES = [("USD", 600), ("EUR", 300), ("JPY", 50), ("KWD", 50)]
FAILURES = [("card_declined", False), ("insufficient_funds", False), ("processing_error", True)]
FINAL = {"succeeded", "failed", "cancelled", "refunded", "reversed", "partially_refunded"}
SUBMITTED = FINAL - {"cancelled"} | {"processing", "requires_action"}

PAYMENT_COLUMNS = (
    "public_id, merchant_id, batch_id, reference, amount_minor, currency, method, beneficiary_name, "
    "beneficiary_account, beneficiary_account_hash, beneficiary_account_last4, "
    "beneficiary_email, beneficiary_phone, description, metadata, status, "
    "failure_code, failure_message, failure_retryable, refunded_minor, gateway, gateway_reference, "
    "created_at, updated_at, completed_at"
)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--payments", type=int, default=1_000_000, help="payments of the merchant (default 1000000)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds; each figure is the median (default 5)")
    parser.add_argument("--server", default="", help="PostgreSQL server URL (default: that of DATABASE_URL)")
    parser.add_argument(
        "--db-name", default="", help="name of the database to create (default paydesk_bench_dashboard_<pid>)"
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the benchmark database behind")
    parser.add_argument("--step", default="", help="(internal) seed if needed and measure, in this database")


def run(cmd, options) -> None:
    if options["step"] == "measure":
        _measure_step(cmd, options)
        return
    server = server_url(options["server"])
    name = options["db_name"] or f"paydesk_bench_dashboard_{os.getpid()}"
    env = _env(with_database(server, name))
    server_execute(server, f'CREATE DATABASE "{name}"')
    child = None
    try:
        cmd.stdout.write(f"dashboard benchmark: database {name}; migrating…")
        subprocess.run(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
        )
        # The pages are measured in a child whose default database is the new one.
        child = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
            [sys.executable, "manage.py", "benchmark", "dashboard", "--step", "measure"]
            + ["--payments", str(options["payments"]), "--rounds", str(options["rounds"])],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for line in child.stdout:
            cmd.stdout.write(line.rstrip("\n"))
            cmd.stdout.flush()
        if child.wait() != 0:
            raise RuntimeError(f"the measuring process exited with {child.returncode}")
    finally:
        if child is not None and child.poll() is None:  # interrupted: stop the child before the drop
            child.kill()
            child.wait()
        if options["keep_db"]:
            cmd.stdout.write(f"Kept database {name}.")
        else:
            server_execute(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        PAYDESK_WEBHOOK_ALLOW_PRIVATE="0",
        SILENCED_SYSTEM_CHECKS="paydesk.W001",  # the benchmarks measure the sandbox on purpose
        SECRET_KEY="benchmark-dashboard-" + secrets.token_urlsafe(24),
        SANDBOX_GATEWAY_SECRET=secrets.token_urlsafe(20),
        FIELD_ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        ALLOWED_HOSTS="testserver",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PYTHONWARNINGS="ignore:No directory at:UserWarning",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    return env


# Seeding ---------------------------------------------------------------------------------------


def _pick(table: list[tuple[str, int]], h: int) -> str:
    for value, weight in table:
        if h < weight:
            return value
        h -= weight
    return table[-1][0]


def _layout(n: int) -> list[tuple[int, int]]:
    """(start position, size) of each batch; the rest of the positions are real-time payments."""
    in_batches = int(n * BATCH_SHARE)
    count = max(2, min(400, round(in_batches / MEAN_BATCH)))
    # Sizes vary 1..10 parts; the latest batch is a payroll of ~5 % of all payments.
    big = max(1, n // 20)
    weights = [1 + (k * 7) % 10 for k in range(count - 1)]
    rest = max(count - 1, in_batches - big)
    sizes = [max(1, rest * w // sum(weights)) for w in weights]
    sizes.append(big)
    gap = (n - sum(sizes)) // count
    layout, pos = [], 0
    for size in sizes:
        pos += gap
        layout.append((pos, size))
        pos += size
    return layout


def _seed(cmd, n: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from merchants.crypto import encrypt_many, field_hash, last4
    from merchants.ids import new_public_ids
    from merchants.models import Membership, Merchant
    from payments.models import Event, Notification, Payment, PaymentBatch

    User = get_user_model()
    started = time.perf_counter()
    merchant = Merchant.objects.create(name="Benchmark dashboard", slug=SLUG)
    operator = User.objects.create_user(OPERATOR, OPERATOR)
    approver = User.objects.create_user(APPROVER, APPROVER)
    Membership.objects.create(user=operator, merchant=merchant, role=Membership.Role.OPERATOR)
    Membership.objects.create(user=approver, merchant=merchant, role=Membership.Role.APPROVER)

    now = timezone.now().replace(microsecond=0)
    origin = now - timedelta(days=DAYS)
    step = timedelta(days=DAYS) / n
    layout = _layout(n)
    batches = PaymentBatch.objects.bulk_create(
        PaymentBatch(
            merchant=merchant,
            name=f"Payroll {k + 1}",
            status="completed",
            source_format="csv",
            file_name=f"payroll-{k + 1:03d}.csv",
            file_sha256=secrets.token_hex(32),
            encoding="utf-8",
            file_size=size * 90,
            row_count=size,
            valid_count=size,
            uploaded_by=operator,
            approved_by=approver,
        )
        for k, (_start, size) in enumerate(layout)
    )
    batch_at = {
        start: (k, batch) for k, ((start, _size), batch) in enumerate(zip(layout, batches, strict=True))
    }
    sums: dict[int, dict] = {b.pk: {"totals": {}, "outcomes": {}} for b in batches}

    ids = new_public_ids("pay", n)
    # Accounts as they are stored at rest (issue 13): token, keyed hash, last four; one per account.
    at_rest: dict[str, tuple[str, str, str]] = {}

    def stored(account: str) -> tuple[str, str, str]:
        if account not in at_rest:
            at_rest[account] = (encrypt_many([account])[0], field_hash(account), last4(account))
        return at_rest[account]

    copy_started = time.perf_counter()
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY payments_payment ({PAYMENT_COLUMNS}) FROM STDIN") as copy:  # noqa: S608
            current, line, end = None, 0, -1
            for i in range(n):
                if i in batch_at:
                    k, current = batch_at[i]
                    line, end = 0, i + current.row_count
                    currency = "USD" if k % 2 == 0 else "EUR"
                if i >= end:
                    current = None
                h = (i * 2654435761) % 1_000_003
                created = origin + step * i
                amount = 100 + (i * 7919) % 500_000
                if current is not None:
                    line += 1
                    status = _pick(BATCH_STATUSES, h % 1000)
                    method, ref = "bank_transfer", f"{current.file_name[:-4].upper()}-{line:06d}"
                    account = BATCH_ACCOUNTS[i % len(BATCH_ACCOUNTS)]
                    name, description, metadata = (
                        f"Employee {line}",
                        current.name,
                        f'{{"batch_line": {line}}}',
                    )
                    per = sums[current.pk]
                    t = per["totals"].setdefault(currency, {"count": 0, "amount_minor": 0})
                    t["count"] += 1
                    t["amount_minor"] += amount
                    o = (
                        per["outcomes"]
                        .setdefault(status, {})
                        .setdefault(currency, {"count": 0, "amount_minor": 0})
                    )
                    o["count"] += 1
                    o["amount_minor"] += amount
                else:
                    status = _pick(REALTIME_STATUSES, h % 1000)
                    method = _pick(METHODS, (h // 1000) % 1000)
                    currency = (
                        "CNY" if method in ("alipay", "wechat_pay") else _pick(CURRENCIES, (h // 7) % 1000)
                    )
                    ref, account = f"ORD-{i:08d}", f"40000000{i % 50_000:08d}"
                    name, description, metadata = f"Customer {i % 50_000}", "", "{}"
                failure, retryable = FAILURES[i % 3] if status == "failed" else ("", False)
                refunded = (
                    amount if status == "refunded" else amount // 2 if status == "partially_refunded" else 0
                )
                copy.write_row(
                    (
                        ids[i],
                        merchant.pk,
                        current.pk if current is not None else None,
                        ref,
                        amount,
                        currency,
                        method,
                        name,
                        *stored(account),
                        "",
                        "",
                        description,
                        metadata,
                        status,
                        failure,
                        "Declined by the issuer" if failure else "",
                        retryable,
                        refunded,
                        "sandbox",
                        f"sbx_{i}" if status in SUBMITTED else "",
                        created,
                        created + timedelta(seconds=3),
                        created + timedelta(seconds=3) if status in FINAL else None,
                    )
                )
    copy_seconds = time.perf_counter() - copy_started

    for (start, _size), batch in zip(layout, batches, strict=True):
        at = origin + step * start
        PaymentBatch.objects.filter(pk=batch.pk).update(
            totals=sums[batch.pk]["totals"],
            outcomes=sums[batch.pk]["outcomes"],
            created_at=at - timedelta(minutes=30),
            validated_at=at - timedelta(minutes=29),
            approved_at=at - timedelta(minutes=1),
            started_at=at,
            completed_at=at + timedelta(minutes=20),
            updated_at=at + timedelta(minutes=20),
        )

    # The home page's rollup, as the lifecycle core would have kept it: one set-based INSERT.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_paymentdailystat (merchant_id, day, currency, method, kind, failure_code, "
            "slot, count, amount_minor) "
            "SELECT merchant_id, created_at::date, currency, method, k.kind, "
            "CASE WHEN k.kind = 'failed' THEN failure_code ELSE '' END, 0, count(*), sum(amount_minor) "
            "FROM payments_payment p "
            "CROSS JOIN (VALUES ('created'), ('succeeded'), ('failed'), ('reversed')) AS k(kind) "
            "WHERE merchant_id = %s AND (k.kind = 'created' OR (k.kind = 'succeeded' AND "
            "p.status IN ('succeeded', 'partially_refunded', 'refunded', 'reversed')) OR "
            "(k.kind = 'failed' AND p.status = 'failed') OR (k.kind = 'reversed' AND p.status = 'reversed')) "
            "GROUP BY 1, 2, 3, 4, 5, 6",
            [merchant.pk],
        )

    # Events: set-based, for the most recent 5 % (the timeline of the detail page is added below).
    recent_from = origin + step * int(n * 0.95)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO payments_event (public_id, merchant_id, type, payment_id, batch_id, data, actor, "
            "created_at) SELECT 'evt_' || md5(id::text || %s), merchant_id, 'payment.' || status, id, "
            "batch_id, '{}'::jsonb, 'gateway:sandbox', created_at + interval '3 seconds' "
            "FROM payments_payment "
            "WHERE merchant_id = %s AND created_at >= %s",
            [secrets.token_hex(8), merchant.pk, recent_from],
        )
        events = cursor.rowcount
    detail = (
        Payment.objects.filter(merchant=merchant, batch=None, status="succeeded", created_at__lt=recent_from)
        .order_by("-created_at")
        .only("pk", "created_at")
        .first()
    )
    timeline = ["payment.created", "payment.processing", "payment.succeeded"]
    Event.objects.bulk_create(
        Event(merchant=merchant, payment_id=detail.pk, type=t, actor="system", data={}) for t in timeline
    )
    Event.objects.filter(payment_id=detail.pk).update(created_at=detail.created_at)

    # The in-app feed: one notification per 100 payments, most of them read.
    feed = max(10, n // 100)
    Notification.objects.bulk_create(
        (
            Notification(
                merchant=merchant,
                user=operator if k % 3 else None,
                level="danger" if k % 5 == 0 else "success",
                title=f"Payment ORD-{k:08d} failed" if k % 5 == 0 else f"Batch Payroll {k} completed",
                body="The beneficiary's bank declined it.",
                link="/",
                read_at=None if k % 10 == 0 else now,
            )
            for k in range(feed)
        ),
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE payments_notification SET created_at = %s - (id * interval '1 minute') "
            "WHERE merchant_id = %s",
            [now, merchant.pk],
        )
    loaded = time.perf_counter() - started
    vacuum_started = time.perf_counter()
    with connection.cursor() as cursor:
        for table in (
            "payments_payment",
            "payments_paymentbatch",
            "payments_event",
            "payments_notification",
            "payments_paymentdailystat",
        ):
            cursor.execute(f"VACUUM ANALYZE {table}")
    cmd.stdout.write(
        f"Seeded {n:,} payments ({n / copy_seconds:,.0f} rows/s by COPY), {len(batches)} completed batches, "
        f"{events + len(timeline):,} events, {feed:,} notifications in {loaded:.1f} s; "
        f"VACUUM ANALYZE {time.perf_counter() - vacuum_started:.1f} s"
    )


# Measuring -------------------------------------------------------------------------------------

LIST_FIELDS = (
    "public_id",
    "reference",
    "beneficiary_name",
    "beneficiary_account",
    "amount_minor",
    "currency",
    "method",
    "status",
    "failure_code",
    "created_at",
)
ROWS_TEMPLATE = "{% for r in rows %}<tr>{% for v in r.values %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}"
ONE_TEMPLATE = (
    "<dl>{% for k, v in row.items %}<dt>{{ k }}</dt><dd>{{ v }}</dd>{% endfor %}</dl>" + ROWS_TEMPLATE
)


class _Page:
    def __init__(self, label: str, url: str, baseline) -> None:
        self.label, self.url, self.baseline = label, url, baseline
        self.ours: list[float] = []
        self.base: list[float] = []


def _pages(merchant, operator) -> list[_Page]:
    """The measured pages, each with the minimal query for what it shows, rendered trivially."""
    from django.db.models import Count, Q
    from django.template import Context, Engine
    from django.urls import reverse

    from payments.models import Event, Notification, Payment, PaymentBatch

    engine = Engine.get_default()
    rows_tpl, one_tpl = engine.from_string(ROWS_TEMPLATE), engine.from_string(ONE_TEMPLATE)
    payments = Payment.objects.filter(merchant_id=merchant.pk)
    n = payments.count()
    detail = (
        Event.objects.filter(merchant_id=merchant.pk, type="payment.created").values("payment_id").first()
    )
    detail = payments.values("id", "public_id", "reference").get(pk=detail["payment_id"])
    batch = PaymentBatch.objects.filter(merchant_id=merchant.pk).order_by("-row_count").first()
    deep = max(2, min(2000, n // 25 // 2))

    def rows(qs) -> str:
        return rows_tpl.render(Context({"rows": list(qs)}))

    def recent(qs, page: int = 1, size: int = 25):
        return qs.order_by("-created_at", "-id").values(*LIST_FIELDS)[(page - 1) * size : page * size]

    def payment_detail() -> str:
        row = payments.filter(public_id=detail["public_id"]).values().get()
        events = Event.objects.filter(payment_id=row["id"]).order_by("created_at", "id")
        return one_tpl.render(
            Context({"row": row, "rows": list(events.values("type", "created_at", "actor"))})
        )

    def batch_detail() -> str:
        row = PaymentBatch.objects.filter(merchant_id=merchant.pk, public_id=batch.public_id).values().get()
        counts = (
            Payment.objects.filter(batch_id=row["id"]).values("status").annotate(n=Count("id")).order_by()
        )
        return one_tpl.render(Context({"row": row, "rows": list(counts)}))

    batch_fields = ("public_id", "name", "file_name", "source_format", "row_count", "valid_count")
    batch_fields += ("error_count", "totals", "status", "created_at")
    feed = Notification.objects.filter(Q(user=operator) | Q(user=None), merchant_id=merchant.pk)
    from django.db.models import Sum
    from django.utils import timezone

    from payments.models import PaymentDailyStat

    def home(days: int):
        def run() -> str:
            start = timezone.localdate() - timedelta(days=days - 1)
            stats = (
                PaymentDailyStat.objects.filter(merchant_id=merchant.pk, day__gte=start)
                .values("day", "currency", "method", "kind", "failure_code")
                .annotate(n=Sum("count"), amount=Sum("amount_minor"))
                .order_by()
            )
            return rows(stats)

        return run

    def export() -> str:
        import csv
        import io

        out = io.StringIO()
        writer = csv.writer(out)
        total = 0
        for row in (
            payments.order_by("-created_at", "-id").values_list(*LIST_FIELDS).iterator(chunk_size=2000)
        ):
            writer.writerow(row)
            total += 1
            if out.tell() > 1 << 16:
                out.seek(0)
                out.truncate()
        return str(total)

    def export_xlsx(qs):
        # The minimal XLSX of the same rows: openpyxl's write-only workbook to a temporary file.
        import tempfile

        from openpyxl import Workbook

        def run() -> str:
            workbook = Workbook(write_only=True)
            sheet = workbook.create_sheet()
            rows = qs.order_by("-created_at", "-id").values_list(*LIST_FIELDS).iterator(chunk_size=2000)
            for row in rows:  # Excel has no time zones: created_at (last) goes naive, in UTC
                sheet.append((*row[:-1], row[-1].replace(tzinfo=None)))
            with tempfile.TemporaryFile() as spool:
                workbook.save(spool)
                return str(spool.tell())

        return run

    return [
        _Page("home, 7 days", reverse("dashboard:home") + "?window=7d", home(7)),
        _Page("home, 30 days", reverse("dashboard:home") + "?window=30d", home(30)),
        _Page(
            "export CSV, status=failed",
            reverse("dashboard:payment_export_csv") + "?status=failed&unapproved=on",
            lambda: rows(
                payments.filter(status="failed").order_by("-created_at", "-id").values(*LIST_FIELDS)
            ),
        ),
        _Page("export CSV, all payments", reverse("dashboard:payment_export_csv") + "?unapproved=on", export),
        _Page(
            "export XLSX, status=failed",
            reverse("dashboard:payment_export_xlsx") + "?status=failed&unapproved=on",
            export_xlsx(payments.filter(status="failed")),
        ),
        _Page(
            "export XLSX, all payments",
            reverse("dashboard:payment_export_xlsx") + "?unapproved=on",
            export_xlsx(payments),
        ),
        _Page("payment list, page 1", reverse("dashboard:payment_list"), lambda: rows(recent(payments))),
        _Page(
            "payment list, status=failed",
            reverse("dashboard:payment_list") + "?status=failed",
            lambda: rows(recent(payments.filter(status="failed"))),
        ),
        _Page(
            "payment list, search by reference",
            reverse("dashboard:payment_list") + f"?reference={detail['reference']}",
            lambda: rows(recent(payments.filter(reference=detail["reference"]))),
        ),
        _Page(
            f"payment list, page {deep:,}",
            reverse("dashboard:payment_list") + f"?page={deep}",
            lambda: rows(recent(payments, deep)),
        ),
        _Page(
            "payment detail", reverse("dashboard:payment_detail", args=[detail["public_id"]]), payment_detail
        ),
        _Page(
            "batch list, page 1",
            reverse("dashboard:batch_list"),
            lambda: rows(
                PaymentBatch.objects.filter(merchant_id=merchant.pk)
                .order_by("-created_at", "-id")
                .values(*batch_fields)[:25]
            ),
        ),
        _Page(
            f"batch detail ({batch.row_count:,} payments)",
            reverse("dashboard:batch_detail", args=[batch.public_id]),
            batch_detail,
        ),
        _Page(
            "batch payments, page 1",
            reverse("dashboard:batch_payments", args=[batch.public_id]),
            lambda: rows(Payment.objects.filter(batch_id=batch.pk).order_by("pk").values(*LIST_FIELDS)[:50]),
        ),
        _Page(
            "notifications",
            reverse("dashboard:notification_list"),
            lambda: rows(feed.order_by("-created_at", "-id").values("title", "body", "created_at")[:30]),
        ),
    ]


def _measure_step(cmd, options) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from merchants.models import Merchant

    if connection.vendor != "postgresql":
        raise RuntimeError("the dashboard benchmark measures PostgreSQL")
    merchant = Merchant.objects.filter(slug=SLUG).first()
    if merchant is None:
        _seed(cmd, options["payments"])
        merchant = Merchant.objects.get(slug=SLUG)
    operator = get_user_model().objects.get(username=OPERATOR)
    client = Client()
    client.force_login(operator)
    pages = _pages(merchant, operator)

    def get(page: _Page) -> float:
        started = time.perf_counter()
        response = client.get(page.url, secure=True)
        if response.streaming:  # an export: the time is the whole stream's
            for _chunk in response.streaming_content:
                pass
        seconds = time.perf_counter() - started
        if response.status_code != 200:
            raise RuntimeError(f"{page.url} answered {response.status_code}: {response.content[:300]!r}")
        return seconds * 1000

    def base(page: _Page) -> float:
        started = time.perf_counter()
        page.baseline()
        return (time.perf_counter() - started) * 1000

    rounds = max(1, options["rounds"])
    cmd.stdout.write(
        f"{len(pages)} pages, Django test client in-process, PostgreSQL, DEBUG off; "
        f"median of {rounds} round(s) after a warm-up; time in ms, lower is better"
    )
    for page in pages:  # warm-up: imports, templates, caches, the database's buffers
        get(page), base(page), get(page), base(page)
    for _ in range(rounds):
        for page in pages:
            page.ours.append(get(page))
            page.base.append(base(page))
    results = []
    for page in pages:
        sql_seconds = [0.0]

        def timed(execute, sql, params, many, context, sql_seconds=sql_seconds):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                sql_seconds[0] += time.perf_counter() - started

        with CaptureQueriesContext(connection) as ours_sql, connection.execute_wrapper(timed):
            get(page)
        with CaptureQueriesContext(connection) as base_sql:
            page.baseline()
        ours, baseline = statistics.median(page.ours), statistics.median(page.base)
        sql_ms = sql_seconds[0] * 1000
        results.append((page.label, ours, baseline))
        cmd.stdout.write(
            ratio_line(page.label, ours, baseline, "ms", higher_is_better=False)
            + f" | SQL {len(ours_sql)} queries {sql_ms:.1f} ms vs {len(base_sql)}"
        )
    slowest = max(results, key=lambda r: r[1])
    costliest = max(results, key=lambda r: r[1] / r[2])
    cmd.stdout.write(
        f"dashboard: {merchant.payments.count():,} payments, {len(pages)} pages; "
        f"slowest {slowest[0]} {slowest[1]:.1f} ms = {slowest[1] / slowest[2]:.1f}x its minimal query; "
        f"highest ratio {costliest[0]} {costliest[1] / costliest[2]:.1f}x; "
        f"median page {statistics.median(r[1] for r in results):.1f} ms"
    )
