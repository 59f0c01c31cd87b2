"""Schemathesis hooks for the fuzzing in test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

Every other generated request that carries a callback_url (query or multipart field),
or image_url fields, gets one of the malformed authorities of tests/callback_urls.py instead, in turn:
urlsplit() can't take them, and the API must answer with a documented 400, never a
500. (Schemathesis drops generated values that are not valid URIs, so a custom
`format: uri` strategy would never send them.)
"""

from __future__ import annotations

import itertools

import schemathesis

from tests.callback_urls import MALFORMED

_turns = itertools.cycle([*MALFORMED, None] if len(MALFORMED) % 2 else [*MALFORMED, None, None])
_replacements = itertools.cycle([True, False])


def _takes_a_malformed_url(values) -> bool:
    return isinstance(values, dict) and bool(values.get("callback_url")) and next(_replacements)


@schemathesis.hook
def map_case(context, case):
    # Only what is replaced is assigned: Schemathesis tracks which parts a hook changed.
    if _takes_a_malformed_url(case.query):
        case.query = {**case.query, "callback_url": next(_turns) or MALFORMED[0]}
    if _takes_a_malformed_url(case.body):
        case.body = {**case.body, "callback_url": next(_turns) or MALFORMED[0]}
    # image_url fields too: the API splits them as it does callbacks (image_sources.py).
    if isinstance(case.body, dict) and case.body.get("image_url") and next(_replacements):
        case.body = {**case.body, "image_url": [next(_turns) or MALFORMED[0]]}
    return case
