"""One adapter per outside service: Storage (images), Firestore (predictions), HTTP callbacks."""

from __future__ import annotations

import json
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
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
    def __init__(self, client, timeout_seconds: float) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        self._client = client
        self._timeout = timeout_seconds
        # Bound the client's own retries: past this, Pub/Sub's redelivery takes over.
        self._retry = DEFAULT_RETRY.with_timeout(timeout_seconds)

    def read(self, uri: str) -> bytes:
        if not uri.startswith("gs://") or "/" not in uri[5:]:
            raise InvalidEnvelope(f"image_uri must be gs://bucket/object, got {uri!r}")
        bucket, _, name = uri[5:].partition("/")
        try:
            return self._client.bucket(bucket).blob(name).download_as_bytes(
                timeout=self._timeout, retry=self._retry)
        except gexc.NotFound:
            raise ImageMissing(f"the uploaded image {uri} no longer exists") from None
        except (gexc.GoogleAPIError, requests.RequestException, OSError) as exc:
            raise TransientError(f"Cloud Storage is unavailable: {type(exc).__name__}") from exc


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
    """

    MAX_CONFLICTS = 5
    MAX_GROUP = 100  # a batch commit takes at most 500 writes

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions") -> None:
        self._client = client
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)
        self._calls: queue.Queue[_Call] = queue.Queue()
        threading.Thread(target=self._run_groups, name="firestore-transitions", daemon=True).start()

    def _transact(self, prediction_id: str, decide):
        """Run decide(document or None) -> (update or None, value) atomically; return value."""
        call = _Call(prediction_id, decide)
        self._calls.put(call)
        return call.future.result()  # raises what decide raised, or TransientError

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
        try:
            snapshots = {snapshot.id: snapshot for snapshot in
                         self._client.get_all([self._predictions.document(i) for i in first])}
        except (gexc.GoogleAPIError, OSError) as exc:
            for call in calls:
                call.future.set_exception(_unavailable(exc))
            return
        batch, writes = self._client.batch(), []
        for prediction_id, call in first.items():
            snapshot = snapshots.get(prediction_id)
            exists = snapshot is not None and snapshot.exists
            try:
                update, value = call.decide(snapshot.to_dict() if exists else None)
            except Exception as exc:  # the rule's answer (unknown, in progress): the caller's to raise
                call.future.set_exception(exc)
                continue
            if not update:
                call.future.set_result(value)
                continue
            batch.update(self._predictions.document(prediction_id), update,
                         option=self._client.write_option(last_update_time=snapshot.update_time))
            writes.append((call, value))
        if writes:
            try:
                batch.commit()
                for call, value in writes:
                    call.future.set_result(value)
            except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
                repeats = [call for call, _ in writes] + repeats  # decide again, one by one
            except (gexc.GoogleAPIError, OSError) as exc:
                for call, _ in writes:
                    call.future.set_exception(_unavailable(exc))
        for call in repeats:
            try:
                call.future.set_result(self._transact_alone(call.prediction_id, call.decide))
            except Exception as exc:
                call.future.set_exception(exc)

    def _transact_alone(self, prediction_id: str, decide):
        """Read, decide, write conditional on the read; again on the new state if it changed."""
        reference = self._predictions.document(prediction_id)
        try:
            for _ in range(self.MAX_CONFLICTS):
                snapshot = reference.get()
                update, value = decide(snapshot.to_dict() if snapshot.exists else None)
                if not update:
                    return value
                try:
                    reference.update(update, option=self._client.write_option(
                        last_update_time=snapshot.update_time))
                    return value
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        raise TransientError(f"prediction {prediction_id} kept changing; "
                             f"{self.MAX_CONFLICTS} writes conflicted")

    def register_version(self, description: dict) -> None:
        doc_id = f"{description['model']}-v{description['version']}"
        self._versions.document(doc_id).set(description, merge=True)


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
