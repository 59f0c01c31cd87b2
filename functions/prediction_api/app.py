"""Flask apps for the API, the dead-letter handler and reconciler: HTTP in, PredictionService calls out."""

from __future__ import annotations

import logging
import time

from flask import Flask, Request, Response, g, jsonify, request
from inference_contract.image_size import DEFAULT_MAX_IMAGE_PIXELS
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import BaseConverter

from .auth import Authenticator, RateLimiter
from .bodies import read_bounded
from .config import ConfigError
from .control import parse_deadline
from .errors import (
    ApiError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyImages,
    UnsupportedMediaType,
)
from .image_sources import FIELD as IMAGE_URL_FIELD
from .image_sources import ImageSources
from .images import SUPPORTED_CONTENT_TYPES, Upload, validate_image
from .job_routes import register_job_routes
from .jobs import JobService
from .metrics import ApiMetrics
from .openapi import openapi_document
from .push import parse_dead_letter
from .service import PredictionService, valid_prediction_id

log = logging.getLogger(__name__)

_HTTP_ERRORS = {404: NotFound, 405: MethodNotAllowed, 413: PayloadTooLarge}


def framework_error(error: HTTPException):
    """An HTTP error raised by functions-framework's own router, before any of our apps
    sees the request (/favicon.ico, a path its rule cannot match such as one with a
    newline): the same JSON error body as every other answer."""
    typed = _HTTP_ERRORS.get(error.code or 500)
    code = typed.code if typed else (error.name or "error").lower().replace(" ", "_")
    return jsonify({"error": {"code": code, "message": error.description}}), error.code


def _register_error_handlers(app: Flask) -> None:
    """The one place where errors become HTTP responses."""

    @app.errorhandler(ApiError)
    def api_error(error: ApiError):
        response = jsonify(error.to_json())
        if error.retry_after:
            response.headers["Retry-After"] = str(error.retry_after)
        return response, error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if isinstance(error, RequestEntityTooLarge):
            return api_error(PayloadTooLarge("the request body is larger than this API accepts"))
        typed = _HTTP_ERRORS.get(error.code or 500)
        if typed:
            response, status = api_error(typed(error.description or typed.code))
            if getattr(error, "valid_methods", None):  # a 405 names what is allowed (RFC 9110)
                response.headers["Allow"] = ", ".join(error.valid_methods)
            return response, status
        body = {"error": {"code": (error.name or "error").lower().replace(" ", "_"),
                          "message": error.description}}
        return jsonify(body), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error")
        return jsonify({"error": {"code": "internal", "message": "internal error"}}), 500


def image_urls(req: Request) -> list[str]:
    """The image_url fields of a multipart request (an empty field names no image)."""
    return [url for url in req.form.getlist(IMAGE_URL_FIELD) if url] \
        if req.mimetype == "multipart/form-data" else []


def read_images(req: Request, max_bytes: int, max_images: int,
                max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
                url_count: int = 0) -> tuple[list[Upload], str | None]:
    """The uploaded images and callback URL of a prediction request, validated; url_count
    images named by image_url count against max_images too."""
    mimetype = req.mimetype
    if mimetype == "multipart/form-data":
        parts = req.files.getlist("image")
        if not parts and not url_count:
            raise InvalidRequest("no image: send one or more multipart parts named 'image' "
                                 f"or fields named '{IMAGE_URL_FIELD}'")
        if len(parts) + url_count > max_images:
            raise TooManyImages(f"{len(parts) + url_count} images sent; at most {max_images} per request")
        images = [validate_image(part.read(max_bytes + 1), max_bytes, part.filename or None, max_pixels)
                  for part in parts]
        # An empty field is no callback; the query string is read too, as for a raw body.
        return images, req.form.get("callback_url") or req.args.get("callback_url") or None
    if mimetype.startswith("image/"):
        if mimetype not in SUPPORTED_CONTENT_TYPES:
            raise UnsupportedMediaType(
                f"{mimetype} is not supported; send JPEG, PNG, WebP, GIF or BMP")
        if (req.content_length or 0) > max_bytes:
            raise PayloadTooLarge(
                f"the image is {req.content_length} bytes; the limit is {max_bytes} bytes per image",
                limit_bytes=max_bytes)
        # Read to the limit and no further, chunked or not: without a Content-Length
        # the check above cannot fire.
        body = read_bounded(req.stream, max_bytes)
        return [validate_image(body, max_bytes, None, max_pixels)], req.args.get("callback_url") or None
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


# Paths answered without an API key: health checks, the API's own description, and
# the local /metrics (a Prometheus scraper sends no key).
_OPEN_ENDPOINTS = {"health", "openapi", "prometheus_metrics"}


def _require_api_key(app: Flask, authenticator: Authenticator, limiter: RateLimiter) -> None:
    @app.before_request
    def authenticate():
        g.api_key_id = None
        if request.method == "OPTIONS" or request.url_rule is None or request.endpoint in _OPEN_ENDPOINTS:
            return None  # preflights, health, and unknown paths (404) need no key
        # remote_addr: after ProxyFix, the address Google's front end saw.
        key = authenticator.authenticate(request.headers.get("X-API-Key"), request.remote_addr)
        limiter.take(key)
        g.api_key_id, g.api_key = key.id, key
        return None


def _instrument(app: Flask, metrics: ApiMetrics | None) -> None:
    """Count every answer by route and status, and serve GET /metrics (Prometheus text)."""
    if metrics is None:
        return

    @app.before_request
    def start_timer():
        g.started = time.monotonic()

    @app.after_request
    def count(response):
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        if "started" in g:
            metrics.request_seconds.labels(request.method, route).observe(time.monotonic() - g.started)
        return response

    @app.get("/metrics")
    def prometheus_metrics():
        return Response(metrics.render(), mimetype=metrics.content_type)


def _metrics(service: PredictionService, metrics: ApiMetrics | None) -> ApiMetrics | None:
    return metrics or (ApiMetrics() if service.settings.expose_metrics else None)


WAIT_UNTIL = ("final", "change")


class SegmentWithoutColon(BaseConverter):
    """Every path parameter of this API: a segment without ":" (no model name or prediction id
    has one), so that /v1/predictions/{id}:cancel is only ever the cancel route: another
    method there is a 405, not a read of the id "{id}:cancel"."""

    regex = "[^/:]+"


def create_api_app(service: PredictionService, authenticator: Authenticator | None = None,
                   limiter: RateLimiter | None = None, metrics: ApiMetrics | None = None,
                   image_sources: ImageSources | None = None, jobs: JobService | None = None) -> Flask:
    settings = service.settings
    if settings.auth_required and authenticator is None:
        raise ConfigError("AUTH_REQUIRED is true but no API key store was configured")
    app = Flask("prediction_api")
    app.url_map.converters["default"] = SegmentWithoutColon
    # Whole-request cap; the per-image limit is checked as each part is read.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_images_per_request * settings.max_image_bytes + (1 << 20)
    # Behind Google's front end the scheme and host come from X-Forwarded-*. main.py
    # dispatches through app.wsgi_app, so this runs under functions-framework too.
    # X-Forwarded-For too, as far as TRUSTED_PROXY_HOPS: the client's address limits
    # failed key attempts (failed_auth.py).
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxy_hops, x_proto=1, x_host=1)
    _register_error_handlers(app)
    _apply_cors(app, settings.allowed_origins)
    metrics = _metrics(service, metrics)
    _instrument(app, metrics)
    limiter = limiter or RateLimiter()
    if settings.auth_required:
        _require_api_key(app, authenticator, limiter)

    def base_url() -> str:
        return settings.public_base_url or request.host_url.rstrip("/")

    def status_url(prediction_id: str) -> str:
        return f"{base_url()}/v1/predictions/{prediction_id}"

    def charge_images(images: int) -> None:
        """A bulk job costs its images from the key's quota; its request took one already."""
        key = g.get("api_key")
        if key is not None:
            limiter.take(key, images, already_taken=1)

    if jobs is not None:
        register_job_routes(app, jobs, service.check_model, charge_images, base_url)

    @app.post("/v1/models/<model>/predictions")
    def create_predictions(model: str):
        service.check_model(model)
        urls = image_urls(request)
        if urls and image_sources is None:
            raise InvalidRequest(f"this deployment takes no {IMAGE_URL_FIELD}; upload the image")
        images, callback_url = read_images(
            request, settings.max_image_bytes, settings.max_images_per_request, settings.max_image_pixels,
            len(urls))
        callback_url = service.check_callback_url(callback_url)
        # A bad ?callback_url= is refused even when a form field names another.
        service.check_callback_url(request.args.get("callback_url") or None)
        # Like callback_url: a form field, or the query string (for a raw image body).
        deadline = parse_deadline(request.form.get("deadline_seconds")
                                  or request.args.get("deadline_seconds"), settings)
        if urls:  # every URL checked before any is fetched; uploads first, then these in order
            images += image_sources.fetch(image_sources.check(urls))
        documents, replayed = service.submit_once(
            model, images, callback_url, g.get("api_key_id"), request.headers.get("Idempotency-Key"),
            deadline)
        if metrics and not replayed:
            metrics.accepted.labels(model).inc(len(documents))
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
        # until=change: answer as soon as the status moves (queued -> running), not only when final.
        until = request.args.get("until", "final")
        if until not in WAIT_UNTIL:
            raise InvalidRequest(f"until must be one of {', '.join(WAIT_UNTIL)}, got {until!r}")
        return jsonify(service.get(prediction_id, wait, g.get("api_key_id"), until))

    @app.get("/v1/predictions")
    def list_predictions():
        args = request.args
        return jsonify(service.control.list_page(
            g.get("api_key_id"), args.get("model"), args.get("status"), args.get("page_size"),
            args.get("page_token")))

    @app.post("/v1/predictions/<prediction_id>:cancel")
    def cancel_prediction(prediction_id: str):
        return jsonify(service.control.cancel(prediction_id, g.get("api_key_id"),
                                              valid_prediction_id(prediction_id)))

    @app.get("/v1/openapi.json")
    def openapi():
        base = settings.public_base_url or request.host_url.rstrip("/")
        return jsonify(openapi_document(settings, base))

    @app.get("/v1/models")
    def list_models():
        return jsonify({"models": service.models()})

    @app.get("/healthz")
    @app.get("/v1/health")
    def health():
        # Cloud Run answers external paths ending in "z" itself, hence /v1/health.
        return jsonify({"status": "ok"})

    return app


def create_dead_letter_app(service: PredictionService, metrics: ApiMetrics | None = None) -> Flask:
    app = Flask("dead_letter")
    _register_error_handlers(app)
    metrics = _metrics(service, metrics)
    _instrument(app, metrics)

    @app.post("/")
    def dead_letter():
        letter = parse_dead_letter(request.get_json(silent=True))
        action = service.fail_undelivered(letter.prediction_id, letter.model, letter.delivery_attempts)
        if metrics:
            metrics.dead_letters.labels(letter.model, action).inc()
        return "", 204

    return app


def create_reconcile_app(service: PredictionService, metrics: ApiMetrics | None = None,
                         jobs: JobService | None = None) -> Flask:
    """The reconciler's endpoint: Cloud Scheduler (locally, the stack) POSTs here every minute.

    It is not public: in the cloud only the scheduler's service account may invoke it.
    """
    app = Flask("reconcile")
    _register_error_handlers(app)
    metrics = _metrics(service, metrics)
    _instrument(app, metrics)

    @app.post("/")
    def reconcile():
        actions = service.reconcile()
        if jobs is not None:  # job shards whose message was lost or whose worker died
            actions.update(jobs.reconcile())
        oldest = service.oldest_queued_age()
        if metrics:
            for action, count in actions.items():
                metrics.reconcile_actions.labels(action).inc(count)
            metrics.oldest_queued.set(oldest)
        return jsonify({"actions": actions, "oldest_queued_age_seconds": round(oldest, 3)})

    return app
