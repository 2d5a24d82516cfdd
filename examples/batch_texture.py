"""Batch texturing in Blender with the Diffusion 3D extension: each mesh file comes back as a textured .glb and a preview .png.

With Blender (extension already installed and enabled):
    blender --background --python examples/batch_texture.py -- --mesh statue.glb --prompt "weathered bronze"
With Blender as a Python module (`pip install bpy`), installing the built extension first:
    python examples/batch_texture.py --extension out/diffusion3d-0.1.0.zip --mesh statue.glb --prompt "weathered bronze"

Each file (.glb, .gltf, .obj, .fbx, .ply, .stl) is imported into an empty scene and all its
meshes are textured by the same operator as the sidebar's Texture Selected button; in
background mode it blocks until the jobs end. A file that fails is reported and the batch
goes on.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # batch_common, also under `blender --python`
from batch_common import (  # noqa: E402
    add_common_arguments, clear_scene, export_glb, finish, render_preview, script_argv, start, use_user_folder,
)

IMPORTERS = {  # suffix -> the operator that imports it, by name (they load with Blender)
    ".glb": "import_scene.gltf", ".gltf": "import_scene.gltf", ".obj": "wm.obj_import", ".fbx": "import_scene.fbx",
    ".ply": "wm.ply_import", ".stl": "wm.stl_import",
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", action="append", type=pathlib.Path, default=[], help="a mesh file; repeat for several")
    parser.add_argument("--prompt", required=True, help="what the texture shows, e.g. 'weathered bronze statue'")
    parser.add_argument("--negative-prompt", default="", help="what it should not show")
    parser.add_argument("--texture-size", type=int, default=1024, help="texels per side, 1024-4096")
    add_common_arguments(parser)
    args = parser.parse_args(script_argv())
    if not args.mesh:
        parser.error("give at least one --mesh FILE")
    for path in args.mesh:
        if path.suffix.lower() not in IMPORTERS:
            parser.error(f"{path}: not a mesh file this can import ({', '.join(IMPORTERS)})")
        if not path.is_file():
            parser.error(f"{path}: no such file")
    return args


ARGS = parse_args()
use_user_folder(ARGS)

import bpy  # noqa: E402


def import_meshes(path: pathlib.Path) -> list:
    """Import the file into the empty scene; returns its mesh objects."""
    category, name = IMPORTERS[path.suffix.lower()].split(".")
    getattr(getattr(bpy.ops, category), name)(filepath=str(path.resolve()))
    return [obj for obj in bpy.context.scene.objects if obj.type == "MESH"]


def main() -> int:
    start(ARGS, "texture_mesh")
    failures = 0
    for index, path in enumerate(ARGS.mesh):
        clear_scene()
        try:
            meshes = import_meshes(path)
            if not meshes:
                raise RuntimeError("the file holds no mesh")
            bpy.ops.object.select_all(action="DESELECT")
            for obj in meshes:
                obj.select_set(True)
            bpy.context.view_layer.objects.active = meshes[0]
            bpy.ops.diffusion3d.texture_mesh(prompt=ARGS.prompt, negative_prompt=ARGS.negative_prompt,
                                             model=ARGS.model, seed=ARGS.seed + index, texture_size=ARGS.texture_size)
        except RuntimeError as error:  # the operator (or importer) reported why; go on with the next file
            print(f"FAILED: {path}: {error}", file=sys.stderr)
            failures += 1
            continue
        stem = ARGS.out_dir / f"{path.stem}_textured"
        export_glb(meshes, stem.with_suffix(".glb"))
        render_preview(meshes, stem.with_suffix(".png"), ARGS.resolution, "TEXTURE")
        print(f"OK: {path} -> {stem}.glb, {stem}.png ({len(meshes)} mesh{'es' if len(meshes) > 1 else ''})")
    bpy.ops.diffusion3d.stop_backend()
    return 1 if failures else 0


if __name__ == "__main__":
    finish(main())
