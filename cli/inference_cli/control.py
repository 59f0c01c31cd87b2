"""`inference cancel ID` and `inference list [--model M] [--status S]`: the caller's own predictions."""

from __future__ import annotations

import argparse
import json

from inference_contract.predictions import STATUSES
from rich.console import Console
from rich.table import Table

from .client import ApiError, Client


def add_commands(commands) -> None:
    cancel = commands.add_parser("cancel", help="cancel a queued prediction")
    cancel.add_argument("ids", nargs="+", metavar="ID", help="prediction ids")
    cancel.add_argument("--json", action="store_true", help="print the API's JSON")
    listing = commands.add_parser("list", help="your own predictions, newest first")
    listing.add_argument("--model", help="only this model's")
    listing.add_argument("--status", choices=STATUSES, help="only those with this status")
    listing.add_argument("--limit", type=int, default=20, help="at most this many (default %(default)s)")
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout, no table")


def cancel(client: Client, prediction_id: str) -> dict:
    return client.request("POST", f"/v1/predictions/{prediction_id}:cancel")


def list_predictions(client: Client, model: str | None, status: str | None, limit: int) -> list[dict]:
    """Up to limit predictions, newest first, following the API's page tokens."""
    return client.list_all("/v1/predictions", "predictions", {"model": model, "status": status}, limit)


def run_cancel(args: argparse.Namespace, client: Client, err: Console, out: Console) -> int:
    """0 when every prediction ended cancelled; 1 when any could not be (running, final, unknown)."""
    documents, failures = [], 0
    for prediction_id in args.ids:
        try:
            documents.append(cancel(client, prediction_id))
        except ApiError as exc:
            failures += 1
            err.print(f"[red]{prediction_id}:[/] {exc.code}: {exc.message}")
    if args.json:
        out.print_json(json.dumps({"predictions": documents}))
    else:
        for document in documents:
            out.print(f"{document['id']}: {document['status']}")
    return 1 if failures else 0


def run_list(args: argparse.Namespace, client: Client, out: Console) -> int:
    if args.limit < 1:
        raise SystemExit("--limit must be at least 1")
    documents = list_predictions(client, args.model, args.status, args.limit)
    if args.json:
        out.print_json(json.dumps({"predictions": documents}))
        return 0
    table = Table(title=f"{len(documents)} predictions, newest first")
    for column in ("id", "model", "status", "created", "error"):
        table.add_column(column)
    for document in documents:
        table.add_row(document["id"], document["model"], document["status"], document["created_at"],
                      (document.get("error") or {}).get("code") or "")
    out.print(table)
    return 0
