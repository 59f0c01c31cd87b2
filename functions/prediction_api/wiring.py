"""Builds the apps with real Google Cloud clients. The only module that creates them."""

from __future__ import annotations

from flask import Flask

from .adapters import FirestorePredictionStore, GcsUploadStore, PubSubPublisher
from .app import create_api_app, create_dead_letter_app, create_reconcile_app
from .config import Settings
from .logs import configure_logging
from .service import PredictionService


def build_service(settings: Settings) -> PredictionService:
    from google.cloud import firestore, pubsub_v1, storage

    return PredictionService(
        settings,
        uploads=GcsUploadStore(storage.Client(project=settings.project), settings.uploads_bucket),
        store=FirestorePredictionStore(firestore.Client(project=settings.project)),
        # Each publish waits for its ack before the request answers, so batching
        # (by default up to 10 ms) only adds latency: send every message at once.
        publisher=PubSubPublisher(
            pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)),
            settings.project),
    )


def build_api_app() -> Flask:
    configure_logging()
    return create_api_app(build_service(Settings.from_env()))


def build_dead_letter_app() -> Flask:
    configure_logging()
    return create_dead_letter_app(build_service(Settings.from_env()))


def build_reconcile_app() -> Flask:
    configure_logging()
    return create_reconcile_app(build_service(Settings.from_env()))
