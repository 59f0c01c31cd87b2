"""Checks that an upload is an image the models can read, without decoding it fully.

Full decoding happens in the model's graph; here we only refuse what is plainly
not a supported image, so the API stays cheap per request.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from .errors import InvalidImage, PayloadTooLarge

# Pillow format name -> the content type we store and publish.
SUPPORTED_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
}
SUPPORTED_CONTENT_TYPES = frozenset(SUPPORTED_FORMATS.values()) | {"image/jpg", "image/x-ms-bmp"}


@dataclass(frozen=True)
class Upload:
    data: bytes
    content_type: str
    filename: str | None = None


def validate_image(data: bytes, max_bytes: int, filename: str | None = None) -> Upload:
    """Return the upload with its sniffed content type, or raise a typed error."""
    name = filename or "image"
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{name} is {len(data)} bytes; the limit is {max_bytes} bytes per image",
            limit_bytes=max_bytes,
        )
    if not data:
        raise InvalidImage(f"{name} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format = image.format
                width, height = image.size
                image.verify()
    except UnidentifiedImageError:
        raise InvalidImage(
            f"{name} is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidImage(f"{name} has too many pixels to process") from None
    except Exception as exc:  # Pillow raises many types for damaged files.
        raise InvalidImage(f"{name} is a corrupt image: {exc}") from None
    if image_format not in SUPPORTED_FORMATS:
        raise InvalidImage(
            f"{name} is a {image_format} image; supported formats are JPEG, PNG, WebP, GIF, BMP"
        )
    if width < 1 or height < 1:
        raise InvalidImage(f"{name} has no pixels")
    return Upload(data=data, content_type=SUPPORTED_FORMATS[image_format], filename=filename)
