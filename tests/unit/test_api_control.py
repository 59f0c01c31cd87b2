"""Cancel, list and deadline_seconds through the HTTP API, against in-memory fakes."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.images import tabby_bytes
from tests.unit.test_api import NOW, World, assert_error
from tests.unit.test_security import keyed_world, post_with


class Ticking:
    """A clock one second later at each call, so that predictions have distinct created_at."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        self.now += timedelta(seconds=1)
        return self.now


def _cancel(world, prediction_id: str, key: str | None = None):
    return world.client.post(f"/v1/predictions/{prediction_id}:cancel",
                             headers={"X-API-Key": key} if key else {})


def _list(world, key: str | None = None, **query):
    return world.client.get("/v1/predictions", query_string=query, headers={"X-API-Key": key} if key else {})


@pytest.fixture
def world() -> World:
    return World()


# --- cancel ----------------------------------------------------------------------------------

def test_a_queued_prediction_is_cancelled_and_a_second_cancel_answers_the_same():
    world = World(callback_allow_http=False)
    world.post_images(tabby_bytes(), callback_url="https://cb.example/done")
    first = _cancel(world, "id0")
    assert first.status_code == 200 and first.get_json()["status"] == "cancelled"
    stored = world.store.documents["id0"]
    assert stored["status"] == "cancelled" and stored["completed_at"] == NOW
    assert stored["callback"]["state"] == "pending" and stored["reconcile_at"] == NOW
    again = _cancel(world, "id0")
    assert again.status_code == 200 and again.get_json() == first.get_json()
    assert world.client.get("/v1/predictions/id0").get_json()["status"] == "cancelled"


@pytest.mark.parametrize("status", ["running", "succeeded", "failed"])
def test_a_running_or_final_prediction_is_409_not_cancellable_with_its_status(world, status):
    world.post_images(tabby_bytes())
    world.store.documents["id0"]["status"] = status
    response = _cancel(world, "id0")
    assert_error(response, 409, "not_cancellable")
    assert response.get_json()["error"]["status"] == status
    assert world.store.documents["id0"]["status"] == status


@pytest.mark.parametrize("prediction_id", ["missing", "__x__", "a.b"])
def test_cancelling_an_unknown_prediction_is_404(world, prediction_id):
    assert_error(_cancel(world, prediction_id), 404, "not_found")


def test_only_the_key_that_created_a_prediction_can_cancel_it():
    world, _, _, alice, bob = keyed_world()
    assert post_with(world, alice).status_code == 202
    assert_error(_cancel(world, "id0", bob), 404, "not_found")
    assert world.store.documents["id0"]["status"] == "queued"
    assert_error(_cancel(world, "id0"), 401, "unauthorized")
    assert _cancel(world, "id0", alice).get_json()["status"] == "cancelled"


def test_another_method_on_the_cancel_path_is_405_and_cancels_nothing(world):
    world.post_images(tabby_bytes())
    for method in ("GET", "PUT", "DELETE"):
        response = world.client.open("/v1/predictions/id0:cancel", method=method)
        assert_error(response, 405, "method_not_allowed")
        assert "POST" in response.headers["Allow"]
    assert world.store.documents["id0"]["status"] == "queued"
    assert_error(world.client.post("/v1/predictions"), 405, "method_not_allowed")


# --- deadline_seconds --------------------------------------------------------------------------

def test_deadline_seconds_is_recorded_as_deadline_at(world):
    assert world.post_images(tabby_bytes(), deadline_seconds="30").status_code == 202
    assert world.store.documents["id0"]["deadline_at"] == NOW + timedelta(seconds=30)
    assert world.client.get("/v1/predictions/id0").get_json()["deadline_at"] == (
        NOW + timedelta(seconds=30)).isoformat()
    raw = world.client.post("/v1/models/cat/predictions?deadline_seconds=5", data=tabby_bytes(),
                            content_type="image/jpeg")
    assert raw.status_code == 202
    assert world.store.documents["id1"]["deadline_at"] == NOW + timedelta(seconds=5)


@pytest.mark.parametrize("value", ["0", "-1", "3601", "1.5", "soon", "1e3"])
def test_a_deadline_out_of_range_is_400_with_nothing_written(world, value):
    assert_error(world.post_images(tabby_bytes(), deadline_seconds=value), 400, "invalid_request")
    assert world.nothing_written()


def test_the_deadline_is_part_of_an_idempotent_request(world):
    headers = {"Idempotency-Key": "k1"}
    from io import BytesIO

    def post(**form):
        return world.client.post("/v1/models/cat/predictions", headers=headers,
                                 content_type="multipart/form-data",
                                 data={"image": [(BytesIO(tabby_bytes()), "a.jpg")], **form})

    assert post(deadline_seconds="10").status_code == 202
    assert post(deadline_seconds="10").headers.get("Idempotent-Replayed") == "true"
    assert_error(post(deadline_seconds="20"), 409, "idempotency_conflict")


# --- list ------------------------------------------------------------------------------------

def test_the_list_is_newest_first_in_pages_and_filtered():
    world = World(clock=Ticking())
    for model in ("cat", "resnet50", "cat", "cat", "resnet50"):
        assert world.post_images(tabby_bytes(), model=model).status_code == 202
    world.store.documents["id2"]["status"] = "succeeded"
    seen, token = [], None
    while True:
        page = _list(world, page_size="2", **({"page_token": token} if token else {})).get_json()
        assert len(page["predictions"]) <= 2
        seen += [p["id"] for p in page["predictions"]]
        token = page["next_page_token"]
        if token is None:
            break
    assert seen == ["id4", "id3", "id2", "id1", "id0"]
    cats = _list(world, model="cat").get_json()
    assert [p["id"] for p in cats["predictions"]] == ["id3", "id2", "id0"] and cats["next_page_token"] is None
    done = _list(world, model="cat", status="succeeded").get_json()["predictions"]
    assert [(p["id"], p["status"]) for p in done] == [("id2", "succeeded")]
    assert set(done[0]) >= {"id", "model", "status", "created_at", "result"}


def test_a_key_lists_only_its_own_predictions():
    world, _, _, alice, bob = keyed_world()
    assert post_with(world, alice).status_code == 202
    assert [p["id"] for p in _list(world, alice).get_json()["predictions"]] == ["id0"]
    assert _list(world, bob).get_json() == {"predictions": [], "next_page_token": None}
    assert_error(_list(world), 401, "unauthorized")


@pytest.mark.parametrize("query", [{"page_size": "0"}, {"page_size": "101"}, {"page_size": "x"},
                                   {"page_size": ""}, {"status": ""}, {"model": ""},
                                   {"status": "lost"}, {"model": "nope"}, {"page_token": "not-a-token"},
                                   {"page_token": "eyJjIjoxfQ"}])
def test_bad_list_parameters_are_400(world, query):
    assert_error(_list(world, **query), 400, "invalid_request")


def test_a_bad_deadline_is_refused_before_any_image_url_is_fetched():
    from tests.unit.test_image_sources import World as SourcesWorld

    world = SourcesWorld()
    world.buckets.denied.add("private-photos")  # a fetch would answer 422 image_access_denied
    response = world.client.post("/v1/models/cat/predictions", content_type="multipart/form-data",
                                 data={"image_url": ["gs://private-photos/a.jpg"], "deadline_seconds": "0"})
    assert_error(response, 400, "invalid_request")
    assert "deadline_seconds" in response.get_json()["error"]["message"] and world.nothing_written()
