"""The Open Inference Protocol's (v2) REST routes, beside the push endpoint.

Thin: the bodies are open_inference_codec's, the answers open_inference's. Errors take
the protocol's shape, {"error": "<message>"} (what tritonclient and KServe clients read),
not the service's {"error": {"code", "message"}}; their statuses are the same
ServiceError ones (400, 404, 415, 503), and a body over the bound is a 413.
`/v2/models/{name}/versions/{version}/...` names the served version (404 for another).
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify, request
from werkzeug.exceptions import HTTPException, NotFound

from .errors import ServiceError, UnsupportedEncoding
from .open_inference import OpenInference
from .open_inference_codec import (
    HEADER_LENGTH,
    build_infer_response,
    parse_infer_request,
    server_metadata_document,
)

log = logging.getLogger(__name__)

MODEL = "/v2/models/<name>"
VERSION = "/v2/models/<name>/versions/<version>"


def open_inference_blueprint(service: OpenInference) -> Blueprint:
    v2 = Blueprint("open_inference", __name__)

    @v2.before_request
    def bound_body():
        request.max_content_length = service.max_body_bytes

    @v2.errorhandler(ServiceError)
    def service_error(error: ServiceError):
        log.log(logging.WARNING if error.status < 500 else logging.ERROR, error.message,
                extra={"code": error.code, "status": error.status, "protocol": "v2"})
        return jsonify({"error": error.message}), error.status

    @v2.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        return jsonify({"error": error.description}), error.code

    @v2.errorhandler(Exception)
    def unexpected(error: Exception):
        log.exception("unhandled error", extra={"protocol": "v2"})
        return jsonify({"error": "internal error"}), 500

    @v2.get("/v2/health/live")
    def live():
        return jsonify({"live": True})

    @v2.get("/v2/health/ready")
    def ready():
        return jsonify({"ready": service.ready}), _health_status(service.ready)

    @v2.get("/v2")
    def server_metadata():
        return jsonify(server_metadata_document())

    @v2.get(MODEL)
    @v2.get(VERSION)
    def metadata(name: str, version: str | None = None):
        return jsonify(service.metadata(name, version))

    @v2.get(f"{MODEL}/ready")
    @v2.get(f"{VERSION}/ready")
    def model_ready(name: str, version: str | None = None):
        service.check(name, version)
        return jsonify({"name": name, "ready": service.ready}), _health_status(service.ready)

    @v2.post(f"{MODEL}/infer")
    @v2.post(f"{VERSION}/infer")
    def infer(name: str, version: str | None = None):
        service.check(name, version)
        if request.headers.get("Content-Encoding", "identity") != "identity":
            raise UnsupportedEncoding("compressed requests are not accepted; send the body uncompressed")
        parsed = parse_infer_request(request.get_data(cache=False), request.headers.get(HEADER_LENGTH),
                                     service.max_images)
        served, results = service.infer(name, version, parsed)
        body, headers = build_infer_response(name, served, parsed, results)
        return Response(body, headers=headers)

    @v2.route("/v2/<path:rest>", methods=["GET", "POST"])
    def unknown(rest: str):
        raise NotFound(f"no Open Inference Protocol endpoint at /v2/{rest}")

    return v2


def _health_status(healthy: bool) -> int:
    # The protocol's health answer is its status: 200 for true, a 4xx for false (Triton's 400);
    # a request that needs the model while it loads is a 503 instead (service_error).
    return 200 if healthy else 400

