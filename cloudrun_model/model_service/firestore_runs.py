"""The Firestore adapter of the model service: prediction documents and loaded model versions."""

from __future__ import annotations

import queue
import threading
from collections import OrderedDict
from concurrent.futures import Future

from google.api_core import exceptions as gexc
from inference_contract import billable_operations as billed

from .client_internals import firestore_wire
from .errors import TransientError
from .run_store import PredictionRunStore


class FirestoreRunStore(PredictionRunStore):
    """Prediction documents in Firestore; each transition an atomic read-modify-write.

    Transitions asked for at the same time by the request threads are made
    together, as the batcher runs their images together: one thread reads all
    their documents in one RPC, decides each (the rules of inference_contract.lifecycle), and
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
    made one by one, reading afresh. Reads and writes go through a wire
    (client_internals: the client's own RPC layer, or its public API).
    """

    MAX_CONFLICTS = 5
    MAX_GROUP = 100  # a batch commit takes at most 500 writes
    MAX_KNOWN = 4096  # documents remembered after writing them (a few per request thread)

    def __init__(self, client, collection: str = "predictions",
                 versions_collection: str = "model_versions", use_private_api: bool = True) -> None:
        self._predictions = client.collection(collection)
        self._versions = client.collection(versions_collection)
        self._wire = firestore_wire(client, use_private_api)
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

    def know_created(self, prediction_id: str, document: dict, update_time: str) -> None:
        """Remembered as if this store had written it, unless it knows a later state: the claim
        then commits conditional on the create's update time (and reads only if that fails)."""
        try:
            created_at = self._wire.update_time(update_time)
        except ValueError:
            return  # not a timestamp: the claim reads, as for any message
        with self._known_lock:
            if prediction_id in self._known:
                return
        self._remember(prediction_id, document, created_at)

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
                states = self._read(to_read)
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
                update_times = self._commit([
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

    def _read(self, prediction_ids: list[str]) -> dict[str, tuple[dict | None, object]]:
        # One read billed per document asked for, found or missing.
        billed.count(billed.FIRESTORE_READ, len(prediction_ids))
        return self._wire.get_all(self._predictions, prediction_ids)

    def _commit(self, updates: list) -> list:
        billed.count(billed.FIRESTORE_WRITE, len(updates))
        return self._wire.commit(updates)

    def _transact_alone(self, prediction_id: str, decide):
        """Read, decide, write conditional on the read; again on the new state if it changed."""
        self._forget(prediction_id)
        reference = self._predictions.document(prediction_id)
        try:
            for _ in range(self.MAX_CONFLICTS):
                document, update_time = self._read([prediction_id])[prediction_id]
                update, value = decide(document)
                if not update:
                    return value
                try:
                    (new_time,) = self._commit([(reference, update, update_time)])
                except (gexc.FailedPrecondition, gexc.NotFound):
                    continue
                self._remember(prediction_id, {**document, **update}, new_time)
                return value
        except (gexc.GoogleAPIError, OSError) as exc:
            raise _unavailable(exc) from exc
        raise TransientError(f"prediction {prediction_id} kept changing; "
                             f"{self.MAX_CONFLICTS} writes conflicted")

    def register_version(self, description: dict) -> None:
        doc_id = f"{description['model']}-v{description['version']}"
        billed.count(billed.FIRESTORE_WRITE)
        self._versions.document(doc_id).set(description, merge=True)


class _Call:
    def __init__(self, prediction_id: str, decide) -> None:
        self.prediction_id = prediction_id
        self.decide = decide
        self.future: Future = Future()


def _unavailable(exc: Exception) -> TransientError:
    return TransientError(f"Firestore is unavailable: {type(exc).__name__}")
