"""The whole API path of a running stack: one image at a time (with the billable operations and the
steps each prediction took, read from both units' /metrics), 16 in flight, with a callback instead
of a long poll, a POST while long polls are open, and the Pub/Sub emulator's own push delay."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import requests
from inference_contract.predictions import FINAL_STATUSES, SUCCEEDED

from emulators.processes import process_cpu_seconds
from scripts.benchmarks import operations
from scripts.benchmarks.bare import percentile
from scripts.benchmarks.push import Seeder
from scripts.fault_injection import CallbackReceiver
from scripts.measure_pubsub_emulator import PushServer


def serving_pid(port: int) -> int | None:
    """The process answering on port: the one started with `--port PORT` (functions-framework),
    or its worker child where it has one (it serves through gunicorn)."""
    parents: dict[int, int] = {}
    started = None
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().split(b"\0")
            stat = (cmdline.parent / "stat").read_text()
        except OSError:
            continue
        pid = int(cmdline.parent.name)
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        if any(a == b"--port" and b == str(port).encode() for a, b in zip(argv, argv[1:], strict=False)):
            started = pid
    if started is None:
        return None
    children = [pid for pid, parent in parents.items() if parent == started]
    return children[0] if children else started


def _post(session: requests.Session, api_url: str, model: str, photo: bytes, i: int, headers: dict,
          callback_url: str | None = None) -> requests.Response:
    data = {"callback_url": callback_url} if callback_url else None
    return session.post(f"{api_url}/v1/models/{model}/predictions", headers=headers, data=data,
                        files=[("image", (f"{i}.jpg", photo, "image/jpeg"))], timeout=60)


def timed_prediction(session: requests.Session, api_url: str, model: str, photo: bytes, i: int,
                     headers: dict) -> dict:
    """One prediction through the API, POST to its final status by long poll, in ms."""
    started = time.perf_counter()
    response = _post(session, api_url, model, photo, i, headers)
    posted = time.perf_counter()
    response.raise_for_status()
    status_url = response.json()["status_url"]
    while True:
        body = session.get(status_url, params={"wait": 10}, headers=headers, timeout=30).json()
        if body["status"] in FINAL_STATUSES:
            break
    done = time.perf_counter()
    stamps = {k: datetime.fromisoformat(body[k]) for k in ("created_at", "started_at", "completed_at")}
    # Pub/Sub's part of this very prediction (published to received, as the model service
    # timed it): subtracted per prediction, the emulator's 0-100 ms push loop leaves no noise.
    delivery = (body.get("timings") or {}).get("delivery_ms")
    total = (done - started) * 1000
    return {"total_ms": total, "upload_ms": (posted - started) * 1000,
            "delivery_ms": delivery,
            "total_less_delivery_ms": None if delivery is None else total - delivery,
            "queue_ms": (stamps["started_at"] - stamps["created_at"]).total_seconds() * 1000,
            "service_ms": (stamps["completed_at"] - stamps["started_at"]).total_seconds() * 1000,
            "status": body["status"]}


def sequential_summary(runs: list[dict]) -> dict:
    """p50 and p95 of each part of sequential predictions (timed_prediction's)."""
    summary = {part: {"p50": round(percentile([r[part] for r in runs], 50), 1),
                      "p95": round(percentile([r[part] for r in runs], 95), 1)}
               for part in ("total_ms", "upload_ms", "queue_ms", "service_ms")}
    for part in ("delivery_ms", "total_less_delivery_ms"):
        values = [r[part] for r in runs if r[part] is not None]
        if values:
            summary[part] = {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
                             "samples": len(values)}
    summary["failed"] = sum(r["status"] != SUCCEEDED for r in runs)
    return summary


def sequential(api_url: str, project: str, model: str, photos: list[bytes], predictions: int,
               headers: dict) -> dict:
    """One image at a time through the API, after one for warm-up, and the Pub/Sub emulator's own
    push delay measured right after: a later round's figures for our part of the latency."""
    session = requests.Session()
    timed_prediction(session, api_url, model, photos[0], 0, headers)
    runs = [timed_prediction(session, api_url, model, photos[i % len(photos)], i, headers)
            for i in range(predictions)]
    summary = sequential_summary(runs)
    summary["emulator_push_delay_ms"] = emulator_push_delay(project)
    return summary


def api_path(api_url: str, model: str, photos: list[bytes], predictions: int, concurrent: int,
             headers: dict, units: dict[str, str]) -> dict:
    """units: the /metrics base URL of the API and of the model's service, by name."""
    session = requests.Session()

    def one(i: int) -> dict:
        return timed_prediction(session, api_url, model, photos[i % len(photos)], i, headers)

    one(0)  # warm-up
    api_pid = serving_pid(int(api_url.rsplit(":", 1)[1]))
    before, cpu = operations.read_all(units), process_cpu_seconds(api_pid) if api_pid else None
    runs = [one(i) for i in range(predictions)]
    after = operations.read_all(units)
    summary = sequential_summary(runs)
    summary["steps_mean_ms"] = operations.step_means_ms(before, after)
    summary["operations_per_prediction"] = operations.per_prediction(before, after, predictions)
    if api_pid:  # the API's CPU per prediction: its POST and its long poll
        summary["api_cpu_ms_per_prediction"] = round(
            (process_cpu_seconds(api_pid) - cpu) / predictions * 1000, 2)
    wall = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        parallel = list(pool.map(one, range(concurrent)))
    wall = time.perf_counter() - wall
    summary["failed"] += sum(r["status"] != SUCCEEDED for r in parallel)
    summary["in_flight_16_images_per_s"] = round(concurrent / wall, 1)
    return summary


def with_callback(api_url: str, model: str, photos: list[bytes], predictions: int, headers: dict,
                  units: dict[str, str], settle_seconds: float = 1.0) -> dict:
    """Operations per prediction when the client asks for a callback and does not poll: each
    POST, then its callback received; the counts read once the last callback's outcome is
    recorded (settle_seconds after it arrived)."""
    receiver = CallbackReceiver()
    session = requests.Session()

    def callbacks(count: int) -> bool:
        deadline = time.monotonic() + 30
        while len(receiver.received) < count and time.monotonic() < deadline:
            time.sleep(0.001)
        return len(receiver.received) >= count

    try:
        _post(session, api_url, model, photos[0], 0, headers, receiver.url).raise_for_status()  # warm-up
        callbacks(1)
        time.sleep(settle_seconds)
        api_pid = serving_pid(int(api_url.rsplit(":", 1)[1]))
        before, cpu = operations.read_all(units), process_cpu_seconds(api_pid) if api_pid else None
        for i in range(predictions):  # one at a time: each POST, then its callback
            photo = photos[i % len(photos)]
            _post(session, api_url, model, photo, i, headers, receiver.url).raise_for_status()
            callbacks(i + 2)
        time.sleep(settle_seconds)
        after = operations.read_all(units)
        figures = {"callbacks_received": len(receiver.received) - 1,
                   "operations_per_prediction": operations.per_prediction(before, after, predictions)}
        if api_pid:
            figures["api_cpu_ms_per_prediction"] = round(
                (process_cpu_seconds(api_pid) - cpu) / predictions * 1000, 2)
    finally:
        receiver.close()
    return figures


def emulator_push_delay(project: str, messages: int = 60) -> dict:
    """ms from a publish's ack to its push reaching a local endpoint, on a scratch topic: the part
    of "queue" that is the Pub/Sub emulator's. Its push loop sleeps 100 ms whenever it found
    nothing to send, so an idle subscription's delay is spread over 0-100 ms, whatever the
    services do. The endpoint is measure_pubsub_emulator's PushServer, answering 204 at once;
    messages are published one at a time at uneven intervals so the figure is not phase-locked."""
    from google.cloud import pubsub_v1

    server = PushServer(handler_delay=0)
    server.outage_ends = 0  # no outage: every push is answered 204
    publisher = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))
    subscriber = pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(project, f"benchmark-push-delay-{suffix}")
    subscription = subscriber.subscription_path(project, f"benchmark-push-delay-{suffix}")
    publisher.create_topic(name=topic)
    try:
        subscriber.create_subscription(name=subscription, topic=topic,
                                       push_config={"push_endpoint": server.url})
        delays = []
        for n in range(messages):
            publisher.publish(topic, json.dumps({"n": str(n)}).encode()).result(timeout=30)
            acked = time.monotonic()
            # One message at a time, each answered 204: the n-th push is message n's.
            while len(server.push_times) <= n and time.monotonic() - acked < 10:
                time.sleep(0.0005)
            if len(server.push_times) > n:
                delays.append((server.push_times[n] - acked) * 1000)
            time.sleep(0.013 * (n % 7))
        subscriber.delete_subscription(subscription=subscription)
    finally:
        publisher.delete_topic(topic=topic)
        server.httpd.shutdown()
    return {"p50": round(percentile(delays, 50), 1), "p95": round(percentile(delays, 95), 1),
            "delivered": len(delays)}


def with_long_polls(api_url: str, seeder: Seeder, model: str, photos: list[bytes], waiters: int,
                    headers: dict, poll_seconds: int = 30) -> dict:
    """A POST and a GET /v1/models answered while `waiters` long polls are open on the API."""
    ids = [e["message"]["messageId"] for e in seeder.envelopes(waiters)]  # queued; nothing will run them
    session = requests.Session()

    def poll(prediction_id: str) -> int:
        return requests.get(f"{api_url}/v1/predictions/{prediction_id}", params={"wait": poll_seconds},
                            headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(waiters) as pool:
        polls = [pool.submit(poll, i) for i in ids]
        time.sleep(min(3, poll_seconds / 2))  # let every long poll reach the API
        open_polls = sum(not f.done() for f in polls)
        timings = {}
        for name, call in (
                ("post_ms", lambda: session.post(f"{api_url}/v1/models/{model}/predictions", headers=headers,
                                                 files=[("image", ("x.jpg", photos[0], "image/jpeg"))],
                                                 timeout=60)),
                ("models_ms", lambda: session.get(f"{api_url}/v1/models", headers=headers, timeout=60))):
            started = time.perf_counter()
            call().raise_for_status()
            timings[name] = round((time.perf_counter() - started) * 1000, 1)
        answered = [f.result() for f in polls]
    return {"long_polls_open": open_polls, **timings, "long_polls_answered_200": answered.count(200)}
