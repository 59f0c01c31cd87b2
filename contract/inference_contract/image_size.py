"""How many pixels an encoded image declares, read from its headers without decoding it.

Both units apply the same pixel budget: the API refuses an upload above it, and the
model service refuses it again before its graph decodes anything (a message may name
an object the API never checked). The count is what a full decode allocates: the
canvas once per frame (GIF, APNG and WebP animations decode every frame to the full
canvas), so a 6000x6000 GIF screen with 24 one-pixel frames counts 864 Mpx.

Pure Python on purpose: the model service ships without Pillow, and a header walk is
all that is needed. Unknown or truncated headers give None: the caller's decoder then
says whether the bytes are an image at all.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

DEFAULT_MAX_IMAGE_PIXELS = 40_000_000
# The API's MAX_IMAGE_BYTES default; the model service's Open Inference routes bound
# their bodies by it too (they have no setting of their own).
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024

# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


@dataclass(frozen=True)
class DeclaredSize:
    format: str  # "JPEG", "PNG", "GIF", "BMP", "WEBP"
    width: int
    height: int
    frames: int = 1

    @property
    def pixels(self) -> int:
        """Pixels a full decode produces: the canvas, once per frame."""
        return self.width * self.height * self.frames


def declared_size(data: bytes) -> DeclaredSize | None:
    """The size an image's headers declare, or None when they can't be read."""
    try:
        if data.startswith(b"\xff\xd8"):
            return _jpeg(data)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            return _png(data)
        if data[:6] in (b"GIF87a", b"GIF89a"):
            return _gif(data)
        if data.startswith(b"BM"):
            return _bmp(data)
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return _webp(data)
    except (struct.error, IndexError):
        return None  # truncated inside a header
    return None


def _jpeg(data: bytes) -> DeclaredSize | None:
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:  # stray bytes between segments: libjpeg and Pillow skip them too
            at += 1
            continue
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
            at += 2
            continue
        (length,) = struct.unpack_from(">H", data, at + 2)
        if marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, at + 5)
            return DeclaredSize("JPEG", width, height)
        if marker == 0xDA or length < 2:  # scan data before any frame header: not readable
            return None
        at += 2 + length
    return None


def _png(data: bytes) -> DeclaredSize | None:
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    frames = 1
    at = 8
    while at + 8 <= len(data):  # an acTL chunk, if any, comes before the first IDAT
        length, kind = struct.unpack_from(">I4s", data, at)
        if kind == b"acTL":
            frames = max(1, struct.unpack_from(">I", data, at + 8)[0])
            break
        if kind in (b"IDAT", b"IEND"):
            break
        at += 12 + length
    return DeclaredSize("PNG", width, height, frames)


def _gif(data: bytes) -> DeclaredSize | None:
    """The logical screen grown to every frame's extent, and the number of frames.

    Walks the block structure only (sub-block lengths), never the LZW data.
    """
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    at = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while at < len(data):
        block = data[at]
        if block == 0x3B:  # trailer
            break
        if block == 0x21:  # extension: label, then sub-blocks
            at = _skip_sub_blocks(data, at + 2)
        elif block == 0x2C:  # image descriptor
            left, top, frame_width, frame_height, frame_flags = struct.unpack_from("<HHHHB", data, at + 1)
            width, height = max(width, left + frame_width), max(height, top + frame_height)
            frames += 1
            at += 10 + (3 << ((frame_flags & 7) + 1) if frame_flags & 0x80 else 0)
            at = _skip_sub_blocks(data, at + 1)  # after the LZW minimum code size
        else:
            break  # damaged: count what was read
    return DeclaredSize("GIF", width, height, max(frames, 1))


def _skip_sub_blocks(data: bytes, at: int) -> int:
    while at < len(data):
        size = data[at]
        at += 1 + size
        if size == 0:
            break
    return at


def _bmp(data: bytes) -> DeclaredSize | None:
    (header,) = struct.unpack_from("<I", data, 14)
    if header == 12:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sides
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
    return DeclaredSize("BMP", abs(width), abs(height))  # a negative height is a top-down bitmap


def _webp(data: bytes) -> DeclaredSize | None:
    chunk = data[12:16]
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        width, height = struct.unpack_from("<HH", data, 26)
        return DeclaredSize("WEBP", width & 0x3FFF, height & 0x3FFF)
    if chunk == b"VP8L" and data[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, 21)
        return DeclaredSize("WEBP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        frames = 0
        at = 12
        while at + 8 <= len(data):  # count the animation's ANMF chunks
            kind, length = struct.unpack_from("<4sI", data, at)
            frames += kind == b"ANMF"
            at += 8 + length + (length & 1)
        return DeclaredSize("WEBP", width, height, max(frames, 1))
    return None


def over_budget(size: DeclaredSize, max_pixels: int) -> str | None:
    """Why an image with this declared size is refused, or None if it is within the budget."""
    if size.pixels <= max_pixels:
        return None
    frames = f" in {size.frames} frames" if size.frames > 1 else ""
    return (f"declares {size.width}x{size.height} pixels{frames} ({size.pixels:,} in all); "
            f"the limit is {max_pixels:,} pixels per image")
