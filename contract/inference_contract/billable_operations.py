"""Counts of the billable cloud operations this process asked for, by operation.

What a prediction costs is what it asks of the managed services: Firestore
document reads, writes and deletes, Cloud Storage operations by class, Pub/Sub
messages and bytes. Each adapter counts here what it asks of its service, at the
place where it asks; each unit shows the counts at GET /metrics as
`inference_billable_operations_total{operation=...}`, so a benchmark reads what
a run cost from the services themselves (on the emulators as in the cloud)
instead of from the code.

How each service bills (the operation names below):
- Firestore: one read per document returned (a query that returns nothing still
  bills one read), one write per document written (a transform such as
  Increment is part of its write), one delete per document deleted.
- Cloud Storage: class A (insert, list, compose, copy, patch, rewrite) and class B
  (get, get metadata); deletes are free and not counted.
- Pub/Sub: messages published, and their billable bytes (data plus attributes,
  each message billed at 1 KB or more: see https://cloud.google.com/pubsub/pricing).
"""

from __future__ import annotations

import threading
from collections import Counter

from prometheus_client.core import CounterMetricFamily

FIRESTORE_READ = "firestore_read"
FIRESTORE_WRITE = "firestore_write"
FIRESTORE_DELETE = "firestore_delete"
STORAGE_CLASS_A = "storage_class_a"
STORAGE_CLASS_B = "storage_class_b"
PUBSUB_MESSAGE = "pubsub_message"
PUBSUB_BYTES = "pubsub_billable_bytes"
OPERATIONS = (FIRESTORE_READ, FIRESTORE_WRITE, FIRESTORE_DELETE, STORAGE_CLASS_A, STORAGE_CLASS_B,
              PUBSUB_MESSAGE, PUBSUB_BYTES)

# Pub/Sub bills each publish request at 1,000 bytes or more.
PUBSUB_MINIMUM_BILLED_BYTES = 1000
METRIC = "inference_billable_operations"


class OperationCounts:
    """Thread-safe running totals, one per operation name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def count(self, operation: str, n: int = 1) -> None:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown billable operation {operation!r}; expected one of {OPERATIONS}")
        if n:
            with self._lock:
                self._counts[operation] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {operation: self._counts.get(operation, 0) for operation in OPERATIONS}


# The process's own totals: adapters count here, /metrics shows them.
COUNTS = OperationCounts()


def count(operation: str, n: int = 1) -> None:
    """Record n billable operations of this process."""
    COUNTS.count(operation, n)


def count_publish(data: bytes, attributes: dict[str, str]) -> None:
    """One published message and the bytes Pub/Sub bills for it."""
    size = len(data) + sum(len(key.encode()) + len(value.encode()) for key, value in attributes.items())
    count(PUBSUB_MESSAGE)
    count(PUBSUB_BYTES, max(size, PUBSUB_MINIMUM_BILLED_BYTES))


class BillableOperationsCollector:
    """A Prometheus collector of a process's totals; each unit registers one in its /metrics registry."""

    def __init__(self, counts: OperationCounts = COUNTS) -> None:
        self._counts = counts

    def collect(self):
        family = CounterMetricFamily(
            METRIC, "Billable operations this process asked of Firestore, Cloud Storage and Pub/Sub.",
            labels=["operation"])
        for operation, total in self._counts.snapshot().items():
            family.add_metric([operation], total)
        yield family
