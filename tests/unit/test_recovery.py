"""The reconciler and the dead-letter handler: what they do to overdue predictions, \
against in-memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prediction_api.config import Settings
from prediction_api.images import validate_image
from prediction_api.service import PredictionService

from tests.images import tabby_bytes
from tests.unit.fakes import FakeApiStore, FakePublisher, FakeUploadStore

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class World:
    def __init__(self, **overrides) -> None:
        self.clock = [NOW]
        settings = Settings(project="p", uploads_bucket="b", models=("resnet50",),
                            redeliver_after_seconds=60, max_prediction_age_seconds=3600,
                            max_delivery_attempts=5, callback_retry_seconds=3600, **overrides)
        self.store, self.publisher = FakeApiStore(), FakePublisher()
        ids = iter(f"id{i}" for i in range(100))
        self.service = PredictionService(settings, FakeUploadStore(), self.store, self.publisher,
                                         clock=lambda: self.clock[0], new_id=lambda: next(ids))

    def submit(self, callback_url: str | None = None) -> dict:
        image = validate_image(tabby_bytes(), 10 << 20)
        return self.service.submit("resnet50", [image], callback_url)[0]

    def at(self, seconds: float) -> None:
        self.clock[0] = NOW + timedelta(seconds=seconds)

    def document(self, prediction_id: str = "id0") -> dict:
        return self.store.documents[prediction_id]


@pytest.fixture
def world() -> World:
    return World()


def test_a_queued_prediction_is_published_again_once_overdue_with_backoff(world):
    world.submit()
    assert len(world.publisher.messages) == 1
    world.at(59)
    assert world.service.reconcile() == {} and len(world.publisher.messages) == 1
    world.at(60)
    assert world.service.reconcile() == {"republished": 1}
    model, payload, attributes = world.publisher.messages[-1]
    assert (model, payload, attributes) == world.publisher.messages[0]  # the same message again
    assert world.document()["redeliveries"] == 1
    # Next look after 60 s, then 120 s, doubling: a backlog is not multiplied every minute.
    assert world.document()["reconcile_at"] == NOW + timedelta(seconds=120)
    world.at(119)
    assert world.service.reconcile() == {}
    world.at(120)
    assert world.service.reconcile() == {"republished": 1}
    assert world.document()["reconcile_at"] == NOW + timedelta(seconds=240)


def test_running_with_a_fresh_lease_is_left_and_with_an_expired_one_is_republished(world):
    world.submit()
    world.document().update(status="running", attempts=1, lease_token="t",
                            lease_expires_at=NOW + timedelta(seconds=70),
                            reconcile_at=NOW + timedelta(seconds=60))
    world.at(65)
    assert world.service.reconcile() == {"not_due": 1}
    assert world.document()["reconcile_at"] == NOW + timedelta(seconds=70)
    world.at(71)
    assert world.service.reconcile() == {"republished": 1}
    assert world.document()["status"] == "running"  # the next claim retakes the expired lease


def test_too_old_ends_timed_out_and_its_callback_becomes_owed(world):
    world.submit(callback_url="https://client.example/done")
    world.at(3600)
    assert world.service.reconcile() == {"timed_out": 1}
    document = world.document()
    assert document["status"] == "failed" and document["error"]["code"] == "timed_out"
    assert document["completed_at"] == world.clock[0]
    assert document["callback"] == {"state": "pending", "attempts": 0}
    # The next pass publishes it, so that the model service sends the callback.
    assert world.service.reconcile() == {"republished_for_callback": 1}
    assert len(world.publisher.messages) == 2


def test_after_max_attempts_it_fails_instead_of_being_republished(world):
    world.submit()
    world.document().update(status="queued", attempts=5)
    world.at(60)
    assert world.service.reconcile() == {"delivery_failed": 1}
    assert world.document()["error"]["code"] == "delivery_failed"
    assert "5 attempts" in world.document()["error"]["message"]
    assert len(world.publisher.messages) == 1


def test_a_pending_callback_is_retried_for_a_bounded_time(world):
    world.submit(callback_url="https://client.example/done")
    world.document().update(status="succeeded", completed_at=NOW, reconcile_at=NOW + timedelta(seconds=10),
                            callback={"state": "pending", "attempts": 3})
    world.at(10)
    assert world.service.reconcile() == {"republished_for_callback": 1}
    world.at(3601)
    world.document()["reconcile_at"] = world.clock[0]
    assert world.service.reconcile() == {"callback_abandoned": 1}
    assert world.document()["callback"]["state"] == "failed" and world.document()["reconcile_at"] is None


def test_a_final_prediction_with_nothing_owed_is_dropped_from_the_watch(world):
    world.submit()
    world.document().update(status="succeeded", reconcile_at=NOW)
    assert world.service.reconcile() == {"nothing_left": 1}
    assert world.document()["reconcile_at"] is None
    assert world.service.reconcile() == {}


def test_a_publish_failure_leaves_it_overdue_for_the_next_pass(world):
    world.submit()
    world.at(60)
    world.publisher.fail_after = 1
    assert world.service.reconcile() == {"publish_failed": 1}
    assert world.document()["redeliveries"] == 0
    world.publisher.fail_after = None
    assert world.service.reconcile() == {"republished": 1}


def test_a_dead_letter_without_real_attempts_is_left_to_the_reconciler(world):
    world.submit()
    world.at(5)
    assert world.service.fail_undelivered("id0", "resnet50", 5) == "republished"
    assert world.document()["status"] == "queued"
    assert world.document()["reconcile_at"] == world.clock[0]  # due at the next pass
    assert world.service.reconcile() == {"republished": 1}


def test_a_dead_letter_of_a_running_prediction_does_not_fail_it(world):
    world.submit()
    world.document().update(status="running", attempts=1, lease_expires_at=NOW + timedelta(seconds=10))
    assert world.service.fail_undelivered("id0", "resnet50", 5) == "not_due"
    assert world.document()["status"] == "running"
