"""Model repository laid out like TF Serving's: <root>/<model>/<version>/.

The root is a local folder or a gs://bucket/prefix URI. A version folder holds a
TF SavedModel, `model.json` (what the model is and which weights it carries) and
`labels.txt`.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

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
        if self.is_gcs:
            bucket, prefix = _split_gcs(self.root)
            model_prefix = f"{prefix}/{model}/" if prefix else f"{model}/"
            blobs = self._client().list_blobs(bucket, prefix=model_prefix, delimiter="/")
            list(blobs)  # the prefixes are filled in only once the pages are read
            names = [p[len(model_prefix):].strip("/") for p in blobs.prefixes]
        else:
            folder = Path(self.root, model)
            names = [p.name for p in folder.iterdir() if p.is_dir()] if folder.is_dir() else []
        return sorted(int(name) for name in names if name.isdigit())

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
        for blob in self._client().list_blobs(bucket_name, prefix=version_prefix):
            relative = blob.name[len(version_prefix):]
            if not relative or relative.endswith("/"):
                continue
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            blob.download_to_filename(os.fspath(destination))
            count += 1
        log.info("model downloaded", extra={"model": model, "version": version, "files": count})
        return target

    def _client(self):
        if self._storage_client is None:
            from google.cloud import storage

            self._storage_client = storage.Client()
        return self._storage_client
