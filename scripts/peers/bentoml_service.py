"""The model service's SavedModel served by BentoML with adaptive batching, for the peer comparison.

    cd scripts/peers && PORT=8601 MODEL_NAME=efficientnet-lite0 \\
    MODEL_REPOSITORY=$PWD/../../.local/model_repository GOOGLE_CLOUD_PROJECT=local \\
    ../../.local/peers/bentoml/bin/python -m bentoml serve bentoml_service:OpenInferenceGateway --port 8601

(scripts/benchmark_peers.py starts it so.) BentoML batches only the calls that reach a
batchable API through its dispatcher, and an API's HTTP body is its own JSON, not the
Open Inference Protocol's; so, as BentoML's guide to adaptive batching across services
does, two services: OpenInferenceGateway serves the model service's v2 routes (a FastAPI
app mounted on it, the same bodies: v2_peer.py) and calls SavedModel.predict one image at
a time; SavedModel, a dependency that `bentoml serve` runs in a process of its own, is
where the adaptive batching happens, up to MAX_BATCH_SIZE images (and within
PREDICT_TIMEOUT_SECONDS, its max_latency_ms).
"""

from __future__ import annotations

import aiohttp
import bentoml
import v2_peer
from fastapi import FastAPI, Request, Response

SETTINGS = v2_peer.Settings.from_env()
# Both services alike: one worker, as the model service runs one process; the model service's
# request timeout; no access log line per request (the model service writes none either,
# only a line per batch), so that BentoML is measured at its leanest.
CONFIG = {"workers": 1, "traffic": {"timeout": SETTINGS.predict_timeout_seconds},
          "logging": {"access": {"enabled": False}}}
app = FastAPI()


@bentoml.service(**CONFIG)
class SavedModel:
    def __init__(self) -> None:
        self.model = v2_peer.load_model(SETTINGS)

    @bentoml.api(batchable=True, max_batch_size=SETTINGS.max_batch_size,
                 max_latency_ms=int(SETTINGS.predict_timeout_seconds * 1000))
    def predict(self, images: list[bytes]) -> list:
        v2_peer.log_batch(len(images))
        return self.model.predict(images)


@bentoml.service(**CONFIG)
@bentoml.asgi_app(app, path="/")
class OpenInferenceGateway:
    saved_model = bentoml.depends(SavedModel)

    def __init__(self) -> None:
        self.bodies = v2_peer.OpenInferenceBodies(SETTINGS)

    @app.get("/v2/health/ready")
    async def ready(self) -> Response:
        ready = await self.saved_model.is_ready()
        return Response(f'{{"ready": {str(ready).lower()}}}', status_code=200 if ready else 400,
                        media_type="application/json")

    @app.post("/v2/models/{name}/infer")
    async def infer(self, name: str, request: Request) -> Response:
        status, body, headers = await v2_peer.infer(self.bodies, name, await request.body(),
                                                    request.headers.get(v2_peer.HEADER_LENGTH), self._predict)
        return Response(body, status_code=status, headers=headers)

    async def _predict(self, image: bytes):
        # BentoML's client between the services (aiohttp, idle connections kept 15 s) reuses
        # connections that SavedModel's server (uvicorn, keep-alive 5 s) closed meanwhile: at the
        # start of a burst a call then fails (ServerDisconnectedError, or ClientOSError "Can not
        # write request body"; seen at 8 and 32 in flight after 1). Once more on a fresh connection
        # (predict has no side effect), as a user of BentoML would have to, so that the peer is
        # measured at its best.
        try:
            return (await self.saved_model.to_async.predict([image]))[0]
        except aiohttp.ClientConnectionError:
            return (await self.saved_model.to_async.predict([image]))[0]
