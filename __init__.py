"""Diffusion 3D: generate, edit and texture meshes from prompts, through a bundled backend service."""

import sys

# Inside Blender bpy is always loaded before an add-on. When a tool merely walks the repository
# (pytest imports this file as the root package of tests/), skip the bpy-only sub-packages.
if "bpy" in sys.modules:
    from . import operators, panels

    _modules = (panels, operators)


def register():
    for module in _modules:
        module.register()


def unregister():
    for module in reversed(_modules):
        module.unregister()
