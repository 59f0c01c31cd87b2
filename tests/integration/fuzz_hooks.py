"""Schemathesis hooks for the fuzzing in test_openapi.py (loaded through SCHEMATHESIS_HOOKS).

A `format: uri` value (the callback_url parameter and form field) is drawn half of the
time from the class of malformed authorities in tests/callback_urls.py, which urlsplit()
can't take: the API must answer them with a documented 400, never a 500.
"""

from __future__ import annotations

import schemathesis
from hypothesis import strategies as st

from tests.callback_urls import malformed_callback_urls

schemathesis.openapi.format("uri", st.one_of(
    malformed_callback_urls,
    st.sampled_from(["http://127.0.0.1:9/hook", "https://localhost/done", "https://cb.example/x"]),
))
