"""Measures what the Pub/Sub emulator does with push deliveries that fail for a while.

    python scripts/measure_pubsub_emulator.py                      # 100 messages, 5 s of 503s, retry 1-10 s
    python scripts/measure_pubsub_emulator.py --outage 1
    python scripts/measure_pubsub_emulator.py --no-retry-policy
    python scripts/measure_pubsub_emulator.py --outage 0 --handler-delay 0.5   # how many pushes in flight

It starts its own emulator on a free port, publishes --messages messages to a
topic whose push subscription (max --max-attempts deliveries, then a
dead-letter topic) calls a local server. The server answers 503 until --outage
seconds after the first publish, then 204. After --observe seconds it prints how
many messages were delivered, dead-lettered, or neither (stuck), and the
figures the README's delivery section quotes.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from emulators.processes import ManagedProcess, ProcessGroup, free_port

ROOT = Path(__file__).resolve().parent.parent


class PushServer:
    """Counts pushes per message; 503 during the outage, 204 afterwards."""

    def __init__(self, handler_delay: float) -> None:
        self.outage_ends = float("inf")
        self.pushes: Counter[str] = Counter()
        self.delivered: set[str] = set()
        self.push_times: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                message_id = json.loads(base64.b64decode(body["message"]["data"]))["n"]
                with server._lock:
                    server.pushes[message_id] += 1
                    server.push_times.append(time.monotonic())
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(handler_delay)
                ok = time.monotonic() >= server.outage_ends
                with server._lock:
                    server.in_flight -= 1
                    if ok:
                        server.delivered.add(message_id)
                self.send_response(204 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/"


def measure(args: argparse.Namespace) -> dict:
    from google.cloud import pubsub_v1
    from google.protobuf import duration_pb2

    group = ProcessGroup()
    port = free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="pubsub-measure-"))
    emulator = group.start(ManagedProcess(
        "Pub/Sub emulator",
        ["gcloud", "beta", "emulators", "pubsub", "start", f"--host-port=127.0.0.1:{port}",
         "--project=measure", f"--data-dir={log_dir}", "--quiet"],
        log_path=log_dir / "pubsub-emulator.log"))
    try:
        emulator.wait_http(f"http://127.0.0.1:{port}/", 120)
        os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"
        publisher = pubsub_v1.PublisherClient()
        subscriber = pubsub_v1.SubscriberClient()
        topic = publisher.topic_path("measure", "work")
        dead_topic = publisher.topic_path("measure", "work-dead-letter")
        dead_sub = subscriber.subscription_path("measure", "work-dead-letter-pull")
        publisher.create_topic(name=topic)
        publisher.create_topic(name=dead_topic)
        subscriber.create_subscription(name=dead_sub, topic=dead_topic)
        server = PushServer(args.handler_delay)
        request = {
            "name": subscriber.subscription_path("measure", "work-push"), "topic": topic,
            "push_config": {"push_endpoint": server.url}, "ack_deadline_seconds": args.ack_deadline,
            "dead_letter_policy": {"dead_letter_topic": dead_topic,
                                   "max_delivery_attempts": args.max_attempts},
        }
        if not args.no_retry_policy:
            request["retry_policy"] = {
                "minimum_backoff": duration_pb2.Duration(seconds=args.min_backoff),
                "maximum_backoff": duration_pb2.Duration(seconds=args.max_backoff)}
        subscriber.create_subscription(request=request)

        started = time.monotonic()
        server.outage_ends = started + args.outage
        futures = [publisher.publish(topic, json.dumps({"n": str(n)}).encode())
                   for n in range(args.messages)]
        for future in futures:
            future.result(30)
        time.sleep(args.observe)

        dead: set[str] = set()
        while True:
            response = subscriber.pull(request={"subscription": dead_sub, "max_messages": 1000},
                                       timeout=10)
            if not response.received_messages:
                break
            for received in response.received_messages:
                dead.add(json.loads(received.message.data)["n"])
            subscriber.acknowledge(request={"subscription": dead_sub, "ack_ids": [
                received.ack_id for received in response.received_messages]})
        all_ids = {str(n) for n in range(args.messages)}
        last_push = max(server.push_times) - started if server.push_times else None
        return {
            "messages": args.messages,
            "retry_policy": None if args.no_retry_policy else f"{args.min_backoff}-{args.max_backoff} s",
            "max_delivery_attempts": args.max_attempts,
            "outage_seconds": args.outage,
            "observed_seconds": args.observe,
            "pushes": sum(server.pushes.values()),
            "most_pushes_for_one_message": max(server.pushes.values(), default=0),
            "delivered": len(server.delivered),
            "dead_lettered": len(dead),
            "delivered_and_dead_lettered": len(server.delivered & dead),
            "stuck": len(all_ids - server.delivered - dead),
            "last_push_after_seconds": round(last_push, 1) if last_push is not None else None,
            "max_pushes_in_flight": server.max_in_flight,
        }
    finally:
        group.stop_all()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds of 503s after publishing")
    parser.add_argument("--observe", type=float, default=120.0, help="seconds to watch after publishing")
    parser.add_argument("--max-attempts", type=int, default=5)
    parser.add_argument("--min-backoff", type=int, default=1)
    parser.add_argument("--max-backoff", type=int, default=10)
    parser.add_argument("--no-retry-policy", action="store_true",
                        help="no retry policy: the emulator redelivers at once")
    parser.add_argument("--ack-deadline", type=int, default=60)
    parser.add_argument("--handler-delay", type=float, default=0.0,
                        help="seconds each push takes to answer")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    print(json.dumps(measure(parse_args(argv)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
