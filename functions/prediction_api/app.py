"""Flask apps for the API, the dead-letter handler and the reconciler: HTTP in, PredictionService calls out."""

from __future__ import annotations

import logging

from flask import Flask, Request, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from .auth import Authenticator, RateLimiter
from .config import ConfigError
from .errors import (
    ApiError, InvalidRequest, MethodNotAllowed, NotFound, PayloadTooLarge,
    TooManyImages, UnsupportedMediaType,
)
from .images import SUPPORTED_CONTENT_TYPES, Upload, validate_image
from .push import parse_dead_letter
from .service import PredictionService

log = logging.getLogger(__name__)

_HTTP_ERRORS = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}


def _register_error_handlers(app: Flask) -> None:
    """The one place where errors become HTTP responses."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
        return jsonify(error.to_json()), error.status, headers

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, RequestEntityTooLarge):
            return api_error(PayloadTooLarge("the request body is larger than this API accepts"))
        typed = _HTTP_ERRORS.get(error.code or 500)
        if typed:
            return api_error(typed(error.description or typed.code))
        body = {"error": {"code": (error.name or "error").lower().replace(" ", "_"),
                          "message": error.description}}
        return jsonify(body), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        return jsonify({"error": {"code": "internal", "message": "internal error"}}), 500


def read_images(req: Request, max_bytes: int, max_images: int) -> tuple[list[Upload], str | None]:
    """The images and callback URL of a prediction request, validated."""
    mimetype = req.mimetype
    if mimetype == "multipart/form-data":
        parts = req.files.getlist("image")
        if not parts:
            raise InvalidRequest("no image: send one or more multipart parts named 'image'")
        if len(parts) > max_images:
            raise TooManyImages(f"{len(parts)} images sent; at most {max_images} per request")
        images = [validate_image(part.read(max_bytes + 1), max_bytes, part.filename or None)
                  for part in parts]
        return images, req.form.get("callback_url") or None
    if mimetype.startswith("image/"):
        if mimetype not in SUPPORTED_CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"{mimetype} is not supported; send JPEG, PNG, WebP, GIF or BMP")
        if (req.content_length or 0) > max_bytes:
            raise PayloadTooLarge(
                f"the image is {req.content_length} bytes; the limit is {max_bytes} bytes per image",
                limit_bytes=max_bytes)
        return [validate_image(req.get_data(), max_bytes)], req.args.get("callback_url") or None
    raise UnsupportedMediaType(
        f"Content-Type {mimetype or '(none)'} is not accepted; send multipart/form-data "
        "with 'image' parts, or a raw image body with an image/* Content-Type")


def _apply_cors(app: Flask, allowed_origins: tuple[str, ...]) -> None:
    @app.before_request
    def answer_preflight():
        # Preflights get an empty answer; the grant, if any, is added below.
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return "", 204
        return None

    @app.after_request
    def add_cors_headers(response):
        origin = request.headers.get("Origin")
        if origin and (origin in allowed_origins or "*" in allowed_origins):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, X-API-Key, Idempotency-Key"
            response.headers["Access-Control-Expose-Headers"] = "Retry-After, Idempotent-Replayed"
            response.headers["Access-Control-Max-Age"] = "3600"
        response.vary.add("Origin")
        return response


# Paths answered without an API key: health checks.
_OPEN_ENDPOINTS = {"health"}


def _require_api_key(app: Flask, authenticator: Authenticator, limiter: RateLimiter) -> None:
    @app.before_request
    def authenticate():
        g.api_key_id = None
        if request.method == "OPTIONS" or request.url_rule is None or request.endpoint in _OPEN_ENDPOINTS:
            return None  # preflights, health, and unknown paths (404) need no key
        key = authenticator.authenticate(request.headers.get("X-API-Key"))
        limiter.take(key)
        g.api_key_id = key.id
        return None


def create_api_app(service: PredictionService, authenticator: Authenticator | None = None,
                   limiter: RateLimiter | None = None) -> Flask:
    settings = service.settings
    if settings.auth_required and authenticator is None:
        raise ConfigError("AUTH_REQUIRED is true but no API key store was configured")
    app = Flask("prediction_api")
    # Whole-request cap; the per-image limit is checked as each part is read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_images_per_request * settings.max_image_bytes + (1 << 20)
    # Behind Google's front end the scheme and host come from X-Forwarded-*. main.py
    # dispatches through app.wsgi_app, so this runs under functions-framework too.
    app.wsgi_app = ProxyFix(app.wsgi_app, x_proto=1, x_host=1)
    _register_error_handlers(app)
    _apply_cors(app, settings.allowed_origins)
    if settings.auth_required:
        _require_api_key(app, authenticator, limiter or RateLimiter())

    def status_url(prediction_id: str) -> str:
        base = settings.public_base_url or request.host_url.rstrip("/")
        return f"{base}/v1/predictions/{prediction_id}"

    @app.post("/v1/models/<model>/predictions")
    def create_predictions(model: str):
        service.check_model(model)
        images, callback_url = read_images(
            request, settings.max_image_bytes, settings.max_images_per_request)
        callback_url = service.check_callback_url(callback_url)
        documents, replayed = service.submit_once(
            model, images, callback_url, g.get("api_key_id"), request.headers.get("Idempotency-Key"))
        accepted = [{"id": d["id"], "status": d["status"], "model": d["model"],
                     "status_url": status_url(d["id"])} for d in documents]
        body = accepted[0] if len(accepted) == 1 else {"predictions": accepted}
        response = jsonify(body)
        if replayed:
            response.headers["Idempotent-Replayed"] = "true"
        return response, 202

    @app.get("/v1/predictions/<prediction_id>")
    def get_prediction(prediction_id: str):
        raw_wait = request.args.get("wait", "0")
        try:
            wait = float(raw_wait)
        except ValueError:
            raise InvalidRequest(f"wait must be a number of seconds, got {raw_wait!r}") from None
        if not 0 <= wait <= settings.max_wait_seconds:
            raise InvalidRequest(f"wait must be between 0 and {settings.max_wait_seconds} seconds")
        return jsonify(service.get(prediction_id, wait, g.get("api_key_id")))

    @app.get("/v1/models")
    def list_models():
        return jsonify({"models": service.models()})

    @app.get("/healthz")
    @app.get("/v1/health")
    def health():
        # Cloud Run answers external paths ending in "z" itself, hence /v1/health.
        return jsonify({"status": "ok"})

    return app


def create_dead_letter_app(service: PredictionService) -> Flask:
    app = Flask("dead_letter")
    _register_error_handlers(app)

    @app.post("/")
    def dead_letter():
        letter = parse_dead_letter(request.get_json(silent=True))
        service.fail_undelivered(letter.prediction_id, letter.model, letter.delivery_attempts)
        return "", 204

    return app


def create_reconcile_app(service: PredictionService) -> Flask:
    """The reconciler's endpoint: Cloud Scheduler (locally, the stack) POSTs here every minute.

    It is not public: in the cloud only the scheduler's service account may invoke it.
    """
    app = Flask("reconcile")
    _register_error_handlers(app)

    @app.post("/")
    def reconcile():
        return jsonify({"actions": service.reconcile()})

    return app
