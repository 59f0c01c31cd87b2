"""Figures for the edges of issue 19: what hostile input costs, printed, never asserted.

    python scripts/measure_edges.py model --repository .local/model_repository [--images bombs|under]
    python scripts/measure_edges.py keys
    python scripts/measure_edges.py chunked

model:   a model service worker's peak resident memory while one predict() call takes
         16 images: 16 PNGs of 9000x9000 (81 Mpx, 79 KB each: "bombs"), or 16 images
         just under the 40 Mpx budget, 8 PNG and 8 JPEG ("under"). Run in a child
         process, which is killed if it passes --kill-above-gb (this machine is shared).
keys:    key-store reads caused by 1,000 requests with well-formed unknown keys, from
         one address, from one IPv6 /64 and from 1,000 IPv4 addresses, through the API app and its real
         Authenticator over a FileKeyStore whose reads are counted.
chunked: the real API entry point (functions-framework, gunicorn) sent a 20 MiB raw
         image body with Transfer-Encoding: chunked: the status, and how much the
         worker's peak resident memory grew.

--source DIR runs any of them against another checkout's code (e.g. `git archive main`
unpacked there) instead of this one's, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 16
MIB = 1 << 20


def status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int | str) -> None:
    """Start VmHWM (peak resident memory) afresh from the current resident size."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def source_env(source: Path | None, *units: str) -> dict[str, str]:
    """The environment that makes a child import the units from `source` (before this checkout)."""
    if source is None:
        return dict(os.environ)
    paths = [os.fspath(source / unit) for unit in (*units, "contract")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")])}


# ---- model ----------------------------------------------------------------------------------


def model_images(kind: str) -> list[bytes]:
    from scripts import image_bombs

    if kind == "bombs":
        return [image_bombs.png(9000, 9000)] * IMAGES
    import io

    from PIL import Image

    side = 6324  # 39,992,976 pixels: just under 40,000,000
    jpeg = io.BytesIO()
    Image.new("L", (side, side), 128).save(jpeg, "JPEG", quality=80)
    return [image_bombs.png(side, side)] * (IMAGES // 2) + [jpeg.getvalue()] * (IMAGES // 2)


def model_child(repository: str, model: str, kind: str) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from model_service import model as model_module
    from model_service.model import ImageModel
    from model_service.repository import ModelRepository

    images = model_images(kind)
    served = ImageModel(ModelRepository(repository), model)
    served.load()
    loaded_kb = status_kb("self", "VmRSS")
    reset_peak("self")
    started = time.monotonic()
    results = served.predict(images)
    seconds = time.monotonic() - started
    failed = [str(getattr(r, "message", r)) for r in results if not isinstance(r, dict)]
    print(json.dumps({"code": model_module.__file__, "images": len(images),
                      "image_bytes": sorted({len(i) for i in images}),
                      "rss_after_load_mb": round(loaded_kb / 1024), "seconds": round(seconds, 1),
                      "peak_rss_during_predict_mb": round(status_kb("self", "VmHWM") / 1024),
                      "succeeded": len(results) - len(failed), "failed": len(failed),
                      "first_failure": failed[0][:160] if failed else None}), flush=True)


def measure_model(args) -> None:
    command = [sys.executable, os.fspath(Path(__file__).resolve()), "_model_child",
               os.fspath(args.repository), args.model, args.images]
    child = subprocess.Popen(command, env=source_env(args.source, "cloudrun_model"), cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    limit_kb, peak_kb = args.kill_above_gb * 1024 * 1024, 0
    while child.poll() is None:
        try:
            peak_kb = max(peak_kb, status_kb(child.pid, "VmRSS"))
        except (OSError, KeyError):
            pass
        if peak_kb > limit_kb:
            child.kill()
            print(f"killed: the worker passed {args.kill_above_gb} GB resident "
                  f"({peak_kb / 1024 / 1024:.1f} GB seen)")
            child.wait()
            return
        time.sleep(0.05)
    report = child.stdout.read().strip()
    print(report or f"the child failed (exit {child.returncode})")
    print(f"highest resident size seen by polling (load included): {peak_kb / 1024:.0f} MB")


# ---- keys -----------------------------------------------------------------------------------


def keys_child(requests: int) -> None:
    import logging

    logging.disable(logging.CRITICAL)
    from prediction_api import auth, wiring
    from prediction_api.app import create_api_app
    from prediction_api.config import Settings
    from prediction_api.service import PredictionService

    reads = {"count": 0}
    plain_get = auth.FileKeyStore.get

    def counted_get(store, key_id):
        reads["count"] += 1
        return plain_get(store, key_id)

    auth.FileKeyStore.get = counted_get  # the measurement's instrument: every store read
    folder = Path(tempfile.mkdtemp())
    real_key, record = auth.new_key("real", rate_per_minute=100_000)
    auth.FileKeyStore(folder / "keys.json").put(record)
    # The cloud's defaults (no API_KEY_CACHE_SECONDS=0 as in the local stack).
    settings = Settings.from_env({"GOOGLE_CLOUD_PROJECT": "p", "UPLOADS_BUCKET": "b", "MODELS": "m",
                                  "API_KEYS_FILE": os.fspath(folder / "keys.json")})
    figures = {}
    for label, addresses in (("one address", ["203.0.113.7"]),
                             ("one IPv6 /64, a new address each time",
                              [f"2001:db8:0:1::{i:x}" for i in range(1, requests + 1)]),
                             ("a new IPv4 address each time",
                              [f"198.18.{i // 250}.{i % 250}" for i in range(requests)])):
        app = create_api_app(PredictionService(settings, None, None, None),
                             wiring.build_authenticator(settings))
        client = app.test_client()
        reads["count"] = 0
        statuses: dict[int, int] = {}
        started = time.monotonic()
        for i in range(requests):
            unknown = f"ik_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"
            response = client.post("/v1/models/none/predictions", headers={"X-API-Key": unknown},
                                   environ_base={"REMOTE_ADDR": addresses[i % len(addresses)]})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        seconds = time.monotonic() - started
        real = client.post("/v1/models/none/predictions", headers={"X-API-Key": real_key},
                          environ_base={"REMOTE_ADDR": addresses[0]}).status_code
        # The real key's answer: 404 (no such model) once it is authenticated.
        figures[label] = {"requests": requests, "store_reads": reads["count"], "seconds": round(seconds, 2),
                          "statuses": statuses, "real_key_from_the_same_address_after": real}
    print(json.dumps({"code": auth.__file__, **figures}, indent=1))


def measure_keys(args) -> None:
    subprocess.run([sys.executable, os.fspath(Path(__file__).resolve()), "_keys_child", str(args.requests)],
                   env=source_env(args.source, "functions"), cwd=ROOT, check=True)


# ---- chunked --------------------------------------------------------------------------------


def _worker_pid(master: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    raise RuntimeError("functions-framework started no worker")


def _send_chunked(port: int, total: int, path: str, chunk_bytes: int) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.putrequest("POST", path)
    connection.putheader("Content-Type", "image/png")
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    chunk = b"\x89PNG" + b"\x00" * (chunk_bytes - 4)
    try:
        for _ in range(total // chunk_bytes):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the whole body was sent
    response = connection.getresponse()
    body = response.read().decode()
    connection.close()
    return response.status, body


def measure_chunked(args) -> None:
    from emulators.processes import free_port

    port = free_port()
    env = {**source_env(args.source, "functions"), "GOOGLE_CLOUD_PROJECT": "edges", "UPLOADS_BUCKET": "b",
           "MODELS": "m", "AUTH_REQUIRED": "false",
           # The clients are built but never called: a refused body reaches no backend.
           "FIRESTORE_EMULATOR_HOST": "127.0.0.1:9", "PUBSUB_EMULATOR_HOST": "127.0.0.1:9",
           "STORAGE_EMULATOR_HOST": "http://127.0.0.1:9"}
    functions = (args.source or ROOT) / "functions"
    server = subprocess.Popen([sys.executable, "-m", "functions_framework", "--source", "main.py",
                               "--target", "api", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=functions, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        worker = _worker_pid(server.pid)
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=5).request("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.2)
        # A first request builds the app (and its clients), so that only the body is measured.
        _send_chunked(port, MIB, "/v1/models/m/predictions", args.chunk_kib << 10)
        before_kb = status_kb(worker, "VmRSS")
        reset_peak(worker)
        sampled = {"peak": before_kb}
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                sampled["peak"] = max(sampled["peak"], status_kb(worker, "VmRSS"))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        status, body = _send_chunked(port, args.mib * MIB, "/v1/models/m/predictions", args.chunk_kib << 10)
        stop.set()
        sampler.join()
        peak_kb = max(status_kb(worker, "VmHWM"), sampled["peak"])
        print(json.dumps({"code": os.fspath(functions), "body_mib": args.mib, "chunk_kib": args.chunk_kib,
                          "status": status,
                          "answer": body.strip()[:200], "worker_rss_before_mb": round(before_kb / 1024),
                          "worker_peak_rss_mb": round(peak_kb / 1024),
                          "growth_mb": round((peak_kb - before_kb) / 1024, 1)}, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_model_child":
        return model_child(*sys.argv[2:5])
    if len(sys.argv) > 1 and sys.argv[1] == "_keys_child":
        return keys_child(int(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, help="another checkout whose code to measure")
    commands = parser.add_subparsers(dest="command", required=True)
    model = commands.add_parser("model")
    model.add_argument("--repository", type=Path, default=ROOT / ".local" / "model_repository")
    model.add_argument("--model", default="efficientnet-lite0")
    model.add_argument("--images", choices=("bombs", "under"), default="bombs")
    model.add_argument("--kill-above-gb", type=float, default=10.0)
    model.set_defaults(run=measure_model)
    keys = commands.add_parser("keys")
    keys.add_argument("--requests", type=int, default=1000)
    keys.set_defaults(run=measure_keys)
    chunked = commands.add_parser("chunked")
    chunked.add_argument("--mib", type=int, default=20)
    chunked.add_argument("--chunk-kib", type=int, default=64, help="size of each chunk the client sends")
    chunked.set_defaults(run=measure_chunked)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
