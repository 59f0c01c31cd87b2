"""Assembles the build context of each deploy unit: its own folder plus the contract package.

    python3 scripts/package_units.py model-service build/model_service
    python3 scripts/package_units.py function build/function --zip build/functions.zip

The contract (contract/inference_contract) lands as a top-level package next to
the unit's main.py, so both units import it as `inference_contract`, wherever
they run. Everything that runs a unit starts from a context assembled here:
- the local stack (`make run` and the tests) runs the API and the model
  services from .local/units/ (or the test stack's own folder);
- Cloud Build zips the function's context for Cloud Functions and builds the
  model-service image from its context (its Dockerfile's `COPY . .`).

Standard library only: Cloud Build runs it in python:3.11-slim.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "contract" / "inference_contract"
UNITS = {"function": ROOT / "functions", "model-service": ROOT / "cloudrun_model"}
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def assemble(unit: str, destination: Path) -> Path:
    """Write unit's build context to destination (replacing what was there); returns it."""
    destination = Path(destination)
    staging = destination.with_name(destination.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(UNITS[unit], staging, ignore=_IGNORE)
    shutil.copytree(CONTRACT, staging / CONTRACT.name, ignore=_IGNORE)
    # Swapped in whole, so a process restarted meanwhile never sees half a context.
    shutil.rmtree(destination, ignore_errors=True)
    staging.rename(destination)
    return destination


def write_zip(context: Path, archive: Path) -> Path:
    """A zip of context with fixed timestamps and modes: byte-identical when nothing changed,
    so Terraform (which names the uploaded object by its hash) redeploys only on real changes."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(context.rglob("*")):
            if path.is_file():
                info = zipfile.ZipInfo(path.relative_to(context).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("unit", choices=sorted(UNITS))
    parser.add_argument("destination", type=Path, help="the build context to write")
    parser.add_argument("--zip", type=Path, help="also write the context as this zip archive")
    args = parser.parse_args(argv)
    context = assemble(args.unit, args.destination)
    print(f"{args.unit}: {context}")
    if args.zip:
        archive = write_zip(context, args.zip)
        print(f"{archive}: {archive.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
