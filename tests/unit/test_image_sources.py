"""Images by URL and by gs:// against real local HTTP servers and a fake bucket: the SSRF rules,
redirects checked before they are followed, limits while streaming, timeouts, type from the bytes."""

from __future__ import annotations

import io
import time

import pytest
import requests
from google.api_core import exceptions as gexc
from prediction_api.app import create_api_app
from prediction_api.config import Settings
from prediction_api.errors import (
    ApiError,
    FetchFailed,
    ImageAccessDenied,
    ImageNotFound,
    InvalidImage,
    InvalidRequest,
)
from prediction_api.gcs_sources import GcsImageReader
from prediction_api.image_sources import ImageSources
from prediction_api.service import PredictionService

from tests.callback_urls import MALFORMED
from tests.image_servers import JPEG, Server, endless, recording_server, this_machine_address, trickle
from tests.images import converted, tabby_bytes
from tests.unit.fakes import (
    FakeApiStore,
    FakeBucketReader,
    FakeDns,
    FakeIdempotencyStore,
    FakePublisher,
    FakeUploadStore,
)


def settings(**overrides) -> Settings:
    values = {"callback_allow_loopback": True, "auth_required": False,
              "image_fetch_connect_timeout_seconds": 1.0, "image_fetch_read_timeout_seconds": 0.5,
              "image_fetch_total_seconds": 2.0, **overrides}
    return Settings(project="p", uploads_bucket="b", models=("cat",), **values)


@pytest.fixture
def server():
    served = Server({"/tabby.jpg": (200, JPEG, tabby_bytes()),
                     # PNG bytes under a JPEG header: the type comes from the bytes.
                     "/lying.jpg": (200, JPEG, converted(tabby_bytes(), "PNG")),
                     "/page.jpg": (200, JPEG, b"<html>not an image</html>"),
                     "/gone.jpg": (404, {}, b"missing")})
    yield served
    served.stop()


@pytest.fixture
def recorder():
    recording = recording_server(tabby_bytes())
    yield recording
    recording.stop()


def fetch(sources: ImageSources, *urls: str):
    return sources.fetch(sources.check(list(urls)))


def test_an_image_by_url_is_fetched_and_its_type_read_from_its_bytes(server):
    sources = ImageSources(settings(), FakeBucketReader())
    tabby, lying = fetch(sources, server.url("/tabby.jpg?token=secret"), server.url("/lying.jpg"))
    assert tabby.data == tabby_bytes() and tabby.content_type == "image/jpeg"
    assert tabby.filename == server.url("/tabby.jpg")  # the query (a signed URL's token) is not kept
    assert lying.content_type == "image/png"
    with pytest.raises(InvalidImage):
        fetch(sources, server.url("/page.jpg"))


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/computeMetadata/v1/", "http://metadata.google.internal/x",
    "http://10.0.0.1/cat.jpg", "http://192.168.1.10/cat.jpg", "http://[fd00::1]/cat.jpg",
    "http://[::ffff:169.254.169.254]/x", "http://private.example/cat.jpg", "ftp://cat.example/cat.jpg",
    "file:///etc/passwd", "http://user:pw@cat.example/cat.jpg", "http://[::1/x", "gs://B/x", "gs://bucket",
    "http://does-not-resolve.invalid/x"])
def test_refused_urls_are_invalid_requests_before_anything_is_fetched(url):
    dns = FakeDns({"private.example": ["10.1.2.3"], "cat.example": ["93.184.215.14"]})
    with pytest.raises(InvalidRequest):
        ImageSources(settings(), FakeBucketReader(), resolve=dns).check([url])


@pytest.mark.parametrize("url", MALFORMED)
def test_malformed_authorities_are_invalid_requests(url):
    with pytest.raises(InvalidRequest):
        ImageSources(settings(), FakeBucketReader()).check([url])


def test_loopback_only_where_callbacks_to_loopback_are(server):
    with pytest.raises(InvalidRequest, match="loopback"):
        ImageSources(settings(callback_allow_loopback=False), FakeBucketReader()).check([server.url("/")])
    assert server.hits == []


def test_a_redirect_to_a_private_address_is_refused_and_never_contacted(server, recorder):
    private = this_machine_address()
    # The recorder really answers on that address: were the redirect followed, it would see it.
    assert requests.get(recorder.url("/", private), timeout=5).status_code == 200 and recorder.hits == ["/"]
    recorder.hits.clear()
    for target in (recorder.url("/", private), "http://169.254.169.254/computeMetadata/v1/",
                   f"http://[::ffff:{private}]:{recorder.port}/"):
        server.routes["/hop"] = (302, {"Location": target}, b"")
        with pytest.raises(InvalidRequest, match="redirects to"):
            fetch(ImageSources(settings(), FakeBucketReader()), server.url("/hop"))
    assert recorder.hits == []


def test_redirects_are_followed_to_a_limit(server):
    server.routes["/one"] = (301, {"Location": "/tabby.jpg"}, b"")
    server.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    sources = ImageSources(settings(image_fetch_max_redirects=3), FakeBucketReader())
    assert fetch(sources, server.url("/one"))[0].data == tabby_bytes()
    with pytest.raises(FetchFailed) as failed:
        fetch(sources, server.url("/loop"))
    assert failed.value.details["reason"] == "too_many_redirects"
    assert server.hits.count("/loop") == 4  # the first request and three redirects


def test_a_remote_error_is_fetch_failed_with_its_status(server):
    with pytest.raises(FetchFailed) as failed:
        fetch(ImageSources(settings(), FakeBucketReader()), server.url("/gone.jpg"))
    assert failed.value.status == 422
    assert failed.value.details == {"reason": "remote_status", "remote_status": 404}


def test_the_size_limit_holds_while_streaming(server):
    server.routes["/endless"] = endless()
    server.routes["/declared"] = (200, {**JPEG, "Content-Length": str(10**9)}, b"")
    sources = ImageSources(settings(max_image_bytes=100_000), FakeBucketReader())
    for path in ("/endless", "/declared"):
        with pytest.raises(FetchFailed) as failed:
            fetch(sources, server.url(path))
        assert failed.value.details == {"reason": "too_large", "limit_bytes": 100_000}, path


def test_a_silent_or_trickling_server_times_out_in_bounded_time(server):
    server.routes["/silent"] = trickle(b"xx", 5)  # a byte, then nothing past the read timeout
    server.routes["/trickle"] = trickle(tabby_bytes(), 0.1)  # each read within the read timeout
    sources = ImageSources(settings(), FakeBucketReader())
    for path in ("/silent", "/trickle"):
        started = time.monotonic()
        with pytest.raises(FetchFailed) as failed:
            fetch(sources, server.url(path))
        assert failed.value.details["reason"] == "timeout", path
        assert time.monotonic() - started < 2.0 + 0.5 + 1.0, path


def test_gs_images_read_from_the_bucket_with_clear_errors():
    buckets = FakeBucketReader(account="api@p.iam.gserviceaccount.com")
    buckets.objects[("user-photos", "cats/tabby.jpg")] = tabby_bytes()
    buckets.denied.add("private-photos")
    sources = ImageSources(settings(), buckets)
    [image] = fetch(sources, "gs://user-photos/cats/tabby.jpg")
    assert image.content_type == "image/jpeg" and image.filename == "gs://user-photos/cats/tabby.jpg"
    with pytest.raises(ImageNotFound):
        fetch(sources, "gs://user-photos/missing.jpg")
    with pytest.raises(ImageAccessDenied, match="api@p.iam.gserviceaccount.com"):
        fetch(sources, "gs://private-photos/x.jpg")


class World:
    def __init__(self, **overrides) -> None:
        self.settings = settings(**overrides)
        self.uploads, self.store, self.publisher = FakeUploadStore(), FakeApiStore(), FakePublisher()
        self.buckets = FakeBucketReader(account="api@p.iam.gserviceaccount.com")
        service = PredictionService(self.settings, self.uploads, self.store, self.publisher,
                                    idempotency=FakeIdempotencyStore())
        self.client = create_api_app(service, image_sources=ImageSources(self.settings, self.buckets)) \
            .test_client()

    def post(self, *urls: str, images: int = 0):
        data = {"image_url": list(urls),
                "image": [(io.BytesIO(tabby_bytes()), f"p{i}.jpg") for i in range(images)]}
        return self.client.post("/v1/models/cat/predictions", data=data, content_type="multipart/form-data")

    def nothing_written(self) -> bool:
        return not (self.uploads.objects or self.store.documents or self.publisher.messages)


def test_the_api_stores_a_fetched_image_like_an_upload_after_the_uploads(server):
    world = World()
    response = world.post(server.url("/lying.jpg"), images=1)
    assert response.status_code == 202, response.get_json()
    first, second = response.get_json()["predictions"]
    assert world.store.documents[first["id"]]["filename"] == "p0.jpg"
    assert world.store.documents[second["id"]]["filename"] == server.url("/lying.jpg")
    assert world.uploads.objects[f"uploads/cat/{second['id']}"][1] == "image/png"


def test_the_api_answers_refused_400_and_unfetchable_422_writing_nothing(server):
    world = World(max_images_per_request=2)
    cases = [((server.url("/tabby.jpg"), "http://10.0.0.1/x.jpg"), 400, "invalid_request"),
             ((server.url("/gone.jpg"),), 422, "fetch_failed"),
             (("gs://user-photos/missing.jpg",), 422, "image_not_found"),
             (("gs://user-photos/a.jpg", "gs://user-photos/b.jpg", "gs://user-photos/c.jpg"), 400,
              "too_many_images")]
    world.buckets.denied.add("private-photos")
    cases.append((("gs://private-photos/a.jpg",), 422, "image_access_denied"))
    for urls, status, code in cases:
        response = world.post(*urls)
        assert response.status_code == status, (urls, response.get_json())
        assert response.get_json()["error"]["code"] == code, urls
    assert "api@p.iam.gserviceaccount.com" in response.get_json()["error"]["message"]
    # Counted with uploads: two parts and one URL is three.
    assert world.post(server.url("/tabby.jpg"), images=2).get_json()["error"]["code"] == "too_many_images"
    assert world.nothing_written()
    assert server.hits == ["/gone.jpg"]  # the refused request fetched nothing, not even its good URL


class RefusingClient:
    """A Storage client whose every read of an object answers as Cloud Storage would."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def bucket(self, name: str):
        return self

    def blob(self, name: str):
        return self

    def download_to_file(self, stream, **kwargs):
        raise self.error


class ChunkedClient:
    """A Storage client whose object get writes the object's bytes a chunk at a time, as a download does."""

    def __init__(self, data: bytes) -> None:
        self.data, self.gets = data, 0

    def bucket(self, name: str):
        return self

    def blob(self, name: str):
        return self

    def download_to_file(self, stream, **kwargs):
        self.gets += 1
        for start in range(0, len(self.data), 1000):
            stream.write(self.data[start:start + 1000])


def test_the_storage_adapter_reads_in_one_get_and_stops_a_byte_past_the_limit():
    client = ChunkedClient(b"x" * 2500)
    reader = GcsImageReader(client, None)
    assert reader.read("b", "x.jpg", 2500, 1.0) == b"x" * 2500
    with pytest.raises(ApiError) as refused:
        reader.read("b", "x.jpg", 2499, 1.0)
    assert refused.value.code == "fetch_failed" and "larger than 2499 bytes" in refused.value.message
    assert client.gets == 2  # one get each, nothing asked before it


@pytest.mark.parametrize(("error", "code", "says"), [
    (gexc.Forbidden("no storage.objects.get"), "image_access_denied",
     "api@p.iam.gserviceaccount.com may not read gs://b/x.jpg: "
     "grant it roles/storage.objectViewer on bucket b"),
    (gexc.NotFound("no such bucket"), "image_not_found", "gs://b/x.jpg does not exist"),
    (gexc.ServiceUnavailable("down"), "backend_unavailable", "Cloud Storage is unavailable")])
def test_the_storage_adapter_names_the_account_to_grant(error, code, says):
    reader = GcsImageReader(RefusingClient(error), "api@p.iam.gserviceaccount.com")
    with pytest.raises(ApiError) as raised:
        reader.read("b", "x.jpg", 1000, 1.0)
    assert raised.value.code == code and raised.value.message.startswith(says)


def test_answers_about_image_urls_match_the_openapi_document(server):
    import schemathesis

    world = World()
    world.buckets.objects[("user-photos", "tabby.jpg")] = tabby_bytes()
    operation = schemathesis.openapi.from_dict(world.client.get("/v1/openapi.json").get_json())[
        "/v1/models/{model}/predictions"]["POST"]
    for urls, status in (((server.url("/tabby.jpg"), "gs://user-photos/tabby.jpg"), 202),
                         ((server.url("/gone.jpg"),), 422), (("gs://user-photos/missing.jpg",), 422),
                         (("http://10.0.0.1/x",), 400)):
        response = world.post(*urls)
        assert response.status_code == status, response.get_json()
        operation.validate_response(response)


def test_a_fetched_image_meets_the_pixel_budget_as_an_upload_does(server):
    with pytest.raises(InvalidImage) as refused:
        fetch(ImageSources(settings(max_image_pixels=10_000), FakeBucketReader()), server.url("/tabby.jpg"))
    assert refused.value.details == {"limit_pixels": 10_000}


@pytest.mark.parametrize("location", MALFORMED)
def test_a_redirect_to_a_malformed_url_is_a_clear_error(server, location):
    server.routes["/odd"] = (302, {"Location": location}, b"")
    with pytest.raises((InvalidRequest, FetchFailed)):
        fetch(ImageSources(settings(), FakeBucketReader()), server.url("/odd"))
