"""gunicorn settings shared by the Cloud Run container and the local stack."""

import os
import sys

# gunicorn loads this file by path; the service's package sits beside it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from model_service.config import request_threads  # noqa: E402

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
# One process holds one copy of the model; threads share it and feed the batcher.
workers = 1
# Each request holds a thread while its batch runs (GUNICORN_THREADS, by default two
# batches' worth; Cloud Run's concurrency is set to the same).
threads = request_threads()
# Requests wait for the model; Cloud Run's request timeout is the real limit.
timeout = 0
accesslog = None
