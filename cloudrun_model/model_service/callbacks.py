"""The callback adapter: POSTs a finished prediction to the client's callback URL."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from inference_contract.callback_targets import ForbiddenTarget
from inference_contract.pinned_http import pinned_session
from standardwebhooks import Webhook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackResult:
    delivered: bool
    error: str | None = None


class HttpCallbackNotifier:
    """POSTs the final document to the client's callback URL, once per call, signed.

    A failed attempt is recorded on the document and retried later by the
    reconciler, so one slow receiver never holds a push request for long.
    Standard Webhooks: `webhook-id` is the prediction id on every attempt, so a
    receiver can drop a repeat; `webhook-timestamp` and `webhook-signature`
    (HMAC-SHA256 with the CALLBACK_SIGNING_SECRET) let it check where it came from.

    The target is checked again here, against DNS rebinding: the host is resolved
    once, every rule of callback_targets applies to that address, and the
    connection goes to it. No redirect is followed.
    """

    def __init__(self, timeout_seconds: float, signing_secret: str | None = None,
                 allow_loopback: bool = False) -> None:
        self._timeout = timeout_seconds
        self._webhook = Webhook(signing_secret) if signing_secret else None
        self._session = pinned_session(timeout_seconds, timeout_seconds, allow_loopback)

    def headers(self, document: dict, body: str, now: datetime) -> dict[str, str]:
        headers = {"content-type": "application/json", "webhook-id": document["id"],
                   "webhook-timestamp": str(int(now.timestamp()))}
        if self._webhook:
            headers["webhook-signature"] = self._webhook.sign(document["id"], now, body)
        return headers

    def notify(self, url: str, document: dict) -> CallbackResult:
        body = json.dumps(document, separators=(",", ":"))
        headers = self.headers(document, body, datetime.now(UTC))
        context = {"prediction_id": document["id"], "host": urlsplit(url).hostname}
        try:
            response = self._session.post(url, data=body.encode(), headers=headers, timeout=self._timeout,
                                          allow_redirects=False)
        except (requests.RequestException, ForbiddenTarget) as exc:
            log.warning("callback failed", extra={**context, "error": str(exc)})
            return CallbackResult(False, f"{type(exc).__name__}: {exc}"[:300])
        log.info("callback sent", extra={**context, "status_code": response.status_code})
        if 200 <= response.status_code < 300:
            return CallbackResult(True)
        return CallbackResult(False, f"the receiver answered {response.status_code}")
