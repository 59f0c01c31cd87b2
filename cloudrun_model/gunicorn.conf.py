"""gunicorn settings shared by the Cloud Run container and the local stack."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
# One process holds one copy of the model; threads share it and feed the batcher.
workers = 1
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# Requests wait for the model; Cloud Run's request timeout is the real limit.
timeout = 0
accesslog = None
