"""Typed errors of the model service.

HTTP errors tell Pub/Sub what to do: 400 for an envelope that will never parse,
409 while another delivery of the same message is running, 503 for transient
faults. Permanent failures of a prediction are not HTTP errors: they are recorded
as `failed` and acknowledged.
"""

from __future__ import annotations


class ServiceError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidEnvelope(ServiceError):
    status = 400
    code = "invalid_envelope"


class PredictionInProgress(ServiceError):
    status = 409
    code = "in_progress"


class TransientError(ServiceError):
    status = 503
    code = "unavailable"


class ModelNotReady(TransientError):
    code = "model_not_ready"


class PredictionFailure(Exception):
    """A prediction that can never succeed; it ends `failed` with this code."""

    code = "prediction_failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidImage(PredictionFailure):
    code = "invalid_image"


class ImageMissing(PredictionFailure):
    code = "image_missing"


class ModelLoadError(RuntimeError):
    """The configured model cannot be found or read."""


class UnknownPrediction(PredictionFailure):
    """The message names a prediction with no document (expired, or never created)."""

    code = "unknown_prediction"
