"""A bulk job's inputs and outputs on the Storage emulator: photos uploaded under distinct names, what a job
wrote read back, and the exactly-once check of its lines. Used by scripts/benchmark_jobs.py and
tests/integration/test_jobs.py."""

from __future__ import annotations

import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inference_contract import jobs

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def find_photos(folders: list[Path]) -> list[Path]:
    found = []
    for folder in folders:
        if folder.is_dir():
            found += sorted(p for p in folder.rglob("*")
                            if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not found:
        raise SystemExit(f"no photos in {', '.join(map(str, folders))}")
    return found


def upload_photos(project: str, bucket: str, prefix: str, photos: list[Path], count: int,
                  threads: int = 10) -> list[str]:
    """count objects under gs://bucket/prefix, the photos repeated under distinct names; their URIs."""
    from google.cloud import storage

    client = storage.Client(project=project)
    ensure_bucket(client, bucket)
    blobs = client.bucket(bucket)
    data = {photo: photo.read_bytes() for photo in photos}

    def upload(i: int) -> str:
        photo = photos[i % len(photos)]
        name = f"{prefix}{i:06d}-{photo.stem}{photo.suffix.lower()}"
        content_type = "image/png" if photo.suffix.lower() == ".png" else "image/jpeg"
        blobs.blob(name).upload_from_string(data[photo], content_type=content_type)
        return f"gs://{bucket}/{name}"

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(upload, range(count)))


def ensure_bucket(client, bucket: str) -> None:
    from google.api_core import exceptions as gexc

    try:
        client.create_bucket(bucket)
    except gexc.Conflict:
        pass


def read_output(project: str, job_prefix: str) -> dict:
    """What a job wrote under its prefix: every result line, the summary, and whether the summary's
    object is no older than every results object."""
    from google.cloud import storage

    bucket, _, prefix = job_prefix[5:].partition("/")
    lines, results_updated, summary, summary_updated, files = [], [], None, None, []
    for blob in storage.Client(project=project).list_blobs(bucket, prefix=prefix):
        files.append(blob.name)
        if blob.name.endswith(jobs.SUMMARY_NAME):
            summary, summary_updated = json.loads(blob.download_as_bytes()), blob.updated
        elif blob.name.endswith(".jsonl"):
            lines += [json.loads(raw) for raw in blob.download_as_bytes().splitlines() if raw.strip()]
            results_updated.append(blob.updated)
    last = summary_updated is not None and all(u <= summary_updated for u in results_updated)
    return {"lines": lines, "summary": summary, "files": sorted(files), "summary_last": last}


def exactly_once(lines: list[dict], inputs: list[str]) -> dict:
    seen = Counter(line["input"] for line in lines)
    expected = set(inputs)
    return {"lines": len(lines), "distinct_inputs": len(seen),
            "missing": len(expected - set(seen)), "repeated": sum(n - 1 for n in seen.values() if n > 1),
            "unexpected": len(set(seen) - expected),
            "ok": len(lines) == len(expected) == len(seen) and set(seen) == expected}
