"""Schemathesis hooks for .ci/schemathesis (loaded through SCHEMATHESIS_HOOKS).

Idempotency keys: the API refuses an Idempotency-Key reused with a different request (422), a
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


@schemathesis.hook
def filter_case(context, case):
    """Drop negative multipart cases that are negative only before encoding.

    A multipart field other than the file is text on the wire: a generated
    array, number, object or null in the string field `name` arrives as its
    JSON text, a valid name, so "accepted a schema-violating request" would be
    a false positive (schemathesis/schemathesis#4040). Negative cases that
    stay negative on the wire (a missing or oversized field, a bad file) are
    kept.
    """
    if case.media_type != "multipart/form-data" or not isinstance(case.body, dict):
        return True
    if case.meta is None or case.meta.generation.mode.is_positive:
        return True
    return all(isinstance(value, str | bytes) for name, value in case.body.items() if name != "file")
