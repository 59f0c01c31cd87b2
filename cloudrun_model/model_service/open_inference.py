"""The Open Inference Protocol's answers for the one model this service serves, free of HTTP.

Inference goes through the same micro-batcher as pushed predictions, so v2 callers and
queued predictions share batches; nothing is written to Firestore.
"""

from __future__ import annotations

from collections.abc import Callable

from .batcher import Inference
from .errors import InvalidInferRequest, ModelNotReady, PredictionFailure, UnknownModel
from .handler import Model
from .open_inference_codec import InferRequest, body_limit, model_metadata


class OpenInference:
    def __init__(self, model_name: str, model: Model,
                 predict_all: Callable[[list[bytes]], list[Inference]], max_images: int) -> None:
        self.model_name = model_name
        self.max_images = max_images
        self.max_body_bytes = body_limit(max_images)
        self._model = model
        self._predict_all = predict_all

    @property
    def ready(self) -> bool:
        return self._model.ready

    def check(self, name: str, version: str | None = None) -> None:
        """404 for another model or version; 503 while the version cannot be known yet."""
        if name != self.model_name:
            raise UnknownModel(f"this service serves the model {self.model_name!r}, not {name!r}")
        if version is not None:
            if not self._model.ready:
                raise ModelNotReady("the model is still loading")
            if version != str(self._model.info.version):
                raise UnknownModel(f"{name} serves version {self._model.info.version}, not {version!r}")

    def metadata(self, name: str, version: str | None = None) -> dict:
        self.check(name, version)
        if not self._model.ready:
            raise ModelNotReady("the model is still loading")
        return model_metadata(name, self._model.info.version)

    def infer(self, name: str, version: str | None, request: InferRequest) -> tuple[int, list[dict]]:
        """The served version and one result per image; an image that fails is a 400 naming it."""
        self.check(name, version)
        if not self._model.ready:
            raise ModelNotReady("the model is still loading")
        served = self._model.info.version
        results = []
        for index, inference in enumerate(self._predict_all(request.images)):
            if isinstance(inference.result, PredictionFailure):
                raise InvalidInferRequest(f"image {index}: {inference.result.message}")
            results.append(inference.result)
        return served, results
