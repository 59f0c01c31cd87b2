"""What a bulk job's input and output name, checked before anything is written.

`input` is a bucket prefix (`gs://bucket/prefix/`: every image under it, by
extension or content type) or a manifest (`gs://bucket/name.jsonl` or `.txt`:
one image per line, a `gs://bucket/object` or `https://` URI, bare or as a JSON
string; blank lines are skipped). Policy: one bad manifest line fails the whole
submit with 400 `invalid_manifest` naming the first bad line numbers, so that a
job never runs on a manifest its author got wrong. `output` is a `gs://bucket/prefix/`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from .errors import InvalidManifest, InvalidRequest

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
MANIFEST_EXTENSIONS = (".jsonl", ".txt")
MAX_URI_LENGTH = 2048
BAD_LINES_NAMED = 10
# Cloud Storage's bucket names: lowercase letters, digits, "-", "_" and ".", starting and ending
# with a letter or digit; object names at most 1024 bytes, without control characters.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
MAX_OBJECT_NAME_BYTES = 1024


@dataclass(frozen=True)
class GcsLocation:
    bucket: str
    name: str  # an object name, or a prefix (possibly empty)

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


def parse_gs(uri: object, field: str) -> GcsLocation:
    if not isinstance(uri, str) or not uri.startswith("gs://") or len(uri) > MAX_URI_LENGTH:
        raise InvalidRequest(f"{field} must be a gs://bucket/... URI of at most {MAX_URI_LENGTH} characters")
    bucket, _, name = uri[5:].partition("/")
    if not BUCKET_NAME.match(bucket):
        raise InvalidRequest(f"{field} must name a Cloud Storage bucket: gs://bucket/..., got {uri[:80]!r}")
    if len(name.encode()) > MAX_OBJECT_NAME_BYTES or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidRequest(f"{field} is not a Cloud Storage object name or prefix: {uri[:80]!r}")
    return GcsLocation(bucket, name)


def is_manifest(location: GcsLocation) -> bool:
    return location.name.lower().endswith(MANIFEST_EXTENSIONS)


def is_image_name(name: str, content_type: str | None) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) or bool(content_type and content_type.startswith("image/"))


def output_prefix(uri: object) -> GcsLocation:
    location = parse_gs(uri, "output")
    name = location.name if not location.name or location.name.endswith("/") else location.name + "/"
    return GcsLocation(location.bucket, name)


def _line_uri(raw: str) -> str | None:
    """The image URI a manifest line names, or None if it names none."""
    text = raw.strip()
    if text.startswith('"'):
        try:
            text = json.loads(text)
        except ValueError:
            return None
        if not isinstance(text, str):
            return None
    if len(text) > MAX_URI_LENGTH or any(c.isspace() for c in text):
        return None
    if text.startswith("gs://"):
        bucket, _, name = text[5:].partition("/")
        return text if bucket and name else None
    parts = urlsplit(text)
    if parts.scheme == "https" and parts.hostname and parts.username is None and parts.password is None:
        return text
    return None


def parse_manifest(data: bytes, uri: str) -> list[str]:
    """The image URIs of a manifest in order; InvalidManifest naming the first bad lines."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidManifest(f"the manifest {uri} is not UTF-8 text", lines=[]) from None
    uris, bad = [], []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        found = _line_uri(raw)
        if found is None:
            bad.append(number)
        else:
            uris.append(found)
    if bad:
        more = " and more" if len(bad) > BAD_LINES_NAMED else ""
        named = ", ".join(map(str, bad[:BAD_LINES_NAMED])) + more
        raise InvalidManifest(
            f"the manifest {uri} has {len(bad)} line(s) that are not one gs://bucket/object or https:// "
            f"image URI (bare or a JSON string): line {named}; nothing was started",
            lines=bad[:BAD_LINES_NAMED])
    return uris
