"""The RFC 9457 problem body itself, with no Django import.

payments/api/problems.py builds every API error with it; the gunicorn worker
of config/gunicorn.py uses it too, for the requests gunicorn refuses before
Django sees them (an oversized request line or header section), so that
those answers have the same shape, type and code as the API's own.
"""

from __future__ import annotations

import json

PROBLEM_TYPE = "https://paydesk.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_body(
    status_code: int, code: str, detail: str, *, title: str | None = None, errors: list | None = None
) -> dict:
    body = {
        "type": PROBLEM_TYPE + code,
        "title": title or code.replace("_", " ").capitalize(),
        "status": status_code,
        "code": code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return body


def problem_bytes(status_code: int, code: str, detail: str, *, title: str | None = None) -> bytes:
    """The problem as the compact UTF-8 JSON every PayDesk problem answer carries."""
    body = problem_body(status_code, code, detail, title=title)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
