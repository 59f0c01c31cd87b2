"""The model service's SavedModel served by Ray Serve, batched with @serve.batch, for the peer comparison.

    PORT=8601 MODEL_NAME=efficientnet-lite0 MODEL_REPOSITORY=.local/model_repository \\
    GOOGLE_CLOUD_PROJECT=local PYTHONPATH=scripts/peers \\
    .local/peers/ray/bin/python scripts/peers/ray_service.py

(scripts/benchmark_peers.py starts it so.) One replica, as the model service runs one
worker, taking as many requests at once as its gunicorn threads (request_threads) and
batching up to MAX_BATCH_SIZE images without waiting for more (batch_wait_timeout_s=0,
as the model service's MAX_BATCH_DELAY_MS=0): while one batch runs in a thread, the next
forms. The route is the model service's Open Inference Protocol infer route, the same
bodies (v2_peer.py). Runs until SIGTERM or SIGINT, then shuts Ray down.
"""

# No `from __future__ import annotations`: the replica gets this class pickled by value, and
# FastAPI must find `Request` in the route's annotations, not as a name to look up.
import asyncio
import os
import signal
import sys
import threading

import ray
import v2_peer
from fastapi import FastAPI, Request, Response
from ray import serve

app = FastAPI()


# No access log line per request (the model service writes none either, only a line per batch).
@serve.deployment(num_replicas=1, logging_config={"enable_access_log": False})
@serve.ingress(app)
class OpenInference:
    def __init__(self) -> None:
        settings = v2_peer.Settings.from_env()
        self.model = v2_peer.load_model(settings)
        self.bodies = v2_peer.OpenInferenceBodies(settings)
        self.predict.set_max_batch_size(settings.max_batch_size)

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.0)
    async def predict(self, images: list[bytes]) -> list:
        v2_peer.log_batch(len(images))
        # In a thread: TensorFlow releases the GIL, so requests keep arriving while a batch runs.
        return await asyncio.to_thread(self.model.predict, images)

    @app.get("/v2/health/ready")
    async def ready(self) -> dict:
        return {"ready": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(self, name: str, request: Request) -> Response:
        status, body, headers = await v2_peer.infer(self.bodies, name, await request.body(),
                                                    request.headers.get(v2_peer.HEADER_LENGTH), self.predict)
        return Response(body, status_code=status, headers=headers)


def main() -> None:
    from model_service.config import request_threads

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    # The replica unpickles this module's class, which names model_service's: Ray's workers,
    # started by this process, find them (and v2_peer) on the path it has.
    os.environ["PYTHONPATH"] = os.pathsep.join(sys.path)
    # log_to_driver: the replica's batch lines reach this process's output, the benchmark's log.
    ray.init(include_dashboard=False, log_to_driver=True)
    serve.start(http_options={"host": "127.0.0.1", "port": int(os.environ["PORT"])})
    serve.run(OpenInference.options(max_ongoing_requests=request_threads()).bind(), route_prefix="/")
    stop.wait()
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
