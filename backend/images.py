"""Decoding uploaded images, which are hostile until checked."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def read_image(data: bytes, what: str = "the image"):
    """Decode an uploaded PNG or JPEG now (a truncated file fails here, not inside a model).

    Returns a PIL image in mode RGB, or RGBA when it has transparency (an alpha channel or
    a PNG's transparent colour), upright as a photo viewer shows it (EXIF orientation), 16-bit
    grey scaled to 8 bits. Raises InputError naming `what` for anything unreadable.
    """
    import io

    from PIL import Image, ImageOps

    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        image = ImageOps.exif_transpose(image)  # a phone's portrait photo is stored on its side
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # UnidentifiedImageError is an OSError
        raise InputError(f"{what} is not a readable PNG or JPEG ({error})") from None
    if image.mode.startswith("I"):  # 16-bit grey ("I;16") or 32-bit integer: convert() would clip it at 255
        grey = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or grey.max() > 255 else 255.0
        image = Image.fromarray(np.round(grey.clip(0, top) * (255.0 / top)).astype(np.uint8))
    return image.convert("RGBA" if image.has_transparency_data else "RGB")
