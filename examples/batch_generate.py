"""Batch text-to-3D in Blender with the Diffusion 3D extension: one .glb and one preview .png per prompt.

With Blender (extension already installed and enabled):
    blender --background --python examples/batch_generate.py -- --prompt "a chair with four legs"
With Blender as a Python module (`pip install bpy`), installing the built extension first:
    python examples/batch_generate.py --extension out/diffusion3d-0.1.0.zip --prompt "a chair with four legs"

Prompts come from --prompt (repeatable) or --prompts-file (one per line). Each prompt runs
through the same operator as the sidebar's Generate button; in background mode it blocks
until the job ends and reports failures without stopping the batch.
"""

import argparse
import json
import os
import pathlib
import re
import sys


def parse_args() -> argparse.Namespace:
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", action="append", default=[], help="a prompt; repeat for several")
    parser.add_argument("--prompts-file", type=pathlib.Path, help="a text file with one prompt per line")
    parser.add_argument("--model", default="", help="model name from the backend's /models (default: the task's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first prompt; the next ones count up")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("out"))
    parser.add_argument("--extension", type=pathlib.Path, help="extension zip to install before running")
    parser.add_argument("--user-dir", type=pathlib.Path, help="Blender user folder for the bpy module (default: OUT_DIR/blender_user)")
    parser.add_argument("--backend-python", help="Python interpreter that has the backend requirements (default: Blender's own)")
    parser.add_argument("--resolution", type=int, default=640, help="preview image size in pixels")
    args = parser.parse_args(argv)
    args.prompt += [line.strip() for line in args.prompts_file.read_text().splitlines() if line.strip()] if args.prompts_file else []
    if not args.prompt:
        parser.error("give at least one --prompt or a --prompts-file")
    return args


ARGS = parse_args()
if "bpy" not in sys.modules:
    # Running as `python script.py` with the bpy module: keep Blender's user folder (where the
    # extension is installed) out of the real one. Blender reads this variable at import.
    os.environ.setdefault("BLENDER_USER_RESOURCES", str((ARGS.user_dir or ARGS.out_dir / "blender_user").resolve()))

import bpy  # noqa: E402
from mathutils import Vector  # noqa: E402


def enable_extension(zip_path: pathlib.Path | None) -> None:
    """Install the extension zip when given; then make sure its operators are registered."""
    if zip_path:
        bpy.ops.extensions.package_install_files(filepath=str(zip_path.resolve()), repo="user_default", enable_on_install=True)
    if not hasattr(bpy.ops.diffusion3d, "generate_mesh") or not bpy.ops.diffusion3d.generate_mesh.poll():
        sys.exit("Diffusion 3D is not enabled: install it (Edit > Preferences > Get Extensions) or pass --extension ZIP")


def configure_backend(python: str | None) -> None:
    prefs = bpy.context.preferences.addons["bl_ext.user_default.diffusion3d"].preferences
    prefs.backend_mode = "LOCAL"
    if python:
        prefs.python_path = python


def clear_scene() -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48] or "shape"


def render_preview(obj: bpy.types.Object, path: pathlib.Path, size: int) -> None:
    """Render the object with Workbench (works headless) from a camera framing its bounds."""
    scene = bpy.context.scene
    corners = [obj.matrix_world @ Vector(c) for c in obj.bound_box]
    center = sum(corners, Vector()) / 8
    radius = max((c - center).length for c in corners)
    camera = bpy.data.objects.new("Preview Camera", bpy.data.cameras.new("Preview Camera"))
    scene.collection.objects.link(camera)
    direction = Vector((1.0, -1.3, 0.8)).normalized()
    camera.location = center + direction * radius * 3.2
    camera.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    camera.data.lens = 50
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.color_type = "VERTEX" if obj.data.color_attributes else "MATERIAL"
    scene.display.shading.light = "STUDIO"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path.resolve())
    bpy.ops.render.render(write_still=True)
    bpy.data.objects.remove(camera)


def main() -> int:
    enable_extension(ARGS.extension)
    configure_backend(ARGS.backend_python)
    ARGS.out_dir.mkdir(parents=True, exist_ok=True)
    failures = 0
    for index, prompt in enumerate(ARGS.prompt):
        clear_scene()
        try:
            bpy.ops.diffusion3d.generate_mesh(prompt=prompt, model=ARGS.model, seed=ARGS.seed + index, random_seed=False)
        except RuntimeError as error:  # the operator reported why; keep going with the next prompt
            print(f"FAILED: {prompt!r}: {error}", file=sys.stderr)
            failures += 1
            continue
        obj = bpy.context.active_object
        stem = ARGS.out_dir / slug(prompt)
        bpy.ops.object.select_all(action="DESELECT")
        obj.select_set(True)
        bpy.ops.export_scene.gltf(filepath=str(stem.with_suffix(".glb")), use_selection=True, export_format="GLB")
        render_preview(obj, stem.with_suffix(".png"), ARGS.resolution)
        notes = json.loads(obj.get("diffusion3d", "{}")).get("notes", [])
        print(f"OK: {prompt!r} -> {stem}.glb, {stem}.png ({len(obj.data.polygons)} faces){' — ' + '; '.join(notes) if notes else ''}")
    bpy.ops.diffusion3d.stop_backend()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
