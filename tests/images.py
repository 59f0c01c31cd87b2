"""The ImageNet sample photos in ../shared/images (or $SAMPLE_IMAGES_DIR), and images made from them."""

from __future__ import annotations

import io
import os
from pathlib import Path

from PIL import Image

# Cloud Build has no ../shared: its test step fetches the photos and names the folder.
SHARED_IMAGES = Path(os.environ.get("SAMPLE_IMAGES_DIR")
                     or Path(__file__).resolve().parents[1].parent / "shared" / "images")

# ImageNet class index of each sample's wnid (see ../shared/README.md).
CLASS_IDS = {
    "n01443537": 1, "n02088364": 162, "n02099601": 207, "n02110958": 254, "n02123045": 281,
    "n02123394": 283, "n02123597": 284, "n04285008": 817, "n07753592": 954, "n07873807": 963,
}
CATS = {"n02123045", "n02123394", "n02123597"}
DOGS = {"n02088364", "n02099601", "n02110958"}


def sample(name: str) -> Path:
    """A sample photo by (part of) its class name, e.g. sample('tabby')."""
    matches = sorted(SHARED_IMAGES.glob(f"*_{name}*.JPEG"))
    if not matches:
        raise FileNotFoundError(f"no sample photo for {name!r} in {SHARED_IMAGES}")
    return matches[0]


def all_samples() -> list[Path]:
    photos = sorted(SHARED_IMAGES.glob("*.JPEG"))
    if not photos:
        raise FileNotFoundError(f"no sample photos in {SHARED_IMAGES}")
    return photos


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
