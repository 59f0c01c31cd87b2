"""Typed errors of the API. Each carries its HTTP status and a stable code."""

from __future__ import annotations


class ApiError(Exception):
    status = 500
    code = "internal"
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class InvalidRequest(ApiError):
    status = 400
    code = "invalid_request"


class InvalidImage(ApiError):
    status = 400
    code = "invalid_image"


class TooManyImages(ApiError):
    status = 400
    code = "too_many_images"


class InvalidEnvelope(ApiError):
    status = 400
    code = "invalid_envelope"


class FetchFailed(ApiError):
    """An image_url could not be fetched: the remote status, a timeout, too many redirects."""

    status = 422
    code = "fetch_failed"


class ImageNotFound(ApiError):
    """A gs:// image that does not exist."""

    status = 422
    code = "image_not_found"


class ImageAccessDenied(ApiError):
    """A gs:// image the API's service account may not read."""

    status = 422
    code = "image_access_denied"


class NotFound(ApiError):
    status = 404
    code = "not_found"


class MethodNotAllowed(ApiError):
    status = 405
    code = "method_not_allowed"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    code = "unsupported_media_type"


class BackendUnavailable(ApiError):
    """Storage, Firestore or Pub/Sub failed; the client may retry."""

    status = 503
    code = "backend_unavailable"
    retry_after = 1  # the backend's fault is usually brief


class Unauthorized(ApiError):
    """No API key, or one that is unknown or revoked."""

    status = 401
    code = "unauthorized"


class Conflict(ApiError):
    """An Idempotency-Key reused with a different request, or while its first use is in progress."""

    status = 409
    code = "idempotency_conflict"


class NotCancellable(ApiError):
    """A cancel of a prediction that has started or is final; `status` says which it is."""

    status = 409
    code = "not_cancellable"


class TooManyRequests(ApiError):
    """The API key's quota of requests per minute is spent; retry_after says when to retry."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message, retry_after_seconds=retry_after_seconds)
        self.retry_after = retry_after_seconds


# --- Bulk jobs (jobs.py) -------------------------------------------------------------------------

class InvalidManifest(ApiError):
    """A manifest line that is not one gs:// or https:// image URI; `lines` names the first bad ones."""

    status = 400
    code = "invalid_manifest"


class NoImages(ApiError):
    """A job's input matched no image."""

    status = 422
    code = "no_images"


class InputNotReadable(ApiError):
    """The job's input bucket, prefix or manifest does not exist or may not be read."""

    status = 422
    code = "input_not_readable"


class OutputNotWritable(ApiError):
    """The job's output prefix may not be written."""

    status = 422
    code = "output_not_writable"


class JobNotCancellable(ApiError):
    """A cancel of a job that succeeded or failed; `status` says which."""

    status = 409
    code = "not_cancellable"
