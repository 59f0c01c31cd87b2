"""Prometheus metrics of the model service, served at GET /metrics.

The same figures reach Cloud Monitoring in the cloud through log-based metrics
on the structured lines this service logs ("batch", "prediction finished"), so
the names here match the dashboard's (see terraform/modules/monitoring).
"""

from __future__ import annotations

from inference_contract.billable_operations import BillableOperationsCollector
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64)


class ServiceMetrics:
    """One registry per service instance, so tests can build as many as they like."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.batch_size = Histogram(
            "inference_batch_size", "Images per model call.", ["model"],
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.model_seconds = Histogram(
            "inference_model_seconds", "Seconds one model call (one batch) took.", ["model"],
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_seconds = Histogram(
            "inference_queue_seconds", "Seconds from acceptance by the API to a model service's claim.",
            ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.end_to_end_seconds = Histogram(
            "inference_end_to_end_seconds", "Seconds from acceptance by the API to the final status.",
            ["model", "status"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.step_seconds = Histogram(
            "inference_service_step_seconds",
            "Seconds of each step a push takes around the model call: claim, image_read (while "
            "claiming), finish.", ["model", "step"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.predictions = Counter(
            "inference_predictions", "Predictions this service finished, by final status.",
            ["model", "status"], registry=self.registry)
        # What this process asked of Firestore, Cloud Storage and Pub/Sub (a run's cost).
        self.registry.register(BillableOperationsCollector())

    def observe_batch(self, model: str, size: int, seconds: float) -> None:
        self.batch_size.labels(model).observe(size)
        self.model_seconds.labels(model).observe(seconds)

    def observe_prediction(self, model: str, status: str, timings: dict) -> None:
        self.predictions.labels(model, status).inc()
        if timings.get("queue_ms") is not None:
            self.queue_seconds.labels(model).observe(timings["queue_ms"] / 1000)
        if timings.get("total_ms") is not None:
            self.end_to_end_seconds.labels(model, status).observe(timings["total_ms"] / 1000)

    def observe_step(self, model: str, step: str, seconds: float) -> None:
        self.step_seconds.labels(model, step).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
