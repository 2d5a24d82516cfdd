"""Decoding uploaded images, which are hostile until checked.

Only PNG and JPEG are opened (Pillow's other parsers are code no upload needs to reach), and
an image's size is read from its header and checked before a pixel is decoded: a PNG of a
few kilobytes can claim to be gigapixels.
"""

from __future__ import annotations

import io

import numpy as np

from .errors import InputError

FORMATS = ("PNG", "JPEG")
MAX_IMAGE_PIXELS = 64 * 2**20  # 64 MP: above a 48 MP phone photo, 256 MB as RGBA


def open_image(data: bytes, what: str = "the image"):
    """The image's header, opened lazily (nothing decoded yet), its size checked.

    Raises:
        InputError: naming `what`: not a PNG or JPEG, or over MAX_IMAGE_PIXELS.
    """
    from PIL import Image

    too_large = f"{what} is too large: the limit is {MAX_IMAGE_PIXELS // 2**20} megapixels; send a smaller image"
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except Image.DecompressionBombError as error:  # Pillow's own, far higher limit
        raise InputError(f"{too_large} ({error})") from None
    except (OSError, ValueError) as error:  # UnidentifiedImageError is an OSError
        raise InputError(f"{what} is not a readable PNG or JPEG ({error})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(f"{too_large} (it is {width}x{height})")
    return image


def check_image(data: bytes, what: str = "the image") -> None:
    """Refuse an upload that is not a whole PNG or JPEG within the size limit, without decoding it
    (cheap enough for the moment a job is submitted)."""
    image = open_image(data, what)
    try:
        image.verify()
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{what} is not a readable PNG or JPEG ({e})") from None


def read_image(data: bytes, what: str = "the image"):
    """Decode an uploaded PNG or JPEG now (a truncated file fails here, not inside a model).

    Returns a PIL image in mode RGB, or RGBA when it has transparency (an alpha channel or
    a PNG's transparent colour), upright as a photo viewer shows it (EXIF orientation), 16-bit
    grey scaled to 8 bits. Raises InputError naming `what` for anything unreadable or too large.
    """
    from PIL import Image, ImageOps

    image = open_image(data, what)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)  # a phone's portrait photo is stored on its side
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise InputError(f"{what} is not a readable PNG or JPEG ({error})") from None
    if image.mode.startswith("I"):  # 16-bit grey ("I;16") or 32-bit integer: convert() would clip it at 255
        grey = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        image = Image.fromarray(np.round(grey.clip(0, top) * (255.0 / top)).astype(np.uint8))
    return image.convert("RGBA" if image.has_transparency_data else "RGB")
