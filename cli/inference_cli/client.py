"""HTTP calls to the inference API, with Retry-After honoured on 429 and 503."""

from __future__ import annotations

import email.utils
import mimetypes
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests
from inference_contract.predictions import FINAL_STATUSES

RETRYABLE = (429, 503)
MAX_PAGE_SIZE = 100  # the API's largest page of a listing
# An argument with one of these prefixes names an image the API fetches (form field image_url).
REFERENCE_PREFIXES = ("http://", "https://", "gs://")


def is_reference(argument: str) -> bool:
    return argument.lower().startswith(REFERENCE_PREFIXES)


class ApiError(Exception):
    """An answer the client can't use: the API's error code and message, or a network failure."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        super().__init__(f"{status or 'no answer'} {code}: {message}")
        self.status, self.code, self.message = status, code, message


def retry_after_seconds(value: str | None, default: float) -> float:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@dataclass
class Client:
    base_url: str
    api_key: str | None = None
    timeout: float = 60.0
    max_retries: int = 8
    sleep: Callable[[float], None] = time.sleep
    on_retry: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")
        self.session = requests.Session()
        if self.api_key:
            self.session.headers["X-API-Key"] = self.api_key

    def request(self, method: str, path: str, **kwargs) -> dict:
        """The JSON body of a 2xx answer; waits and retries on 429/503; ApiError otherwise."""
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        backoff = 1.0
        for attempt in range(self.max_retries + 1):
            try:
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.RequestException as exc:
                if attempt == self.max_retries:
                    raise ApiError(None, "unreachable", f"{url}: {exc}") from None
                self._wait(backoff, f"{url} unreachable ({type(exc).__name__})")
                backoff = min(backoff * 2, 30)
                continue
            if response.status_code in RETRYABLE and attempt < self.max_retries:
                delay = retry_after_seconds(response.headers.get("Retry-After"), backoff)
                self._wait(delay, f"{response.status_code} from {url}")
                backoff = min(backoff * 2, 30)
                continue
            if 200 <= response.status_code < 300:
                return response.json()
            raise _error(response)
        raise AssertionError("unreachable")

    def _wait(self, seconds: float, why: str) -> None:
        if self.on_retry:
            self.on_retry(f"{why}; retrying in {seconds:.0f} s")
        self.sleep(seconds)

    def list_all(self, path: str, key: str, filters: dict, limit: int) -> list[dict]:
        """Up to limit items of a listing (GET path answering {key: [...], "next_page_token"}),
        following its page tokens; filters whose value is None are left out."""
        found: list[dict] = []
        token = None
        while len(found) < limit:
            params = {**filters, "page_size": min(MAX_PAGE_SIZE, limit - len(found)), "page_token": token}
            page = self.request("GET", path, params={k: v for k, v in params.items() if v is not None})
            found += page[key]
            token = page.get("next_page_token")
            if not token:
                break
        return found[:limit]

    def models(self) -> list[dict]:
        return self.request("GET", "/v1/models")["models"]

    def submit(self, model: str, path: Path) -> dict:
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        data = path.read_bytes()
        # Bytes, not a file handle: a retried request sends the whole image again.
        return self.request("POST", f"/v1/models/{model}/predictions",
                            files={"image": (path.name, data, content_type)})

    def submit_url(self, model: str, url: str) -> dict:
        """An image by http(s) URL or gs:// URI: the API fetches it (a field, not a file part)."""
        return self.request("POST", f"/v1/models/{model}/predictions", files={"image_url": (None, url)})

    def wait(self, prediction: dict, wait_seconds: int = 20, deadline: float | None = None) -> dict:
        """Long-polls the prediction until it is final (or the deadline passes)."""
        url = prediction.get("status_url") or f"{self.base_url}/v1/predictions/{prediction['id']}"
        while True:
            document = self.request("GET", url, params={"wait": wait_seconds})
            if document.get("status") in FINAL_STATUSES:
                return document
            if deadline is not None and time.monotonic() >= deadline:
                return document


def _error(response: requests.Response) -> ApiError:
    try:
        error = response.json()["error"]
        return ApiError(response.status_code, error.get("code", "error"), error.get("message", ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiError(response.status_code, "error", response.text[:200])
