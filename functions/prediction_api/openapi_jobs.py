"""The OpenAPI description of bulk jobs (jobs.py, job_routes.py); openapi.py puts it into the one
document."""

from __future__ import annotations

from inference_contract.jobs import JOB_STATUSES

from .config import Settings
from .control import MAX_PAGE_SIZE

ERROR_CODES = {
    400: "invalid_request (a bad body, input, output or callback_url; more than MAX_JOB_IMAGES images) or "
         "invalid_manifest (a manifest line that is not one gs:// or https:// image URI: the whole submit "
         "fails, `lines` names the first bad line numbers)",
    422: "no_images (the input matched no image), input_not_readable (the bucket, prefix or manifest does "
         "not exist or may not be read), output_not_writable (a probe object could not be written under "
         "output)",
    409: "not_cancellable: the job succeeded or failed already; `status` says which",
}


def paths(settings: Settings, errors) -> dict:
    """The job paths; errors(*statuses) builds the shared error responses."""
    job = {"application/json": {"schema": {"$ref": "#/components/schemas/Job"}}}
    job_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "/v1/models/{model}/jobs": {
            "post": {
                "operationId": "createJob",
                "summary": "Run every image of a bucket prefix or a manifest through the model",
                "description": (
                    "Results go to `<output>/<id>/results-<shard>.jsonl`, one line per input image "
                    "(`input`, `status`, `result` or `error`, `model_version`), each input exactly once, "
                    "and `<output>/<id>/summary.json` last. Before answering, the input is listed (or the "
                    "manifest read), a probe object is written and deleted under output, and the images "
                    "are taken from the key's quota; any refusal starts nothing."),
                "parameters": [{"name": "model", "in": "path", "required": True,
                                "schema": {"type": "string", "enum": list(settings.models)}}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["input", "output"], "additionalProperties": False,
                    "properties": {
                        "input": {"type": "string", "pattern": "^gs://", "maxLength": 2048,
                                  "description": "gs://bucket/prefix/ (every image under it) or "
                                                 "gs://bucket/manifest.jsonl (.txt too): one gs:// or "
                                                 "https:// image per line, bare or a JSON string"},
                        "output": {"type": "string", "pattern": "^gs://", "maxLength": 2048,
                                   "description": "gs://bucket/prefix/ the results are written under"},
                        "callback_url": {"type": ["string", "null"], "maxLength": 2048,
                                         "description": "POSTed the final job once"},
                    }}}}},
                "responses": {
                    "202": {"description": "accepted", "content": job},
                    "400": {"description": ERROR_CODES[400], "content": error},
                    "422": {"description": ERROR_CODES[422], "content": error},
                    **errors(401, 404, 429, 503),
                },
            },
        },
        "/v1/jobs/{id}": {
            "get": {
                "operationId": "getJob",
                "summary": "A job: status, counts, the output files so far",
                "parameters": [job_id],
                "responses": {"200": {"description": "the job", "content": job},
                              **errors(401, 404, 429, 503)},
            },
        },
        "/v1/jobs/{id}:cancel": {
            "post": {
                "operationId": "cancelJob",
                "summary": "Stop a job: shards not started never start; it ends `cancelled` once none runs",
                "parameters": [job_id],
                "responses": {
                    "202": {"description": "the job, cancel requested", "content": job},
                    "409": {"description": ERROR_CODES[409], "content": {"application/json": {"schema": {
                        "$ref": "#/components/schemas/NotCancellable"}}}},
                    **errors(401, 404, 429, 503),
                },
            },
        },
        "/v1/jobs": {
            "get": {
                "operationId": "listJobs",
                "summary": "The caller's own jobs, newest first, a page at a time",
                "parameters": [
                    {"name": "status", "in": "query", "required": False,
                     "schema": {"type": "string", "enum": list(JOB_STATUSES)}},
                    {"name": "page_size", "in": "query", "required": False,
                     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": 20}},
                    {"name": "page_token", "in": "query", "required": False,
                     "description": "next_page_token of the previous page (opaque)",
                     "schema": {"type": "string"}},
                ],
                "responses": {
                    "200": {"description": "a page of jobs", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["jobs", "next_page_token"],
                        "properties": {
                            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
                            "next_page_token": {"type": ["string", "null"]}}}}}},
                    **errors(400, 401, 429, 503),
                },
            },
        },
    }


def schemas() -> dict:
    timestamp = {"type": ["string", "null"], "format": "date-time"}
    number = {"type": ["number", "null"]}
    return {
        "Job": {
            "type": "object",
            "required": ["id", "model", "status", "input", "output", "counts", "model_versions",
                         "created_at"],
            "properties": {
                "id": {"type": "string"},
                "model": {"type": "string"},
                "status": {"enum": list(JOB_STATUSES)},
                "input": {"type": "string"},
                "output": {"type": "string", "description": "the job's own prefix: <output>/<id>/"},
                "status_url": {"type": "string", "format": "uri"},
                "counts": {"type": "object", "required": ["total", "succeeded", "failed", "pending"],
                           "properties": {name: {"type": "integer", "minimum": 0}
                                          for name in ("total", "succeeded", "failed", "pending")}},
                "outputs": {"type": "array", "items": {"type": "string"},
                            "description": "the results files written so far, and summary.json once final"},
                "model_versions": {"type": "array", "items": {"type": "integer"}},
                "error": {"type": ["object", "null"]},
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": timestamp,
                "completed_at": timestamp,
                "cancel_requested_at": timestamp,
                "timings": {"type": "object", "properties": {
                    "queue_ms": number, "run_ms": number, "images_per_second": number}},
            },
        },
    }
