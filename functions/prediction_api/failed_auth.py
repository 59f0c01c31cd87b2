"""Failed API key attempts, limited per client address, so that a flood of made-up keys
cannot turn into a flood of key-store (Firestore) reads.

Only failures are counted, and only a lookup the store would have to answer is
refused: a key this instance has already seen succeed is always looked up, so an
attacker sharing a real client's address (or spraying guesses at its key id)
cannot lock that key out. See Authenticator.authenticate.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from .errors import TooManyRequests


def client_group(address: str | None) -> str:
    """What one client is: its IPv4 address, or its IPv6 /64 (a host gets a whole /64)."""
    try:
        parsed = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return address or "-"
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class FailureLimiter:
    """A token bucket per client: per_minute failed attempts, refilled continuously.

    At most max_clients buckets are kept (the least recently touched go first), so
    the table stays bounded whatever the number of addresses.
    """

    def __init__(self, per_minute: int, max_clients: int = 10_000,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._capacity = float(per_minute)
        self._per_second = per_minute / 60.0
        self._max_clients = max_clients
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # client -> (tokens, at)
        self._lock = threading.Lock()

    def _tokens(self, client: str, now: float) -> float:
        tokens, at = self._buckets.get(client, (self._capacity, now))
        return min(self._capacity, tokens + (now - at) * self._per_second)

    def check(self, address: str | None) -> None:
        """Raise TooManyRequests when this client has no failed attempt left."""
        client, now = client_group(address), self._monotonic()
        with self._lock:
            tokens = self._tokens(client, now)
        if tokens < 1.0:
            retry_after = max(1, math.ceil((1.0 - tokens) / self._per_second))
            raise TooManyRequests(
                f"too many requests with unknown or revoked API keys from this address; retry in "
                f"{retry_after} s", retry_after_seconds=retry_after)

    def failed(self, address: str | None) -> None:
        client, now = client_group(address), self._monotonic()
        with self._lock:
            self._buckets[client] = (max(0.0, self._tokens(client, now) - 1.0), now)
            self._buckets.move_to_end(client)
            while len(self._buckets) > self._max_clients:
                self._buckets.popitem(last=False)
