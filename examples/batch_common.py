"""Shared by the batch examples: Blender as a program or as the bpy module, the extension, previews.

`bpy` is imported only inside the functions: run as `python script.py`, the script must set
Blender's user folder (`use_user_folder`) before the first import of bpy.
"""

import argparse
import os
import pathlib
import re
import sys

ADDON = "bl_ext.user_default.diffusion3d"


def script_argv() -> list[str]:
    """The script's own arguments: after `--` under `blender --python`, else all of them."""
    return sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="", help="model name from the backend's /models (default: the task's default)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first job; the next ones count up")
    parser.add_argument("--out-dir", type=pathlib.Path, default=pathlib.Path("out"))
    parser.add_argument("--extension", type=pathlib.Path, help="extension zip to install before running")
    parser.add_argument("--user-dir", type=pathlib.Path, help="Blender user folder for the bpy module (default: OUT_DIR/blender_user)")
    parser.add_argument("--backend-python", help="Python interpreter that has the backend requirements (default: Blender's own)")
    parser.add_argument("--resolution", type=int, default=640, help="preview image size in pixels")


AS_MODULE = "bpy" not in sys.modules  # `python script.py` with the bpy module, not `blender --python`


def use_user_folder(args: argparse.Namespace) -> None:
    """Run as `python script.py` with the bpy module: keep Blender's user folder (where the
    extension is installed) out of the real one. Blender reads this variable at import."""
    if AS_MODULE:
        os.environ.setdefault("BLENDER_USER_RESOURCES", str((args.user_dir or args.out_dir / "blender_user").resolve()))


def finish(code: int) -> None:
    """Exit with `code`. The bpy 4.2 module crashes in its own exit handlers after any glTF
    export (a segfault, status 139, also for a plain export_scene.gltf call); the batch's work
    is written by then, so there it leaves without them."""
    import bpy

    if AS_MODULE and bpy.app.version[:2] == (4, 2):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def start(args: argparse.Namespace, operator: str) -> None:
    """Install the extension zip when given, check `bpy.ops.diffusion3d.<operator>` is there,
    and use a local backend (with the interpreter given, if any)."""
    import bpy

    if args.extension:
        bpy.ops.extensions.package_install_files(filepath=str(args.extension.resolve()), repo="user_default",
                                                 enable_on_install=True)
    if ADDON not in bpy.context.preferences.addons or not hasattr(bpy.types, f"DIFFUSION3D_OT_{operator}"):
        sys.exit("Diffusion 3D is not enabled: install it (Edit > Preferences > Get Extensions) or pass --extension ZIP")
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.backend_mode = "LOCAL"
    if args.backend_python:
        prefs.python_path = args.backend_python
    args.out_dir.mkdir(parents=True, exist_ok=True)


def clear_scene() -> None:
    import bpy

    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:48] or "shape"


def render_preview(objects: list, path: pathlib.Path, size: int, colour: str) -> None:
    """Render the objects with Workbench (works headless) from a camera framing their bounds.

    Args:
        colour: Workbench's colour type: 'VERTEX' (colour attributes), 'TEXTURE' or 'MATERIAL'.
    """
    import bpy
    from mathutils import Vector

    scene = bpy.context.scene
    corners = [obj.matrix_world @ Vector(c) for obj in objects for c in obj.bound_box]
    center = sum(corners, Vector()) / len(corners)
    radius = max((c - center).length for c in corners)
    camera = bpy.data.objects.new("Preview Camera", bpy.data.cameras.new("Preview Camera"))
    scene.collection.objects.link(camera)
    direction = Vector((1.0, -1.3, 0.8)).normalized()
    camera.location = center + direction * radius * 3.2
    camera.rotation_euler = (-direction).to_track_quat("-Z", "Y").to_euler()
    camera.data.lens = 50
    scene.camera = camera
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.color_type = colour
    scene.display.shading.light = "STUDIO"
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.image_settings.file_format = "PNG"
    scene.render.filepath = str(path.resolve())
    bpy.ops.render.render(write_still=True)
    bpy.data.objects.remove(camera)


def export_glb(objects: list, path: pathlib.Path) -> None:
    """Export just these objects, with their materials and textures, as one .glb."""
    import bpy

    bpy.ops.object.select_all(action="DESELECT")
    for obj in objects:
        obj.select_set(True)
    bpy.ops.export_scene.gltf(filepath=str(path), use_selection=True, export_format="GLB")
