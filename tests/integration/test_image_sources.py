"""Images by reference on the real emulators and entry points: an image_url served by a local
server and a gs:// object on the Storage emulator end succeeded; metadata, private and redirected
targets are refused with nothing written and never contacted; a missing object is a clear error."""

from __future__ import annotations

import pytest
import requests
from inference_contract import billable_operations as billed
from inference_contract.image_size import DEFAULT_MAX_IMAGE_BYTES

from scripts.benchmarks import operations
from tests.image_servers import JPEG, Server, recording_server, this_machine_address
from tests.images import tabby_bytes
from tests.integration.client import HEADERS, firestore_document, wait_final
from tests.integration.test_pipeline import _bucket_objects, _prediction_ids

pytestmark = pytest.mark.integration



def post_urls(stack, *urls: str, model: str = "tiny-test") -> requests.Response:
    # multipart fields without a filename, as curl -F image_url=… sends them
    return requests.post(f"{stack.api_url}/v1/models/{model}/predictions",
                         files=[("image_url", (None, url)) for url in urls], headers=HEADERS, timeout=60)


@pytest.fixture
def image_server():
    served = Server({"/tabby.jpg": (200, JPEG, tabby_bytes()), "/gone.jpg": (404, {}, b"")})
    yield served
    served.stop()


@pytest.fixture
def recorder():
    recording = recording_server(tabby_bytes())
    yield recording
    recording.stop()


def test_an_image_url_served_locally_ends_succeeded(stack, image_server):
    response = post_urls(stack, image_server.url("/tabby.jpg"))
    assert response.status_code == 202, response.text
    final = wait_final(response.json()["status_url"])
    assert final["status"] == "succeeded", final
    assert image_server.hits == ["/tabby.jpg"]
    document = firestore_document(stack, final["id"])
    assert document["filename"] == image_server.url("/tabby.jpg")
    assert document["image_uri"].startswith(f"gs://{stack.config.uploads_bucket}/")


def test_metadata_private_and_redirected_urls_are_refused_never_contacted_and_write_nothing(
        stack, image_server, recorder):
    private = this_machine_address()
    # The recorder answers on the private address: a request that reached it would show.
    assert requests.get(recorder.url("/", private), timeout=5).status_code == 200
    assert recorder.hits == ["/"]
    recorder.hits.clear()
    image_server.routes["/to-private"] = (302, {"Location": recorder.url("/", private)}, b"")
    metadata = "http://169.254.169.254/computeMetadata/v1/"
    image_server.routes["/to-metadata"] = (307, {"Location": metadata}, b"")
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    for url, reason in [(metadata, "link-local"),
                        ("http://metadata.google.internal/computeMetadata/v1/", "metadata server"),
                        ("http://10.0.0.1/cat.jpg", "private"),
                        (recorder.url("/", private), "private"),
                        (image_server.url("/to-private"), "private"),
                        (image_server.url("/to-metadata"), "link-local")]:
        response = post_urls(stack, url)
        assert response.status_code == 400, (url, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "image_url" in error["message"], (url, error)
        assert reason in error["message"], (url, error)
    assert recorder.hits == []
    assert image_server.hits == ["/to-private", "/to-metadata"]
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions


def test_an_unfetchable_url_is_fetch_failed_with_the_remote_status(stack, image_server):
    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    response = post_urls(stack, image_server.url("/gone.jpg"))
    assert response.status_code == 422, response.text
    assert response.json()["error"] | {"message": None} == {
        "code": "fetch_failed", "message": None, "reason": "remote_status", "remote_status": 404}
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions


def test_a_gs_image_on_the_storage_emulator_ends_succeeded_and_a_missing_one_is_clear(stack):
    from google.cloud import storage

    client = storage.Client(project=stack.config.project)
    bucket = client.bucket("user-photos")
    if not bucket.exists():
        bucket = client.create_bucket("user-photos")
    bucket.blob("cats/tabby.jpg").upload_from_string(tabby_bytes(), content_type="application/octet-stream")
    response = post_urls(stack, "gs://user-photos/cats/tabby.jpg")
    assert response.status_code == 202, response.text
    final = wait_final(response.json()["status_url"])
    assert final["status"] == "succeeded", final
    assert firestore_document(stack, final["id"])["content_type"] == "image/jpeg"  # from the bytes

    objects, predictions = _bucket_objects(stack), _prediction_ids(stack)
    for uri in ("gs://user-photos/cats/missing.jpg", "gs://no-such-bucket-here/x.jpg"):
        missing = post_urls(stack, uri)
        assert missing.status_code == 422, missing.text
        error = missing.json()["error"]
        assert error["code"] == "image_not_found" and uri in error["message"], error
    # An object over the size limit: refused from one object get (no metadata get before it).
    limit = stack.config.max_image_bytes or DEFAULT_MAX_IMAGE_BYTES
    bucket.blob("cats/huge.jpg").upload_from_string(b"\xff" * (limit + 1))
    before = operations.read_all({"api": stack.api_url})
    huge = post_urls(stack, "gs://user-photos/cats/huge.jpg")
    assert huge.status_code == 422 and huge.json()["error"]["reason"] == "too_large", huge.text
    counted = operations.per_prediction(before, operations.read_all({"api": stack.api_url}), 1)["api"]
    assert counted[billed.STORAGE_CLASS_B] == 1 and counted[billed.FIRESTORE_WRITE] == 0
    assert _bucket_objects(stack) == objects and _prediction_ids(stack) == predictions
