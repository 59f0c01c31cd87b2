"""Fake `gcloud` and `terraform` executables for running scripts/rollout.py end to end.

`gcloud storage` maps gs://BUCKET/PATH to FAKE_GCS_ROOT/BUCKET/PATH, keeps a
generation per object (FAKE_GCS_ROOT/.generations.json) and honours
--if-generation-match, as Cloud Storage does. `terraform` records its arguments
in FAKE_CLOUD_LOG and exits with FAKE_TERRAFORM_EXIT_<SUBCOMMAND> (default 0).
Both write one JSON line per call to FAKE_CLOUD_LOG.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import sys
from pathlib import Path

GCLOUD = f"""#!{sys.executable}
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from fake_cloud import gcloud
sys.exit(gcloud(sys.argv[1:]))
"""
TERRAFORM = f"""#!{sys.executable}
import sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
from fake_cloud import terraform
sys.exit(terraform(sys.argv[1:]))
"""


# Flags bootstrap.sh passes as "--flag value".
VALUE_FLAGS = {
    "--project", "--location", "--member", "--role", "--condition", "--display-name", "--description"
}


def install(bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, text in (("gcloud", GCLOUD), ("terraform", TERRAFORM)):
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)


def _log(entry: dict) -> None:
    with open(os.environ["FAKE_CLOUD_LOG"], "a") as handle:
        handle.write(json.dumps(entry) + "\n")


def _root() -> Path:
    return Path(os.environ["FAKE_GCS_ROOT"])


def _path(url: str) -> Path:
    assert url.startswith("gs://"), url
    return _root() / url.removeprefix("gs://")


def _generations() -> dict:
    path = _root() / ".generations.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _set_generation(url: str) -> None:
    generations = _generations()
    generations[url] = generations.get(url, 0) + 1
    (_root() / ".generations.json").write_text(json.dumps(generations))


def _bindings() -> dict[str, list[str]]:
    path = _root() / ".iam.json"
    return json.loads(path.read_text()) if path.exists() else {}


def put(url: str, data: bytes) -> None:
    """Create an object as another writer would (bumps its generation)."""
    path = _path(url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    _set_generation(url)


def gcloud(argv: list[str]) -> int:
    _log({"tool": "gcloud", "argv": argv})
    options, args, rest = {}, [], list(argv)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("--"):
            args.append(arg)
        elif "=" in arg:
            options[arg.split("=", 1)[0]] = arg.split("=", 1)[1]
        elif arg in VALUE_FLAGS:
            options[arg] = rest.pop(0)
        else:
            options[arg] = ""
    if args[:2] == ["config", "get-value"]:
        print(os.environ.get("FAKE_GCLOUD_ACCOUNT", "(unset)") if args[2] == "account" else "(unset)")
        return 0
    if args[:3] == ["storage", "objects", "describe"]:
        url = args[3]
        if not _path(url).is_file():
            print(f"ERROR: {url} not found: 404.", file=sys.stderr)
            return 1
        print(_generations().get(url, 1))
        return 0
    if args[:2] == ["storage", "ls"]:
        if os.environ.get("FAKE_GCLOUD_LS_ERROR"):
            print(f"ERROR: (gcloud.storage.ls) {os.environ['FAKE_GCLOUD_LS_ERROR']}", file=sys.stderr)
            return 1
        pattern = args[2]
        # As the real one: a URL ending in "/" lists the objects under that prefix.
        pattern = pattern + "*" if pattern.endswith("/") else pattern
        matches = sorted(
            "gs://" + p.relative_to(_root()).as_posix()
            for p in _root().rglob("*")
            if p.is_file() and fnmatch.fnmatchcase("gs://" + p.relative_to(_root()).as_posix(), pattern)
        )
        if not matches:
            print("ERROR: (gcloud.storage.ls) One or more URLs matched no objects.", file=sys.stderr)
            return 1
        print("\n".join(matches))
        return 0
    if args[:2] == ["storage", "cp"]:
        source, destination = args[2], args[-1]
        if source.startswith("gs://"):
            if not _path(source).is_file():
                print(f"ERROR: {source} not found", file=sys.stderr)
                return 1
            shutil.copyfile(_path(source), destination)
            return 0
        expected = options.get("--if-generation-match")
        if expected is not None and str(_generations().get(destination, 0)) != expected:
            print("ERROR: HTTPError 412: At least one of the pre-conditions you specified did not hold.",
                  file=sys.stderr)
            return 1
        if len(args) > 4:  # several local files into a "folder"
            assert destination.endswith("/"), destination
            for local in args[2:-1]:
                put(args[-1] + Path(local).name, Path(local).read_bytes())
            return 0
        put(destination, Path(source).read_bytes())
        return 0
    if args[:2] == ["storage", "buckets"]:
        bucket = _path(args[3])
        if args[2] == "describe":
            return 0 if bucket.is_dir() else 1
        if args[2] == "create":
            bucket.mkdir(parents=True)
            return 0
        if args[2] == "update":
            return 0 if bucket.is_dir() else 1
    if args[:2] == ["services", "enable"]:
        return 0
    if args[:2] == ["iam", "service-accounts"]:
        accounts = _root() / ".service-accounts"
        if args[2] == "describe":
            return 0 if (accounts / args[3]).exists() else 1
        if args[2] == "create":
            accounts.mkdir(exist_ok=True)
            (accounts / f"{args[3]}@{options['--project']}.iam.gserviceaccount.com").touch()
            return 0
    if args[:2] == ["projects", "add-iam-policy-binding"]:
        bindings = _bindings()
        bindings.setdefault(options["--member"], []).append(options["--role"])
        (_root() / ".iam.json").write_text(json.dumps(bindings))
        return 0
    if args[:2] == ["projects", "get-iam-policy"]:
        # Only the form bootstrap.sh uses: the roles of one member, one a line.
        member = options["--filter"].removeprefix("bindings.members:")
        assert options["--format"] == "value(bindings.role)", options
        print("\n".join(_bindings().get(member, [])))
        return 0
    if args[:1] == ["secrets"]:
        secrets = _root() / ".secrets"
        if args[1] == "describe":
            return 0 if (secrets / args[2]).exists() else 1
        if args[1] == "create" and options.get("--data-file") == "-":
            secrets.mkdir(exist_ok=True)
            if (secrets / args[2]).exists():
                print(f"ERROR: secret {args[2]} already exists", file=sys.stderr)
                return 1
            (secrets / args[2]).write_bytes(sys.stdin.buffer.read())
            return 0
    print(f"fake gcloud: unsupported {argv}", file=sys.stderr)
    return 2


def terraform(argv: list[str]) -> int:
    subcommand = next(a for a in argv if not a.startswith("-"))
    _log({"tool": "terraform", "argv": argv})
    chdir = Path(next((a.split("=", 1)[1] for a in argv if a.startswith("-chdir=")), "."))
    installed = chdir / ".terraform" / "modules" / "modules.json"
    if subcommand in ("get", "init"):
        installed.parent.mkdir(parents=True, exist_ok=True)
        installed.write_text("{}")
    if argv[argv.index(subcommand):][:2] == ["providers", "lock"]:
        # As the real one (checked in test_delivery.py): it reads the modules'
        # requirements, so it needs them installed first.
        if not installed.exists():
            print('Error: Module not installed ... Run "terraform init"', file=sys.stderr)
            return 1
        (chdir / ".terraform.lock.hcl").write_text("# providers locked by the fake terraform\n")
    return int(os.environ.get(f"FAKE_TERRAFORM_EXIT_{subcommand.upper()}", "0"))


def calls(log: Path, tool: str) -> list[list[str]]:
    if not log.exists():
        return []
    return [entry["argv"] for entry in map(json.loads, log.read_text().splitlines()) if entry["tool"] == tool]
