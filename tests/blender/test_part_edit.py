"""Generate a chair on the built-in model in Blender; edit, complete and mix its parts; seat and back stay."""

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_edit_complete_and_mix_keep_seat_and_back(run_blender):
    output = run_blender("bl_part_edit.py", timeout=600)
    print(output[-2000:])
