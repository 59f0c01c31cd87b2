"""The ImageNet sample photos (scripts/sample_photos.py), and images made from them."""

from __future__ import annotations

import io

from PIL import Image

from scripts.sample_photos import CATS, CLASS_IDS, DOGS, all_samples, sample
from scripts.sample_photos import PHOTOS_DIR as SHARED_IMAGES

__all__ = ["CATS", "CLASS_IDS", "DOGS", "SHARED_IMAGES", "all_samples", "sample"]

def tabby_bytes() -> bytes:
    return sample("tabby").read_bytes()


def converted(data: bytes, image_format: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, image_format)
    return buffer.getvalue()


def truncated_jpeg() -> bytes:
    """A JPEG whose header is intact but whose data stops a third of the way in."""
    data = tabby_bytes()
    return data[: len(data) // 3]


def corrupt_png() -> bytes:
    """PNG signature and header, then garbage: Pillow can't read its chunks."""
    png = converted(tabby_bytes(), "PNG")
    return png[:16] + b"\x00garbage" * 20
