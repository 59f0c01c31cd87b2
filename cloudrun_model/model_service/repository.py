"""The model repository, read: <root>/<model>/<version>/ on a local folder or gs://bucket/prefix.

The layout, and which versions are complete, is inference_contract.model_layout's.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from inference_contract import billable_operations as billed
from inference_contract import model_layout

from .errors import ModelLoadError

log = logging.getLogger(__name__)


def _split_gcs(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("gs://").partition("/")
    return bucket, prefix.strip("/")


class ModelRepository:
    def __init__(self, root: str, storage_client=None) -> None:
        self.root = root.rstrip("/")
        self._storage_client = storage_client

    @property
    def is_gcs(self) -> bool:
        return self.root.startswith("gs://")

    def versions(self, model: str) -> list[int]:
        """The complete versions of a model (an export cut short is not one)."""
        if self.is_gcs:
            bucket, prefix = _split_gcs(self.root)
            model_prefix = f"{prefix}/{model}/" if prefix else f"{model}/"
            listing = self._client().list_blobs(bucket, prefix=model_prefix)
            entries = [blob.name[len(model_prefix):] for blob in listing]
            billed.count(billed.STORAGE_CLASS_A, max(1, listing.page_number))  # a list call per page
        else:
            entries = model_layout.local_entries(Path(self.root, model))
        return model_layout.complete_versions(entries)

    def resolve(self, model: str, version: str) -> int:
        available = self.versions(model)
        if not available:
            raise ModelLoadError(f"no versions of model {model!r} under {self.root}")
        if version == "latest":
            return available[-1]
        if int(version) not in available:
            raise ModelLoadError(
                f"model {model!r} has no version {version} under {self.root}; "
                f"available: {', '.join(map(str, available))}")
        return int(version)

    def local_path(self, model: str, version: int) -> Path:
        """A local folder holding the version, downloaded first when the root is remote."""
        if not self.is_gcs:
            return Path(self.root, model, str(version))
        bucket_name, prefix = _split_gcs(self.root)
        version_prefix = "/".join(p for p in (prefix, model, str(version)) if p) + "/"
        target = Path(tempfile.mkdtemp(prefix=f"{model}-{version}-"))
        count = 0
        listing = self._client().list_blobs(bucket_name, prefix=version_prefix)
        for blob in listing:
            relative = blob.name[len(version_prefix):]
            if not relative or relative.endswith("/"):
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            billed.count(billed.STORAGE_CLASS_B)
            blob.download_to_filename(os.fspath(destination))
            count += 1
        billed.count(billed.STORAGE_CLASS_A, max(1, listing.page_number))
        log.info("model downloaded", extra={"model": model, "version": version, "files": count})
        return target

    def _client(self):
        if self._storage_client is None:
            from google.cloud import storage

            self._storage_client = storage.Client()
        return self._storage_client
