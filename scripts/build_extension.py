"""Validate and build the extension zip with Blender's own extension tool.

Usage: python scripts/build_extension.py [--output-dir out]
Prints the path of the built zip. Works with the `bpy` module (the tool ships inside it)
or with `--blender /path/to/blender` (then `blender --command extension build` is used).
"""

import argparse
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def blender_ext_tool() -> pathlib.Path:
    """Locate blender_ext.py inside the installed bpy package without importing bpy."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("bpy is not installed: run ./scripts/setup.sh first, or pass --blender.")
    package = pathlib.Path(next(iter(spec.submodule_search_locations)))
    tools = sorted(package.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not tools:
        sys.exit(f"blender_ext.py not found under {package}")
    return tools[-1]


def build(output_dir: pathlib.Path, blender: str | None = None) -> pathlib.Path:
    """Validate the manifest and sources, build the zip, and return its path."""
    output_dir.mkdir(parents=True, exist_ok=True)
    if blender:
        base = [blender, "--background", "--factory-startup", "--command", "extension"]
    else:
        base = [sys.executable, str(blender_ext_tool())]
    subprocess.run([*base, "validate", str(ROOT)], check=True)
    subprocess.run([*base, "build", "--source-dir", str(ROOT), "--output-dir", str(output_dir)], check=True)
    version = next(
        line.split("=", 1)[1].strip().strip('"')
        for line in (ROOT / "blender_manifest.toml").read_text().splitlines()
        if line.startswith("version")
    )
    return output_dir / f"diffusion3d-{version}.zip"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=pathlib.Path, default=ROOT / "out")
    parser.add_argument("--blender", help="a Blender executable to build with instead of the bpy module")
    args = parser.parse_args()
    print(build(args.output_dir.resolve(), args.blender))
