"""The model services and the API measured against the bare SavedModel, side by side.

    make run                                        # in one terminal
    .venv/bin/python scripts/benchmark_service.py   # efficientnet-lite0 and resnet50

For each model it prints:
- the bare SavedModel in this process: images/s and CPU ms per image at batch
  1, 8, 16 and 32, on the sample photos (decoding included, as served);
- a model service started by this script with the stack's own command
  (gunicorn, the model repository, the emulators), driven at its push endpoint
  with 1, 8, 32 and 64 requests in flight, as Cloud Run receives them from a
  busy subscription. The script seeds Firestore and Storage itself. Its
  worker's CPU time comes from /proc; the batch sizes that formed from its log;
- the same service with MAX_BATCH_SIZE=1 at 32 in flight;
- the whole API path of the running stack: one image at a time (p50/p95 with
  the upload, queue and service parts), 16 in flight, and a POST timed while
  --long-polls long polls are open; and, to read "queue" by, the Pub/Sub
  emulator's own push delay on a scratch topic (its push loop polls every 100 ms);
- the ratios the performance targets are stated in.

Run it on an idle machine: the emulators, the service and this script share
the cores. `--json` prints the figures as one JSON object as well; `--parts`
and `--levels` measure only some of them (e.g. `--parts bare,service --levels 32`
for the CPU ratio alone).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests
from inference_contract.predictions import FINAL_STATUSES, SUCCEEDED

from emulators.local_stack import LocalStack, StackConfig
from emulators.processes import free_port, gunicorn_worker_pid, process_cpu_seconds
from scripts.sample_photos import all_samples

ROOT = Path(__file__).resolve().parent.parent

BARE_BATCHES = (1, 8, 16, 32)
IN_FLIGHT = (1, 8, 32, 64)


def api_key_id(headers: dict) -> str | None:
    """The id part of the X-API-Key the benchmark sends (what the API records as the owner)."""
    from prediction_api.auth import KEY_PATTERN

    match = KEY_PATTERN.match(headers.get("X-API-Key", ""))
    return match.group(1) if match else None


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- the bare model -------------------------------------------------------------


def bare_model(repository: Path, model: str, photos: list[bytes], images: int) -> dict[int, dict]:
    """images/s and CPU ms per image of the SavedModel's own signature, per batch size."""
    import tensorflow as tf

    versions = sorted((int(p.name) for p in (repository / model).iterdir() if p.name.isdigit()), reverse=True)
    if not versions:
        raise SystemExit(f"no exported version of {model} under {repository}: run `make run` first")
    # The newest version, as the services load it by default.
    serve = tf.saved_model.load(
        os.fspath(repository / model / str(versions[0]))).signatures["serving_default"]
    figures = {}
    for batch in BARE_BATCHES:
        inputs = tf.constant([photos[i % len(photos)] for i in range(batch)])
        serve(images=inputs)  # warm-up: graph optimisation for this shape
        rounds = max(2, images // batch)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(rounds):
            serve(images=inputs)["scores"].numpy()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        figures[batch] = {"images_per_s": round(rounds * batch / wall, 1),
                          "ms_per_batch": round(wall / rounds * 1000, 1),
                          "cpu_ms_per_image": round(cpu / (rounds * batch) * 1000, 1)}
    return figures


# --- the model service at its push endpoint -------------------------------------


class Seeder:
    """Prediction documents and images in the emulators, as the API would write them."""

    def __init__(self, project: str, bucket: str, photos: list[bytes], model: str,
                 api_key_id: str | None = None) -> None:
        from google.cloud import firestore, storage

        self._api_key_id = api_key_id  # with keys on, only the creating key may read a prediction
        self._firestore = firestore.Client(project=project)
        self._predictions = self._firestore.collection("predictions")
        self._model = model
        blobs = storage.Client(project=project).bucket(bucket)
        self.uris, self.sizes = [], []
        for i, photo in enumerate(photos):
            name = f"benchmark/{model}/{i}.jpg"
            blobs.blob(name).upload_from_string(photo, content_type="image/jpeg")
            self.uris.append(f"gs://{bucket}/{name}")
            self.sizes.append(len(photo))

    def envelopes(self, count: int) -> list[dict]:
        from inference_contract.lifecycle import new_prediction
        from inference_contract.messages import PredictionMessage

        now = datetime.now(UTC)
        batch = self._firestore.batch()
        envelopes = []
        for i in range(count):
            prediction_id = f"bench-{uuid.uuid4().hex}"
            document = new_prediction(
                prediction_id=prediction_id, model=self._model, now=now, expire_at=now + timedelta(days=1),
                image_uri=self.uris[i % len(self.uris)], content_type="image/jpeg",
                size_bytes=self.sizes[i % len(self.sizes)],
                filename=None, callback_url=None, api_key_id=self._api_key_id, redeliver_after=timedelta(0))
            # Never overdue: the benchmark delivers each message itself, the reconciler must not.
            document["reconcile_at"] = None
            batch.create(self._predictions.document(prediction_id), document)
            data, attributes = PredictionMessage.for_document(document).encode()
            envelopes.append({"message": {"data": base64.b64encode(data).decode(), "attributes": attributes,
                                          "messageId": prediction_id}, "subscription": "benchmark"})
            if len(envelopes) % 400 == 0:  # Firestore's batch limit is 500 writes
                batch.commit()
                batch = self._firestore.batch()
        batch.commit()
        return envelopes


def batch_sizes(log_path: Path, offset: int) -> tuple[Counter, int]:
    """Batch sizes logged since offset, and the new offset."""
    sizes: Counter = Counter()
    with log_path.open("rb") as log:
        log.seek(offset)
        for line in log:
            if b'"message": "batch"' in line:
                sizes[json.loads(line)["batch_size"]] += 1
        return sizes, log.tell()


def drive_push(url: str, envelopes: list[dict], in_flight: int, worker: int) -> dict:
    session = requests.Session()
    statuses: Counter = Counter()

    def push(envelope: dict) -> None:
        statuses[session.post(url, json=envelope, timeout=300).status_code] += 1

    cpu, wall = process_cpu_seconds(worker), time.perf_counter()
    with ThreadPoolExecutor(in_flight) as pool:
        list(pool.map(push, envelopes))
    wall, cpu = time.perf_counter() - wall, process_cpu_seconds(worker) - cpu
    return {"images_per_s": round(len(envelopes) / wall, 1),
            "cpu_ms_per_image": round(cpu / len(envelopes) * 1000, 1), "statuses": dict(statuses)}


def service_at_push_endpoint(stack: LocalStack, model: str, seeder: Seeder, requests_per_level: int,
                             levels: tuple[int, ...], extra_env: dict[str, str], label: str) -> dict:
    """Figures per in-flight level, and "start_to_ready_s": process start to a 200 from /healthz."""
    port = free_port()
    process = stack.start_model_service(model, port, extra_env, label=label)
    try:
        start_to_ready = process.wait_http(f"http://127.0.0.1:{port}/healthz", 300)
        worker = gunicorn_worker_pid(port)
        url = f"http://127.0.0.1:{port}/"
        # Warm-up: the first model call at a new batch size costs extra (graph optimisation for
        # that shape), as the bare model's warm-up pays it outside its timing too.
        for in_flight in (8, 32):
            drive_push(url, seeder.envelopes(2 * in_flight), in_flight, worker)
        offset = process.log_path.stat().st_size
        figures = {}
        for in_flight in levels:
            envelopes = seeder.envelopes(max(requests_per_level, 2 * in_flight))
            figures[in_flight] = drive_push(url, envelopes, in_flight, worker)
            sizes, offset = batch_sizes(process.log_path, offset)
            figures[in_flight]["batch_sizes"] = dict(sorted(sizes.items()))
            figures[in_flight]["mean_batch"] = round(
                sum(k * v for k, v in sizes.items()) / max(1, sum(sizes.values())), 1)
        return {"start_to_ready_s": round(start_to_ready, 2), **figures}
    finally:
        process.stop()


# --- the whole API path ------------------------------------------------------------


def api_path(api_url: str, model: str, photos: list[bytes], one_at_a_time: int, concurrent: int,
             headers: dict) -> dict:
    session = requests.Session()

    def one(i: int) -> dict:
        started = time.perf_counter()
        response = session.post(f"{api_url}/v1/models/{model}/predictions", headers=headers,
                                files=[("image", (f"{i}.jpg", photos[i % len(photos)], "image/jpeg"))],
                                timeout=60)
        posted = time.perf_counter()
        response.raise_for_status()
        status_url = response.json()["status_url"]
        while True:
            body = session.get(status_url, params={"wait": 10}, headers=headers, timeout=30).json()
            if body["status"] in FINAL_STATUSES:
                break
        done = time.perf_counter()
        stamps = {k: datetime.fromisoformat(body[k]) for k in ("created_at", "started_at", "completed_at")}
        return {"total_ms": (done - started) * 1000, "upload_ms": (posted - started) * 1000,
                "queue_ms": (stamps["started_at"] - stamps["created_at"]).total_seconds() * 1000,
                "service_ms": (stamps["completed_at"] - stamps["started_at"]).total_seconds() * 1000,
                "status": body["status"]}

    one(0)  # warm-up
    runs = [one(i) for i in range(one_at_a_time)]
    summary = {part: {"p50": round(percentile([r[part] for r in runs], 50), 1),
                      "p95": round(percentile([r[part] for r in runs], 95), 1)}
               for part in ("total_ms", "upload_ms", "queue_ms", "service_ms")}
    wall = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        parallel = list(pool.map(one, range(concurrent)))
    wall = time.perf_counter() - wall
    summary["failed"] = sum(r["status"] != SUCCEEDED for r in runs + parallel)
    summary["in_flight_16_images_per_s"] = round(concurrent / wall, 1)
    return summary


def emulator_push_delay(project: str, messages: int = 20) -> dict:
    """ms from a publish's ack to its push reaching a local endpoint, on a scratch topic: the part
    of "queue" that is the Pub/Sub emulator's. Its push loop sleeps 100 ms whenever it found
    nothing to send, so an idle subscription's delay is spread over 0-100 ms, whatever the
    services do. Messages are published at uneven intervals so the figure is not phase-locked."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from google.cloud import pubsub_v1

    arrived: dict[int, float] = {}

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            now = time.perf_counter()
            envelope = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            arrived[json.loads(base64.b64decode(envelope["message"]["data"]))["n"]] = now
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    publisher = pubsub_v1.PublisherClient(batch_settings=pubsub_v1.types.BatchSettings(max_messages=1))
    subscriber = pubsub_v1.SubscriberClient()
    suffix = uuid.uuid4().hex[:8]
    topic = publisher.topic_path(project, f"benchmark-push-delay-{suffix}")
    subscription = subscriber.subscription_path(project, f"benchmark-push-delay-{suffix}")
    publisher.create_topic(name=topic)
    try:
        subscriber.create_subscription(name=subscription, topic=topic, push_config={
            "push_endpoint": f"http://127.0.0.1:{server.server_address[1]}/"})
        delays = []
        for n in range(messages):
            publisher.publish(topic, json.dumps({"n": n}).encode()).result(timeout=30)
            acked = time.perf_counter()
            while n not in arrived and time.perf_counter() - acked < 10:
                time.sleep(0.0005)
            if n in arrived:
                delays.append((arrived[n] - acked) * 1000)
            time.sleep(0.013 * (n % 7))
        subscriber.delete_subscription(subscription=subscription)
    finally:
        publisher.delete_topic(topic=topic)
        server.shutdown()
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


# --- the report ------------------------------------------------------------------


PARTS = ("bare", "service", "unbatched", "api", "long-polls")


def benchmark(model: str, stack: LocalStack, api_url: str, photos: list[bytes], images: int,
              one_at_a_time: int, headers: dict, long_polls: int, long_poll_seconds: int,
              parts: tuple[str, ...] = PARTS, levels: tuple[int, ...] = IN_FLIGHT) -> dict:
    """The figures of the parts asked for (all by default), and the ratios they allow."""
    report: dict = {"model": model}
    bare = report["bare"] = (bare_model(stack.config.model_repository, model, photos, images)
                             if "bare" in parts else None)
    best_batch = report["bare_best_batch"] = (max(bare, key=lambda b: bare[b]["images_per_s"])
                                              if bare else None)
    seeder = None
    if {"service", "unbatched", "long-polls"} & set(parts):
        seeder = Seeder(stack.config.project, stack.config.uploads_bucket, photos, model, api_key_id(headers))
    service = unbatched = api = None
    if "service" in parts:
        service = service_at_push_endpoint(stack, model, seeder, images, levels, {}, f"{model}-benchmark")
        report["service_start_to_ready_s"] = service.pop("start_to_ready_s")
        report["service"] = service
    if "unbatched" in parts:
        unbatched = report["service_max_batch_1_at_32"] = service_at_push_endpoint(
            stack, model, seeder, images, (32,), {"MAX_BATCH_SIZE": "1"}, f"{model}-benchmark-batch1")[32]
    if "api" in parts:
        api = report["api"] = api_path(api_url, model, photos, one_at_a_time, 4 * 16, headers)
        api["emulator_push_delay_ms"] = emulator_push_delay(stack.config.project)
    if "long-polls" in parts:
        report.setdefault("api", {})["with_long_polls"] = with_long_polls(
            api_url, seeder, model, photos, long_polls, headers, poll_seconds=long_poll_seconds)
    ratios = report["ratios"] = {}
    at_32 = (service or {}).get(32)
    if at_32 and bare:
        ratios["service_32_vs_bare_best_throughput"] = round(
            at_32["images_per_s"] / bare[best_batch]["images_per_s"], 2)
        ratios["service_cpu_per_image_vs_bare_best"] = round(
            at_32["cpu_ms_per_image"] / bare[best_batch]["cpu_ms_per_image"], 2)
    if at_32 and unbatched:
        ratios["batching_vs_max_batch_1_at_32"] = round(at_32["images_per_s"] / unbatched["images_per_s"], 2)
    if api and bare:
        ratios["api_p50_minus_bare_batch_1_ms"] = round(api["total_ms"]["p50"] - bare[1]["ms_per_batch"], 1)
    return report


def _table(title: str, headings: list[str], columns: dict, rows: dict[str, str], width: int) -> None:
    """One figure per row, one column per batch size or in-flight level."""
    print(f"{title:<38}" + "  ".join(headings))
    for label, key in rows.items():
        print(f"  {label:<36}" + "  ".join(f"{column[key]:>{width}}" for column in columns.values()))


def print_report(report: dict) -> None:
    model, bare, service = report["model"], report.get("bare"), report.get("service")
    print(f"\n== {model}")
    if bare:
        _table("bare SavedModel (this process)", [f"batch {b:>2}" for b in bare], bare,
               {"images/s": "images_per_s", "CPU ms per image": "cpu_ms_per_image"}, 8)
    if service:
        _table("model service at its push endpoint", [f"{n:>3} in flight" for n in service], service,
               {"images/s": "images_per_s", "worker CPU ms per image": "cpu_ms_per_image",
                "mean batch size": "mean_batch"}, 12)
        for n, v in service.items():
            print(f"  batch sizes at {n:>2} in flight: {v['batch_sizes']}  answers: {v['statuses']}")
        print(f"  process start to ready: {report['service_start_to_ready_s']} s")
    one = report.get("service_max_batch_1_at_32")
    if one:
        print(f"MAX_BATCH_SIZE=1 at 32 in flight: {one['images_per_s']} images/s, "
              f"{one['cpu_ms_per_image']} CPU ms per image")
    api = report.get("api") or {}
    if "total_ms" in api:
        print("whole API path, one at a time (ms)    p50      p95")
        for part in ("total_ms", "upload_ms", "queue_ms", "service_ms"):
            print(f"  {part[:-3]:<36}{api[part]['p50']:>6}  {api[part]['p95']:>7}")
        delay = api["emulator_push_delay_ms"]
        print(f"  of queue, the Pub/Sub emulator's push delay (publish acked to push received, "
              f"its own topic): p50 {delay['p50']}, p95 {delay['p95']}")
        print(f"  16 in flight: {api['in_flight_16_images_per_s']} images/s; failed: {api['failed']}")
    polls = api.get("with_long_polls")
    if polls:
        print(f"  with {polls['long_polls_open']} long polls open: POST {polls['post_ms']} ms, "
              f"GET /v1/models {polls['models_ms']} ms")
    print("ratios")
    for name, value in report["ratios"].items():
        print(f"  {name:<40}{value}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="efficientnet-lite0,resnet50")
    parser.add_argument("--api-url", default="http://127.0.0.1:8080")
    parser.add_argument("--repository", type=Path, default=StackConfig.model_repository)
    parser.add_argument("--project", default=StackConfig.project)
    parser.add_argument("--uploads-bucket", default=StackConfig.uploads_bucket)
    parser.add_argument("--images", type=int, default=192, help="images per measured level")
    parser.add_argument("--one-at-a-time", type=int, default=50, help="sequential requests through the API")
    parser.add_argument("--long-polls", type=int, default=200,
                        help="long polls held open while a POST is timed")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help="what to measure, comma-separated (default: all): %(default)s")
    parser.add_argument("--levels", default=",".join(map(str, IN_FLIGHT)),
                        help="requests in flight at the push endpoint "
                             "(default: %(default)s; 32 gives the ratios)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    parts = tuple(part for part in args.parts.split(",") if part)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown --parts {', '.join(sorted(unknown))}; choose from {', '.join(PARTS)}")
    from scripts.api_keys import client_headers

    # The key from INFERENCE_API_KEY, or else the one `make run` wrote to .local/api_key.
    reports = run(args.models.split(","), args.api_url, args.repository, args.project, args.uploads_bucket,
                  args.images, args.one_at_a_time, headers=client_headers(), long_polls=args.long_polls,
                  parts=parts, levels=tuple(int(n) for n in args.levels.split(",")))
    for report in reports:
        print_report(report)
    if args.json:
        print(json.dumps(reports))
    return 0


def run(models: list[str], api_url: str, repository: Path, project: str, uploads_bucket: str,
        images: int, one_at_a_time: int, headers: dict | None = None,
        emulator_env: dict[str, str] | None = None, long_polls: int = 200,
        long_poll_seconds: int = 30, parts: tuple[str, ...] = PARTS,
        levels: tuple[int, ...] = IN_FLIGHT) -> list[dict]:
    """Benchmark each model against the running stack; the reports as dicts."""
    # Defaults: the emulators of `make run`.
    emulator_env = emulator_env or {
        "PUBSUB_EMULATOR_HOST": os.environ.get("PUBSUB_EMULATOR_HOST", "127.0.0.1:8085"),
        "FIRESTORE_EMULATOR_HOST": os.environ.get("FIRESTORE_EMULATOR_HOST", "127.0.0.1:8086"),
        "STORAGE_EMULATOR_HOST": os.environ.get("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023")}
    os.environ.update(emulator_env)
    logs = Path(tempfile.mkdtemp(prefix="benchmark-logs-"))
    stack = LocalStack(StackConfig(project=project, uploads_bucket=uploads_bucket,
                                   model_repository=repository, log_dir=logs))
    stack.emulator_env = emulator_env
    photos = [photo.read_bytes() for photo in all_samples()]
    return [benchmark(model, stack, api_url, photos, images, one_at_a_time, headers or {}, long_polls,
                      long_poll_seconds, parts, levels) for model in models]


if __name__ == "__main__":
    sys.exit(main())
