"""Small files that declare huge images (decompression bombs), made without allocating their pixels.

Used by scripts/measure_edges.py and by the tests of the pixel budget.
"""

from __future__ import annotations

import struct
import zlib


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png(width: int, height: int, frames: int = 1) -> bytes:
    """A valid 8-bit greyscale PNG of width x height black pixels (9000x9000: about 80 KB).

    frames > 1 adds an acTL chunk declaring an animation (APNG) of that many frames.
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte "none", then the row
    idat = bytearray()
    for _ in range(height):
        idat += compressor.compress(row)
    idat += compressor.flush()
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    animation = _png_chunk(b"acTL", struct.pack(">II", frames, 0)) if frames > 1 else b""
    return b"\x89PNG\r\n\x1a\n" + header + animation + _png_chunk(b"IDAT", bytes(idat)) + \
        _png_chunk(b"IEND", b"")


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height and whose data is one empty block."""
    header = _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + header + _png_chunk(b"IDAT", zlib.compress(b"\x00")) + \
        _png_chunk(b"IEND", b"")


def gif(width: int, height: int, frames: int) -> bytes:
    """A GIF89a with a width x height logical screen and `frames` one-pixel frames.

    6000x6000 with 24 frames is under 600 bytes and decodes to 2.6 GB of pixels.
    """
    palette = b"\x00\x00\x00\xff\xff\xff"  # two colours
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + palette)
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x00\x00\x00\x00"  # graphic control extension
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0)  # a 1x1 frame at the origin
        out += b"\x02\x02\x44\x01\x00"  # LZW: minimum code size 2, one pixel of colour 0
    return bytes(out + b"\x3b")


def jpeg_header(width: int, height: int) -> bytes:
    """A JPEG whose frame header declares width x height, followed by no image data."""
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + sof + b"\xff\xd9"
