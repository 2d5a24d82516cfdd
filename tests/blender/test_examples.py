"""The batch texturing example, run as a user would: mesh files in, textured .glb and previews out."""

import importlib.util
import io
import os
import subprocess
import sys

import numpy as np
import pytest

from formats.glb import read_glb


@pytest.mark.skipif(importlib.util.find_spec("fastapi") is None, reason="backend requirements not installed")
def test_batch_texture_paints_each_file_and_goes_on_past_a_bad_one(tmp_path, extension_zip, repo_root):
    import trimesh
    from PIL import Image

    ball = trimesh.creation.icosphere(subdivisions=3)
    ball.export(tmp_path / "ball.glb")
    trimesh.creation.box((1.0, 2.0, 0.5)).export(tmp_path / "brick.obj")
    (tmp_path / "broken.glb").write_bytes(b"glTF but not really")
    env = dict(os.environ, DIFFUSION3D_TEST_MODELS="1", BLENDER_USER_RESOURCES=str(tmp_path / "user"), OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, str(repo_root / "examples" / "batch_texture.py"), "--extension", str(extension_zip),
         "--mesh", str(tmp_path / "ball.glb"), "--mesh", str(tmp_path / "broken.glb"), "--mesh", str(tmp_path / "brick.obj"),
         "--prompt", "weathered bronze", "--model", "test-texture", "--out-dir", str(tmp_path / "out"), "--resolution", "96"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-4000:]  # one file failed, and the batch says so
    assert "FAILED: " + str(tmp_path / "broken.glb") in output, output[-4000:]
    for stem in ("ball", "brick"):
        scene = read_glb((tmp_path / "out" / f"{stem}_textured.glb").read_bytes())
        assert scene.images and all(part.uv is not None and part.image is not None for part in scene.parts), stem
        # The test model paints each side in the colour of its view: the texture has reddish and
        # bluish sides, and the preview shows them (not one flat material colour).
        texture = np.asarray(Image.open(io.BytesIO(scene.images[0].data)).convert("RGB")).astype(int)
        assert ((texture[..., 0] - texture[..., 2]) > 60).mean() > 0.02, stem
        assert ((texture[..., 2] - texture[..., 0]) > 60).mean() > 0.02, stem
        preview = np.asarray(Image.open(tmp_path / "out" / f"{stem}_textured.png").convert("RGB")).astype(int)
        assert preview.shape == (96, 96, 3) and ((preview.max(-1) - preview.min(-1)) > 30).mean() > 0.05, stem
