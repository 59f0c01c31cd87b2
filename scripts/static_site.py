"""Serves web/ on loopback, answering /config.js so the page finds the local API.

In the cloud the same config.js is an object Terraform writes to the website bucket.
"""

from __future__ import annotations

import argparse
import functools
import json
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"


def config_script(api_base_url: str) -> bytes:
    return f"window.INFERENCE_CONFIG = {json.dumps({'apiBaseUrl': api_base_url})};\n".encode()


class SiteHandler(SimpleHTTPRequestHandler):
    def __init__(self, *args, api_base_url: str, **kwargs) -> None:
        self.api_base_url = api_base_url
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == "/config.js":
            body = config_script(self.api_base_url)
            self.send_response(200)
            self.send_header("Content-Type", "text/javascript; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-base-url", required=True)
    parser.add_argument("--directory", type=Path, default=WEB_ROOT)
    args = parser.parse_args(argv)
    handler = functools.partial(SiteHandler, api_base_url=args.api_base_url, directory=str(args.directory))
    ThreadingHTTPServer(("127.0.0.1", args.port), handler).serve_forever()


if __name__ == "__main__":
    main()
