"""The model service's Firestore and Storage adapters, and the private client API beneath them.

PrivateFirestoreWire must send and read exactly what the Firestore client would; the
run store must only act on a remembered document through a conditional write;
GcsImageReader must read, check and retry as `Blob.download_as_bytes` does, on
either path (client_internals): the private one and its public fallback.
"""

from __future__ import annotations

import base64
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import google_crc32c
import pytest
from google.api_core import exceptions as gexc
from google.api_core.datetime_helpers import DatetimeWithNanoseconds
from google.auth.credentials import AnonymousCredentials
from google.cloud import firestore, storage
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import document as document_types
from google.cloud.firestore_v1.types import write as write_types
from google.protobuf import timestamp_pb2
from inference_contract import billable_operations as billed
from inference_contract.lifecycle import UnknownPrediction
from model_service import client_internals
from model_service.client_internals import PrivateFirestoreWire, PublicFirestoreWire
from model_service.errors import ImageMissing, TransientError
from model_service.firestore_runs import FirestoreRunStore
from model_service.gcs_images import GcsImageReader

NOW = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(scope="module")
def client():
    # No RPC is made: the client only names documents here.
    return firestore.Client(project="p", credentials=AnonymousCredentials())


UPDATES = [
    # claim
    {"status": "running", "started_at": NOW, "model_version": 3, "attempts": 1, "lease_token": "ab" * 16,
     "lease_expires_at": NOW + timedelta(seconds=10), "reconcile_at": NOW + timedelta(seconds=10)},
    # finish, a classifier's result
    {"status": "succeeded", "error": None, "model_version": 3, "completed_at": NOW, "lease_token": None,
     "lease_expires_at": None, "reconcile_at": None,
     "result": {"top_k": [{"class_id": 281, "label": "tabby, tabby cat", "score": 0.912345}] * 5,
                "weights": "imagenet", "precision": "float32"},
     "timings": {"queue_ms": 12.5, "model_ms": 80.1, "batch_size": 16, "total_ms": None}},
    # finish, a detector's result, with a callback to send
    {"status": "succeeded", "result": {"label": "cat", "match": True, "score": 0.5, "rule": "top1",
                                       "top_class": {"class_id": 1, "label": "x", "score": 1.0}},
     "callback": {"state": "pending", "attempts": 0, "sending_until": NOW}, "tags": [1, "a", None, [2.5]],
     "empty": {}, "nothing": []},
    # values read back from Firestore (nanoseconds) and large integers go through the client's helpers
    {"callback": {"state": "pending", "attempts": 2,
                  "next_attempt_at": DatetimeWithNanoseconds(2026, 5, 1, 12, 0, 0, nanosecond=123456789,
                                                             tzinfo=UTC)},
     "big": 2 ** 62, "negative": -7, "bytes": b"\x00\x01"},
    # dotted field paths: the client's own rules
    {"callback.state": "failed", "status": "failed"},
]


@pytest.mark.parametrize("update", UPDATES)
@pytest.mark.parametrize("conditional", [True, False])
def test_wire_writes_what_the_client_would(client, update, conditional):
    reference = client.collection("predictions").document("abc")
    update_time = timestamp_pb2.Timestamp(seconds=1_777_000_000, nanos=123_456_000)
    option = (client.write_option(last_update_time=DatetimeWithNanoseconds.from_timestamp_pb(update_time))
              if conditional else None)
    (expected,) = _helpers.pbs_for_update(reference._document_path, update, option)
    wire = PrivateFirestoreWire(client)
    written = wire._update_pb(reference, update, update_time if conditional else None)
    assert written == write_types.Write.pb(expected)


def test_wire_reads_what_the_client_would(client):
    stored = {key: value for update in UPDATES[:4] for key, value in update.items()}
    fields = _helpers.encode_dict(stored)
    pb = document_types.Document.pb(document_types.Document(name="x", fields=fields))
    decoded = {key: PrivateFirestoreWire(client)._decode(value) for key, value in pb.fields.items()}
    assert decoded == _helpers.decode_dict(fields, client)
    assert type(decoded["started_at"]) is DatetimeWithNanoseconds


class FakeWire:
    """Documents with update times, as Firestore keeps them; counts the reads."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[dict, timestamp_pb2.Timestamp]] = {}
        self.reads = 0
        self.clock = 0

    def put(self, prediction_id: str, document: dict) -> None:
        self.clock += 1
        self.documents[prediction_id] = (dict(document), timestamp_pb2.Timestamp(seconds=self.clock))

    def get_all(self, collection, ids):
        self.reads += len(ids)
        return {i: self.documents.get(i, (None, None)) for i in ids}

    def commit(self, updates):
        for reference, _update, update_time in updates:
            current = self.documents.get(reference.id)
            if current is None:
                raise gexc.NotFound("no document")
            if update_time is not None and current[1] != update_time:
                raise gexc.FailedPrecondition("the document changed")
        results = []
        for reference, update, _ in updates:
            self.put(reference.id, {**self.documents[reference.id][0], **update})
            results.append(self.documents[reference.id][1])
        return results


class WireStore(FirestoreRunStore):
    """The run store's grouping and remembering over FakeWire."""

    def __init__(self, client, wire: FakeWire) -> None:
        super().__init__(client)
        self._wire = wire


def queued(prediction_id: str) -> dict:
    return {"id": prediction_id, "model": "m", "status": "queued", "created_at": NOW, "attempts": 0,
            "callback_url": None}


def test_finishing_what_this_store_claimed_reads_nothing(client):
    wire = FakeWire()
    store = WireStore(client, wire)
    wire.put("p1", queued("p1"))
    claim = store.claim("p1", 3, 10, NOW, "token")
    assert claim.run and wire.reads == 1
    wrote, final = store.finish("p1", {"status": "succeeded", "result": {"x": 1}}, 10, NOW)
    assert wrote and final["status"] == "succeeded" and wire.reads == 1
    assert wire.documents["p1"][0]["status"] == "succeeded" and wire.documents["p1"][0]["attempts"] == 1


def _counted(before: dict[str, int]) -> dict[str, int]:
    after = billed.COUNTS.snapshot()
    return {name: after[name] - before[name] for name in after if after[name] != before[name]}


def test_a_prediction_run_is_billed_one_read_and_two_writes_three_with_a_callback(client):
    wire = FakeWire()
    store = WireStore(client, wire)
    wire.put("p1", {**queued("p1"), "callback_url": "https://example.com/hook"})
    before = billed.COUNTS.snapshot()
    store.claim("p1", 3, 10, NOW, "token")
    store.finish("p1", {"status": "succeeded", "result": {"x": 1}}, 10, NOW)
    assert _counted(before) == {billed.FIRESTORE_READ: 1, billed.FIRESTORE_WRITE: 2}
    before = billed.COUNTS.snapshot()
    store.record_callback("p1", NOW, delivered=True)
    assert _counted(before) == {billed.FIRESTORE_WRITE: 1}


def test_a_conflicting_write_is_billed_with_its_second_read_and_write(client):
    wire = FakeWire()
    store = WireStore(client, wire)
    wire.put("p1", queued("p1"))
    store.claim("p1", 3, 10, NOW, "token")
    wire.put("p1", {**wire.documents["p1"][0], "redeliveries": 1})
    before = billed.COUNTS.snapshot()
    store.finish("p1", {"status": "failed"}, 10, NOW)
    # Counted as asked: the conditional commit that was refused, then a read and a write again.
    assert _counted(before) == {billed.FIRESTORE_READ: 1, billed.FIRESTORE_WRITE: 2}


def test_a_write_by_anyone_else_in_between_is_caught_by_the_condition(client):
    wire = FakeWire()
    store = WireStore(client, wire)
    wire.put("p1", queued("p1"))
    store.claim("p1", 3, 10, NOW, "token")
    wire.put("p1", {**wire.documents["p1"][0], "redeliveries": 1})  # e.g. the reconciler
    wrote, final = store.finish("p1", {"status": "failed"}, 10, NOW)
    assert wrote and wire.reads == 2  # the condition failed: read again, decided again
    assert wire.documents["p1"][0]["redeliveries"] == 1 and wire.documents["p1"][0]["status"] == "failed"


def test_a_remembered_document_never_decides_alone(client):
    """Only writes are taken from a remembered document: "nothing to do" is checked on a fresh read."""
    wire = FakeWire()
    store = WireStore(client, wire)
    wire.put("p1", queued("p1"))
    store.claim("p1", 3, 10, NOW, "token")
    store.finish("p1", {"status": "succeeded"}, 10, NOW)
    wire.put("p1", queued("p1"))  # someone else reset it
    claim = store.claim("p1", 3, 10, NOW, "token-2")
    assert claim.run and wire.documents["p1"][0]["lease_token"] == "token-2"
    del wire.documents["p1"]
    with pytest.raises(UnknownPrediction):
        store.claim("p1", 3, 10, NOW, "token-3")


def test_the_remembered_documents_are_bounded(client):
    wire = FakeWire()
    store = WireStore(client, wire)
    store.MAX_KNOWN = 3
    for i in range(5):
        wire.put(f"p{i}", queued(f"p{i}"))
        store.claim(f"p{i}", 3, 10, NOW, "token")
    assert list(store._known) == ["p2", "p3", "p4"]


# --- Storage -----------------------------------------------------------------------------------


class ObjectServer:
    """Answers GETs of /download/storage/v1/b/{bucket}/o/{name}?alt=media like Cloud Storage."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.failures: list[int] = []  # statuses to answer first
        self.corrupt = False
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(dict(self.headers))
                if server.failures:
                    self.send_response(server.failures.pop(0))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                # Anything but an object's media (the client's background bucket lookup): not found.
                name = self.path.split("/o/", 1)[-1].split("?", 1)[0].replace("%2F", "/")
                body = server.objects.get(name) if "/o/" in self.path else None
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                crc = base64.b64encode(google_crc32c.value(body).to_bytes(4, "big")).decode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("x-goog-hash", f"crc32c={crc},md5=xxxx")
                self.end_headers()
                self.wfile.write(body[:-1] + b"?" if server.corrupt else body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def object_server():
    server = ObjectServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture(params=[True, False], ids=["private_api", "public_api"])
def reader(request):
    def make(url: str, timeout: float = 5) -> GcsImageReader:
        return GcsImageReader(storage.Client(project="p", credentials=AnonymousCredentials(),
                                             client_options={"api_endpoint": url}), timeout,
                              use_private_api=request.param)
    return make


def test_reads_the_object_and_checks_its_crc32c(object_server, reader):
    object_server.objects["uploads/m/1"] = b"\xff\xd8 an image " * 1000
    assert reader(object_server.url).read("gs://bucket/uploads/m/1") == b"\xff\xd8 an image " * 1000
    assert "x-goog-api-client" in {k.lower() for k in object_server.requests[0]}
    object_server.corrupt = True
    with pytest.raises(TransientError):
        reader(object_server.url).read("gs://bucket/uploads/m/1")


def test_an_image_read_is_billed_one_class_b_operation(object_server, reader):
    object_server.objects["uploads/m/1"] = b"\xff\xd8 an image "
    before = billed.COUNTS.snapshot()
    reader(object_server.url).read("gs://bucket/uploads/m/1")
    assert _counted(before) == {billed.STORAGE_CLASS_B: 1}


def test_a_missing_object_is_image_missing(object_server, reader):
    with pytest.raises(ImageMissing):
        reader(object_server.url).read("gs://bucket/uploads/m/none")


def test_transient_answers_are_retried_then_given_up(object_server, reader):
    object_server.objects["a"] = b"data"
    object_server.failures = [503, 429]
    assert reader(object_server.url).read("gs://bucket/a") == b"data"
    object_server.failures = [503] * 1000
    with pytest.raises(TransientError):
        reader(object_server.url, timeout=1.5).read("gs://bucket/a")


# --- The seam's switch ------------------------------------------------------------------------


def test_the_private_api_is_used_unless_switched_off(client, object_server):
    gcs = storage.Client(project="p", credentials=AnonymousCredentials(),
                         client_options={"api_endpoint": object_server.url})
    assert type(client_internals.firestore_wire(client)) is PrivateFirestoreWire
    assert type(client_internals.firestore_wire(client, use_private=False)) is PublicFirestoreWire
    assert type(client_internals.image_fetcher(gcs, 5, 4)) is client_internals.PrivateImageFetcher
    assert type(client_internals.image_fetcher(gcs, 5, 4, use_private=False)) is \
        client_internals.PublicImageFetcher


def test_a_client_without_the_private_attributes_gets_the_public_api(client, caplog):
    class UpgradedClient:
        """A client whose private attributes were renamed: only the public API is there."""

        def __init__(self, wrapped) -> None:
            self._wrapped = wrapped

        def collection(self, name):
            return self._wrapped.collection(name)

    with caplog.at_level("WARNING", logger="model_service.client_internals"):
        wire = client_internals.firestore_wire(UpgradedClient(client))
    assert type(wire) is PublicFirestoreWire
    assert "using its public API" in caplog.text
