"""Panels draw in every job state; the modal job driver applies results on timer ticks."""

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_panels_and_modal_driver(run_blender):
    run_blender("bl_ui.py")
