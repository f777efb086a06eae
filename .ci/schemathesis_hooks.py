"""Schemathesis hooks for .ci/schemathesis (loaded through SCHEMATHESIS_HOOKS).

The API refuses an Idempotency-Key reused with a different request (422), a
rule about state that no schema can express: the fuzzer would otherwise reuse
short generated keys such as "0" across unrelated requests. A valid generated
key of a positive case gets a unique prefix, as a real client's fresh key;
negative cases (an invalid key, a missing Authorization header, ...) are sent
as generated, since an edited case is re-validated and could lose its
negative part.
"""

import re
import uuid

import schemathesis

VALID_KEY = re.compile(r"[!-~]([ -~]*[!-~])?")


@schemathesis.hook
def before_call(context, case, kwargs):
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    headers = case.headers or {}
    for name in list(headers):
        if name.lower() != "idempotency-key":
            continue
        value = headers[name]
        if isinstance(value, str) and len(value) <= 255 and VALID_KEY.fullmatch(value):
            headers[name] = (uuid.uuid4().hex + "-" + value)[:255].rstrip()
