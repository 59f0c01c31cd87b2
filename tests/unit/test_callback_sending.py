"""The model service's callback POST against real local HTTP servers: signed, no redirects,
checked again at send time against the address actually connected to."""

from __future__ import annotations

import base64
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from model_service.callbacks import HttpCallbackNotifier
from standardwebhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
DOCUMENT = {"id": "3f2c0d", "model": "cat", "status": "succeeded", "result": {"match": True}}


class Receiver:
    def __init__(self, status: int = 204, location: str | None = None) -> None:
        self.requests: list[tuple[dict, bytes, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body, self.path))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    opened = Receiver()
    yield opened
    opened.close()


def test_a_signed_callback_verifies_with_standardwebhooks(receiver):
    notifier = HttpCallbackNotifier(5, SECRET, allow_loopback=True)
    result = notifier.notify(f"http://127.0.0.1:{receiver.port}/hook", DOCUMENT)
    assert result.delivered, result.error
    headers, body, _ = receiver.requests[0]
    assert headers["webhook-id"] == DOCUMENT["id"]
    assert Webhook(SECRET).verify(body, headers) == DOCUMENT
    # A tampered body or another secret does not verify.
    from standardwebhooks import WebhookVerificationError

    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace(b"true", b"false"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + base64.b64encode(b"another secret").decode()).verify(body, headers)


def test_loopback_is_refused_at_send_time_without_the_setting(receiver):
    result = HttpCallbackNotifier(5, SECRET).notify(f"http://127.0.0.1:{receiver.port}/hook", DOCUMENT)
    assert not result.delivered and receiver.requests == []
    result = HttpCallbackNotifier(5, SECRET).notify(f"http://localhost:{receiver.port}/hook", DOCUMENT)
    assert not result.delivered and receiver.requests == []


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/computeMetadata/v1/", "http://metadata.google.internal/x",
    "http://10.0.0.1/x", "http://[::ffff:169.254.169.254]/x", "http://[fd00::1]/x", "http://100.64.0.1/x",
])
def test_private_and_metadata_targets_are_refused_at_send_time_even_with_loopback_allowed(url):
    result = HttpCallbackNotifier(1, SECRET, allow_loopback=True).notify(url, DOCUMENT)
    assert not result.delivered
    assert "Forbidden" in result.error or "Invalid" in result.error, result.error


def test_a_redirect_is_not_followed():
    target = Receiver()
    redirecting = Receiver(status=307, location=f"http://127.0.0.1:{target.port}/elsewhere")
    try:
        result = HttpCallbackNotifier(5, SECRET, allow_loopback=True).notify(
            f"http://127.0.0.1:{redirecting.port}/hook", DOCUMENT)
        assert not result.delivered and result.error == "the receiver answered 307"
        assert len(redirecting.requests) == 1 and target.requests == []
    finally:
        target.close()
        redirecting.close()


def test_dns_rebinding_is_caught_and_the_checked_address_is_the_one_connected_to(receiver, monkeypatch):
    """A name that resolved to a public address at submit time resolves to a private one when sending."""
    answers = {"rebind.example": "10.0.0.7", "pinned.example": "127.0.0.1"}
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        if host in answers:
            lookups.append(host)
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    notifier = HttpCallbackNotifier(5, SECRET, allow_loopback=True)
    refused = notifier.notify(f"http://rebind.example:{receiver.port}/hook", DOCUMENT)
    assert not refused.delivered and "10.0.0.7" in refused.error and receiver.requests == []
    # pinned.example exists only in this resolver: the POST arrives only because the
    # connection goes to the address that was resolved and checked, once.
    lookups.clear()
    delivered = notifier.notify(f"http://pinned.example:{receiver.port}/hook", DOCUMENT)
    assert delivered.delivered, delivered.error
    assert lookups == ["pinned.example"]
    headers, body, _ = receiver.requests[0]
    assert headers["Host"] == f"pinned.example:{receiver.port}"
    assert json.loads(body) == DOCUMENT
