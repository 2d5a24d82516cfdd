"""Score distillation from the add-on: the Generate operator runs dreamfusion-sd on a real backend."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
import tiny_sd  # noqa: E402


def test_distilled_models_land_meshes_in_the_scene(run_blender, tmp_path):
    sources = (f"stabilityai/stable-diffusion-2-1-base={tiny_sd.text_pipeline(tmp_path / 'sd')};"
               f"openai/clip-vit-base-patch16={tiny_sd.clip_model(tmp_path / 'clip')};"
               f"ashawkey/zero123-xl-diffusers={tiny_sd.zero123_pipeline(tmp_path / 'zero123')}")
    output = run_blender("bl_distill.py", env={"DIFFUSION3D_MODEL_SOURCES": sources}, timeout=600)
    print(output[-2000:])


def test_reshape_selected_moves_only_the_selection_and_undoes(run_blender, tmp_path):
    sources = f"stabilityai/stable-diffusion-2-1-base={tiny_sd.text_pipeline(tmp_path / 'sd')}"
    output = run_blender("bl_reshape.py", env={"DIFFUSION3D_MODEL_SOURCES": sources}, timeout=600)
    print(output[-2000:])


def test_triposr_lands_a_textured_mesh_with_its_photo(run_blender, tmp_path):
    import tiny_triposr

    sources = f"stabilityai/TripoSR={tiny_triposr.write_folder(tmp_path / 'tsr', sphere=True)}"
    output = run_blender("bl_triposr.py", env={"DIFFUSION3D_MODEL_SOURCES": sources}, timeout=300)
    print(output[-2000:])


def test_sd_triposr_draws_a_gallery_and_makes_the_picked_image_3d(run_blender, tmp_path):
    import tiny_triposr

    sources = (f"stabilityai/stable-diffusion-2-1-base={tiny_sd.text_pipeline(tmp_path / 'sd')};"
               f"stabilityai/TripoSR={tiny_triposr.write_folder(tmp_path / 'tsr', sphere=True)}")
    output = run_blender("bl_sd_triposr.py", env={"DIFFUSION3D_MODEL_SOURCES": sources}, timeout=300)
    print(output[-2000:])
