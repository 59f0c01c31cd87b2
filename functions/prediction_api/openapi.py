"""The OpenAPI 3.1 description of the HTTP API, served at GET /v1/openapi.json.

Built from the settings, so its limits (wait, images per request, the served
models) are the running API's. tests/unit/test_openapi.py checks real answers
against it, and tests/integration/test_openapi.py fuzzes the local stack from it
with Schemathesis.
"""

from __future__ import annotations

from inference_contract.predictions import QUEUED, STATUSES

from . import openapi_control, openapi_jobs
from .config import Settings
from .images import SUPPORTED_CONTENT_TYPES

_ERROR_CODES = {
    400: "invalid_request (a refused image_url or callback_url too), invalid_image or too_many_images",
    401: "unauthenticated: no or a wrong X-API-Key (when API keys are on)",
    404: "not_found: unknown model, prediction or path",
    413: "payload_too_large: an image over MAX_IMAGE_BYTES, chunked or not",
    415: "unsupported_media_type: neither multipart/form-data nor a supported image/* type",
    422: "fetch_failed (an image_url's remote status, timeout, redirects or size), image_not_found or "
         "image_access_denied (a gs:// image; the message names the account to grant read access)",
    429: "rate_limited: over the key's quota, or too many unknown keys from this address; "
         "retry after Retry-After seconds",
    503: "backend_unavailable: Storage, Firestore or Pub/Sub failed; retry after Retry-After seconds",
}


# Where an image is fetched from instead of uploaded (image_sources.py).
_IMAGE_URL = {"type": "string", "maxLength": 2048, "pattern": "^(https?|gs)://",
              "description": "an http(s) URL the API fetches at submit, or gs://bucket/object read "
                             "with the API's service account"}

# An https URL (http too when CALLBACK_ALLOW_HTTP=true); an empty value means no callback.
_CALLBACK_URL = {"anyOf": [{"type": "string", "format": "uri", "maxLength": 2048},
                           {"type": "string", "maxLength": 0}]}


def _error(status: int) -> dict:
    response: dict = {"description": _ERROR_CODES[status],
                      "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    if status in (429, 503):
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _errors(*statuses: int) -> dict:
    return {str(status): _error(status) for status in statuses}


def _nullable(schema: dict) -> dict:
    return {"oneOf": [schema, {"type": "null"}]}


def openapi_document(settings: Settings, server_url: str) -> dict:
    image_types = sorted(SUPPORTED_CONTENT_TYPES)
    timestamp = {"type": "string", "format": "date-time"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Image inference API",
            "version": "1.0.0",
            "description": (
                "Send images to a model; poll (or get a callback) for what it saw. Each accepted image "
                "becomes a prediction that goes queued -> running -> succeeded or failed, "
                "or from queued to cancelled (cancel) or failed (deadline_seconds). "
                "Errors are JSON {\"error\": {\"code\", \"message\"}}."),
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/v1/models/{model}/predictions": {
                "post": {
                    "operationId": "createPredictions",
                    "summary": "Queue one prediction per image",
                    "parameters": [
                        {"name": "model", "in": "path", "required": True,
                         "schema": {"type": "string", "enum": list(settings.models)}},
                        {"name": "callback_url", "in": "query", "required": False,
                         "description": "where to POST the final prediction (the form field wins); "
                                        "empty: none",
                         "schema": _CALLBACK_URL},
                        {"name": "deadline_seconds", "in": "query", "required": False,
                         "description": "as the form field (which wins)",
                         "schema": openapi_control.deadline_seconds(settings)},
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "multipart/form-data": {
                                "schema": {
                                    "type": "object",
                                    "anyOf": [{"required": ["image"]}, {"required": ["image_url"]}],
                                    "description": "image parts and image_url fields together: at most "
                                                   f"{settings.max_images_per_request}; uploads are "
                                                   "queued first, then URLs in order",
                                    "properties": {
                                        "image": {
                                            "type": "array", "minItems": 1,
                                            "maxItems": settings.max_images_per_request,
                                            "items": {"type": "string", "format": "binary"},
                                            "description": "one part per image: JPEG, PNG, WebP, GIF or BMP",
                                        },
                                        "image_url": {
                                            "type": "array", "minItems": 1,
                                            "maxItems": settings.max_images_per_request,
                                            "items": _IMAGE_URL,
                                        },
                                        "callback_url": _CALLBACK_URL,
                                        "deadline_seconds": openapi_control.deadline_seconds(settings),
                                    },
                                },
                                "encoding": {"image": {"contentType": ", ".join(image_types)}},
                            },
                            **{content_type: {"schema": {"type": "string", "format": "binary"}}
                               for content_type in image_types},
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "accepted: one object for one image, a list for several",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Accepted"},
                                {"type": "object", "required": ["predictions"],
                                 "properties": {"predictions": {
                                     "type": "array", "items": {"$ref": "#/components/schemas/Accepted"}}}},
                            ]}}},
                        },
                        **_errors(400, 401, 404, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/v1/predictions/{id}": {
                "get": {
                    "operationId": "getPrediction",
                    "summary": "A prediction; optionally wait for it to finish or to change",
                    "parameters": [
                        {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}},
                        {"name": "wait", "in": "query", "required": False,
                         "description": "seconds to hold the request while the prediction is not final",
                         "schema": {"type": "number", "minimum": 0, "maximum": settings.max_wait_seconds}},
                        {"name": "until", "in": "query", "required": False,
                         "description": "with wait: `final` (default) answers when the status is final; "
                                        "`change` as soon as it differs from the status on arrival",
                         "schema": {"type": "string", "enum": ["final", "change"], "default": "final"}},
                    ],
                    "responses": {
                        "200": {"description": "the prediction",
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/Prediction"}}}},
                        **_errors(400, 401, 404, 429, 503),
                    },
                },
            },
            **openapi_control.paths(settings, _errors),
            **openapi_jobs.paths(settings, _errors),
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "The served models and the versions their services loaded",
                    "responses": {
                        "200": {"description": "the models",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["models"],
                                    "properties": {"models": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/Model"}}}}}}},
                        **_errors(401, 429, 503),
                    },
                },
            },
            "/v1/health": {"get": _health("health")},
            "/healthz": {"get": _health("healthz")},
            "/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "OpenAPI 3.1",
                                          "content": {"application/json": {"schema": {"type": "object"}}}}},
                },
            },
        },
        "components": {
            "securitySchemes": {
                # Sent by the CLI and the page when API keys are on (INFERENCE_API_KEY).
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "headers": {
                "RetryAfter": {"description": "seconds to wait before trying again",
                               "schema": {"type": "string"}},
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {
                        "type": "object", "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": ["string", "null"]},
                            "accepted": {"type": "array", "items": {"type": "string"},
                                         "description": "503 on upload: ids already queued"},
                            "limit_pixels": {"type": "integer",
                                             "description": "400 invalid_image: MAX_IMAGE_PIXELS"},
                            "reason": {"enum": ["remote_status", "timeout", "connection",
                                                "too_many_redirects", "malformed_redirect", "too_large",
                                                "changed"],
                                       "description": "422 fetch_failed: why"},
                            "remote_status": {"type": "integer",
                                              "description": "422 fetch_failed: what the image's server "
                                                             "answered"},
                            "limit_bytes": {"type": "integer", "description": "MAX_IMAGE_BYTES"},
                            "lines": {"type": "array", "items": {"type": "integer"},
                                      "description": "400 invalid_manifest: the first bad line numbers"},
                            "service_account": {"type": ["string", "null"],
                                                "description": "422 image_access_denied: the account "
                                                               "to grant roles/storage.objectViewer"},
                        },
                    }},
                },
                "Accepted": {
                    "type": "object", "required": ["id", "status", "model", "status_url"],
                    "properties": {
                        "id": {"type": "string"},
                        "status": {"const": QUEUED},
                        "model": {"type": "string"},
                        "status_url": {"type": "string", "format": "uri"},
                    },
                },
                "Prediction": {
                    "type": "object",
                    "required": ["id", "model", "model_version", "status", "result", "error",
                                 "created_at", "started_at", "completed_at"],
                    "properties": {
                        "id": {"type": "string"},
                        "model": {"type": "string"},
                        "model_version": {"type": ["integer", "null"]},
                        "status": {"enum": list(STATUSES)},
                        "result": {"oneOf": [{"$ref": "#/components/schemas/Classification"},
                                             {"$ref": "#/components/schemas/Detection"},
                                             {"type": "null"}]},
                        "error": _nullable({"type": "object", "required": ["code", "message"],
                                            "properties": {"code": {"type": "string"},
                                                           "message": {"type": "string"}}}),
                        "created_at": timestamp,
                        "started_at": _nullable(timestamp),
                        "completed_at": _nullable(timestamp),
                        "timings": _nullable({"$ref": "#/components/schemas/Timings"}),
                        "deadline_at": _nullable({**timestamp, "description": "from deadline_seconds: "
                                                  "not started by then, it fails with deadline_exceeded"}),
                    },
                },
                **openapi_control.schemas(),
                **openapi_jobs.schemas(),
                "Timings": {
                    "type": "object",
                    "description": "where a finished prediction's time went",
                    "properties": {
                        "queue_ms": {"type": ["number", "null"],
                                     "description": "accepted by the API until a model service took it"},
                        "delivery_ms": {"type": ["number", "null"],
                                        "description": "of queue_ms, Pub/Sub's part: published until "
                                                       "the model service received the push"},
                        "model_ms": {"type": ["number", "null"],
                                     "description": "the model call of the batch it ran in"},
                        "batch_size": {"type": ["integer", "null"], "description": "images in that batch"},
                        "total_ms": {"type": ["number", "null"], "description": "accepted until final"},
                    },
                },
                "ClassScore": {
                    "type": "object", "required": ["class_id", "label", "score"],
                    "properties": {"class_id": {"type": "integer"}, "label": {"type": "string"},
                                   "score": {"type": "number"}},
                },
                "Classification": {
                    "type": "object", "required": ["top_k", "weights"],
                    "properties": {"top_k": {"type": "array",
                                             "items": {"$ref": "#/components/schemas/ClassScore"}},
                                   "weights": {"type": "string"}},
                },
                "Detection": {
                    "type": "object", "required": ["label", "match", "score", "weights"],
                    "properties": {
                        "label": {"type": "string"},
                        "match": {"type": "boolean"},
                        "score": {"type": "number", "description": "summed probability of the classes"},
                        "rule": {"enum": ["top1", "threshold", None],
                                 "description": "which rule said yes: the top-1 class is one of the "
                                                "detector's, or the summed score reached the threshold"},
                        "top_class": _nullable({"$ref": "#/components/schemas/ClassScore"}),
                        "weights": {"type": "string"},
                    },
                },
                "Model": {
                    "type": "object", "required": ["name", "kind", "versions"],
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"enum": ["classifier", "detector", "mixed", "unknown"]},
                        "versions": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }


def _health(operation_id: str) -> dict:
    return {
        "operationId": operation_id,
        "summary": "Health check",
        "responses": {"200": {"description": "up", "content": {"application/json": {"schema": {
            "type": "object", "required": ["status"], "properties": {"status": {"const": "ok"}}}}}}},
    }
