"""gunicorn settings shared by the Cloud Run container and the local stack."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
# One process holds one copy of the model; threads share it and feed the batcher.
workers = 1
# Each request holds a thread while its batch runs: two batches' worth lets the
# next batch form while one runs (Cloud Run's concurrency is set to the same).
threads = int(os.environ.get("GUNICORN_THREADS") or 2 * int(os.environ.get("MAX_BATCH_SIZE") or 16))
# Requests wait for the model; Cloud Run's request timeout is the real limit.
timeout = 0
accesslog = None
