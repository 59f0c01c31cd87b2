"""`inference`: send images to the inference API and print what the models saw.

    inference models
    inference predict --model cat photos/*.jpg
    inference predict --model cat https://example.com/cat.jpg gs://my-bucket/cat.jpg
    inference predict --model efficientnet-lite0 --json photos/*.jpg > results.json
    inference list --model cat --status queued
    inference cancel ID
    inference jobs submit --model cat photos/ gs://my-results/cats/ --wait
    inference jobs wait|cancel ID;  inference jobs list

The API's URL comes from --url or INFERENCE_API_URL (default http://127.0.0.1:8080,
the local stack); its key from --api-key, INFERENCE_API_KEY or the file
.local/api_key. An argument that is an http(s):// URL or a gs:// URI is sent as
image_url (the API fetches it; for gs://, its service account needs read access);
any other is a file and is uploaded. Exit status: 0 when every image succeeded, 1 when any failed or
was refused, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import control, jobs
from .client import ApiError, Client, is_reference

DEFAULT_URL = "http://127.0.0.1:8080"
KEY_FILE = Path(".local") / "api_key"


def api_key(flag: str | None) -> str | None:
    if flag:
        return flag
    if os.environ.get("INFERENCE_API_KEY"):
        return os.environ["INFERENCE_API_KEY"]
    if KEY_FILE.is_file():
        return KEY_FILE.read_text().strip() or None
    return None


def _image_argument(argument: str) -> str | Path:
    """A URL stays a string (sent as image_url); anything else is a file to upload."""
    return argument if is_reference(argument) else Path(argument)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="inference", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("INFERENCE_API_URL") or DEFAULT_URL,
                        help="API base URL (env INFERENCE_API_URL; default %(default)s)")
    parser.add_argument("--api-key",
                        help="API key sent as X-API-Key (env INFERENCE_API_KEY, or .local/api_key)")
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="list the served models")
    models.add_argument("--json", action="store_true", help="print the API's JSON")
    predict = commands.add_parser("predict", help="send images and wait for their results")
    predict.add_argument("--model", required=True, help="model to ask, e.g. cat or efficientnet-lite0")
    predict.add_argument("images", nargs="+", type=_image_argument,
                         help="image files (JPEG, PNG, WebP, GIF, BMP), or http(s):// URLs and "
                              "gs:// URIs the API fetches")
    predict.add_argument("--json", action="store_true", help="one JSON document on stdout, no table")
    predict.add_argument("--concurrency", type=int, default=4,
                         help="images in flight at once (default %(default)s)")
    predict.add_argument("--timeout", type=float, default=600,
                         help="seconds to wait for all results (default %(default)s)")
    control.add_commands(commands)
    jobs.add_commands(commands)
    return parser.parse_args(argv)


def answer(result: dict | None) -> str:
    """One line for a result: yes/no for a detector, the top label for a classifier."""
    if not result:
        return ""
    if "match" in result:
        text = f"{'yes' if result['match'] else 'no'} ({result.get('score', 0):.3f}"
        if result.get("rule"):
            text += f", by {result['rule']}"
        text += ")"
        top = result.get("top_class")
        return f"{text}; top-1 {top['label']}" if top else text
    top = (result.get("top_k") or [{}])[0]
    return f"{top.get('label')} ({top.get('score', 0):.3f})"


def _ms(value) -> str:
    return "" if value is None else f"{value:.0f}"


def results_table(rows: list[dict], model: str) -> Table:
    table = Table(title=f"{model}: {sum(r['status'] == 'succeeded' for r in rows)}/{len(rows)} succeeded")
    for column, justify in (("image", "left"), ("status", "left"), ("answer", "left"),
                            ("queue ms", "right"), ("model ms", "right"), ("batch", "right")):
        table.add_column(column, justify=justify)
    for row in rows:
        timings = row.get("timings") or {}
        status = row["status"]
        style = "green" if status == "succeeded" else "red" if status in ("failed", "refused") else "yellow"
        detail = answer(row.get("result")) or ((row.get("error") or {}).get("message") or "")
        table.add_row(row["file"], f"[{style}]{status}[/]", detail, _ms(timings.get("queue_ms")),
                      _ms(timings.get("model_ms")), str(timings.get("batch_size") or ""))
    return table


def run_predict(args: argparse.Namespace, client: Client, err: Console, out: Console) -> int:
    missing = [str(p) for p in args.images if isinstance(p, Path) and not p.is_file()]
    if missing:
        err.print(f"[red]no such file:[/] {', '.join(missing)}")
        return 2
    deadline = time.monotonic() + args.timeout
    rows: dict[str | Path, dict] = {}
    with Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        uploads = progress.add_task("uploaded", total=len(args.images))
        finished = progress.add_task("finished", total=len(args.images))
        client.on_retry = lambda line: progress.console.print(f"[yellow]{line}[/]")

        def one(path: str | Path) -> dict:
            try:
                accepted = client.submit(args.model, path) if isinstance(path, Path) \
                    else client.submit_url(args.model, path)
            except ApiError as exc:
                progress.advance(uploads)
                return {"file": str(path), "id": None, "status": "refused",
                        "error": {"code": exc.code, "message": exc.message}}
            progress.advance(uploads)
            try:
                document = client.wait(accepted, deadline=deadline)
            except ApiError as exc:
                document = {"id": accepted["id"], "status": "unknown",
                            "error": {"code": exc.code, "message": exc.message}}
            return {"file": str(path), **document}

        with ThreadPoolExecutor(max(1, args.concurrency)) as pool:
            futures = {pool.submit(one, path): path for path in args.images}
            for future in as_completed(futures):
                rows[futures[future]] = future.result()
                progress.advance(finished)
    ordered = [rows[path] for path in args.images]
    if args.json:
        out.print_json(json.dumps({"model": args.model, "predictions": ordered}))
    else:
        out.print(results_table(ordered, args.model))
    return 0 if all(row["status"] == "succeeded" for row in ordered) else 1


def run_models(args: argparse.Namespace, client: Client, out: Console) -> int:
    models = client.models()
    if args.json:
        out.print_json(json.dumps({"models": models}))
        return 0
    table = Table(title="models")
    for column in ("name", "kind", "versions", "weights"):
        table.add_column(column)
    for model in models:
        versions = model.get("versions") or []
        table.add_row(model["name"], model.get("kind", ""),
                      ", ".join(str(v.get("version")) for v in versions),
                      "; ".join(sorted({str(v.get("weights")) for v in versions})))
    out.print(table)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    err = Console(stderr=True)
    out = Console(soft_wrap=args.json) if args.json else Console()
    client = Client(args.url, api_key(args.api_key))
    try:
        if args.command == "models":
            return run_models(args, client, out)
        if args.command == "cancel":
            return control.run_cancel(args, client, err, out)
        if args.command == "list":
            return control.run_list(args, client, out)
        if args.command == "jobs":
            return jobs.run(args, client, err, out)
        return run_predict(args, client, err, out)
    except ApiError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
