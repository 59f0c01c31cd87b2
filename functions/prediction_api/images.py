"""Checks that an upload is an image the models can read, without decoding it fully.

Full decoding happens in the model's graph; here we only refuse what is plainly
not a supported image, or one declaring more pixels than the budget (every frame
counted, see inference_contract.image_size), so the API stays cheap per request.
The budget is decided here from the declared size, not through Pillow's
decompression-bomb warning: that needs process-wide warning filters, which are not
safe under the API's threads.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from inference_contract.image_size import DEFAULT_MAX_IMAGE_PIXELS, declared_size, over_budget
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


def validate_image(data: bytes, max_bytes: int, filename: str | None = None,
                   max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Upload:
    """Return the upload with its sniffed content type, or raise a typed error."""
    name = filename or "image"
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"{name} is {len(data)} bytes; the limit is {max_bytes} bytes per image",
            limit_bytes=max_bytes,
        )
    if not data:
        raise InvalidImage(f"{name} is empty")
    declared = declared_size(data)
    # Before Pillow opens it: opening an animated WebP already allocates its canvas.
    refusal = declared and over_budget(declared, max_pixels)
    if refusal:
        raise InvalidImage(f"{name} {refusal}", limit_pixels=max_pixels)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            width, height = image.size
            image.verify()
    except UnidentifiedImageError:
        raise InvalidImage(
            f"{name} is not an image in a supported format (JPEG, PNG, WebP, GIF, BMP)"
        ) from None
    except Image.DecompressionBombError:  # Pillow's own ceiling, only above a budget set beyond it
        raise InvalidImage(f"{name} has more pixels than this API decodes; the limit is "
                           f"{max_pixels:,} pixels per image", limit_pixels=max_pixels) from None
    except Exception as exc:  # Pillow raises many types for damaged files.
        raise InvalidImage(f"{name} is a corrupt image: {exc}") from None
    if image_format not in SUPPORTED_FORMATS:
        raise InvalidImage(
            f"{name} is a {image_format} image; supported formats are JPEG, PNG, WebP, GIF, BMP"
        )
    if width < 1 or height < 1:
        raise InvalidImage(f"{name} has no pixels")
    if declared is None or declared.format != image_format:
        # Pillow read a header our reader could not: never let an image past the budget unread.
        raise InvalidImage(f"{name} is a corrupt image: its size could not be read from its header")
    return Upload(data=data, content_type=SUPPORTED_FORMATS[image_format], filename=filename)
