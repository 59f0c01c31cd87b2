"""API keys and their quotas.

A key reads `ik_<key id>_<secret>`. Only its SHA-256 is stored (the secret is 256
random bits, so a fast hash is enough: there is nothing to guess), with its id,
name, quota and revocation. The id is what a prediction records as its owner;
the secret never leaves the client.

Quotas are counted per API instance, in memory (a token bucket per key): see
README, "API keys and quotas", for why not globally.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import re
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from .errors import TooManyRequests, Unauthorized
from .failed_auth import FailureLimiter

KEY_PATTERN = re.compile(r"^ik_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
DEFAULT_RATE_PER_MINUTE = 60


class KeyStore(Protocol):
    def get(self, key_id: str) -> dict | None: ...
    def put(self, record: dict) -> None: ...
    def all(self) -> list[dict]: ...


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    rate_per_minute: int


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def new_key(name: str, rate_per_minute: int = DEFAULT_RATE_PER_MINUTE,
            now: datetime | None = None) -> tuple[str, dict]:
    """A fresh key: its plaintext (shown once) and the record to store."""
    if rate_per_minute < 1:
        raise ValueError("rate_per_minute must be >= 1")
    key_id = secrets.token_hex(6)
    plaintext = f"ik_{key_id}_{secrets.token_urlsafe(32)}"
    record = {"id": key_id, "name": name, "hash": hash_key(plaintext),
              "rate_per_minute": int(rate_per_minute),
              "created_at": (now or datetime.now(UTC)).isoformat(), "revoked_at": None}
    return plaintext, record


def revoke(store: KeyStore, key_id: str, now: datetime | None = None) -> dict:
    record = store.get(key_id)
    if record is None:
        raise KeyError(key_id)
    record = {**record, "revoked_at": (now or datetime.now(UTC)).isoformat()}
    store.put(record)
    return record


class Authenticator:
    """Checks an X-API-Key header against the store; known keys are cached for cache_seconds.

    A revoked key therefore stops working within cache_seconds on every instance.
    An unknown id is cached too, for negative_cache_seconds only (a key created a
    moment ago works after that), in a table of at most negative_cache_size ids; and
    with a FailureLimiter, a client past its failed attempts gets no further store
    reads, except for ids this instance has seen succeed (see failed_auth.py).
    """

    def __init__(self, store: KeyStore, cache_seconds: float = 30.0,
                 monotonic: Callable[[], float] = time.monotonic,
                 negative_cache_seconds: float = 10.0, negative_cache_size: int = 10_000,
                 failures: FailureLimiter | None = None) -> None:
        self._store = store
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, dict | None]] = {}
        self._negative_seconds = negative_cache_seconds
        self._negative_size = negative_cache_size
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key id -> when the store said unknown
        self._succeeded: set[str] = set()  # ids of real keys: bounded by the store's size
        self._failures = failures
        self._lock = threading.Lock()

    def _cached(self, key_id: str, now: float) -> tuple[bool, dict | None]:
        with self._lock:
            cached = self._cache.get(key_id)
            if cached and now - cached[0] < self._cache_seconds:
                return True, cached[1]
            unknown_at = self._unknown.get(key_id)
            if unknown_at is not None and now - unknown_at < self._negative_seconds:
                return True, None
        return False, None

    def _record(self, key_id: str, client: str | None) -> dict | None:
        now = self._monotonic()
        hit, record = self._cached(key_id, now)
        if hit:
            return record
        if self._failures is not None and key_id not in self._succeeded:
            self._failures.check(client)
        record = self._store.get(key_id)
        with self._lock:
            if record is not None:
                self._cache[key_id] = (now, record)
            elif self._negative_seconds > 0:
                self._unknown[key_id] = now
                self._unknown.move_to_end(key_id)
                while len(self._unknown) > self._negative_size:
                    self._unknown.popitem(last=False)
        return record

    def authenticate(self, header: str | None, client: str | None = None) -> ApiKey:
        """The key the header holds; client is the caller's address, for the failure limit.

        Only a well-formed key that fails counts against it: a missing or malformed
        header is refused without asking the store, so it costs nothing to limit.
        """
        if not header:
            raise Unauthorized("an API key is required: send it in the X-API-Key header")
        match = KEY_PATTERN.match(header.strip())
        if not match:
            raise Unauthorized("the X-API-Key header does not hold a valid API key")
        record = self._record(match.group(1), client)
        if (record is None or not hmac.compare_digest(record.get("hash", ""), hash_key(header.strip()))
                or record.get("revoked_at")):
            if self._failures is not None:
                self._failures.failed(client)
            raise Unauthorized("the API key is unknown or revoked")
        with self._lock:
            self._succeeded.add(record["id"])
        return ApiKey(record["id"], record.get("name", ""),
                      int(record.get("rate_per_minute") or DEFAULT_RATE_PER_MINUTE))


class RateLimiter:
    """A token bucket per key, in this process: rate_per_minute requests, refilled continuously."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}  # key id -> (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: ApiKey, cost: int = 1, already_taken: int = 0) -> None:
        """Take cost tokens (a request: 1; a bulk job: its images, of which already_taken were
        taken for its request). A cost over the bucket's size needs a full bucket and leaves it
        in debt, so a big job is accepted and the key waits while the debt is repaid."""
        capacity = float(key.rate_per_minute)
        per_second = capacity / 60.0
        now = self._monotonic()
        with self._lock:
            tokens, at = self._buckets.get(key.id, (capacity, now))
            tokens = min(capacity, tokens + (now - at) * per_second)
            available, needed = tokens + already_taken, min(float(cost), capacity)
            if available >= needed:
                self._buckets[key.id] = (available - cost, now)
                return
            self._buckets[key.id] = (tokens, now)
        retry_after = max(1, math.ceil((needed - available) / per_second))
        what = "requests" if cost == 1 else "images"
        raise TooManyRequests(
            f"this API key allows {key.rate_per_minute} {what} per minute; retry in {retry_after} s",
            retry_after_seconds=retry_after)


class FileKeyStore:
    """Key records in a local JSON file (the local stack's store); re-read when the file changes."""

    def __init__(self, path: Path | str) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._loaded: tuple[float, dict[str, dict]] | None = None

    def _read(self) -> dict[str, dict]:
        try:
            mtime = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        with self._lock:
            if self._loaded and self._loaded[0] == mtime:
                return self._loaded[1]
            keys = json.loads(self._path.read_text() or "{}").get("keys", {})
            self._loaded = (mtime, keys)
            return keys

    def get(self, key_id: str) -> dict | None:
        record = self._read().get(key_id)
        return dict(record) if record else None

    def all(self) -> list[dict]:
        return [dict(r) for r in self._read().values()]

    def put(self, record: dict) -> None:
        keys = dict(self._read())
        keys[record["id"]] = record
        self._path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole and renamed, so a reader never sees half a file; 0600: it holds hashes only,
        # but nobody else on the machine needs them.
        handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=".api_keys.")
        with os.fdopen(handle, "w") as out:
            json.dump({"keys": keys}, out, indent=2, sort_keys=True)
        os.chmod(temporary, 0o600)
        os.replace(temporary, self._path)
