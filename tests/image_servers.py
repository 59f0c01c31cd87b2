"""Local HTTP servers for images by URL: one that serves images (and redirects, errors, slow
bodies), and one that records every request it gets, to show a refused target was never contacted."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def this_machine_address() -> str:
    """A non-loopback address of this machine (a private or documentation one): a server bound to
    every interface answers on it, and the SSRF rules refuse it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.200", 9))  # no packet is sent: this only picks the outgoing interface
        address = probe.getsockname()[0]
    assert not address.startswith("127."), f"no non-loopback IPv4 address here ({address})"
    return address


class Server:
    """routes: path -> (status, headers, body) or a callable(handler) that writes the answer itself."""

    def __init__(self, routes: dict | None = None, host: str = "127.0.0.1") -> None:
        self.routes = dict(routes or {})
        self.hits: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hits.append(self.path)
                route = server.routes.get(self.path.split("?")[0], (404, {}, b"not here"))
                if callable(route):
                    route(self)
                    return
                status, headers, body = route
                self.send_response(status)
                for name, value in {"Content-Length": str(len(body)), **headers}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_port
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


JPEG = {"Content-Type": "image/jpeg"}


def recording_server(body: bytes) -> Server:
    """Bound to every interface: reachable on this machine's private address; records each hit."""
    return Server({"/": (200, JPEG, body)}, host="0.0.0.0")


def _start_unsized_jpeg(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", "image/jpeg")
    handler.send_header("Connection", "close")
    handler.end_headers()


def trickle(data: bytes, every_seconds: float):
    """A route that sends data one byte at a time, every_seconds apart (no Content-Length)."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _start_unsized_jpeg(handler)
        try:
            for byte in data:
                handler.wfile.write(bytes([byte]))
                handler.wfile.flush()
                time.sleep(every_seconds)
        except OSError:
            pass  # the client gave up, as it should

    return answer


def endless(chunk: bytes = b"\xff" * 65536):
    """A route that streams without end and without a Content-Length."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        _start_unsized_jpeg(handler)
        try:
            while True:
                handler.wfile.write(chunk)
        except OSError:
            pass

    return answer
