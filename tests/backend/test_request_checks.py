"""What a request may hold, checked the same way by the server and the command line; and the
bounded caches and image readers that user input reaches."""

import io
import os
import struct
import zlib

import pytest
from PIL import Image

from backend.__main__ import main
from backend.errors import InputError
from backend.images import check_image, read_image
from backend.models import DECLARED_TYPES, TEST_MODELS_ENV, registry, resolve_params


def test_every_parameter_whose_default_does_not_say_its_type_declares_one(monkeypatch):
    """A None or empty-list default accepted anything (a dict for negative_prompt): each such
    parameter of every model must be in DECLARED_TYPES."""
    monkeypatch.setenv(TEST_MODELS_ENV, "1")
    for entry in registry():
        for name, default in entry.params.items():
            if default is None or default == [] or default == {}:
                assert name in DECLARED_TYPES, f"{entry.name}: parameter {name} has no declared type"


def test_declared_types_are_enforced_and_nulls_keep_the_default(monkeypatch):
    monkeypatch.setenv(TEST_MODELS_ENV, "1")
    builtin = next(e for e in registry() if e.name == "builtin" and e.task == "text_to_3d")
    assert resolve_params(builtin, {"negative_prompt": None})["negative_prompt"] is None
    assert resolve_params(builtin, {"negative_prompt": "blurry"})["negative_prompt"] == "blurry"
    for bad in (["a"], {"a": 1}, 3, True):
        with pytest.raises(InputError, match="negative_prompt must be text"):
            resolve_params(builtin, {"negative_prompt": bad})


def test_the_command_line_refuses_what_the_server_refuses(tmp_path, capsys):
    out = str(tmp_path / "x.glb")
    assert main(["generate", "--prompt", "x" * 4001, "--model", "builtin", "--out", out]) == 2
    assert "prompt is 4,001 characters long; the limit is 4,000" in capsys.readouterr().err
    # An argument that is not valid UTF-8 reaches Python as a lone surrogate.
    assert main(["generate", "--prompt", os.fsdecode(b"a chair \xff"), "--model", "builtin", "--out", out]) == 2
    assert "prompt is not valid text" in capsys.readouterr().err
    assert main(["generate", "--prompt", "a chair", "--param", 'negative_prompt=["a"]', "--model", "builtin",
                 "--out", out]) == 2
    assert "negative_prompt must be text" in capsys.readouterr().err


def test_the_text_encoder_keeps_only_recent_prompts():
    from backend.parts.text import TextEncoder

    encoder = TextEncoder(max_cached=3)
    first = encoder.encode(["a chair"])[0].clone()
    prompts = [f"a table with {n} legs" for n in range(10)]
    together = encoder.encode(prompts)  # more at once than the cache holds
    assert len(encoder._cache) == 3
    assert list(encoder._cache) == prompts[-3:]
    assert (encoder.encode(["a chair"])[0] - first).abs().max() < 1e-5  # encoded again, the same
    assert (encoder.encode([prompts[0]])[0] - together[0]).abs().max() < 1e-5


def _encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "GIF"])
def test_only_png_and_jpeg_reach_a_decoder(fmt):
    data = _encoded(Image.new("RGB", (8, 8)), fmt)
    for check in (check_image, read_image):
        with pytest.raises(InputError, match="not a readable PNG or JPEG"):
            check(data, "image")


def test_a_size_claimed_in_the_header_is_refused_before_decoding():
    data = bytearray(_encoded(Image.new("RGB", (8, 8)), "PNG"))
    struct.pack_into(">II", data, 16, 9000, 8000)  # 72 MP, within Pillow's own limit, over ours
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # the header's checksum still right
    for check in (check_image, read_image):
        with pytest.raises(InputError, match="too large: the limit is 64 megapixels.*9000x8000"):
            check(bytes(data), "image")
    assert read_image(_encoded(Image.new("RGB", (8, 8)), "JPEG")).size == (8, 8)
