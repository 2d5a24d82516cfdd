"""Every operator in background mode against a real backend subprocess."""

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_operators_against_real_backend(run_blender):
    output = run_blender("bl_operators.py", timeout=600)
    print(output[-3000:])
