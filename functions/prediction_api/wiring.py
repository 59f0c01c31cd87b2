"""Builds the apps with real Google Cloud clients. The only module that creates them."""

from __future__ import annotations

from flask import Flask
from inference_contract.logs import configure_logging

from .adapters import (
    FirestoreIdempotencyStore,
    FirestoreKeyStore,
    FirestorePredictionStore,
    GcsUploadStore,
    PubSubPublisher,
)
from .app import create_api_app, create_dead_letter_app, create_reconcile_app
from .auth import Authenticator, FileKeyStore
from .config import Settings
from .failed_auth import FailureLimiter
from .gcs_sources import GcsImageReader
from .image_sources import ImageSources
from .job_storage import GcsJobStorage
from .job_store import FirestoreJobStore, JobPublisher
from .jobs import JobService
from .metrics import ApiMetrics
from .service import PredictionService, utcnow


def build_service(settings: Settings, metrics: ApiMetrics | None = None) -> PredictionService:
    from google.cloud import firestore, pubsub_v1, storage

    firestore_client = firestore.Client(project=settings.project)
    return PredictionService(
        settings,
        uploads=GcsUploadStore(storage.Client(project=settings.project), settings.uploads_bucket),
        store=FirestorePredictionStore(firestore_client),
        # Each publish waits for its ack before the request answers, so batching
        # (by default up to 10 ms) only adds latency: send every message at once.
        publisher=PubSubPublisher(
            pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)),
            settings.project),
        idempotency=FirestoreIdempotencyStore(firestore_client),
        on_step=metrics.observe_submit_step if metrics else None,
    )


def build_jobs(settings: Settings, service: PredictionService) -> JobService:
    """Bulk jobs: their documents in Firestore, inputs and outputs in the user's buckets (read and
    written with the API's own identity), shard messages on each model's jobs topic."""
    from google.cloud import firestore, pubsub_v1, storage

    return JobService(
        settings, FirestoreJobStore(firestore.Client(project=settings.project)),
        GcsJobStorage(storage.Client(project=settings.project), settings.service_account_email),
        JobPublisher(pubsub_v1.PublisherClient(), settings.project),
        clock=utcnow, check_callback_url=service.check_callback_url)


def build_image_sources(settings: Settings) -> ImageSources:
    """image_url: http(s) fetched by the API, gs:// read with its own identity."""
    from google.cloud import storage

    return ImageSources(settings, GcsImageReader(storage.Client(project=settings.project),
                                                 settings.service_account_email))


def build_authenticator(settings: Settings) -> Authenticator | None:
    """Keys from API_KEYS_FILE (the local stack) or Firestore; None when AUTH_REQUIRED=false."""
    if not settings.auth_required:
        return None
    if settings.api_keys_file:
        store = FileKeyStore(settings.api_keys_file)
    else:
        from google.cloud import firestore

        store = FirestoreKeyStore(firestore.Client(project=settings.project))
    return Authenticator(store, cache_seconds=settings.api_key_cache_seconds,
                         negative_cache_seconds=settings.api_key_negative_cache_seconds,
                         failures=FailureLimiter(settings.auth_failures_per_minute))


def build_api_app() -> Flask:
    configure_logging()
    settings = Settings.from_env()
    metrics = ApiMetrics() if settings.expose_metrics else None
    service = build_service(settings, metrics)
    return create_api_app(service, build_authenticator(settings), metrics=metrics,
                          image_sources=build_image_sources(settings), jobs=build_jobs(settings, service))


def build_dead_letter_app() -> Flask:
    configure_logging()
    return create_dead_letter_app(build_service(Settings.from_env()))


def build_reconcile_app() -> Flask:
    configure_logging()
    settings = Settings.from_env()
    service = build_service(settings)
    return create_reconcile_app(service, jobs=build_jobs(settings, service))
