"""Settings of the HTTP API, read from environment variables in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from inference_contract.image_size import DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS
from inference_contract.lifecycle import RecoveryPolicy
from inference_contract.settings import ConfigError, comma_separated, flag, number, require

__all__ = ["ConfigError", "Settings"]


@dataclass(frozen=True)
class Settings:
    project: str
    uploads_bucket: str
    models: tuple[str, ...]
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_images_per_request: int = 16
    # Refused above this many declared pixels, every frame of an animation counted.
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
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
    # Unknown key ids are remembered this long, so that repeating one costs no read.
    api_key_negative_cache_seconds: int = 10
    # Failed key attempts per minute per client address (IPv6: per /64) before the
    # store is no longer asked for new ids from it (429 instead).
    auth_failures_per_minute: int = 20
    # Proxies in front of the API that append to X-Forwarded-For: the client's address
    # is the one this many entries from the end. Google's front end, before Cloud
    # Functions, is one.
    trusted_proxy_hops: int = 1
    idempotency_window_seconds: int = 24 * 3600
    public_base_url: str | None = None
    max_wait_seconds: int = 30
    # The reconciler (see inference_contract.lifecycle).
    redeliver_after_seconds: int = 60
    max_prediction_age_seconds: int = 60 * 60
    max_delivery_attempts: int = 5
    callback_retry_seconds: int = 60 * 60
    reconcile_batch_size: int = 500
    # Images by URL (image_url), fetched by the API at submit (see image_sources.py).
    # Connect and per-read timeouts of each request; all fetches of one submit
    # together get at most image_fetch_total_seconds; redirects followed, each checked.
    image_fetch_connect_timeout_seconds: float = 5.0
    image_fetch_read_timeout_seconds: float = 10.0
    image_fetch_total_seconds: float = 30.0
    image_fetch_max_redirects: int = 3
    # Empty: any host the SSRF rules allow. Otherwise only these (the test stack's
    # fuzzing, so that no made-up image host is ever contacted).
    image_url_allowed_hosts: tuple[str, ...] = ()
    # The account gs:// images are read with (the functions' own), named in the
    # README and in the error a denied read answers; Terraform sets it.
    service_account_email: str | None = None
    # GET /metrics (Prometheus text) on each function; off in the cloud, where the
    # figures come from Cloud Monitoring, on in the local stack.
    expose_metrics: bool = False
    # Bulk jobs (jobs.py): images per shard, one shard document and one message each (Firestore
    # writes per image about 5 / JOB_SHARD_SIZE), and the most images one job may hold.
    job_shard_size: int = 100
    max_job_images: int = 100_000

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        require(env, "GOOGLE_CLOUD_PROJECT", "UPLOADS_BUCKET", "MODELS")
        project = env["GOOGLE_CLOUD_PROJECT"].strip()
        bucket = env["UPLOADS_BUCKET"].strip()
        models = comma_separated(env["MODELS"])
        if not models:
            raise ConfigError("MODELS must name at least one model")
        return cls(
            project=project,
            uploads_bucket=bucket,
            models=models,
            max_image_bytes=number(env, "MAX_IMAGE_BYTES", cls.max_image_bytes, minimum=1),
            max_images_per_request=number(env, "MAX_IMAGES_PER_REQUEST", cls.max_images_per_request,
                                          minimum=1),
            max_image_pixels=number(env, "MAX_IMAGE_PIXELS", cls.max_image_pixels, minimum=1),
            allowed_origins=comma_separated(env.get("ALLOWED_ORIGINS", "")),
            prediction_ttl_days=number(env, "PREDICTION_TTL_DAYS", cls.prediction_ttl_days, minimum=1),
            callback_allow_http=flag(env, "CALLBACK_ALLOW_HTTP", False),
            callback_allow_loopback=flag(env, "CALLBACK_ALLOW_LOOPBACK", False),
            callback_allowed_hosts=tuple(h.lower() for h in
                                         comma_separated(env.get("CALLBACK_ALLOWED_HOSTS", ""))),
            auth_required=flag(env, "AUTH_REQUIRED", True),
            api_keys_file=env.get("API_KEYS_FILE", "").strip() or None,
            api_key_cache_seconds=number(env, "API_KEY_CACHE_SECONDS", cls.api_key_cache_seconds, minimum=0),
            api_key_negative_cache_seconds=number(env, "API_KEY_NEGATIVE_CACHE_SECONDS",
                                                  cls.api_key_negative_cache_seconds, minimum=0),
            auth_failures_per_minute=number(env, "AUTH_FAILURES_PER_MINUTE", cls.auth_failures_per_minute,
                                            minimum=1),
            trusted_proxy_hops=number(env, "TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops, minimum=0),
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/") or None,
            redeliver_after_seconds=number(env, "REDELIVER_AFTER_SECONDS", cls.redeliver_after_seconds,
                                           minimum=1),
            max_prediction_age_seconds=number(env, "MAX_PREDICTION_AGE_SECONDS",
                                            cls.max_prediction_age_seconds, minimum=1),
            max_delivery_attempts=number(env, "MAX_DELIVERY_ATTEMPTS", cls.max_delivery_attempts, minimum=1),
            callback_retry_seconds=number(env, "CALLBACK_RETRY_SECONDS", cls.callback_retry_seconds,
                                          minimum=1),
            reconcile_batch_size=number(env, "RECONCILE_BATCH_SIZE", cls.reconcile_batch_size, minimum=1),
            expose_metrics=env.get("EXPOSE_METRICS", "").strip().lower() == "true",
            image_fetch_connect_timeout_seconds=number(
                env, "IMAGE_FETCH_CONNECT_TIMEOUT_SECONDS", cls.image_fetch_connect_timeout_seconds,
                kind=float, minimum=0.1),
            image_fetch_read_timeout_seconds=number(
                env, "IMAGE_FETCH_READ_TIMEOUT_SECONDS", cls.image_fetch_read_timeout_seconds,
                kind=float, minimum=0.1),
            image_fetch_total_seconds=number(env, "IMAGE_FETCH_TOTAL_SECONDS", cls.image_fetch_total_seconds,
                                             kind=float, minimum=0.1),
            image_fetch_max_redirects=number(env, "IMAGE_FETCH_MAX_REDIRECTS", cls.image_fetch_max_redirects,
                                             minimum=0),
            image_url_allowed_hosts=tuple(h.lower() for h in
                                          comma_separated(env.get("IMAGE_URL_ALLOWED_HOSTS", ""))),
            service_account_email=env.get("SERVICE_ACCOUNT_EMAIL", "").strip() or None,
            job_shard_size=number(env, "JOB_SHARD_SIZE", cls.job_shard_size, minimum=1),
            max_job_images=number(env, "MAX_JOB_IMAGES", cls.max_job_images, minimum=1),
        )

    @property
    def recovery(self) -> RecoveryPolicy:
        return RecoveryPolicy(
            redeliver_after=timedelta(seconds=self.redeliver_after_seconds),
            max_age=timedelta(seconds=self.max_prediction_age_seconds),
            max_attempts=self.max_delivery_attempts,
            callback_retry=timedelta(seconds=self.callback_retry_seconds))
