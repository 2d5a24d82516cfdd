"""Install from the built zip; enable, disable, enable; register/unregister twice."""

import importlib

import bpy  # first: it puts Blender's own modules (addon_utils) on the path
import addon_utils  # noqa: E402
from bl_harness import MODULE, done, install

OPERATORS = ("generate_mesh", "edit_part", "texture_mesh", "cancel_job", "start_backend", "stop_backend")
PANELS = ("VIEW3D_PT_diffusion3d_backend", "VIEW3D_PT_diffusion3d_generate", "VIEW3D_PT_diffusion3d_edit",
          "VIEW3D_PT_diffusion3d_texture", "VIEW3D_PT_diffusion3d_jobs")


def assert_enabled():
    for name in OPERATORS:
        assert hasattr(bpy.types, f"DIFFUSION3D_OT_{name}"), name
        assert getattr(bpy.ops.diffusion3d, name).idname() == f"DIFFUSION3D_OT_{name}"
    for name in PANELS:
        panel = getattr(bpy.types, name)
        assert panel.bl_category == "Diffusion 3D" and panel.bl_region_type == 'UI'
    assert bpy.context.scene.diffusion3d.edit_mode == 'EDIT'
    prefs = bpy.context.preferences.addons[MODULE].preferences
    assert prefs.backend_mode == 'LOCAL'


def assert_disabled():
    for name in OPERATORS:
        assert not hasattr(bpy.types, f"DIFFUSION3D_OT_{name}"), name
    for name in PANELS:
        assert not hasattr(bpy.types, name), name
    assert not hasattr(bpy.types.Scene, "diffusion3d")


module = install()
assert_enabled()
for _ in range(2):  # enable, disable, enable again — twice
    addon_utils.disable(MODULE, default_set=True)
    assert_disabled()
    addon_utils.enable(MODULE, default_set=True)
    assert_enabled()
jobs = importlib.import_module(f"{MODULE}.operators.jobs")
listed = jobs.add_job(jobs.Job(None, "a listed job"))
listed.preview_icon = 123  # an icon of the preview collection unregister frees
for _ in range(2):  # the package's own register/unregister, twice
    module.unregister()
    assert_disabled()
    assert listed.preview_icon == 0  # no job keeps a freed icon's id
    module.register()
    assert_enabled()
# The scene settings are back after re-registering, with their defaults.
settings = bpy.context.scene.diffusion3d
settings.prompt = "a chair"
assert settings.prompt == "a chair" and settings.model == 'DEFAULT' and settings.texture_size == '1024'
done()
