"""Prometheus metrics of the three functions, served at GET /metrics when EXPOSE_METRICS=true.

Each process (api, dead_letter, reconcile) has its own registry and shows its
own figures. In the cloud the same figures come from Cloud Monitoring: Pub/Sub's
own dead-letter and oldest-unacked metrics and log-based metrics on the lines
these functions log (see terraform/modules/monitoring).
"""

from __future__ import annotations

from inference_contract.billable_operations import BillableOperationsCollector
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ApiMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "inference_api_requests", "HTTP requests answered, by route and status.",
            ["method", "route", "status"], registry=self.registry)
        self.request_seconds = Histogram(
            "inference_api_request_seconds", "Seconds to answer an HTTP request (long polls included).",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.accepted = Counter(
            "inference_images_accepted", "Images accepted and queued, by model.", ["model"],
            registry=self.registry)
        self.dead_letters = Counter(
            "inference_dead_letters", "Dead-lettered messages, by model and what was done.",
            ["model", "action"], registry=self.registry)
        self.reconcile_actions = Counter(
            "inference_reconcile_actions", "Reconciler decisions on overdue predictions.", ["action"],
            registry=self.registry)
        self.oldest_queued = Gauge(
            "inference_oldest_queued_age_seconds",
            "Age of the oldest prediction still queued, as of the reconciler's last pass (0: none).",
            registry=self.registry)
        self.submit_step_seconds = Histogram(
            "inference_api_submit_step_seconds",
            "Seconds of each step of accepting an image: upload (while recording), record, publish.",
            ["step"], buckets=LATENCY_BUCKETS, registry=self.registry)
        # What this process asked of Firestore, Cloud Storage and Pub/Sub (a run's cost).
        self.registry.register(BillableOperationsCollector())

    def observe_submit_step(self, step: str, seconds: float) -> None:
        self.submit_step_seconds.labels(step).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
