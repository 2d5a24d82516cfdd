"""Shared by the scripts run inside Blender (bpy): install and enable the built extension."""

import os
import sys

import bpy

MODULE = "bl_ext.user_default.diffusion3d"


def install():
    """Install the zip from $DIFFUSION3D_ZIP into the temporary user repository and enable it;
    with $DIFFUSION3D_REMOTE_URL (and _TOKEN) set, point it at that backend."""
    result = bpy.ops.extensions.package_install_files(
        filepath=os.environ["DIFFUSION3D_ZIP"], repo='user_default', enable_on_install=True
    )
    assert result == {'FINISHED'}, result
    assert MODULE in bpy.context.preferences.addons, "extension not enabled after install"
    assert os.environ["BLENDER_USER_RESOURCES"] in sys.modules[MODULE].__file__
    if os.environ.get("DIFFUSION3D_REMOTE_URL"):  # the same script against a backend run elsewhere (serve --ray)
        prefs = bpy.context.preferences.addons[MODULE].preferences
        prefs.backend_mode = 'REMOTE'
        prefs.remote_url, prefs.remote_token = os.environ["DIFFUSION3D_REMOTE_URL"], os.environ["DIFFUSION3D_REMOTE_TOKEN"]
    return sys.modules[MODULE]


def addon_module(name: str):
    """A sub-module of the installed extension, e.g. addon_module('scene_io.write_back')."""
    import importlib

    return importlib.import_module(f"{MODULE}.{name}")


def empty_scene() -> None:
    """Remove the start-up cube, camera and light."""
    for leftover in list(bpy.data.objects):
        bpy.data.objects.remove(leftover)


def call(operator, *args, **kwargs):
    """Run an operator; a refusal (RuntimeError) comes back as ({'CANCELLED'}, its message)."""
    try:
        return operator(*args, **kwargs), ""
    except RuntimeError as exc:
        return {'CANCELLED'}, str(exc)


def done():
    print("ALL CHECKS PASSED", flush=True)
