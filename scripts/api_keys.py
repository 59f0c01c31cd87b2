"""Create, list and revoke API keys. Only a key's SHA-256 is stored; the key is printed once.

    python scripts/api_keys.py create --name alice --rate 120          # local stack's file
    python scripts/api_keys.py list
    python scripts/api_keys.py revoke 1a2b3c4d5e6f
    python scripts/api_keys.py --firestore --project my-project create --name alice --rate 120

Without --firestore the keys are in the local stack's file (.local/api_keys.json,
or --file); the running API sees a change at once. In the cloud they are in
Firestore's api_keys collection (Application Default Credentials with
roles/datastore.user); the API's cache makes a revocation effective within
API_KEY_CACHE_SECONDS (30 s).

Clients read their key from INFERENCE_API_KEY, or else from .local/api_key
(written by `make run`): see client_key().
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from prediction_api.auth import DEFAULT_RATE_PER_MINUTE, FileKeyStore, new_key, revoke

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_KEYS_FILE = ROOT / ".local" / "api_keys.json"
DEFAULT_KEY_FILE = ROOT / ".local" / "api_key"


def client_key(key_file: Path = DEFAULT_KEY_FILE) -> str | None:
    """The API key local tools send: INFERENCE_API_KEY, or else the file `make run` wrote."""
    key = os.environ.get("INFERENCE_API_KEY", "").strip()
    if key:
        return key
    try:
        return key_file.read_text().strip() or None
    except FileNotFoundError:
        return None


def client_headers(key_file: Path = DEFAULT_KEY_FILE) -> dict[str, str]:
    key = client_key(key_file)
    return {"X-API-Key": key} if key else {}


def open_store(args: argparse.Namespace):
    if args.firestore:
        from google.cloud import firestore
        from prediction_api.adapters import FirestoreKeyStore

        return FirestoreKeyStore(firestore.Client(project=args.project))
    return FileKeyStore(args.file)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", type=Path, default=DEFAULT_KEYS_FILE,
                        help="local key file (default: %(default)s)")
    parser.add_argument("--firestore", action="store_true", help="use Firestore's api_keys collection")
    parser.add_argument("--project", help="Google Cloud project (with --firestore)")
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument("--rate", type=int, default=DEFAULT_RATE_PER_MINUTE, help="requests per minute")
    commands.add_parser("list", help="list keys: id, name, quota, created, revoked (never the key)")
    revoked = commands.add_parser("revoke", help="revoke a key by its id")
    revoked.add_argument("key_id")
    args = parser.parse_args(argv)
    if args.firestore and not args.project:
        parser.error("--firestore needs --project")
    store = open_store(args)
    if args.command == "create":
        if args.rate < 1:
            parser.error("--rate must be at least 1")
        plaintext, record = new_key(args.name, args.rate)
        store.put(record)
        print(plaintext)
        print(f"id {record['id']}, {args.rate} requests per minute; the key is shown only now",
              file=sys.stderr)
    elif args.command == "list":
        for record in sorted(store.all(), key=lambda r: r.get("created_at") or ""):
            print(json.dumps({field: record.get(field) for field in
                              ("id", "name", "rate_per_minute", "created_at", "revoked_at")}, default=str))
    else:
        try:
            revoke(store, args.key_id)
        except KeyError:
            print(f"error: no key with id {args.key_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.key_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
