"""A standard Open Inference Protocol client, tritonclient's HTTP one, against the running model
services: metadata, readiness, and the same answers as the API for the sample photos."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.images import all_samples
from tests.integration.test_models import predict_all

pytestmark = pytest.mark.integration


def client_of(stack, model: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url=stack.model_urls[model].removeprefix("http://"),
                                        network_timeout=120)


def infer(client: triton.InferenceServerClient, model: str, images: list[bytes],
          binary: bool) -> tuple[list[dict], triton.InferResult]:
    tensor = triton.InferInput("images", [len(images)], "BYTES")
    data = images if binary else [base64.b64encode(image).decode() for image in images]
    tensor.set_data_from_numpy(np.array(data, dtype=np.object_), binary_data=binary)
    output = triton.InferRequestedOutput("result", binary_data=binary)
    answer = client.infer(model, [tensor], outputs=[output])
    return [json.loads(item) for item in answer.as_numpy("result")], answer


@pytest.mark.parametrize(("model", "answer"), [
    ("efficientnet-lite0", lambda result: result["top_k"][0]["label"]),
    ("cat", lambda result: result["match"]),
])
def test_tritonclient_reads_the_metadata_and_gets_the_apis_answers(stack, model, answer):
    client = client_of(stack, model)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
    assert "binary_tensor_data" in client.get_server_metadata()["extensions"]
    metadata = client.get_model_metadata(model)
    version = metadata["versions"][0]
    assert metadata["name"] == model and metadata["platform"] == "tensorflow_savedmodel"
    assert metadata["inputs"] == [{"name": "images", "datatype": "BYTES", "shape": [-1]}]
    assert [output["name"] for output in metadata["outputs"]] == ["result"]
    assert client.is_model_ready(model, model_version=version)

    photos = all_samples()
    images = [photo.read_bytes() for photo in photos]
    api = predict_all(stack, model)
    expected = [answer(api[photo.name.split("_")[0]]["result"]) for photo in photos]
    for binary in (True, False):
        results, raw = infer(client, model, images, binary)
        assert [answer(result) for result in results] == expected, binary
        assert raw.get_response()["model_version"] == version
        # The same result object as the API's, version for version.
        assert results[0]["weights"] == api[photos[0].name.split("_")[0]]["result"]["weights"]


def test_errors_come_back_to_tritonclient_in_the_protocols_shape(stack):
    client = client_of(stack, "tiny-test")
    with pytest.raises(InferenceServerException) as unknown:
        client.get_model_metadata("efficientnet-lite0")
    assert unknown.value.status() == "404" and "tiny-test" in unknown.value.message()
    with pytest.raises(InferenceServerException) as bad:
        infer(client, "tiny-test", [all_samples()[0].read_bytes(), b"not an image"], binary=True)
    assert bad.value.status() == "400" and bad.value.message().startswith("image 1:")


def _prediction_ids(stack) -> set[str]:
    from google.cloud import firestore

    predictions = firestore.Client(project=stack.config.project).collection("predictions")
    return {snapshot.id for snapshot in predictions.select([]).stream()}


def test_inference_writes_nothing_to_firestore(stack):
    client = client_of(stack, "tiny-test")
    before = _prediction_ids(stack)
    tensor = triton.InferInput("images", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([all_samples()[0].read_bytes()], dtype=np.object_))
    answer = client.infer("tiny-test", [tensor], request_id="v2-probe-1")
    assert answer.get_response()["id"] == "v2-probe-1"
    assert len(json.loads(answer.as_numpy("result")[0])["top_k"]) > 0
    assert _prediction_ids(stack) == before
