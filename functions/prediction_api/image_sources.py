"""Images a prediction request names instead of sending (form field image_url): an http(s) URL
or a gs://bucket/object, fetched by the API at submit.

Why the API, at submit: a URL that is refused or cannot be fetched is answered at
once (400 / 422) with nothing written; the fetched bytes pass the same validation
as an upload and are stored in the uploads bucket like one, so the model services
need no egress and no read access to users' buckets, and a prediction reads the
image as it was when accepted.

An http(s) fetch is as careful as a callback: the host is checked by the callback
rules (inference_contract.callback_targets) before anything is sent, the
connection goes to the one address checked (inference_contract.pinned_http), each
redirect is checked the same way before it is followed (at most
IMAGE_FETCH_MAX_REDIRECTS), and the size limit holds while the body streams in,
under connect and read timeouts and one deadline for all fetches of a request.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import SplitResult, urljoin, urlsplit

import requests
import urllib3
from inference_contract.callback_targets import ForbiddenTarget, Resolver, check_host, system_resolver
from inference_contract.pinned_http import REFUSED, pinned_session

from .config import Settings
from .errors import FetchFailed, InvalidRequest
from .images import Upload, validate_image
from .urls import split_url

FIELD = "image_url"
MAX_URL_LENGTH = 2048
HTTP_SCHEMES = ("http", "https")
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK_BYTES = 1 << 16
# Bucket names as Cloud Storage allows them (dots allowed, 3 to 222 characters).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


@dataclass(frozen=True)
class ImageReference:
    url: str
    bucket: str | None = None  # set for gs:// references
    object_name: str | None = None

    @property
    def display_name(self) -> str:
        """What the prediction records as its filename: the URL without query or fragment
        (a signed URL's token is not kept)."""
        parts = urlsplit(self.url)
        return self.url if self.bucket else parts._replace(query="", fragment="").geturl()


class BucketReader(Protocol):
    def read(self, bucket: str, name: str, max_bytes: int, timeout: float) -> bytes:
        """The object's bytes; ImageNotFound, ImageAccessDenied, FetchFailed (too large, timeout)
        or BackendUnavailable otherwise."""


def too_large(url: str, max_bytes: int) -> FetchFailed:
    return FetchFailed(f"{url} is larger than {max_bytes} bytes, the limit per image",
                       reason="too_large", limit_bytes=max_bytes)


def malformed_redirect(url: str) -> FetchFailed:
    return FetchFailed(f"{url} redirects to a malformed URL", reason="malformed_redirect")


class ImageSources:
    def __init__(self, settings: Settings, buckets: BucketReader, resolve: Resolver = system_resolver,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings, self._buckets, self._resolve, self._clock = settings, buckets, resolve, clock
        self._session = pinned_session(settings.image_fetch_connect_timeout_seconds,
                                       settings.image_fetch_read_timeout_seconds,
                                       settings.callback_allow_loopback)

    def check(self, urls: list[str]) -> list[ImageReference]:
        """Every reference parsed and its host checked: InvalidRequest (400) before anything is fetched."""
        return [self._check_one(url) for url in urls]

    def fetch(self, references: list[ImageReference]) -> list[Upload]:
        """Each image fetched and validated as an upload is, all within IMAGE_FETCH_TOTAL_SECONDS."""
        deadline = self._clock() + self._settings.image_fetch_total_seconds
        max_bytes = self._settings.max_image_bytes
        images = []
        for reference in references:
            if reference.bucket:
                data = self._buckets.read(reference.bucket, reference.object_name or "", max_bytes,
                                          self._remaining(reference, deadline))
            else:
                data = self._fetch_http(reference, deadline)
            images.append(validate_image(data, max_bytes, reference.display_name,
                                         self._settings.max_image_pixels))
        return images

    def _remaining(self, reference: ImageReference, deadline: float) -> float:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise FetchFailed(f"fetching {reference.display_name} timed out: all images of a request must "
                              f"arrive within {self._settings.image_fetch_total_seconds:g} s",
                              reason="timeout")
        return remaining

    def _check_one(self, url: str) -> ImageReference:
        if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
            raise InvalidRequest(f"{FIELD} must be a URL of at most {MAX_URL_LENGTH} characters")
        if url.startswith("gs://"):
            bucket, _, name = url[5:].partition("/")
            if not _BUCKET.match(bucket) or not name or len(name.encode()) > 1024 \
                    or any(c in name for c in "\r\n"):
                raise InvalidRequest(f"{FIELD} {url!r} is not gs://bucket/object")
            return ImageReference(url, bucket, name)
        self._check_http(url, FIELD)
        return ImageReference(url)

    def _check_http(self, url: str, what: str) -> SplitResult:
        parts = split_url(url, what)
        hostname, port = parts.hostname, parts.port
        if parts.scheme not in HTTP_SCHEMES or not hostname:
            raise InvalidRequest(f"{what} must be an absolute http, https or gs:// URL")
        if parts.username is not None or parts.password is not None:
            raise InvalidRequest(f"{what} must not carry credentials")
        try:
            check_host(hostname, port or (443 if parts.scheme == "https" else 80),
                       self._settings.callback_allow_loopback, self._resolve)
        except ForbiddenTarget as exc:
            raise InvalidRequest(f"{what} is refused: {exc}") from None
        # After the address rules, so that a refusal names the rule a target breaks.
        allowed = self._settings.image_url_allowed_hosts
        if allowed and hostname.lower() not in allowed:
            raise InvalidRequest(f"{what} is refused: this deployment fetches images only from "
                                 f"{', '.join(allowed)}")
        return parts

    def _fetch_http(self, reference: ImageReference, deadline: float) -> bytes:
        url, name = reference.url, reference.display_name
        for hop in range(self._settings.image_fetch_max_redirects + 1):
            if hop:
                # Checked before it is contacted: a refused target never sees a request.
                self._check_http(url, f"{FIELD} {name} redirects to {url[:200]}, which")
            remaining = self._remaining(reference, deadline)
            timeout = (min(self._settings.image_fetch_connect_timeout_seconds, remaining),
                       min(self._settings.image_fetch_read_timeout_seconds, remaining))
            try:
                response = self._session.get(url, stream=True, allow_redirects=False, timeout=timeout,
                                             headers={"Accept": "image/*"})
            except REFUSED as exc:
                raise InvalidRequest(f"{FIELD} {name} is refused: {exc}") from None
            except ValueError:
                # requests parses a redirect's Location even when it does not follow it
                raise malformed_redirect(name) from None
            except requests.Timeout:
                raise self._timed_out(name) from None
            except requests.RequestException as exc:
                raise FetchFailed(f"{name} could not be fetched: {type(exc).__name__}",
                                  reason="connection") from None
            with response:
                location = response.headers.get("Location")
                if response.status_code in REDIRECTS and location:
                    try:
                        url = urljoin(url, location)
                    except ValueError:  # an authority urlsplit can't take: the server's fault
                        raise malformed_redirect(name) from None
                    continue
                if response.status_code != 200:
                    raise FetchFailed(f"{name} answered HTTP {response.status_code}",
                                      reason="remote_status", remote_status=response.status_code)
                return self._read_body(response, reference, deadline)
        raise FetchFailed(f"{name} redirects more than {self._settings.image_fetch_max_redirects} times",
                          reason="too_many_redirects")

    def _read_body(self, response: requests.Response, reference: ImageReference, deadline: float) -> bytes:
        """The body, refused as soon as it passes the limit or the deadline.

        read1 returns what one read of the socket gave, so a server that trickles
        bytes meets the deadline between reads instead of holding one large read."""
        max_bytes, name = self._settings.max_image_bytes, reference.display_name
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise too_large(name, max_bytes)
        chunks: list[bytes] = []
        received = 0
        try:
            while chunk := response.raw.read1(CHUNK_BYTES, decode_content=True):
                received += len(chunk)
                if received > max_bytes:
                    raise too_large(name, max_bytes)
                chunks.append(chunk)
                self._remaining(reference, deadline)
        except (urllib3.exceptions.TimeoutError, TimeoutError):
            raise self._timed_out(name) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise FetchFailed(f"{name} could not be read: {type(exc).__name__}",
                              reason="connection") from None
        return b"".join(chunks)

    def _timed_out(self, name: str) -> FetchFailed:
        return FetchFailed(f"fetching {name} timed out (connect "
                           f"{self._settings.image_fetch_connect_timeout_seconds:g} s, read "
                           f"{self._settings.image_fetch_read_timeout_seconds:g} s)", reason="timeout")
