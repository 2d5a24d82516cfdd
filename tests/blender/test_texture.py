"""Texture Selected in background mode against a real backend subprocess (test-texture model)."""

import importlib.util

import pytest


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_texture_selected_adds_uvs_and_a_material_and_undoes(run_blender):
    output = run_blender("bl_texture.py", timeout=600)
    print(output[-3000:])


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_texture_selected_paints_objects_as_the_scene_shows_them(run_blender):
    output = run_blender("bl_texture_scene.py", timeout=600)
    print(output[-3000:])


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_texture_results_are_never_lost_and_never_garble_earlier_ones(run_blender):
    output = run_blender("bl_texture_recovery.py", timeout=600)
    print(output[-3000:])


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_repaint_selected_changes_only_the_selected_faces_texels_and_undoes(run_blender):
    output = run_blender("bl_repaint.py", timeout=600)
    print(output[-3000:])
