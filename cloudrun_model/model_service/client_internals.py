"""The one place that uses private API of google-cloud-storage and google-cloud-firestore.

The model service's hot path makes, per image, one read of a Cloud Storage object
and a share of two Firestore RPCs (a batch read and a conditional batch commit,
firestore_runs.py). Through the clients' public API those cost CPU the model
needs: `Blob.download_as_bytes` goes through requests and the resumable-media
download, `Client.get_all` and `WriteBatch.update` through proto-plus marshalling,
deep copies of every read document and field-path parsing of every update.
The fast paths here send the same requests and read the same answers below that
layer, and need the clients' private attributes to do so.

Each has a public-API twin with the same interface: `image_fetcher()` and
`firestore_wire()` give the fast one unless USE_PRIVATE_CLIENT_API=false, or
unless its self-check finds an attribute it needs missing (a client upgrade),
which is logged once. The pins in pyproject.toml name this module; after
upgrading a client, run tests/unit/test_model_service_adapters.py, which
compares what the fast paths send and read with the clients' own encoding.

Both paths measured with scripts/benchmark_service.py --parts service --levels 32
(a model service at its push endpoint, 32 requests in flight), run alternately
three times on 2 CPU cores shared with other work (load average 2 to 4), the
emulators on the same machine. Worker CPU per image, model included, and
images/s:

    tiny-test (the model costs little: the service's own CPU shows), 384 images
      private API (the default)   4.7, 5.4, 4.8 ms   179, 199, 234 images/s
      public API                  5.9, 7.5, 7.5 ms   132, 150, 147 images/s
    efficientnet-lite0, 192 images (the model's ~25 ms and the noise dominate)
      private API                 30.4, 27.6 ms      51.5, 58.6 images/s
      public API                  29.5, 27.0 ms      53.4, 53.6 images/s

So the private path saves about 2 ms of CPU per image and a quarter of the
throughput where the model is cheap; with a real model the difference is
within the noise of a shared machine.
"""

from __future__ import annotations

import base64
import logging
import re
from datetime import datetime
from urllib.parse import urlsplit

import google_crc32c
import requests
import urllib3
from google.api_core import exceptions as gexc

log = logging.getLogger(__name__)


class DataCorruption(Exception):
    """An object's bytes did not match the checksum Cloud Storage sent with them."""


# --- Cloud Storage: reading an uploaded image ----------------------------------------------------

class PrivateImageFetcher:
    """One authenticated GET of the object's media, as `Blob.download_as_bytes` makes it.

    The same request (the client's download URL, credentials and headers, its
    retry policy, the crc32c check against `x-goog-hash`), sent with urllib3
    through google-auth's AuthorizedHttp instead of through requests and the
    resumable-media download: a third of the CPU per image. Its pool keeps a
    connection per request thread (the client's session keeps 10, and discarded
    the rest on every burst). The environment's proxy and CA bundle, which
    requests would look up on every request, are looked up once.
    """

    def __init__(self, client, timeout_seconds: float, pool_size: int) -> None:
        import certifi
        from google.auth.transport.urllib3 import AuthorizedHttp
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._client = client
        self._timeout = urllib3.Timeout(connect=timeout_seconds, read=timeout_seconds)
        # Bound the client's own retries: past this, Pub/Sub's redelivery takes over.
        self._retry = DEFAULT_RETRY.with_timeout(timeout_seconds)
        probe = self._url("b", "o")
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

    def _url(self, bucket: str, name: str) -> str:
        return self._client.bucket(bucket).blob(name)._get_download_url(self._client)

    def fetch(self, bucket: str, name: str) -> bytes:
        return self._retry(self._get)(self._url(bucket, name))

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


class PublicImageFetcher:
    """`Blob.download_as_bytes`, with the same retry bound and crc32c check."""

    def __init__(self, client, timeout_seconds: float, pool_size: int) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._client = client
        self._timeout = timeout_seconds
        self._retry = DEFAULT_RETRY.with_timeout(timeout_seconds)

    def fetch(self, bucket: str, name: str) -> bytes:
        from google.cloud.storage.exceptions import DataCorruption as StorageDataCorruption

        try:
            return self._client.bucket(bucket).blob(name).download_as_bytes(
                timeout=self._timeout, retry=self._retry, checksum="crc32c")
        except StorageDataCorruption as exc:
            raise DataCorruption(str(exc)) from exc


def _crc32c_header(header: str) -> str | None:
    for part in header.split(","):
        algorithm, _, value = part.strip().partition("=")
        if algorithm == "crc32c":
            return value
    return None


def _crc32c(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


# --- Firestore: the run store's batch read and conditional batch commit --------------------------

class PrivateFirestoreWire:
    """The run store's two RPCs on the client's own RPC layer.

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
        # The self-check: AttributeError if a client upgrade renamed what this uses.
        for attribute in ("_firestore_api", "_database_string", "_rpc_metadata"):
            getattr(client, attribute)
        client.collection("c").document("d")._document_path  # noqa: B018

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

    def update_time(self, text: str):
        """An RFC 3339 update time (as a message carries it) in the form commit() takes; ValueError
        if it is not one."""
        timestamp = self._Timestamp()
        try:
            timestamp.FromJsonString(text)
        except Exception as exc:  # protobuf raises its own ParseError, a ValueError in some versions
            raise ValueError(f"not an RFC 3339 timestamp: {text!r}") from exc
        return timestamp

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


class PublicFirestoreWire:
    """The same two RPCs through `Client.get_all` and a `WriteBatch` of conditional updates."""

    def __init__(self, client) -> None:
        self._client = client

    def update_time(self, text: str):
        from google.api_core.datetime_helpers import DatetimeWithNanoseconds

        return DatetimeWithNanoseconds.from_rfc3339(text)  # ValueError if it is not one

    def get_all(self, collection, ids: list[str]) -> dict[str, tuple[dict | None, object]]:
        snapshots = self._client.get_all([collection.document(i) for i in ids])
        return {snapshot.id: (snapshot.to_dict(), snapshot.update_time) if snapshot.exists else (None, None)
                for snapshot in snapshots}

    def commit(self, updates: list[tuple[object, dict, object]]) -> list[object]:
        batch = self._client.batch()
        for reference, update, update_time in updates:
            # No option: the client's update requires the document to exist.
            option = (None if update_time is None
                      else self._client.write_option(last_update_time=update_time))
            batch.update(reference, update, option=option)
        return [result.update_time for result in batch.commit()]


# --- Choosing ------------------------------------------------------------------------------------

def _chosen(kind: str, use_private: bool, private, public, *args):
    if use_private:
        try:
            return private(*args)
        except AttributeError as exc:
            log.warning(f"the {kind} client's private API is not there ({exc}); using its public API",
                        extra={"client": kind})
    return public(*args)


def image_fetcher(client, timeout_seconds: float, pool_size: int, use_private: bool = True):
    """How GcsImageReader fetches an object: fetch(bucket, name) -> bytes."""
    return _chosen("storage", use_private, PrivateImageFetcher, PublicImageFetcher,
                   client, timeout_seconds, pool_size)


def firestore_wire(client, use_private: bool = True):
    """How FirestoreRunStore reads and writes: get_all(collection, ids) and commit(updates)."""
    return _chosen("firestore", use_private, PrivateFirestoreWire, PublicFirestoreWire, client)
