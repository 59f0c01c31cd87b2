"""The ImageNet sample photos the tests, benchmarks and tools use.

They ship with the repository in tests/photos/ (so the suite, here and in Cloud
Build, needs nothing beside it), each named <wnid>_<class>.JPEG;
$SAMPLE_IMAGES_DIR points at another folder of photos named the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

PHOTOS_DIR = Path(os.environ.get("SAMPLE_IMAGES_DIR")
                  or Path(__file__).resolve().parents[1] / "tests" / "photos")

# ImageNet class index of each sample's wnid (see tests/photos/README.md).
CLASS_IDS = {
    "n01443537": 1, "n02088364": 162, "n02099601": 207, "n02110958": 254, "n02123045": 281,
    "n02123394": 283, "n02123597": 284, "n04285008": 817, "n07753592": 954, "n07873807": 963,
}
CATS = {"n02123045", "n02123394", "n02123597"}
DOGS = {"n02088364", "n02099601", "n02110958"}


def wnid(photo: Path) -> str:
    return photo.name.split("_")[0]


def sample(name: str) -> Path:
    """A sample photo by (part of) its class name, e.g. sample('tabby')."""
    matches = sorted(PHOTOS_DIR.glob(f"*_{name}*.JPEG"))
    if not matches:
        raise FileNotFoundError(f"no sample photo for {name!r} in {PHOTOS_DIR}")
    return matches[0]


def all_samples() -> list[Path]:
    photos = sorted(PHOTOS_DIR.glob("*.JPEG"))
    if not photos:
        raise FileNotFoundError(f"no sample photos in {PHOTOS_DIR} (set SAMPLE_IMAGES_DIR)")
    return photos
