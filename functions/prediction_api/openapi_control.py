"""The OpenAPI description of cancelling and listing predictions and of deadline_seconds
(control.py); openapi.py puts them into the one document."""

from __future__ import annotations

from inference_contract.predictions import STATUSES

from .config import Settings
from .control import MAX_PAGE_SIZE, MIN_DEADLINE_SECONDS

ERROR_CODES = {
    409: "not_cancellable: the prediction is running or final; `status` says which",
}


def deadline_seconds(settings: Settings) -> dict:
    """The deadline_seconds form field and query parameter of a submit."""
    return {"type": "integer", "minimum": MIN_DEADLINE_SECONDS,
            "maximum": settings.max_prediction_age_seconds,
            "description": "fail the prediction with `deadline_exceeded`, never running it, if no model "
                           "service has started it this many seconds after it was accepted"}


def paths(settings: Settings, errors) -> dict:
    """The two paths; errors(*statuses) builds their error responses."""
    prediction = {"application/json": {"schema": {"$ref": "#/components/schemas/Prediction"}}}
    return {
        "/v1/predictions/{id}:cancel": {
            "post": {
                "operationId": "cancelPrediction",
                "summary": "Cancel a queued prediction; it ends `cancelled` and never reaches the model",
                "description": (
                    "Idempotent: a prediction cancelled already is answered 200 again. A running or "
                    "final one is 409 `not_cancellable` with its `status`; another key's is 404. A "
                    "callback_url is called with the cancelled prediction like any final status."),
                "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "the cancelled prediction", "content": prediction},
                    "409": {"description": ERROR_CODES[409], "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/NotCancellable"}}}},
                    **errors(401, 404, 429, 503),
                },
            },
        },
        "/v1/predictions": {
            "get": {
                "operationId": "listPredictions",
                "summary": "The caller's own predictions, newest first, a page at a time",
                "parameters": [
                    {"name": "model", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(settings.models)}},
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(STATUSES)}},
                    {"name": "page_size", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20}},
                    {"name": "page_token", "in": "query", "required": False,
                     "description": "next_page_token of the previous page (opaque)",
                     "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "a page of predictions", "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/PredictionPage"}}}},
                    **errors(400, 401, 429, 503),
                },
            },
        },
    }


def schemas() -> dict:
    return {
        "PredictionPage": {
            "type": "object", "required": ["predictions", "next_page_token"],
            "properties": {
                "predictions": {"type": "array", "items": {"$ref": "#/components/schemas/Prediction"}},
                "next_page_token": {"type": ["string", "null"],
                                    "description": "pass as page_token for the next page; null on the last"},
            },
        },
        "NotCancellable": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message", "status"],
                "properties": {"code": {"const": "not_cancellable"}, "message": {"type": "string"},
                               "status": {"enum": list(STATUSES)}},
            }},
        },
    }
