"""Settings of the model service, read from environment variables in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass

from inference_contract.image_size import DEFAULT_MAX_IMAGE_PIXELS
from inference_contract.settings import ConfigError, flag, number, require

__all__ = ["ConfigError", "Settings"]


def _secret(env: dict[str, str], name: str) -> str | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    from standardwebhooks import Webhook

    try:
        Webhook(raw)
    except Exception:
        raise ConfigError(f"{name} must be a Standard Webhooks secret: whsec_ followed by base64") from None
    return raw


@dataclass(frozen=True)
class Settings:
    project: str
    model_name: str
    model_repository: str
    model_version: str = "latest"
    run_lease_seconds: float = 10.0
    model_ready_wait_seconds: float = 30.0
    callback_timeout_seconds: float = 10.0
    storage_timeout_seconds: float = 30.0
    max_batch_size: int = 16
    max_batch_delay_ms: float = 0.0
    # Threads of one model call (TensorFlow's intra-op threads; 0: its default, every core), and
    # model calls run at once (batcher.py). 1 and the core count keep each call to one core.
    model_threads: int = 0
    concurrent_batches: int = 1
    # gunicorn's threads, the requests served at once (gunicorn.conf.py reads request_threads()).
    request_threads: int = 2 * max_batch_size
    # A request waits this long for its batch's result, then answers 503 (Pub/Sub redelivers);
    # below the push's ack deadline (Terraform's default 60 s), which is Cloud Run's request timeout.
    predict_timeout_seconds: float = 30.0
    # The Storage and Firestore clients' private API on the hot path (client_internals.py);
    # false: their public API only.
    use_private_client_api: bool = True
    # Images declaring more pixels (every frame counted) fail without being decoded.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    revision: str | None = None
    # Bulk jobs (job_handler.py): images per model call in the batcher's low-priority lane (an
    # interactive request waits at most for one such batch), and a shard's parallel image reads.
    job_batch_size: int = 4
    job_read_threads: int = 16
    # Callbacks: loopback hosts only where receivers run on this machine (local stack, tests).
    callback_allow_loopback: bool = False
    # Standard Webhooks signing secret, "whsec_" + base64 (Secret Manager in the cloud).
    callback_signing_secret: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        require(env, "GOOGLE_CLOUD_PROJECT", "MODEL_NAME", "MODEL_REPOSITORY")
        required = {name: env[name].strip()
                    for name in ("GOOGLE_CLOUD_PROJECT", "MODEL_NAME", "MODEL_REPOSITORY")}
        version = env.get("MODEL_VERSION", "").strip() or "latest"
        if version != "latest" and not (version.isdigit() and int(version) > 0):
            raise ConfigError(f"MODEL_VERSION must be a positive integer or 'latest', got {version!r}")
        return cls(
            project=required["GOOGLE_CLOUD_PROJECT"],
            model_name=required["MODEL_NAME"],
            model_repository=required["MODEL_REPOSITORY"].rstrip("/"),
            model_version=version,
            run_lease_seconds=number(env, "RUN_LEASE_SECONDS", cls.run_lease_seconds, float, 1),
            model_ready_wait_seconds=number(env, "MODEL_READY_WAIT_SECONDS",
                                             cls.model_ready_wait_seconds, float),
            callback_timeout_seconds=number(env, "CALLBACK_TIMEOUT_SECONDS",
                                             cls.callback_timeout_seconds, float, 0.1),
            storage_timeout_seconds=number(env, "STORAGE_TIMEOUT_SECONDS",
                                            cls.storage_timeout_seconds, float, 0.1),
            max_batch_size=number(env, "MAX_BATCH_SIZE", cls.max_batch_size, minimum=1),
            max_batch_delay_ms=number(env, "MAX_BATCH_DELAY_MS", cls.max_batch_delay_ms, float),
            model_threads=number(env, "MODEL_THREADS", cls.model_threads),
            concurrent_batches=number(env, "CONCURRENT_BATCHES", cls.concurrent_batches, minimum=1),
            request_threads=request_threads(env),
            predict_timeout_seconds=number(env, "PREDICT_TIMEOUT_SECONDS", cls.predict_timeout_seconds,
                                           float, 0.1),
            use_private_client_api=flag(env, "USE_PRIVATE_CLIENT_API", cls.use_private_client_api),
            max_image_pixels=number(env, "MAX_IMAGE_PIXELS", cls.max_image_pixels, minimum=1),
            job_batch_size=number(env, "JOB_BATCH_SIZE", cls.job_batch_size, minimum=1),
            job_read_threads=number(env, "JOB_READ_THREADS", cls.job_read_threads, minimum=1),
            callback_allow_loopback=flag(env, "CALLBACK_ALLOW_LOOPBACK"),
            callback_signing_secret=_secret(env, "CALLBACK_SIGNING_SECRET"),
            # Cloud Run sets K_REVISION; it tells a canary's results from its baseline's.
            revision=env.get("K_REVISION") or None,
        )


def request_threads(env: dict[str, str] | None = None) -> int:
    """GUNICORN_THREADS, by default two batches' worth: the next batch forms while one runs."""
    env = os.environ if env is None else env
    batch = number(env, "MAX_BATCH_SIZE", Settings.max_batch_size, minimum=1)
    return number(env, "GUNICORN_THREADS", 2 * batch, minimum=1)
