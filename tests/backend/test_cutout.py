"""Preparing a photo for image-to-3D: each kind of upload gives the right input or a clear error."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from backend.cutout import cut_out
from backend.errors import InputError
from backend.pipelines.triposr import BACKGROUND, prepare_input

SIZE = 64


def encoded(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    data = io.BytesIO()
    image.save(data, format=fmt, **options)
    return data.getvalue()


def drawn(size=(128, 128), mode="RGB", background=(255, 255, 255), fill=(200, 30, 30), box=(32, 32, 96, 96)):
    image = Image.new(mode, size, background)
    ImageDraw.Draw(image).ellipse(box, fill=fill)
    return image


def object_box(image: torch.Tensor) -> tuple[int, int, int, int]:
    """Rows and columns of what is not the grey background."""
    rows, cols = np.nonzero((image - BACKGROUND).abs().amax(0).numpy() > 0.05)
    return rows.min(), rows.max(), cols.min(), cols.max()


def assert_centred(image: torch.Tensor, ratio: float = 0.85):
    top, bottom, left, right = object_box(image)
    assert abs((top + bottom) / 2 - (SIZE - 1) / 2) <= 1.5 and abs((left + right) / 2 - (SIZE - 1) / 2) <= 1.5
    assert abs(max(bottom - top, right - left) + 1 - ratio * SIZE) <= 2
    assert torch.allclose(image[:, 0, 0], torch.full((3,), BACKGROUND))


def test_an_image_with_transparency_is_cut_out_by_its_alpha():
    image = drawn(mode="RGBA", background=(0, 0, 0, 0), fill=(200, 30, 30, 255), box=(10, 20, 60, 50))
    prepared, how = prepare_input(encoded(image), SIZE, 0.85)
    assert how == "alpha"
    assert_centred(prepared)
    assert prepared[0, SIZE // 2, SIZE // 2] > 0.7  # red where the object is


def test_a_plain_background_is_found_from_the_border():
    prepared, how = prepare_input(encoded(drawn(background=(30, 120, 40), box=(70, 10, 120, 60))), SIZE, 0.85)
    assert how == "plain background"
    assert_centred(prepared)


def test_the_photo_is_upright_as_a_viewer_shows_it():
    """A phone stores a portrait photo on its side with an EXIF orientation: a wide object stored
    that way is tall once upright."""
    stored = drawn(size=(160, 100), box=(20, 35, 140, 65))  # wide
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    prepared, _ = prepare_input(encoded(stored, "JPEG", exif=exif, quality=95), SIZE, 0.85)
    top, bottom, left, right = object_box(prepared)
    assert bottom - top > 2.5 * (right - left)


def test_grey_and_16_bit_images_work():
    grey, _ = prepare_input(encoded(drawn(mode="L", background=240, fill=40)), SIZE, 0.85)
    assert_centred(grey)
    assert grey[0, SIZE // 2, SIZE // 2] < 0.3
    levels = np.full((128, 128), 60000, np.uint16)
    levels[40:90, 30:100] = 5000
    deep, _ = prepare_input(encoded(Image.fromarray(levels)), SIZE, 0.85)
    assert_centred(deep)


def test_tiny_huge_busy_and_full_frame_images_are_refused_saying_what_to_do():
    with pytest.raises(InputError, match="too small to reconstruct"):
        prepare_input(encoded(drawn(size=(20, 20), box=(5, 5, 15, 15))), SIZE, 0.85)
    with pytest.raises(InputError, match="too large"):
        prepare_input(encoded(Image.new("L", (9000, 8000))), SIZE, 0.85)
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    busy = Image.fromarray(noise)
    ImageDraw.Draw(busy).ellipse((32, 32, 96, 96), fill=(200, 30, 30))
    with pytest.raises(InputError, match="background is not plain"):
        prepare_input(encoded(busy), SIZE, 0.85)
    close_up = Image.new("RGB", (128, 128), (250, 250, 250))
    ImageDraw.Draw(close_up).rectangle((2, 2, 125, 125), fill=(10, 10, 10))  # a margin of two pixels
    with pytest.raises(InputError, match="fills 9.% of the image, so no background"):
        prepare_input(encoded(close_up), SIZE, 0.85)
    with pytest.raises(InputError, match="could not find an object"):
        prepare_input(encoded(Image.new("RGB", (64, 64), (90, 90, 90))), SIZE, 0.85)
    with pytest.raises(InputError, match="every pixel is transparent"):
        prepare_input(encoded(Image.new("RGBA", (64, 64), (0, 0, 0, 0))), SIZE, 0.85)


def test_background_coloured_areas_inside_the_object_stay_object():
    """A white label on a red object on white: the label is enclosed, so it is part of the object."""
    image = drawn(box=(20, 20, 108, 108))
    ImageDraw.Draw(image).ellipse((50, 50, 78, 78), fill=(255, 255, 255))
    _, mask, _ = cut_out(np.asarray(image), SIZE, 0.85, (0.5, 0.5, 0.5))
    assert mask[SIZE // 2, SIZE // 2] > 0.99 and mask[0, 0] == 0
