"""What the peers (BentoML, Ray Serve) share with the model service, so that only the serving differs.

Runs in a peer's own virtualenv (scripts/peers/install.sh), which has TensorFlow but not
this project: the model service's package and the contract are put on the path from this
checkout. So a peer serves the same SavedModel through the same ImageModel (the decoding,
resizing and normalisation are in the SavedModel's graph; ImageModel keeps the pixel
budget and turns scores into the same top-k result), reads the same settings
(MODEL_NAME, MODEL_REPOSITORY, MAX_BATCH_SIZE ... from model_service/config.py), and
parses and answers the same Open Inference Protocol bodies (open_inference_codec.py):
one client, tritonclient's, drives the three servers with the same requests.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "cloudrun_model"), str(ROOT / "contract")]

from model_service.config import Settings  # noqa: E402
from model_service.errors import InvalidImage, InvalidInferRequest, ServiceError, UnknownModel  # noqa: E402
from model_service.model import ImageModel  # noqa: E402
from model_service.open_inference_codec import (  # noqa: E402
    HEADER_LENGTH,
    InferRequest,
    build_infer_response,
    parse_infer_request,
)
from model_service.repository import ModelRepository  # noqa: E402

JSON = {"Content-Type": "application/json"}

__all__ = ["HEADER_LENGTH", "OpenInferenceBodies", "Settings", "infer", "load_model", "log_batch"]


def log_batch(size: int) -> None:
    """One line per batch, with the key the model service's batch line has (batcher.py), so that
    the benchmark reads the batch sizes that formed from each server's log alike."""
    print(json.dumps({"message": "batch", "batch_size": size}), flush=True)


def load_model(settings: Settings) -> ImageModel:
    """The model as the model service loads it: what the peer's batched function calls
    (ImageModel.predict, one graph call a batch)."""
    model = ImageModel(ModelRepository(settings.model_repository), settings.model_name,
                       settings.model_version, settings.max_image_pixels)
    model.load()
    return model


class OpenInferenceBodies:
    """The v2 request read and the response built, as the model service's v2 routes do them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # The version ImageModel.load resolves to (the peer's model may load in another process).
        self.version = ModelRepository(settings.model_repository).resolve(settings.model_name,
                                                                          settings.model_version)

    def parse(self, name: str, body: bytes, header_length: str | None) -> InferRequest:
        if name != self.settings.model_name:
            raise UnknownModel(f"this service serves the model {self.settings.model_name!r}, not {name!r}")
        return parse_infer_request(body, header_length, self.settings.max_batch_size)

    def respond(self, request: InferRequest, results: list) -> tuple[bytes, dict[str, str]]:
        """The response's body and headers; an image that failed is a 400 naming it, as ours."""
        for index, result in enumerate(results):
            if isinstance(result, InvalidImage):
                raise InvalidInferRequest(f"image {index}: {result.message}")
        return build_infer_response(self.settings.model_name, self.version, request, results)


async def infer(bodies: OpenInferenceBodies, name: str, body: bytes, header_length: str | None,
                predict_one: Callable[[bytes], Awaitable]) -> tuple[int, bytes, dict[str, str]]:
    """An infer request answered: (status, body, headers). Each image goes to the peer's batcher
    on its own (predict_one), as the model service's v2 route hands each to its micro-batcher;
    errors take the protocol's shape, {"error": message}, with the model service's statuses."""
    try:
        request = bodies.parse(name, body, header_length)
        results = await asyncio.gather(*(predict_one(image) for image in request.images))
        answer, headers = bodies.respond(request, list(results))
    except ServiceError as error:
        return error.status, json.dumps({"error": error.message}).encode(), JSON
    return 200, answer, headers
