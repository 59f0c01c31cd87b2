"""Flask app of the model service: the push endpoint, the health check and the Open Inference routes."""

from __future__ import annotations

import logging

from flask import Flask, Response, jsonify, request
from inference_contract.lifecycle import LifecycleError
from werkzeug.exceptions import HTTPException

from .errors import ServiceError, lifecycle_status
from .handler import PredictionHandler
from .job_handler import ShardHandler
from .open_inference import OpenInference
from .open_inference_routes import open_inference_blueprint
from .push import parse_envelope, parse_shard_envelope

log = logging.getLogger(__name__)


def create_app(handler: PredictionHandler, model, metrics=None,
               open_inference: OpenInference | None = None, shards: ShardHandler | None = None) -> Flask:
    app = Flask("model_service")
    if open_inference is not None:
        # GET /v2/..., POST /v2/models/{name}/infer: the Open Inference Protocol, beside the push.
        app.register_blueprint(open_inference_blueprint(open_inference))

    @app.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        level = logging.WARNING if error.status < 500 else logging.ERROR
        log.log(level, error.message, extra={"code": error.code, "status": error.status})
        return jsonify({"error": {"code": error.code, "message": error.message}}), error.status

    @app.errorhandler(LifecycleError)
    def lifecycle_error(error: LifecycleError):
        status, code = lifecycle_status(error)
        log.log(logging.WARNING if status < 500 else logging.ERROR, error.message,
                extra={"code": code, "status": status})
        return jsonify({"error": {"code": code, "message": error.message}}), status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return jsonify({"error": {"code": code, "message": error.description}}), error.code

    @app.errorhandler(Exception)
    def unexpected(error: Exception):
        # Unknown faults are treated as transient: Pub/Sub retries, then dead-letters.
        log.exception("unhandled error")
        return jsonify({"error": {"code": "internal", "message": "internal error"}}), 500

    @app.post("/")
    def push():
        handler.handle(parse_envelope(request.get_json(silent=True)))
        return "", 204

    @app.post("/jobs")
    def push_shard():
        # The bulk lane: its own push subscription (jobs-<model>-push), its images in the
        # batcher's low-priority lane.
        if shards is None:
            return jsonify({"error": {"code": "not_found", "message": "bulk jobs are off"}}), 404
        shards.handle(*parse_shard_envelope(request.get_json(silent=True)))
        return "", 204

    @app.get("/healthz")
    def health():
        if not model.ready:
            return jsonify({"status": "loading"}), 503
        return jsonify({"status": "ready", **model.info.describe()})

    @app.get("/metrics")
    def prometheus_metrics():
        # Prometheus text format, as model servers commonly offer (see metrics.py).
        if metrics is None:
            return jsonify({"error": {"code": "not_found", "message": "metrics are off"}}), 404
        return Response(metrics.render(), mimetype=metrics.content_type)

    return app
