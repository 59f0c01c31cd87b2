"""The model repository's layout, written once for export, serving and rollout.

Laid out like TF Serving's: <root>/<model>/<version>/, the root a local folder or
gs://bucket/prefix, the version a positive whole number. A version folder holds a
TF SavedModel, MODEL_CARD and LABELS. Exports write (or upload) COMPLETE_MARKER,
the SavedModel's graph, last: a version is complete once it is there, and only
complete versions are served, checked before a deploy, or kept by --if-missing.
A numbered folder without it (an export cut short) still holds its number, so the
next export takes the one after.

The functions take a model folder's entries as paths relative to it, "3/" for a
folder and "3/saved_model.pb" for a file in it: what listing a bucket under the
model's prefix gives, and what local_entries() gives for a folder on disk.
scripts/rollouts (standard library only, run without this package) names the
same marker; tests/unit/test_model_layout.py holds it to COMPLETE_MARKER.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

COMPLETE_MARKER = "saved_model.pb"
MODEL_CARD = "model.json"
LABELS = "labels.txt"


def version_number(name: str) -> int | None:
    """The version a folder name stands for ("3"), or None for any other name."""
    return int(name) if name.isdigit() and int(name) > 0 else None


def local_entries(model_folder: Path) -> list[str]:
    """A local model folder's version folders and the entries directly in them, relative to it."""
    entries: list[str] = []
    if Path(model_folder).is_dir():
        for folder in Path(model_folder).iterdir():
            if folder.is_dir():
                entries.append(f"{folder.name}/")
                entries.extend(f"{folder.name}/{child.name}" for child in folder.iterdir())
    return entries


def version_folders(entries: Iterable[str]) -> list[int]:
    """Every numbered version folder, complete or not."""
    return sorted({v for entry in entries if (v := version_number(entry.split("/", 1)[0])) is not None})


def complete_versions(entries: Iterable[str]) -> list[int]:
    """The versions whose COMPLETE_MARKER is there."""
    found = set()
    for entry in entries:
        folder, _, rest = entry.partition("/")
        version = version_number(folder)
        if version is not None and rest == COMPLETE_MARKER:
            found.add(version)
    return sorted(found)


def next_version(entries: Iterable[str]) -> int:
    """The number a new export takes: one past every numbered folder, an incomplete one included."""
    return max(version_folders(entries), default=0) + 1
