"""Preferences, scene settings and the sidebar panels."""

import bpy

from . import preferences, previews, properties, sidebar

classes = preferences.classes + properties.classes + sidebar.classes


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_scene_property()


def unregister():
    properties.unregister_scene_property()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
    previews.clear(sidebar.jobs.JOBS)
