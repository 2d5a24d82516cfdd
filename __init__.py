"""Diffusion 3D: generate, edit and texture meshes from prompts, through a bundled backend service."""

import sys

# Inside Blender bpy is always loaded before an add-on. When a tool merely walks the repository
# (pytest imports this file as the root package of tests/), skip the bpy-only sub-packages.
if "bpy" in sys.modules:
    try:
        import numpy  # noqa: F401  (blender.org builds ship it; some Linux distributions' builds do not)
    except ImportError as exc:  # named: Blender 4.3's add-on loader fails on a nameless ImportError
        raise ImportError(
            "Diffusion 3D needs numpy in Blender's Python, and this Blender has none (a Linux "
            "distribution's build?): install the distribution's numpy for that Python (Debian, "
            "Ubuntu: sudo apt install python3-numpy) or use a Blender from blender.org",
            name="numpy",
        ) from exc
    from . import operators, panels

    _modules = (panels, operators)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
