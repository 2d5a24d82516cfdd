"""Edit parts in Blender: a generated chair (edit, complete, mix) and a modelled one (parts fitted first)."""

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_edit_complete_and_mix_keep_seat_and_back(run_blender):
    output = run_blender("bl_part_edit.py", timeout=600)
    print(output[-2000:])


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_edit_a_modelled_chair_keeps_its_seat_and_back(run_blender):
    output = run_blender("bl_fit_edit.py", timeout=600)
    print(output[-2000:])
