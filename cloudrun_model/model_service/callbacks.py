"""The callback adapter: POSTs a finished prediction to the client's callback URL."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests
from inference_contract.callback_targets import ForbiddenTarget, check_name
from requests_hardened import Config as HardenedConfig
from requests_hardened import HTTPSession
from requests_hardened.ip_filter_adapter import IPFilterAdapter
from standardwebhooks import Webhook

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallbackResult:
    delivered: bool
    error: str | None = None


class CheckedAddressAdapter(IPFilterAdapter):
    """requests-hardened's adapter (resolve once, refuse private and loopback, connect to that
    address), with this service's rules (callback_targets) applied to the same resolved address."""

    def __init__(self, is_https_proto: bool, allow_loopback: bool) -> None:
        super().__init__(is_https_proto=is_https_proto, allow_loopback=allow_loopback)
        self._loopback = allow_loopback

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        check_name(urlsplit(request.url).hostname or "", self._loopback)  # metadata names, literals
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(request, verify, cert)
        # host_params["host"] is now the one address requests-hardened resolved and checked, and
        # the connection goes to it: judge that same address by our rules, with no second lookup.
        check_name(host_params["host"], self._loopback)
        return host_params, pool_kwargs


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
        self._session = HTTPSession(HardenedConfig(
            ip_filter_enable=True, ip_filter_allow_loopback_ips=allow_loopback, never_redirect=True,
            default_timeout=(timeout_seconds, timeout_seconds)))
        self._session.trust_env = False  # no proxy from the environment: it would be what gets checked
        for scheme in ("http://", "https://"):
            self._session.mount(scheme, CheckedAddressAdapter(scheme == "https://", allow_loopback))

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
