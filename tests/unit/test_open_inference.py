"""The Open Inference Protocol (v2) routes and codec: bodies built and read by tritonclient's own
serializer (InferenceServerClient.generate_request_body / parse_response_body), hand-made
bodies only where they are malformed on purpose."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import tritonclient.http as triton
from model_service.app import create_app
from model_service.batcher import MicroBatcher
from model_service.errors import InvalidInferRequest
from model_service.handler import PredictionHandler
from model_service.open_inference import OpenInference
from model_service.open_inference_codec import (
    HEADER_LENGTH,
    deserialize_bytes,
    parse_infer_request,
    serialize_bytes,
)

from tests.unit.fakes import FakeImageReader, FakeModel, FakeNotifier, FakeServiceStore

MODEL = "resnet50"
INFER = f"/v2/models/{MODEL}/infer"


def make_client(model: FakeModel, max_images: int = 4):
    store = FakeServiceStore()
    batcher = MicroBatcher(model.predict, max_batch_size=8, max_delay_seconds=0.05, timeout_seconds=5)
    handler = PredictionHandler(MODEL, model, batcher.predict, store, FakeImageReader(), FakeNotifier(),
                                lease_seconds=10)
    service = OpenInference(MODEL, model, batcher.predict_all, max_images)
    return create_app(handler, model, open_inference=service).test_client(), store


@pytest.fixture
def model() -> FakeModel:
    return FakeModel()


def request_body(images: list[bytes], binary_input: bool, binary_output: bool | None,
                 request_id: str = "") -> tuple[bytes, dict]:
    tensor = triton.InferInput("images", [len(images)], "BYTES")
    data = images if binary_input else [base64.b64encode(image).decode() for image in images]
    tensor.set_data_from_numpy(np.array(data, dtype=np.object_), binary_data=binary_input)
    outputs = None if binary_output is None else [triton.InferRequestedOutput("result",
                                                                              binary_data=binary_output)]
    body, json_size = triton.InferenceServerClient.generate_request_body([tensor], outputs,
                                                                         request_id=request_id)
    return body, ({HEADER_LENGTH: str(json_size)} if json_size is not None else {})


def results(response) -> tuple[list[dict], dict]:
    header = response.headers.get(HEADER_LENGTH)
    parsed = triton.InferenceServerClient.parse_response_body(
        response.data, header_length=int(header) if header else None)
    return [json.loads(item) for item in parsed.as_numpy("result")], parsed.get_response()


@pytest.mark.parametrize(("binary_input", "binary_output"),
                         [(False, False), (True, True), (True, False), (False, True), (True, None)])
def test_infer_answers_each_image_in_json_and_binary(model, binary_input, binary_output):
    client, store = make_client(model)
    body, headers = request_body([b"one", b"two"], binary_input, binary_output, request_id="r-1")
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 200, response.data
    answers, document = results(response)
    expected = model.predict([b"one"])[0]
    assert answers == [expected, expected]
    assert document["model_name"] == MODEL and document["model_version"] == "4" and document["id"] == "r-1"
    # A binary output's bytes follow the header (the request's default when it names no output).
    assert (HEADER_LENGTH in response.headers) == (binary_output is not False)
    # Through the batcher, as one batch; and nothing stored.
    assert [b"one", b"two"] in model.batches
    assert store.documents == {}


def test_metadata_and_health(model):
    client, _ = make_client(model)
    assert client.get("/v2/health/live").status_code == 200
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert "binary_tensor_data" in client.get("/v2").get_json()["extensions"]
    metadata = client.get(f"/v2/models/{MODEL}").get_json()
    assert metadata["versions"] == ["4"]
    assert metadata["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1]}]
    assert metadata["outputs"] == [{"name": "result", "datatype": "BYTES", "shape": [-1]}]
    assert client.get(f"/v2/models/{MODEL}/versions/4").status_code == 200
    assert client.get(f"/v2/models/{MODEL}/ready").status_code == 200
    body, headers = request_body([b"one"], True, True)
    by_version = client.post(f"/v2/models/{MODEL}/versions/4/infer", data=body, headers=headers)
    assert by_version.status_code == 200 and results(by_version)[1]["model_version"] == "4"


def test_a_loading_model_is_not_ready_and_refuses_inference():
    client, _ = make_client(FakeModel(ready=False))
    assert client.get("/v2/health/live").status_code == 200
    # The protocol's "false" is a 4xx; inference while loading is a 503.
    assert client.get("/v2/health/ready").status_code == 400
    assert client.get(f"/v2/models/{MODEL}/ready").status_code == 400
    body, headers = request_body([b"one"], True, True)
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 503 and "loading" in response.get_json()["error"]


@pytest.mark.parametrize("path", ["/v2/models/other", "/v2/models/other/ready", "/v2/models/other/infer",
                                  f"/v2/models/{MODEL}/versions/3", f"/v2/models/{MODEL}/versions/3/infer",
                                  "/v2/repository/index"])
def test_other_models_versions_and_endpoints_are_404_in_the_protocols_shape(model, path):
    client, _ = make_client(model)
    body, headers = request_body([b"one"], True, True)
    response = (client.post(path, data=body, headers=headers) if path.endswith(("infer", "index"))
                else client.get(path))
    assert response.status_code == 404
    assert isinstance(response.get_json()["error"], str)


def test_a_bad_image_fails_the_request_naming_it(model):
    client, store = make_client(model)
    body, headers = request_body([b"good", b"bad image"], True, True)
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 400
    assert response.get_json() == {"error": "image 1: the image could not be decoded"}


def test_too_many_images_and_too_large_bodies_are_refused(model):
    client, _ = make_client(model, max_images=2)
    body, headers = request_body([b"a", b"b", b"c"], True, True)
    response = client.post(INFER, data=body, headers=headers)
    assert response.status_code == 400 and "at most 2 images" in response.get_json()["error"]
    huge = client.post(INFER, data=b"x" * (OpenInference(MODEL, model, None, 2).max_body_bytes + 1))
    assert huge.status_code == 413 and isinstance(huge.get_json()["error"], str)


def test_a_compressed_request_is_refused(model):
    client, _ = make_client(model)
    body, headers = request_body([b"a"], True, True)
    response = client.post(INFER, data=body, headers={**headers, "Content-Encoding": "gzip"})
    assert response.status_code == 415


def _json(document) -> bytes:
    return json.dumps(document).encode()


def _input(**fields) -> dict:
    return {"name": "images", "datatype": "BYTES", "shape": [1], **fields}


@pytest.mark.parametrize(("body", "header", "message"), [
    (b"not json", None, "not JSON"),
    (b"\xff\xfe", None, "not JSON"),
    (_json([1]), None, "JSON object"),
    (_json({"inputs": []}), None, "inputs must be a list"),
    (_json({"inputs": [_input(name="pixels", data=["YQ=="])]}), None, "exactly one input"),
    (_json({"inputs": [_input(data=["YQ=="]), _input(data=["YQ=="])]}), None, "exactly one input"),
    (_json({"inputs": [_input(datatype="FP32", data=[1.0])]}), None, "must be BYTES"),
    (_json({"inputs": [_input(shape="1", data=["YQ=="])]}), None, "shape"),
    (_json({"inputs": [_input(shape=[-1], data=["YQ=="])]}), None, "shape"),
    (_json({"inputs": [_input(shape=[2], data=["YQ=="])]}), None, "shape [2] but 1 elements"),
    (_json({"inputs": [_input()]}), None, "needs data"),
    (_json({"inputs": [_input(data=["not base64!"])]}), None, "image 0 is not base64"),
    (_json({"inputs": [_input(data=[7])]}), None, "base64 string"),
    (_json({"inputs": [_input(shape=[0], data=[])]}), None, "no image"),
    (_json({"inputs": [_input(data=["YQ=="])], "outputs": [{"name": "scores"}]}), None, "one output"),
    (_json({"inputs": [_input(data=["YQ=="])],
            "outputs": [{"name": "result", "parameters": {"classification": 3}}]}), None, "classification"),
    (_json({"inputs": [_input(data=["YQ=="])], "parameters": []}), None, "parameters"),
    (_json({"inputs": [_input(data=["YQ=="])], "id": 5}), None, "id must be a string"),
    (_json({"inputs": [_input(data=["YQ=="])]}), "many", HEADER_LENGTH),
    (_json({"inputs": [_input(data=["YQ=="])]}), "999", HEADER_LENGTH),
    (_json({"inputs": [_input(parameters={"binary_data_size": 9})]}) + b"\x01\x00\x00\x00a",
     "header", "binary_data_size"),
    (_json({"inputs": [_input(parameters={"binary_data_size": 5})]}) + b"\x09\x00\x00\x00a",
     "header", "declares 9 bytes"),
    (_json({"inputs": [_input(parameters={"binary_data_size": 2})]}) + b"\x01\x00",
     "header", "cut inside"),
    (_json({"inputs": [_input(parameters={"binary_data_size": 5})]}) + b"\x01\x00\x00\x00ajunk",
     "header", "4 bytes after"),
    (_json({"inputs": [_input(data=["YQ=="], parameters={"binary_data_size": 0})]}), "header", "both"),
    (b"[" * 100_000, None, "nested too deeply"),
])
def test_malformed_requests_are_refused_saying_what(body, header, message):
    if header == "header":
        header = str(body.index(b"}]}") + 3)
    with pytest.raises(InvalidInferRequest, match=re.escape(message)):
        parse_infer_request(body, header, max_images=4)


@pytest.mark.parametrize("body", [b"not json", _json({"inputs": [_input(data=["%%"])]})])
def test_malformed_requests_answer_400_in_the_protocols_shape(model, body):
    client, _ = make_client(model)
    response = client.post(INFER, data=body)
    assert response.status_code == 400 and isinstance(response.get_json()["error"], str)


def test_json_data_may_be_nested_rows_however_deep():
    body = _json({"inputs": [_input(shape=[2, 1], data=[["YQ=="], ["Yg=="]])]})
    assert parse_infer_request(body, None, max_images=4).images == [b"a", b"b"]
    deep = _json({"inputs": [_input(shape=[2], data=[[[["YQ=="]], []], "Yg=="])]})
    assert parse_infer_request(deep, None, max_images=4).images == [b"a", b"b"]
    # Nearly as deep as json.loads allows (Python's recursion limit): answered, not a crash.
    nested = b'{"inputs": [{"name": "images", "datatype": "BYTES", "shape": [1], "data": ' \
        + b"[" * 900 + b'"YQ=="' + b"]" * 900 + b"}]}"
    assert parse_infer_request(nested, None, max_images=4).images == [b"a"]


def test_bytes_tensors_round_trip_with_tritonclients_encoding():
    from tritonclient.utils import serialize_byte_tensor

    elements = [b"", b"\x00\xff" * 3, b"jpeg"]
    encoded = serialize_byte_tensor(np.array(elements, dtype=np.object_)).item()
    assert encoded == serialize_bytes(elements)
    assert deserialize_bytes(encoded) == elements
