"""Callback URLs whose authority urlsplit() can't take: each must be a 400, never a 500.

Shared by the unit tests, the integration tests on the stack, and the Schemathesis
fuzzing (tests/integration/fuzz_hooks.py draws from the same class).
"""

from __future__ import annotations

from hypothesis import strategies as st

MALFORMED = [
    "http://[::1/",                     # unclosed IPv6 bracket
    "http://[169.254.169.254]/",        # an IPv4 address in brackets
    "https://[169.254.169.254]:443/x",
    "http://[::1]:99999/hook",          # port out of range
    "http://[::1]:-1/hook",
    "http://cb.example:port/hook",      # port not a number
    "http://]/hook",
    "http://a@[x/hook",                 # unclosed bracket after credentials
    "http://[10.0.0.1/",
    "http://\u2100/hook",               # changes under NFKC normalisation (℀ -> a/c)
    "http://ex\uff03ample/hook",        # fullwidth '#' under NFKC
]

_hostish = st.from_regex(r"[0-9a-fA-F:.%]{0,16}", fullmatch=True)
_ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda parts: ".".join(map(str, parts)))

malformed_authorities = st.one_of(
    _hostish.map(lambda host: f"[{host}"),                          # never closed
    _ipv4.map(lambda address: f"[{address}]"),                      # IPv4 in brackets
    st.tuples(_hostish, st.integers(65536, 10**8)).map(lambda hp: f"{hp[0] or 'h'}:{hp[1]}"),
    st.from_regex(r"[a-z]{1,8}:[a-z!*]{1,4}", fullmatch=True),      # port not a number
    st.tuples(st.from_regex(r"[a-z]{0,6}", fullmatch=True), _hostish).map(lambda uh: f"{uh[0]}@[{uh[1]}"),
    st.sampled_from(["\u2100", "ex\uff03ample", "ex\uff0fample", "\uff20x"]),  # NFKC changes them
)

malformed_callback_urls = st.builds("{}://{}{}".format, st.sampled_from(["http", "https"]),
                                    malformed_authorities, st.sampled_from(["", "/", "/hook?x=1"]))
