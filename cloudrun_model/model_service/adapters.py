"""One adapter per outside service: Storage (images), Firestore (predictions), HTTP callbacks."""

from __future__ import annotations

import base64
import json
import logging
import queue
import re
import threading
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import google_crc32c
import requests
import urllib3
from google.api_core import exceptions as gexc
from inference_contract.callback_targets import ForbiddenTarget, check_name
from requests_hardened import Config as HardenedConfig
from requests_hardened import HTTPSession
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from standardwebhooks import Webhook

from .errors import ImageMissing, InvalidEnvelope, TransientError
from .transitions import PredictionRunStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackResult:
    delivered: bool
    error: str | None = None

class GcsImageReader:
    """Reads an uploaded image: one authenticated GET of the object's media.

    The request `Blob.download_as_bytes` makes (the client's download URL,
    credentials and headers, its retry policy, the crc32c check against
    `x-goog-hash`), sent with urllib3 through google-auth's AuthorizedHttp
    instead of through requests and the resumable-media download: a third of
    the CPU per image. Its pool keeps as many connections as there are request
    threads (the client's session keeps 10, and discarded the rest on every
    burst). The environment's proxy and CA bundle, which requests would look
    up on every request, are looked up once.
    """

    def __init__(self, client, timeout_seconds: float, pool_size: int = 64) -> None:
        import certifi
        from google.auth.transport.urllib3 import AuthorizedHttp
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._client = client
        self._timeout = urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds)
        # Bound the client's own retries: past this, Pub/Sub's redelivery takes over.
        self._retry = DEFAULT_RETRY.with_timeout(timeout_seconds)
        probe = client.bucket("b").blob("o")._get_download_url(client)
        environment = requests.Session().merge_environment_settings(probe, {}, None, None, None)
        verify = environment["verify"]
        tls = {"cert_reqs": "CERT_REQUIRED",
               "ca_certs": verify if isinstance(verify, str) else certifi.where()}
        proxy = environment["proxies"].get(urlsplit(probe).scheme) or environment["proxies"].get("all")
        pool = (urllib3.ProxyManager(proxy, maxsize=pool_size, **tls) if proxy
                else urllib3.PoolManager(maxsize=pool_size, **tls))
        self._http = AuthorizedHttp(client._http.credentials, http=pool)
        user_agent = client._connection.user_agent
        self._headers = {"User-Agent": user_agent, "x-goog-api-client": user_agent, "accept-encoding": "gzip",
                         **getattr(client, "_extra_headers", {})}

    def read(self, uri: str) -> bytes:
        if not uri.startswith("gs://") or "/" not in uri[5:]:
            raise InvalidEnvelope(f"image_uri must be gs://bucket/object, got {uri!r}")
        bucket, _, name = uri[5:].partition("/")
        try:
            url = self._client.bucket(bucket).blob(name)._get_download_url(self._client)
            return self._retry(self._get)(url)
        except gexc.NotFound:
            raise ImageMissing(f"the uploaded image {uri} no longer exists") from None
        except (gexc.GoogleAPIError, urllib3.exceptions.HTTPError, OSError, DataCorruption) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc

    def _get(self, url: str) -> bytes:
        response = self._http.request("GET", url, headers=self._headers, timeout=self._timeout,
                                      retries=False, decode_content=True)
        if response.status >= 400:
            raise gexc.from_http_status(response.status, f"GET {url}: {response.data[:200]!r}")
        body = response.data
        expected = _crc32c_header(response.headers.get("x-goog-hash", ""))
        # The hash is of the stored bytes: comparable when they were stored, and sent, as they are.
        stored_as_is = response.headers.get("x-goog-stored-content-encoding", "identity") == "identity"
        if expected is not None and stored_as_is and expected != _crc32c(body):
            raise DataCorruption(f"the image read from {url} does not match its crc32c")
        return body


class DataCorruption(Exception):
    """An object's bytes did not match the checksum Cloud Storage sent with them."""


def _crc32c_header(header: str) -> str | None:
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm == "crc32c":
            return value
    return None


def _crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


class FirestoreRunStore(PredictionRunStore):
    """Prediction documents in Firestore; each transition an atomic read-modify-write.

    Transitions asked for at the same time by the request threads are made
    together, as the batcher runs their images together: one thread reads all
    their documents in one RPC, decides each (the rules in transitions.py), and
    commits every write in one batch, each write conditional on its document
    being unchanged since the read. If any has changed (rare: two deliveries of
    one prediction at once), the group's writes are made one by one instead,
    each deciding again on the document as it is then. Per image that is a
    fraction of an RPC instead of two per transition.

    A document this store wrote is remembered with the update time its commit
    returned, so the next transition of it (finishing what was claimed, a
    callback's record) decides on that and writes conditional on that update
    time, without reading it again. The condition is what keeps it correct: if
    anything else wrote the document since, the commit fails and the group is
    made one by one, reading afresh. Reads and writes go through the client's
    own RPC layer (FirestoreWire) to skip its per-field Python overhead.
    """

    MAX_CONFLICTS = 5
    MAX_GROUP = 100  # a batch commit takes at most 500 writes
    MAX_KNOWN = 4096  # documents remembered after writing them (a few per request thread)

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions") -> None:
        self._client = client
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)
        self._wire = FirestoreWire(client)
        # prediction id -> (document as this store last wrote it, that write's update time)
        self._known: OrderedDict[str, tuple[dict, object]] = OrderedDict()
        self._known_lock = threading.Lock()
        self._calls: queue.Queue[_Call] = queue.Queue()
        threading.Thread(target=self._run_groups, name="firestore-transitions", daemon=True).start()

    def _transact(self, prediction_id: str, decide):
        """Run decide(document or None) -> (update or None, value) atomically; return value."""
        call = _Call(prediction_id, decide)
        self._calls.put(call)
        return call.future.result()  # raises what decide raised, or TransientError

    def _remember(self, prediction_id: str, document: dict, update_time) -> None:
        with self._known_lock:
            self._known[prediction_id] = (document, update_time)
            self._known.move_to_end(prediction_id)
            while len(self._known) > self.MAX_KNOWN:
                self._known.popitem(last=False)

    def _forget(self, prediction_id: str):
        with self._known_lock:
            return self._known.pop(prediction_id, None)

    def _run_groups(self) -> None:
        while True:
            calls = [self._calls.get()]
            while len(calls) < self.MAX_GROUP:
                try:
                    calls.append(self._calls.get_nowait())
                except queue.Empty:
                    break
            try:
                self._run_group(calls)
            except Exception as exc:  # never leave a request thread waiting
                for call in calls:
                    if not call.future.done():
                        call.future.set_exception(exc)

    def _run_group(self, calls: list[_Call]) -> None:
        first: dict[str, _Call] = {}
        repeats = []  # a second transition of a document in the group runs after the first
        for call in calls:
            (repeats.append(call) if call.prediction_id in first
             else first.setdefault(call.prediction_id, call))
        writes = []  # (call, value, update, update time it must still have, document after)
        # A document this store wrote last: decided on as written. Only a write is taken from
        # that (its commit is conditional on the document being exactly that); anything else the
        # rule says (nothing to do, in progress) could come from another writer's change, so
        # that call is decided again on the document as read now.
        to_read = []
        for prediction_id, call in first.items():
            known = self._forget(prediction_id)
            if known is None:
                to_read.append(prediction_id)
                continue
            document, update_time = known
            try:
                update, value = call.decide(dict(document))
            except Exception:
                update = None
            if update:
                writes.append((call, value, update, update_time, {**document, **update}))
            else:
                to_read.append(prediction_id)
        if to_read:
            try:
                states = self._wire.get_all(self._predictions, to_read)
            except (gexc.GoogleAPIError, OSError) as exc:
                for prediction_id in to_read:
                    first[prediction_id].future.set_exception(_unavailable(exc))
                for call in repeats:
                    call.future.set_exception(_unavailable(exc))
                repeats, to_read = [], []
            for prediction_id in to_read:
                call = first[prediction_id]
                document, update_time = states.get(prediction_id, (None, None))
                try:
                    update, value = call.decide(dict(document) if document is not None else None)
                except Exception as exc:  # the rule's answer (unknown, in progress): the caller's to raise
                    call.future.set_exception(exc)
                    continue
                if update:
                    writes.append((call, value, update, update_time, {**document, **update}))
                    continue
                if document is not None:
                    self._remember(prediction_id, document, update_time)
                call.future.set_result(value)
        if writes:
            try:
                update_times = self._wire.commit([
                    (self._predictions.document(call.prediction_id), update, update_time)
                    for call, _, update, update_time, _ in writes])
                for (call, value, _, _, document), update_time in zip(writes, update_times, strict=True):
                    self._remember(call.prediction_id, document, update_time)
                    call.future.set_result(value)
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                repeats = [write[0] for write in writes] + repeats  # decide again, one by one
            except (gexc.GoogleAPIError, OSError) as exc:
                for write in writes:
                    write[0].future.set_exception(_unavailable(exc))
        for call in repeats:
            try:
                call.future.set_result(self._transact_alone(call.prediction_id, call.decide))
            except Exception as exc:
                call.future.set_exception(exc)

    def _transact_alone(self, prediction_id: str, decide):
        """Read, decide, write conditional on the read; again on the new state if it changed."""
        self._forget(prediction_id)
        reference = self._predictions.document(prediction_id)
        try:
            for _ in range(self.MAX_CONFLICTS):
                snapshot = reference.get()
                document = snapshot.to_dict() if snapshot.exists else None
                update, value = decide(document)
                if not update:
                    return value
                try:
                    result = reference.update(update, option=self._client.write_option(
                        last_update_time=snapshot.update_time))
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue
                self._remember(prediction_id, {**document, **update}, result.update_time)
                return value
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        raise TransientError(f"prediction {prediction_id} kept changing; "
                             f"{self.MAX_CONFLICTS} writes conflicted")

    def register_version(self, description: dict) -> None:
        doc_id = f"{description['model']}-v{description['version']}"
        self._versions.document(doc_id).set(description, merge=True)


class FirestoreWire:
    """The two RPCs of FirestoreRunStore's groups, on the client's own RPC layer.

    `Client.get_all` and `WriteBatch.update` cost about 0.5 ms of CPU per
    document each in Python (proto-plus marshalling, two deep copies of every
    read document, field-path parsing of every update). This builds and reads
    the same protobuf messages directly: same RPCs, same retries and timeouts
    (the client's defaults), same values (tests/unit/test_model_service_adapters.py
    compares them with the client's own encoding and decoding). Anything
    outside the plain types the transitions write goes through the client's
    own helpers.
    """

    _SIMPLE_FIELD = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*$")

    def __init__(self, client) -> None:
        from google.api_core.datetime_helpers import DatetimeWithNanoseconds
        from google.cloud.firestore_v1 import _helpers
        from google.cloud.firestore_v1.types import common, document, write
        from google.protobuf import struct_pb2, timestamp_pb2

        self._client = client
        self._helpers = _helpers
        self._datetime = DatetimeWithNanoseconds
        self._value = document.Value
        self._Value, self._MapValue = document.Value.pb(), document.MapValue.pb()
        self._ArrayValue, self._Document = document.ArrayValue.pb(), document.Document.pb()
        self._Write, self._DocumentMask = write.Write.pb(), common.DocumentMask.pb()
        self._wrap_write = write.Write.wrap
        self._Precondition, self._Timestamp = common.Precondition.pb(), timestamp_pb2.Timestamp
        self._null = struct_pb2.NULL_VALUE

    def get_all(self, collection, ids: list[str]) -> dict[str, tuple[dict | None, object]]:
        """(document or None, its update time or None) per id, in one BatchGetDocuments."""
        paths = {collection.document(i)._document_path: i for i in ids}
        responses = self._client._firestore_api.batch_get_documents(
            request={"database": self._client._database_string, "documents": list(paths)},
            metadata=self._client._rpc_metadata)
        found = {}
        for response in responses:
            pb = response._pb
            if pb.WhichOneof("result") == "found":
                document = {key: self._decode(value) for key, value in pb.found.fields.items()}
                found[paths[pb.found.name]] = (document, pb.found.update_time)
            else:
                found[paths[pb.missing]] = (None, None)
        return found

    def commit(self, updates: list[tuple[object, dict, object]]) -> list[object]:
        """Commit (reference, update, update time it must still have) writes in one batch; their
        new update times. Raises FailedPrecondition (or NotFound) if any document changed."""
        writes = [self._wrap_write(self._update_pb(reference, update, update_time))
                  for reference, update, update_time in updates]
        response = self._client._firestore_api.commit(
            request={"database": self._client._database_string, "writes": writes, "transaction": None},
            metadata=self._client._rpc_metadata)
        return [result.update_time for result in response._pb.write_results]

    def _update_pb(self, reference, update: dict, update_time):
        option = (self._Precondition(exists=True) if update_time is None
                  else self._Precondition(update_time=update_time))
        if not all(self._SIMPLE_FIELD.match(key) for key in update):
            # Dotted or quoted field paths: the client's own rules.
            (pb,) = [w._pb for w in self._helpers.pbs_for_update(reference._document_path, update, None)]
            pb.current_document.CopyFrom(option)
            return pb
        return self._Write(
            update=self._Document(name=reference._document_path,
                                  fields={key: self._encode(value) for key, value in update.items()}),
            update_mask=self._DocumentMask(field_paths=sorted(update)), current_document=option)

    def _encode(self, value):
        kind = type(value)
        if value is None:
            return self._Value(null_value=self._null)
        if kind is bool:
            return self._Value(boolean_value=value)
        if kind is int:
            return self._Value(integer_value=value)
        if kind is float:
            return self._Value(double_value=value)
        if kind is str:
            return self._Value(string_value=value)
        if kind is dict and all(type(key) is str for key in value):
            fields = {key: self._encode(item) for key, item in value.items()}
            return self._Value(map_value=self._MapValue(fields=fields))
        if kind in (list, tuple):
            return self._Value(array_value=self._ArrayValue(values=[self._encode(v) for v in value]))
        if isinstance(value, datetime) and not hasattr(value, "nanosecond"):
            timestamp = self._Timestamp()
            timestamp.FromDatetime(value)
            return self._Value(timestamp_value=timestamp)
        return self._value.pb(self._helpers.encode_value(value))  # anything else: as the client does it

    def _decode(self, value):
        kind = value.WhichOneof("value_type")
        if kind == "string_value":
            return value.string_value
        if kind == "null_value":
            return None
        if kind == "integer_value":
            return value.integer_value
        if kind == "double_value":
            return value.double_value
        if kind == "boolean_value":
            return value.boolean_value
        if kind == "timestamp_value":
            return self._datetime.from_timestamp_pb(value.timestamp_value)
        if kind == "map_value":
            return {key: self._decode(item) for key, item in value.map_value.fields.items()}
        if kind == "array_value":
            return [self._decode(item) for item in value.array_value.values]
        return self._helpers.decode_value(self._value.wrap(value), self._client)


class _Call:
    def __init__(self, prediction_id: str, decide) -> None:
        self.prediction_id = prediction_id
        self.decide = decide
        self.future: Future = Future()


def _unavailable(exc: Exception) -> TransientError:
    return TransientError(f"Firestore is unavailable: {type(exc).__name__}")


class CheckedAddressAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, refuse private and loopback, connect to that
    address), with this service's rules (callback_targets) applied to the same resolved address."""

    def __init__(self, is_https_proto: bool, allow_loopback: bool) -> None:
        super().__init__(is_https_proto=is_https_proto, allow_loopback=allow_loopback)
        self._loopback = allow_loopback

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        check_name(urlsplit(request.url).hostname or "", self._loopback)  # metadata names, literals
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        # host_params["host"] is now the one address requests-hardened resolved and checked, and
        # the connection goes to it: judge that same address by our rules, with no second lookup.
        check_name(host_params["host"], self._loopback)
        return host_params, pool_kwargs


class HttpCallbackNotifier:
    """POSTs the final document to the client's callback URL, once per call, signed.

    A failed attempt is recorded on the document and retried later by the
    reconciler, so one slow receiver never holds a push request for long.
    Standard Webhooks: `webhook-id` is the prediction id on every attempt, so a
    receiver can drop a repeat; `webhook-timestamp` and `webhook-signature`
    (HMAC-SHA256 with the CALLBACK_SIGNING_SECRET) let it check where it came from.

    The target is checked again here, against DNS rebinding: the host is resolved
    once, every rule of callback_targets applies to that address, and the
    connection goes to it. No redirect is followed.
    """

    def __init__(self, timeout_seconds: float, signing_secret: str | None = None,
                 allow_loopback: bool = False) -> None:
        self._timeout = timeout_seconds
        self._webhook = Webhook(signing_secret) if signing_secret else None
        self._session = HTTPSession(HardenedConfig(
            ip_filter_enable=True, ip_filter_allow_loopback_ips=allow_loopback, never_redirect=True,
            default_timeout=(timeout_seconds, timeout_seconds)))
        self._session.trust_env = False  # no proxy from the environment: it would be what gets checked
        for scheme in ("http://", "https://"):
            self._session.mount(scheme, CheckedAddressAdapter(scheme == "https://", allow_loopback))

    def headers(self, document: dict, body: str, now: datetime) -> dict[str, str]:
        headers = {"content-type": "application/json", "webhook-id": document["id"],
                   "webhook-timestamp": str(int(now.timestamp()))}
        if self._webhook:
            headers["webhook-signature"] = self._webhook.sign(document["id"], now, body)
        return headers

    def notify(self, url: str, document: dict) -> CallbackResult:
        body = json.dumps(document, separators=(",", ":"))
        headers = self.headers(document, body, datetime.now(UTC))
        context = {"prediction_id": document["id"], "host": urlsplit(url).hostname}
        try:
            response = self._session.post(url, data=body.encode(), headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except (requests.RequestException, ForbiddenTarget) as exc:
            log.warning("callback failed", extra={**context, "error": str(exc)})
            return CallbackResult(False, f"{type(exc).__name__}: {exc}"[:300])
        log.info("callback sent", extra={**context, "status_code": response.status_code})
        if 200 <= response.status_code < 300:
            return CallbackResult(True)
        return CallbackResult(False, f"the receiver answered {response.status_code}")
