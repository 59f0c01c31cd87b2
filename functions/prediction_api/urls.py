"""URLs a user sends, split inside the validation that answers 400.

urlsplit() raises ValueError on a malformed authority (an unclosed "[", an IPv4
address in brackets, a host that changes under NFKC normalisation), and the
`port` property does on a port out of range; `hostname` and the credentials are
computed lazily too. Reading every part here turns each of those into an
InvalidRequest naming the field, never a 500 from further in.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

from .errors import InvalidRequest


def split_url(url: str, field: str) -> SplitResult:
    """url split into its parts, every lazily computed part already read."""
    try:
        parts = urlsplit(url)
        _ = parts.hostname, parts.port, parts.username, parts.password
    except ValueError as exc:
        raise InvalidRequest(f"{field} is not a valid URL: {exc}") from None
    return parts
