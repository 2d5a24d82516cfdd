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
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))  # batch_common, also under `blender --python`
from batch_common import (  # noqa: E402
    add_common_arguments, clear_scene, export_glb, finish, render_preview, script_argv, slug, start, use_user_folder,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompt", action="append", default=[], help="a prompt; repeat for several")
    parser.add_argument("--prompts-file", type=pathlib.Path, help="a text file with one prompt per line")
    add_common_arguments(parser)
    args = parser.parse_args(script_argv())
    args.prompt += [line.strip() for line in args.prompts_file.read_text().splitlines() if line.strip()] if args.prompts_file else []
    if not args.prompt:
        parser.error("give at least one --prompt or a --prompts-file")
    return args


ARGS = parse_args()
use_user_folder(ARGS)

import bpy  # noqa: E402


def main() -> int:
    start(ARGS, "generate_mesh")
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
        export_glb([obj], stem.with_suffix(".glb"))
        render_preview([obj], stem.with_suffix(".png"), ARGS.resolution, "VERTEX" if obj.data.color_attributes else "MATERIAL")
        notes = json.loads(obj.get("diffusion3d", "{}")).get("notes", [])
        print(f"OK: {prompt!r} -> {stem}.glb, {stem}.png ({len(obj.data.polygons)} faces){' — ' + '; '.join(notes) if notes else ''}")
    bpy.ops.diffusion3d.stop_backend()
    return 1 if failures else 0


if __name__ == "__main__":
    finish(main())
