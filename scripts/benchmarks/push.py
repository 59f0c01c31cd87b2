"""A model service started with the stack's own command, driven at its push endpoint as a busy
subscription would: the documents and images seeded in the emulators first."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

from emulators.local_stack import LocalStack
from emulators.processes import free_port, gunicorn_worker_pid, process_cpu_seconds

IN_FLIGHT = (1, 8, 32, 64)


class Seeder:
    """Prediction documents and images in the emulators, as the API would write them."""

    def __init__(self, project: str, bucket: str, photos: list[bytes], model: str,
                 api_key_id: str | None = None) -> None:
        from google.cloud import firestore, storage

        self._api_key_id = api_key_id  # with keys on, only the creating key may read a prediction
        self._firestore = firestore.Client(project=project)
        self._predictions = self._firestore.collection("predictions")
        self._model = model
        blobs = storage.Client(project=project).bucket(bucket)
        self.uris, self.sizes = [], []
        for i, photo in enumerate(photos):
            name = f"benchmark/{model}/{i}.jpg"
            blobs.blob(name).upload_from_string(photo, content_type="image/jpeg")
            self.uris.append(f"gs://{bucket}/{name}")
            self.sizes.append(len(photo))

    def envelopes(self, count: int) -> list[dict]:
        """count new predictions' push envelopes, each carrying its document as created and the
        update time of the create, as the API publishes them (a claim without a read)."""
        from inference_contract.lifecycle import new_prediction
        from inference_contract.messages import PredictionMessage

        now = datetime.now(UTC)
        envelopes = []
        for start in range(0, count, 400):  # Firestore's batch limit is 500 writes
            batch, documents = self._firestore.batch(), []
            for i in range(start, min(count, start + 400)):
                prediction_id = f"bench-{uuid.uuid4().hex}"
                document = new_prediction(
                    prediction_id=prediction_id, model=self._model, now=now,
                    expire_at=now + timedelta(days=1), image_uri=self.uris[i % len(self.uris)],
                    content_type="image/jpeg", size_bytes=self.sizes[i % len(self.sizes)], filename=None,
                    callback_url=None, api_key_id=self._api_key_id, redeliver_after=timedelta(0))
                # Never overdue: the benchmark delivers each message itself, the reconciler must not.
                document["reconcile_at"] = None
                batch.create(self._predictions.document(prediction_id), document)
                documents.append(document)
            for document, result in zip(documents, batch.commit(), strict=True):
                data, attributes = PredictionMessage.for_document(
                    document, result.update_time.rfc3339()).encode()
                envelopes.append({"message": {"data": base64.b64encode(data).decode(),
                                              "attributes": attributes, "messageId": document["id"]},
                                  "subscription": "benchmark"})
        return envelopes


def batch_sizes(log_path: Path, offset: int) -> tuple[Counter, int]:
    """Batch sizes logged since offset, and the new offset."""
    sizes: Counter = Counter()
    with log_path.open("rb") as log:
        log.seek(offset)
        for line in log:
            if b'"message": "batch"' in line:
                sizes[json.loads(line)["batch_size"]] += 1
        return sizes, log.tell()


def drive_push(url: str, envelopes: list[dict], in_flight: int, worker: int) -> dict:
    session = requests.Session()
    statuses: Counter = Counter()

    def push(envelope: dict) -> None:
        statuses[session.post(url, json=envelope, timeout=300).status_code] += 1

    cpu, wall = process_cpu_seconds(worker), time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(push, envelopes))
    wall, cpu = time.perf_counter() - wall, process_cpu_seconds(worker) - cpu
    return {"images_per_s": round(len(envelopes) / wall, 1),
            "cpu_ms_per_image": round(cpu / len(envelopes) * 1000, 1), "statuses": dict(statuses)}


def service_at_push_endpoint(stack: LocalStack, model: str, seeder: Seeder, requests_per_level: int,
                             levels: tuple[int, ...], extra_env: dict[str, str], label: str) -> dict:
    """Figures per in-flight level, and "start_to_ready_s": process start to a 200 from /healthz."""
    port = free_port()
    process = stack.start_model_service(model, port, extra_env, label=label)
    try:
        start_to_ready = process.wait_http(f"http://127.0.0.1:{port}/healthz", 300)
        worker = gunicorn_worker_pid(port)
        url = f"http://127.0.0.1:{port}/"
        # Warm-up: the first model call at a new batch size costs extra (graph optimisation for
        # that shape), as the bare model's warm-up pays it outside its timing too.
        for in_flight in (8, 32):
            drive_push(url, seeder.envelopes(2 * in_flight), in_flight, worker)
        offset = process.log_path.stat().st_size
        figures = {}
        for in_flight in levels:
            envelopes = seeder.envelopes(max(requests_per_level, 2 * in_flight))
            figures[in_flight] = drive_push(url, envelopes, in_flight, worker)
            sizes, offset = batch_sizes(process.log_path, offset)
            figures[in_flight]["batch_sizes"] = dict(sorted(sizes.items()))
            figures[in_flight]["mean_batch"] = round(
                sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 1)
        return {"start_to_ready_s": round(start_to_ready, 2), **figures}
    finally:
        process.stop()
