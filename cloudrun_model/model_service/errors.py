"""Typed errors of the model service.

HTTP errors tell Pub/Sub what to do: 400 for an envelope that will never parse,
409 while another delivery of the same message is running (a
lifecycle error from the contract, mapped below), 503 for transient
faults. Permanent failures of a prediction are not HTTP errors: they are recorded
as `failed` and acknowledged.
"""

from __future__ import annotations

from inference_contract.jobs import ShardInProgress
from inference_contract.lifecycle import LifecycleError, PredictionInProgress


class ServiceError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidEnvelope(ServiceError):
    status = 400
    code = "invalid_envelope"


class TransientError(ServiceError):
    status = 503
    code = "unavailable"


class ModelNotReady(TransientError):
    code = "model_not_ready"


class InvalidInferRequest(ServiceError):
    """An Open Inference Protocol request that cannot be run as sent (open_inference_codec.py)."""

    status = 400
    code = "invalid_request"


class UnsupportedEncoding(ServiceError):
    status = 415
    code = "unsupported_encoding"


class UnknownModel(ServiceError):
    """A /v2 path naming a model or version this service does not serve."""

    status = 404
    code = "model_not_found"


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


# The contract's lifecycle errors as this service answers them (app.py's handler): a
# delivery of a prediction that another delivery is running is retried by Pub/Sub later.
# Any other is unexpected here, a 500 (Pub/Sub retries it too).
LIFECYCLE_STATUS = {PredictionInProgress: (409, "in_progress"), ShardInProgress: (409, "in_progress")}


def lifecycle_status(error: LifecycleError) -> tuple[int, str]:
    """(HTTP status, error code) for a lifecycle error that reaches the app."""
    for kind, answer in LIFECYCLE_STATUS.items():
        if isinstance(error, kind):
            return answer
    return 500, "internal"
