"""Settings of the HTTP API, read from environment variables in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from .recovery import RecoveryPolicy


class ConfigError(ValueError):
    """An environment variable holds a value the API cannot run with."""


def _int(env: dict[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _bool(env: dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw not in ("true", "false"):
        raise ConfigError(f"{name} must be true or false, got {raw!r}")
    return raw == "true"


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    project: str
    uploads_bucket: str
    models: tuple[str, ...]
    max_image_bytes: int = 10 * 1024 * 1024
    max_images_per_request: int = 16
    allowed_origins: tuple[str, ...] = ()
    prediction_ttl_days: int = 30
    callback_allow_http: bool = False
    # Loopback callback hosts (127.0.0.0/8, ::1): only where the receivers run on the
    # same machine (the local stack, the tests). Every other private range stays refused.
    callback_allow_loopback: bool = False
    # Empty: any host the SSRF rules allow. Otherwise only these hosts (the test
    # stack's fuzzing uses it, so that no made-up callback host is ever contacted).
    callback_allowed_hosts: tuple[str, ...] = ()
    # API keys (X-API-Key): required unless this is false. Keys live in API_KEYS_FILE
    # when it is set (the local stack), else in Firestore's api_keys collection.
    auth_required: bool = True
    api_keys_file: str | None = None
    api_key_cache_seconds: int = 30
    idempotency_window_seconds: int = 24 * 3600
    public_base_url: str | None = None
    max_wait_seconds: int = 30
    # The reconciler (see recovery.py).
    redeliver_after_seconds: int = 60
    max_prediction_age_seconds: int = 3600
    max_delivery_attempts: int = 5
    callback_retry_seconds: int = 3600
    reconcile_batch_size: int = 500
    # GET /metrics (Prometheus text) on each function; off in the cloud, where the
    # figures come from Cloud Monitoring, on in the local stack.
    expose_metrics: bool = False

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)
        project = env.get("GOOGLE_CLOUD_PROJECT", "").strip()
        bucket = env.get("UPLOADS_BUCKET", "").strip()
        models = _csv(env.get("MODELS", ""))
        missing = [
            name
            for name, value in (
                ("GOOGLE_CLOUD_PROJECT", project),
                ("UPLOADS_BUCKET", bucket),
                ("MODELS", models),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"missing required environment variables: {', '.join(missing)}")
        return cls(
            project=project,
            uploads_bucket=bucket,
            models=models,
            max_image_bytes=_int(env, "MAX_IMAGE_BYTES", cls.max_image_bytes),
            max_images_per_request=_int(env, "MAX_IMAGES_PER_REQUEST", cls.max_images_per_request),
            allowed_origins=_csv(env.get("ALLOWED_ORIGINS", "")),
            prediction_ttl_days=_int(env, "PREDICTION_TTL_DAYS", cls.prediction_ttl_days),
            callback_allow_http=_bool(env, "CALLBACK_ALLOW_HTTP", False),
            callback_allow_loopback=_bool(env, "CALLBACK_ALLOW_LOOPBACK", False),
            callback_allowed_hosts=tuple(h.lower() for h in _csv(env.get("CALLBACK_ALLOWED_HOSTS", ""))),
            auth_required=_bool(env, "AUTH_REQUIRED", True),
            api_keys_file=env.get("API_KEYS_FILE", "").strip() or None,
            api_key_cache_seconds=_int(env, "API_KEY_CACHE_SECONDS", cls.api_key_cache_seconds, minimum=0),
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or None,
            redeliver_after_seconds=_int(env, "REDELIVER_AFTER_SECONDS", cls.redeliver_after_seconds),
            max_prediction_age_seconds=_int(env, "MAX_PREDICTION_AGE_SECONDS",
                                            cls.max_prediction_age_seconds),
            max_delivery_attempts=_int(env, "MAX_DELIVERY_ATTEMPTS", cls.max_delivery_attempts),
            callback_retry_seconds=_int(env, "CALLBACK_RETRY_SECONDS", cls.callback_retry_seconds),
            reconcile_batch_size=_int(env, "RECONCILE_BATCH_SIZE", cls.reconcile_batch_size),
            expose_metrics=env.get("EXPOSE_METRICS", "").strip().lower() == "true",
        )

    @property
    def recovery(self) -> RecoveryPolicy:
        return RecoveryPolicy(
            redeliver_after=timedelta(seconds=self.redeliver_after_seconds),
            max_age=timedelta(seconds=self.max_prediction_age_seconds),
            max_attempts=self.max_delivery_attempts,
            callback_retry=timedelta(seconds=self.callback_retry_seconds))
