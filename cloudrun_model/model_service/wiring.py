"""Builds the model service with real clients, and loads the model in the background."""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask
from inference_contract.logs import configure_logging

from .app import create_app
from .batcher import MicroBatcher
from .callbacks import HttpCallbackNotifier
from .config import Settings
from .errors import ModelLoadError
from .firestore_runs import FirestoreRunStore
from .gcs_images import GcsImageReader
from .handler import PredictionHandler, utcnow
from .job_handler import ShardHandler
from .job_storage import JobStorage
from .job_store import FirestoreShardStore
from .metrics import ServiceMetrics
from .model import ImageModel
from .open_inference import OpenInference
from .repository import ModelRepository

log = logging.getLogger(__name__)


def build_app() -> Flask:
    configure_logging()
    settings = Settings.from_env()
    from google.cloud import firestore, storage

    storage_client = storage.Client(project=settings.project)
    firestore_client = firestore.Client(project=settings.project)
    store = FirestoreRunStore(firestore_client, use_private_api=settings.use_private_client_api)
    model = ImageModel(ModelRepository(settings.model_repository, storage_client),
                       settings.model_name, settings.model_version, settings.max_image_pixels,
                       threads=settings.model_threads)
    metrics = ServiceMetrics()
    batcher = MicroBatcher(model.predict, settings.max_batch_size, settings.max_batch_delay_ms / 1000,
                           settings.predict_timeout_seconds, settings.model_name,
                           on_batch=lambda size, seconds: metrics.observe_batch(settings.model_name,
                                                                                size, seconds),
                           bulk_batch_size=settings.job_batch_size,
                           concurrent_batches=settings.concurrent_batches)
    notifier = HttpCallbackNotifier(settings.callback_timeout_seconds, settings.callback_signing_secret,
                                    settings.callback_allow_loopback)
    handler = PredictionHandler(
        settings.model_name, model, batcher.predict, store,
        # A connection per request thread: gunicorn.conf.py runs settings.request_threads of them.
        GcsImageReader(storage_client, settings.storage_timeout_seconds, pool_size=settings.request_threads,
                       use_private_api=settings.use_private_client_api),
        notifier, settings.run_lease_seconds,
        settings.model_ready_wait_seconds, metrics=metrics, image_readers=settings.request_threads)
    threading.Thread(target=_load, args=(model, store, settings), name="model-loader",
                     daemon=True).start()
    threading.Thread(target=handler.leases.run_forever, name="lease-keeper", daemon=True).start()
    shards = ShardHandler(
        settings.model_name, model, batcher, FirestoreShardStore(firestore_client),
        JobStorage(storage_client, settings.storage_timeout_seconds, pool_size=settings.job_read_threads,
                   use_private_api=settings.use_private_client_api,
                   allow_loopback=settings.callback_allow_loopback),
        notifier, settings.run_lease_seconds, settings.job_read_threads,
        settings.model_ready_wait_seconds)
    threading.Thread(target=shards.leases.run_forever, name="shard-lease-keeper", daemon=True).start()
    # A v2 request is at most one batch of images, run by the same batcher as the pushes.
    open_inference = OpenInference(settings.model_name, model, batcher.predict_all, settings.max_batch_size)
    return create_app(handler, model, metrics, open_inference, shards)


def _load(model: ImageModel, store: FirestoreRunStore, settings: Settings) -> None:
    try:
        info = model.load()
    except ModelLoadError as exc:
        # One clear line: on Cloud Run it is what the failed revision's log shows.
        log.error(f"model {settings.model_name} cannot be served: {exc}",
                  extra={"model": settings.model_name, "model_version": settings.model_version,
                         "model_repository": settings.model_repository})
        os._exit(3)
    except Exception:
        # Without its model the service is useless: exit so Cloud Run (or the
        # local stack) sees the failure instead of a process that never gets ready.
        log.exception("model failed to load", extra={"model": settings.model_name})
        os._exit(3)
    try:
        store.register_version({**info.describe(), "revision": settings.revision,
                                "loaded_at": utcnow(), "load_seconds": model.load_seconds})
    except Exception:
        log.exception("could not record the loaded model version")
