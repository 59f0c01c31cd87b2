"""Sends images with callbacks through the running stack while SIGKILLing a model service's worker.

    make run                                     # in one terminal
    .venv/bin/python scripts/fault_injection.py  # 300 images, 3 kills 6 s apart, efficientnet-lite0

It POSTs --images uploads of the sample photos to --model, each with a
callback_url to a receiver it runs on 127.0.0.1, kills the model service's
gunicorn worker --kills times, --interval seconds apart (gunicorn's master
starts a new one, as Cloud Run replaces a crashed instance), then waits until
every prediction is final or --timeout passes. It prints one JSON report:
statuses, callbacks received (all, distinct webhook-ids, repeats, missing),
and for each kill the seconds until the first prediction that completed after
it. Exits 1 unless every prediction succeeded with exactly one distinct
callback each.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests
from inference_contract.predictions import FINAL_STATUSES, RUNNING, SUCCEEDED

from emulators.processes import gunicorn_worker_pid
from scripts.sample_photos import all_samples

ROOT = Path(__file__).resolve().parent.parent


class CallbackReceiver:
    """Records every callback: its webhook-id header, the body's id and status, and the body."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.arrived = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver._lock:
                    receiver.received.append({"webhook_id": self.headers.get("webhook-id"),
                                              "id": body.get("id"), "status": body.get("status"),
                                              "body": body})
                receiver.arrived.set()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def kill_worker(port: int, timeout: float = 60.0) -> float:
    """SIGKILL the current worker (waiting for one to exist); the monotonic time of the kill."""
    deadline = time.monotonic() + timeout
    while (pid := gunicorn_worker_pid(port)) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no gunicorn worker serves port {port}")
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def sample_photos() -> list[tuple[str, bytes]]:
    return [(photo.name, photo.read_bytes()) for photo in all_samples()]


def wait_all_final(api_url: str, ids: list[str], deadline: float, headers: dict) -> dict[str, dict]:
    finals: dict[str, dict] = {}
    session = requests.Session()
    while len(finals) < len(ids) and time.monotonic() < deadline:
        for prediction_id in ids:
            if prediction_id in finals:
                continue
            body = session.get(f"{api_url}/v1/predictions/{prediction_id}", headers=headers,
                               timeout=30).json()
            if body.get("status") in FINAL_STATUSES:
                finals[prediction_id] = body
        if len(finals) < len(ids):
            time.sleep(1)
    return finals


def run(api_url: str, model: str, model_port: int, images: int = 300, kills: int = 3,
        interval: float = 6.0, timeout: float = 300.0, senders: int = 4,
        receiver: CallbackReceiver | None = None, headers: dict | None = None) -> dict:
    """Submit, kill, wait; the report as a dict."""
    headers = headers or {}
    photos = sample_photos()
    own_receiver = receiver is None
    receiver = receiver or CallbackReceiver()
    session = requests.Session()

    def submit(n: int) -> str:
        name, data = photos[n % len(photos)]
        for _ in range(5):  # a 503 from the API means nothing was accepted: send again
            response = session.post(f"{api_url}/v1/models/{model}/predictions", headers=headers,
                                    files=[("image", (name, data, "image/jpeg"))],
                                    data={"callback_url": receiver.url}, timeout=60)
            if response.status_code == 202:
                submitted_ids.append(response.json()["id"])
                return response.json()["id"]
            time.sleep(1)
        raise RuntimeError(f"upload {n} refused: {response.status_code} {response.text[:200]}")

    started = time.monotonic()
    kill_times: list[float] = []
    wall_offset = time.time() - time.monotonic()

    submitted_ids: list[str] = []
    poll = requests.Session()

    def some_running() -> bool:
        for prediction_id in submitted_ids[-16:]:
            body = poll.get(f"{api_url}/v1/predictions/{prediction_id}", headers=headers, timeout=30).json()
            if body.get("status") == RUNNING:
                return True
        return False

    def killer() -> None:
        for k in range(kills):
            if k:
                time.sleep(interval)
            # Mid-run: wait (a bounded time) until the worker is running a prediction.
            deadline = time.monotonic() + 10
            while not some_running() and time.monotonic() < deadline:
                pass
            kill_times.append(kill_worker(model_port))

    try:
        kill_thread = threading.Thread(target=killer, daemon=True)
        with ThreadPoolExecutor(senders) as pool:
            first = pool.submit(submit, 0)
            ids = [first.result()]
            kill_thread.start()  # the first kill lands while uploads are in flight
            ids += list(pool.map(submit, range(1, images)))
        submitted = time.monotonic()
        kill_thread.join()
        finals = wait_all_final(api_url, ids, started + timeout, headers)
        done = time.monotonic()
        # Callbacks for the last predictions may still be on their way.
        settle = time.monotonic() + 30
        while len({c["webhook_id"] for c in receiver.received}) < len(ids) and time.monotonic() < settle:
            time.sleep(0.5)
    finally:
        if own_receiver:
            receiver.close()

    completed = sorted(datetime.fromisoformat(f["completed_at"]).timestamp() - wall_offset
                       for f in finals.values() if f["status"] == SUCCEEDED and f.get("completed_at"))
    recovery = []
    for killed in kill_times:
        after = [t for t in completed if t > killed]
        recovery.append(round(after[0] - killed, 2) if after else None)
    per_id = Counter(c["webhook_id"] for c in receiver.received)
    statuses = Counter(f["status"] for f in finals.values())
    errors = Counter(f["error"]["code"] for f in finals.values() if f.get("error"))
    return {
        "model": model, "images": images, "kills": len(kill_times), "kill_interval_seconds": interval,
        "submit_seconds": round(submitted - started, 1),
        "all_final_seconds": round(done - started, 1) if len(finals) == len(ids) else None,
        "statuses": dict(statuses), "not_final": len(ids) - len(finals), "errors": dict(errors),
        "callbacks_received": len(receiver.received),
        "callbacks_distinct": len(per_id),
        "callbacks_repeated": sum(n - 1 for n in per_id.values()),
        "callbacks_missing": len(set(ids) - set(per_id)),
        "callbacks_header_matches_body": all(c["webhook_id"] == c["id"] for c in receiver.received),
        "seconds_from_kill_to_next_success": recovery,
        "ids": ids,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--model-port", type=int, default=8101,
                        help="port of the model's service (make run: 8101 for the first model)")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--interval", type=float, default=6.0)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    # The key from INFERENCE_API_KEY, or else the one `make run` wrote to .local/api_key.
    from scripts.api_keys import client_headers

    report = run(args.api_url, args.model, args.model_port, args.images, args.kills, args.interval,
                 args.timeout, headers=client_headers())
    report.pop("ids")
    print(json.dumps(report, indent=1))
    ok = (report["statuses"] == {SUCCEEDED: args.images} and report["callbacks_missing"] == 0
          and report["callbacks_distinct"] == args.images)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
