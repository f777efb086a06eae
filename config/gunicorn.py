"""Gunicorn settings for PayDesk: `gunicorn -c config/gunicorn.py -b 0.0.0.0:8000`.

The worker is gunicorn's gthread worker, except that a request gunicorn
refuses for its size (a request line or header section over the limits below)
is answered as PayDesk answers it itself: problem details with the codes
`uri_too_long` (414) and `request_header_fields_too_large` (431), not
gunicorn's HTML page (payments/api/request_limits.py). The limits sit above
PayDesk's own (PAYDESK_MAX_URI_BYTES 8000, PAYDESK_MAX_HEADER_BYTES 16384,
PAYDESK_MAX_HEADER_FIELDS 100), so that PayDesk answers whatever gunicorn can
parse and gunicorn only what it cannot.
"""

from gunicorn import util
from gunicorn.http.errors import LimitRequestHeaders, LimitRequestLine
from gunicorn.workers.gthread import ThreadWorker

from payments.api.problem_json import PROBLEM_CONTENT_TYPE
from payments.api.request_limits import HEADERS_TOO_LARGE, URI_TOO_LONG, oversized_problem

# RFC 9110's reason phrases.
REASONS = {URI_TOO_LONG: "URI Too Long", HEADERS_TOO_LARGE: "Request Header Fields Too Large"}
wsgi_app = "config.wsgi:application"
worker_class = "config.gunicorn.ProblemThreadWorker"
# gthread: a request waiting for its gateway holds a thread, not a process (docs/operations.md).
workers = 2
threads = 32
# The request line: method, URI and version. 8190 is gunicorn's maximum.
limit_request_line = 8190
limit_request_fields = 128
limit_request_field_size = 20480


def oversized_response(status_code: int) -> bytes:
    """The whole HTTP answer of a refused oversized request; the connection is closed after it."""
    body = oversized_problem(status_code)
    head = (
        f"HTTP/1.1 {status_code} {REASONS[status_code]}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("latin-1") + body


class ProblemThreadWorker(ThreadWorker):
    """gunicorn's gthread worker, answering oversized requests with PayDesk's problem details."""

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, LimitRequestLine):
            status_code = URI_TOO_LONG
        elif isinstance(exc, LimitRequestHeaders):
            status_code = HEADERS_TOO_LARGE
        else:
            return super().handle_error(req, client, addr, exc)
        ip = (addr or ("",))[0]
        self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        try:
            util.write_nonblock(client, oversized_response(status_code))
        except OSError as error:
            # The client may be gone already; as gunicorn does, note it and close.
            self.log.debug("Failed to send error message: %s", error)
        return None
