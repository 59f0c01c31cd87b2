"""The model service beside the peers a user would pick instead: BentoML and Ray Serve, side by side.

    bash scripts/peers/install.sh                       # once: each peer in .local/peers/<peer>
    .venv/bin/python scripts/benchmark_peers.py         # efficientnet-lite0, 1 round
    .venv/bin/python scripts/benchmark_peers.py --rounds 3 --model resnet50

Each server serves the same SavedModel of the model repository (`make run` or
scripts/export_model.py exports it) through the same ImageModel, behind the same Open
Inference Protocol infer route and bodies: the model service as its Cloud Run container
starts it (gunicorn, started as scripts/benchmark_service.py starts it; the v2 route
needs no emulator, so none runs: Firestore and Storage point at a closed port), BentoML
with adaptive batching and Ray Serve with @serve.batch (scripts/peers/). One client,
tritonclient[http] with binary tensors, sends the same photos (tests/photos and
../shared/images, each distinct photo once), one image a request, at 1, 8 and 32
requests in flight, and reads for each server:
- images/s and the p50/p95 latency of a request;
- CPU ms per image of the server's whole process tree (every descendant of the process
  started, from /proc: user + system, with the children it reaped), the same way for all,
  and at the highest level split by process;
- the mean batch that formed (each server logs a line per batch with its "batch_size");
- start to ready, the tree's resident memory after the run, and how many photos got
  another top label than from the first server (ours): the same model must agree.

Servers run one at a time, in an order rotated each round, so that whatever else runs on
the machine falls on each of them alike; a row holds the median over the rounds (the
spread of images/s beside it). Run it on an idle machine: the client shares the cores.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from emulators.local_stack import LocalStack, StackConfig
from emulators.processes import ManagedProcess, free_port
from scripts.sample_photos import PHOTOS_DIR

ROOT = Path(__file__).resolve().parent.parent
PEERS_DIR = ROOT / ".local" / "peers"
PHOTO_DIRS = (PHOTOS_DIR, ROOT.parent / "shared" / "images")
SERVERS = ("ours", "bentoml", "ray")
IN_FLIGHT = (1, 8, 32)
READY_TIMEOUT_S = 300.0


# --- the photos and the client --------------------------------------------------------


def distinct_photos(folders: tuple[Path, ...] = PHOTO_DIRS) -> list[bytes]:
    """The JPEG photos of the folders that exist, each distinct content once, in name order."""
    photos: dict[str, bytes] = {}
    for folder in folders:
        for path in sorted(Path(folder).glob("*.JPEG")) if Path(folder).is_dir() else ():
            data = path.read_bytes()
            photos.setdefault(hashlib.sha256(data).hexdigest(), data)
    if not photos:
        raise SystemExit(f"no photos in {', '.join(map(str, folders))}")
    return list(photos.values())


def infer_once(client, model: str, image: bytes) -> dict:
    """One v2 infer request of one image, binary both ways; the image's result."""
    import numpy as np
    import tritonclient.http as triton

    tensor = triton.InferInput("images", [1], "BYTES")
    tensor.set_data_from_numpy(np.array([image], dtype=np.object_), binary_data=True)
    answer = client.infer(model, [tensor], outputs=[triton.InferRequestedOutput("result", binary_data=True)])
    return json.loads(answer.as_numpy("result")[0])


def drive(url: str, model: str, photos: list[bytes], requests: int, in_flight: int,
          tree_root: int) -> dict:
    """`requests` requests, `in_flight` at a time (a thread and a connection each), timed."""
    import tritonclient.http as triton

    order = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []
    answers: dict[int, str] = {}  # photo -> its top label (a detector's yes/no)

    def sender() -> None:
        client = triton.InferenceServerClient(url.removeprefix("http://"), network_timeout=120)
        try:
            while True:
                with lock:
                    index = next(order)
                if index >= requests:
                    return
                started = time.perf_counter()
                try:
                    result = infer_once(client, model, photos[index % len(photos)])
                    answers[index % len(photos)] = answer_of(result)
                except Exception as exc:  # noqa: BLE001 - any failure is the server's error to count
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                latencies.append(time.perf_counter() - started)
        finally:
            client.close()

    cpu, wall = tree_cpu_by_process(tree_root), time.perf_counter()
    threads = [threading.Thread(target=sender) for _ in range(in_flight)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - wall
    by_name = cpu_by_name(cpu, tree_cpu_by_process(tree_root), len(latencies))
    return {"images_per_s": round(len(latencies) / wall, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p95_ms": round(percentile(latencies, 95) * 1000, 1) if latencies else None,
            "cpu_ms_per_image": round(sum(by_name.values()), 1),
            "cpu_ms_per_image_by_process": {name: round(ms, 1) for name, ms in by_name.items()},
            "requests": requests,
            "errors": len(errors), "first_error": errors[0] if errors else None, "answers": answers}


def answer_of(result: dict) -> str:
    if result.get("top_k"):
        return result["top_k"][0]["label"]
    if "match" in result:
        return str(result["match"])
    raise ValueError(f"no result in {result}")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


# --- a server's process tree, from /proc ----------------------------------------------


def _process_table() -> dict[int, tuple[int, list[str]]]:
    """pid -> (parent pid, the stat fields after the command name)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        table[int(stat.parent.name)] = (int(fields[1]), fields)
    return table


def process_tree(root: int) -> list[int]:
    """root and every process descending from it now."""
    table = _process_table()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    tree, pending = [], [root] if root in table else []
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, ()))
    return tree


def tree_cpu_by_process(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (its name, CPU seconds) for root's process tree: user + system, with what each
    reaped of children that ended (cutime, cstime), so a worker that came and went still counts."""
    table, ticks = _process_table(), os.sysconf("SC_CLK_TCK")
    return {pid: (process_name(pid), sum(int(table[pid][1][i]) for i in (11, 12, 13, 14)) / ticks)
            for pid in process_tree(root) if pid in table}


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds of root's process tree (tree_cpu_by_process, summed)."""
    return sum(seconds for _, seconds in tree_cpu_by_process(root).values())


def process_name(pid: int) -> str:
    """What a process is: its command name, or for a Python one its module or script
    (the servers' processes are mostly Python: gunicorn, BentoML's workers, Ray's)."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if not name.startswith("python") or len(argv) < 2:
        return name
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else Path(argv[1]).name
    # BentoML runs each of its services as the same module; its argument names the service.
    service = f" {argv[argv.index('--service-name') + 1]}" if "--service-name" in argv[:-1] else ""
    return f"python {module}{service}"


def cpu_by_name(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                images: int) -> dict[str, float]:
    """CPU ms per image spent between two snapshots, by process name, largest first."""
    spent: dict[str, float] = {}
    for pid, (name, seconds) in after.items():
        spent[name] = spent.get(name, 0.0) + seconds - before.get(pid, (name, 0.0))[1]
    return {name: seconds / max(1, images) * 1000
            for name, seconds in sorted(spent.items(), key=lambda item: -item[1]) if seconds > 0}


def tree_rss_mib(root: int) -> float:
    pages = 0
    for pid in process_tree(root):
        try:
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


# --- the three servers ------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where a round's server is: what the benchmark starts, and its v2 URL."""

    model: str
    repository: Path
    log_dir: Path
    peers_dir: Path = PEERS_DIR


def peer_python(peers_dir: Path, server: str) -> Path:
    return peers_dir / server / "bin" / "python"


def missing(server: str, peers_dir: Path) -> str | None:
    """Why a server cannot run here, or None."""
    if server not in SERVERS:
        return f"unknown server {server!r}; choose from {', '.join(SERVERS)}"
    if server != "ours" and not peer_python(peers_dir, server).exists():
        return f"{server} is not installed: run bash scripts/peers/install.sh {server}"
    return None


def start_server(server: str, target: Target, port: int) -> ManagedProcess:
    """The server, started; the model's settings are the model service's environment variables
    for all three (the peers read them with model_service/config.py)."""
    closed = f"127.0.0.1:{free_port()}"  # the v2 route never calls Firestore or Storage
    env = {"MODEL_NAME": target.model, "MODEL_REPOSITORY": os.fspath(target.repository),
           "PORT": str(port), "GOOGLE_CLOUD_PROJECT": "peer-benchmark",
           "FIRESTORE_EMULATOR_HOST": closed, "STORAGE_EMULATOR_HOST": f"http://{closed}"}
    log_path = target.log_dir / f"{server}.log"
    if server == "ours":
        stack = LocalStack(StackConfig(model_repository=target.repository, log_dir=target.log_dir))
        return stack.start_model_service(target.model, port, env, label="peer-benchmark")
    base = {**os.environ, **env, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONPATH": os.fspath(ROOT / "scripts" / "peers"),
            # BentoML's store and Ray's session files in .local, not the home folder.
            "BENTOML_HOME": os.fspath(target.peers_dir / "bentoml-home"),
            "RAY_TMPDIR": os.fspath(target.peers_dir / "ray-tmp")}
    python = os.fspath(peer_python(target.peers_dir, server))
    if server == "bentoml":
        argv = [python, "-m", "bentoml", "serve", "bentoml_service:OpenInferenceGateway",
                "--host", "127.0.0.1", "--port", str(port),
                "--working-dir", os.fspath(ROOT / "scripts" / "peers")]
    else:
        argv = [python, os.fspath(ROOT / "scripts" / "peers" / "ray_service.py")]
    return ManagedProcess(f"{server} peer", argv, env=base, cwd=ROOT, log_path=log_path).start()


BATCH_SIZE = re.compile(rb'"batch_size": (\d+)')


def mean_batch(log_path: Path, offset: int) -> tuple[float | None, int]:
    """The mean size of the batches logged since offset (each server writes a line per batch
    with "message": "batch" and its "batch_size"), and the new offset."""
    sizes = []
    with log_path.open("rb") as log:
        log.seek(offset)
        for line in log:
            match = BATCH_SIZE.search(line) if b'"message": "batch"' in line else None
            if match:
                sizes.append(int(match.group(1)))
        return (round(float(statistics.mean(sizes)), 1) if sizes else None), log.tell()


def measure_server(server: str, target: Target, photos: list[bytes], levels: tuple[int, ...],
                   requests: int) -> dict:
    """Start, warm up, drive each level, stop: {"start_to_ready_s", "rss_mib", level: figures}."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(server, target, port)
    try:
        ready = process.wait_http(f"{url}/v2/health/ready", READY_TIMEOUT_S)
        root = process.process.pid
        # Warm-up, unmeasured: the first model calls at each batch size cost extra.
        for in_flight in sorted(set(levels)):
            drive(url, target.model, photos, 2 * in_flight, in_flight, root)
        figures: dict = {"start_to_ready_s": round(ready, 1)}
        offset = process.log_path.stat().st_size
        for in_flight in levels:
            count = max(requests, 2 * in_flight)
            figures[in_flight] = drive(url, target.model, photos, count, in_flight, root)
            time.sleep(0.5)  # the last batch's line, through Ray's log forwarding
            figures[in_flight]["mean_batch"], offset = mean_batch(process.log_path, offset)
        figures["rss_mib"] = tree_rss_mib(root)
        return figures
    finally:
        process.stop()


def run_peer_benchmark(model: str = "efficientnet-lite0",
                       repository: Path = StackConfig.model_repository,
                       servers: tuple[str, ...] = SERVERS, levels: tuple[int, ...] = IN_FLIGHT,
                       requests: int = 96, rounds: int = 1, peers_dir: Path = PEERS_DIR,
                       photos: list[bytes] | None = None, log_dir: Path | None = None,
                       report=print) -> list[dict]:
    """One row per server and level: the medians over the rounds of each figure.

    A server that is not installed gets one row saying so (its "missing"), not figures."""
    photos = photos or distinct_photos()
    target = Target(model, Path(repository), Path(log_dir or tempfile.mkdtemp(prefix="peer-benchmark-")),
                    Path(peers_dir))
    target.log_dir.mkdir(parents=True, exist_ok=True)
    absent = {server: missing(server, target.peers_dir) for server in servers}
    runnable = [server for server in servers if absent[server] is None]
    measured: dict[str, list[dict]] = {server: [] for server in runnable}
    for round_index in range(rounds):
        shift = round_index % max(1, len(runnable))
        for server in runnable[shift:] + runnable[:shift]:
            report(f"round {round_index + 1}/{rounds}: {server} ({len(photos)} photos, "
                   f"{requests} requests a level)")
            measured[server].append(measure_server(server, target, photos, levels, requests))
    rows = [{"server": server, "missing": absent[server]} for server in servers if absent[server]]
    for server, runs in measured.items():
        for level in levels:
            at_level = [run[level] for run in runs]
            throughput = [figures["images_per_s"] for figures in at_level]
            rows.append({
                "server": server, "in_flight": level, "rounds": len(runs),
                "images_per_s": round(statistics.median(throughput), 1),
                "images_per_s_spread": [min(throughput), max(throughput)],
                **{key: _median(figures[key] for figures in at_level)
                   for key in ("p50_ms", "p95_ms", "cpu_ms_per_image", "mean_batch")},
                "errors": sum(figures["errors"] for figures in at_level),
                "first_error": next((f["first_error"] for f in at_level if f["first_error"]), None),
                # Where the CPU went, in the last round: enough to see which process costs what.
                "cpu_ms_per_image_by_process": at_level[-1]["cpu_ms_per_image_by_process"],
                "answers": {photo: label for f in at_level for photo, label in sorted(f["answers"].items())},
                "start_to_ready_s": _median(run["start_to_ready_s"] for run in runs),
                "rss_mib": _median(run["rss_mib"] for run in runs)})
    # Each server's answers beside the first's (ours where it ran): the same model must agree.
    reference = next((row["answers"] for row in rows if row.get("answers")), {})
    for row in rows:
        if "answers" in row:
            answers = row.pop("answers")
            row["differing_answers"] = sum(answers[photo] != label for photo, label in reference.items()
                                           if photo in answers)
    return rows


def _median(values) -> float | None:
    present = [value for value in values if value is not None]
    return round(statistics.median(present), 1) if present else None


# --- the table --------------------------------------------------------------------------


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets: ours >= the best peer at 32 in flight, within 10 % of it at 1."""
    lines = []
    for level, needed in ((32, 1.0), (1, 0.9)):
        at = {row["server"]: row for row in rows if row.get("in_flight") == level}
        peers = [row for server, row in at.items() if server != "ours"]
        if "ours" not in at or not peers:
            continue
        best = max(peers, key=lambda row: row["images_per_s"])
        ratio = at["ours"]["images_per_s"] / best["images_per_s"] if best["images_per_s"] else float("inf")
        lines.append(f"at {level:>2} in flight: ours {at['ours']['images_per_s']} images/s, best peer "
                     f"{best['server']} {best['images_per_s']}: {ratio:.2f}x (target >= {needed:.2f}: "
                     f"{'met' if ratio >= needed else 'NOT met'})")
    return lines


def format_peer_table(rows: list[dict]) -> str:
    """The rows as a table, then the targets."""
    head = (f"{'server':<8} {'in flight':>9} {'images/s':>9} {'(spread)':>13} {'p50 ms':>7} {'p95 ms':>7} "
            f"{'CPU ms/img':>10} {'batch':>5} {'errors':>6} {'ready s':>7} {'RSS MiB':>7} {'differ':>6}")
    lines = [head]
    for row in rows:
        if row.get("missing"):
            lines.append(f"{row['server']:<8} {row['missing']}")
            continue
        spread = "{}-{}".format(*row["images_per_s_spread"])
        lines.append(f"{row['server']:<8} {row['in_flight']:>9} {row['images_per_s']:>9} {spread:>13} "
                     f"{_cell(row['p50_ms']):>7} {_cell(row['p95_ms']):>7} "
                     f"{_cell(row['cpu_ms_per_image']):>10} {_cell(row['mean_batch']):>5} "
                     f"{row['errors']:>6} {_cell(row['start_to_ready_s']):>7} {_cell(row['rss_mib']):>7} "
                     f"{row['differing_answers']:>6}")
    errors = [row for row in rows if row.get("first_error")]
    lines += [f"{row['server']} at {row['in_flight']}: first error: {row['first_error']}" for row in errors]
    measured = [row for row in rows if not row.get("missing")]
    if measured:
        top = max(row["in_flight"] for row in measured)
        lines.append(f"CPU ms per image by process at {top} in flight (last round):")
        lines += [f"  {row['server']:<8} " + ", ".join(f"{name} {ms}" for name, ms in
                                                    row["cpu_ms_per_image_by_process"].items())
                  for row in measured if row["in_flight"] == top]
    return "\n".join(lines + targets(rows))


def _cell(value) -> str:
    return "-" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--repository", type=Path, default=StackConfig.model_repository)
    parser.add_argument("--servers", default=",".join(SERVERS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--levels", default=",".join(map(str, IN_FLIGHT)),
                        help="requests in flight (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=96, help="requests per level (at least 2x in flight)")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the servers, order rotated each")
    parser.add_argument("--peers-dir", type=Path, default=PEERS_DIR)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON as well")
    args = parser.parse_args(argv)
    servers = tuple(server for server in args.servers.split(",") if server)
    unknown = [server for server in servers if server not in SERVERS]
    if unknown:
        parser.error(f"unknown --servers {', '.join(unknown)}; choose from {', '.join(SERVERS)}")
    rows = run_peer_benchmark(args.model, args.repository, servers,
                              tuple(int(n) for n in args.levels.split(",")), args.requests, args.rounds,
                              args.peers_dir)
    print(format_peer_table(rows))
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
