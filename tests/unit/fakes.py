"""In-memory fakes of the adapters, with the same contracts as the real ones."""

from __future__ import annotations

import copy
import json

from inference_contract.messages import PredictionMessage
from inference_contract.predictions import QUEUED
from model_service.callbacks import CallbackResult
from model_service.run_store import PredictionRunStore
from prediction_api.errors import BackendUnavailable, ImageAccessDenied, ImageNotFound
from prediction_api.image_sources import too_large


class FakeUploadStore:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.fail = False

    def uri(self, object_name: str) -> str:
        return f"gs://fake-uploads/{object_name}"

    def put(self, object_name: str, data: bytes, content_type: str) -> str:
        if self.fail:
            raise BackendUnavailable("Cloud Storage is unavailable: fake")
        self.objects[object_name] = (data, content_type)
        return self.uri(object_name)



class FakeKeyStore:
    """API key records by id, as FirestoreKeyStore and FileKeyStore hold them."""

    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.reads = 0

    def get(self, key_id: str) -> dict | None:
        self.reads += 1
        return copy.deepcopy(self.records.get(key_id))

    def put(self, record: dict) -> None:
        self.records[record["id"]] = copy.deepcopy(record)

    def all(self) -> list[dict]:
        return copy.deepcopy(list(self.records.values()))


class FakeIdempotencyStore:
    def __init__(self) -> None:
        self.records: dict[str, dict] = {}
        self.reads = 0

    def get(self, record_id: str) -> dict | None:
        self.reads += 1
        return copy.deepcopy(self.records.get(record_id))

    def create(self, record_id: str, record: dict) -> bool:
        if record_id in self.records:
            return False
        self.records[record_id] = copy.deepcopy(record)
        return True

    def set(self, record_id: str, record: dict) -> None:
        self.records[record_id] = copy.deepcopy(record)

    def delete(self, record_id: str) -> None:
        self.records.pop(record_id, None)


class FakeDns:
    """A resolver over a fixed table of host -> addresses (no table entry: the name does not resolve)."""

    def __init__(self, table: dict[str, list[str]] | None = None) -> None:
        self.table = dict(table or {})
        self.queries: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        import socket

        self.queries.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.table[host])


class FakeApiStore:
    def __init__(self) -> None:
        self.documents: dict[str, dict] = {}
        self.versions: list[dict] = []
        self.waited: list[tuple[str, float]] = []
        self.settled: list[bool] = []  # whether each held watch ended settled
        # Applied when a watch is held, standing in for a model service.
        self.on_wait: dict | None = None

    def create(self, document: dict) -> None:
        assert document["id"] not in self.documents
        self.documents[document["id"]] = copy.deepcopy(document)

    def delete(self, prediction_id: str) -> None:
        self.documents.pop(prediction_id, None)

    def get(self, prediction_id: str) -> dict | None:
        return copy.deepcopy(self.documents.get(prediction_id))

    def watch(self, prediction_id: str, timeout: float, settled) -> dict | None:
        document = self.get(prediction_id)
        if settled(document):
            return document  # settled by the first snapshot: not held
        self.waited.append((prediction_id, timeout))
        if self.on_wait and document is not None:
            self.documents[prediction_id].update(self.on_wait)
        document = self.get(prediction_id)
        self.settled.append(settled(document))
        return document

    def transact(self, prediction_id: str, decide):
        document = self.documents.get(prediction_id)
        update, value = decide(copy.deepcopy(document))
        if update:
            document.update(copy.deepcopy(update))
        return value

    def list_owned(self, api_key_id, model, status, limit: int, after) -> list[dict]:
        wanted = {"api_key_id": api_key_id, "model": model, "status": status}
        found = [d for d in self.documents.values()
                 if all(value is None and field != "api_key_id" or d.get(field) == value
                        for field, value in wanted.items())]
        found.sort(key=lambda d: (d["created_at"], d["id"]), reverse=True)
        if after is not None:
            found = [d for d in found if (d["created_at"], d["id"]) < after]
        return copy.deepcopy(found[:limit])

    def overdue(self, now, limit: int) -> list[dict]:
        due = [d for d in self.documents.values() if d.get("reconcile_at") and d["reconcile_at"] <= now]
        return copy.deepcopy(sorted(due, key=lambda d: d["reconcile_at"])[:limit])

    def oldest_queued(self) -> dict | None:
        queued = [d for d in self.documents.values() if d.get("status") == QUEUED]
        return copy.deepcopy(min(queued, key=lambda d: d["created_at"])) if queued else None

    def model_versions(self) -> list[dict]:
        return copy.deepcopy(self.versions)


class FakePublisher:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict, dict]] = []
        self.fail_after: int | None = None

    def publish(self, message: PredictionMessage) -> str:
        if self.fail_after is not None and len(self.messages) >= self.fail_after:
            raise BackendUnavailable("Pub/Sub is unavailable: fake")
        data, attributes = message.encode()  # (model, data as the receiver parses it, attributes)
        self.messages.append((message.model, json.loads(data), attributes))
        return str(len(self.messages))


class FakeModelInfo:
    version = 4

    def describe(self) -> dict:
        return {"model": "resnet50", "version": self.version, "kind": "classifier"}


class FakeModel:
    def __init__(self, ready: bool = True) -> None:
        self.ready = ready
        self.info = FakeModelInfo()
        self.batches: list[list[bytes]] = []

    def wait_ready(self, timeout: float) -> bool:
        return self.ready

    def predict(self, images: list[bytes]) -> list:
        from model_service.errors import InvalidImage

        self.batches.append(list(images))
        return [InvalidImage("the image could not be decoded") if image.startswith(b"bad")
                else {"top_k": [{"class_id": 281, "label": "tabby", "score": 0.9}], "weights": "w"}
                for image in images]


class FakeImageReader:
    def __init__(self) -> None:
        self.images: dict[str, bytes] = {}
        self.error: Exception | None = None
        self.reads: list[str] = []

    def read(self, uri: str) -> bytes:
        from model_service.errors import ImageMissing

        self.reads.append(uri)
        if self.error:
            raise self.error
        if uri not in self.images:
            raise ImageMissing(f"the uploaded image {uri} no longer exists")
        return self.images[uri]


class FakeServiceStore(PredictionRunStore):
    """Documents in a dict; the transitions are the contract's, through PredictionRunStore."""

    def __init__(self) -> None:
        self.documents: dict[str, dict] = {}
        self.error: Exception | None = None

    def _transact(self, prediction_id: str, decide):
        if self.error:
            raise self.error
        document = self.documents.get(prediction_id)
        update, value = decide(copy.deepcopy(document))
        if update:
            document.update(copy.deepcopy(update))
        return copy.deepcopy(value)


class FakeNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.receiver_down = False

    def notify(self, url: str, document: dict) -> CallbackResult:
        self.sent.append((url, document))
        return (CallbackResult(False, "the receiver answered 503") if self.receiver_down
                else CallbackResult(True))


class FakeBucketReader:
    """gs:// objects by (bucket, name); buckets named in denied refuse every read."""

    def __init__(self, account: str | None = None) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.denied: set[str] = set()
        self._account = account

    def read(self, bucket: str, name: str, max_bytes: int, timeout: float) -> bytes:
        uri = f"gs://{bucket}/{name}"
        if bucket in self.denied:
            raise ImageAccessDenied(f"{self._account} may not read {uri}")
        if (bucket, name) not in self.objects:
            raise ImageNotFound(f"{uri} does not exist")
        data = self.objects[(bucket, name)]
        if len(data) > max_bytes:
            raise too_large(uri, max_bytes)
        return data
