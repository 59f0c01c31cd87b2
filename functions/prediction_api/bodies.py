"""Request bodies read to a limit and no further, whether or not they declare their length."""

from __future__ import annotations

from typing import BinaryIO

from .errors import PayloadTooLarge

CHUNK_BYTES = 1 << 16


def read_bounded(stream: BinaryIO, max_bytes: int) -> bytes:
    """The whole body, or PayloadTooLarge as soon as more than max_bytes have arrived.

    A chunked body has no Content-Length to refuse it by; reading it in chunks up to
    one byte past the limit keeps at most max_bytes + 1 in memory whatever is sent.
    """
    chunks: list[bytes] = []  # joined once at the end: no growing buffer to over-allocate
    received = 0
    while received <= max_bytes:
        chunk = stream.read(min(CHUNK_BYTES, max_bytes + 1 - received))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        received += len(chunk)
    raise PayloadTooLarge(
        f"the image is more than {max_bytes} bytes; the limit is {max_bytes} bytes per image",
        limit_bytes=max_bytes)


def discard_rest(stream: BinaryIO) -> None:
    """Read what is left of a body a chunk at a time, keeping none of it (a body
    refused before or at its limit, chunked or not): memory stays at one chunk."""
    while stream.read(CHUNK_BYTES):
        pass
