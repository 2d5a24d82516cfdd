"""The camera a reference image was taken from, in the frame the object is sent in, for texturing.

The backend projects the image from `{"eye", "target", "up", "fov_y"}` given in the space the
mesh is sent in (`texture_export`: world axes and scale, centred on the object's origin, glTF
axes), so the camera only moves: it stays a true camera whatever the object's scale. The field
of view comes from the projection matrix Blender itself uses (the camera's for the image's
size, or the viewport's), so sensor fit and lens conventions need no copying here.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Vector

from ..formats.mesh_arrays import blender_to_gltf

REFERENCE_VIEWS = (
    ('CAMERA', "Scene Camera", "The image was taken from the scene's active camera"),
    ('VIEW', "Current View", "The image was taken from the 3D viewport's current view"),
)


def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file, read by Blender (no image datablock is left behind)."""
    image = bpy.data.images.load(path, check_existing=False)
    try:
        width, height = image.size
    finally:
        bpy.data.images.remove(image)
    if not width or not height:
        raise ValueError(f"the reference image {path} could not be read (PNG or JPEG expected)")
    return int(width), int(height)


def reference_camera(context, obj: bpy.types.Object, source: str, width: int, height: int) -> dict:
    """Camera spec for the backend's `reference_camera`, in the frame `obj` is sent in (glTF axes).

    Args:
        source: 'CAMERA' (the scene camera) or 'VIEW' (the first 3D viewport's view).
        width, height: the reference image's size (decides the camera's sensor fit).
    Raises:
        ValueError: no such camera or view, not a perspective one, or one with lens shift.
    """
    if source == 'CAMERA':
        camera = context.scene.camera
        if camera is None:
            raise ValueError("the scene has no camera to project the reference image from: add one or choose Current View")
        if camera.type != 'CAMERA' or camera.data.type != 'PERSP':
            raise ValueError(f"'{camera.name}' is not a perspective camera: the reference image needs one")
        if camera.data.shift_x or camera.data.shift_y:
            raise ValueError(f"'{camera.name}' has lens shift, which the projection does not model: "
                             "set its Shift X and Y to 0 and match the image again")
        projection = camera.calc_matrix_camera(context.evaluated_depsgraph_get(), x=width, y=height)
        to_world = camera.matrix_world
    else:
        view = _viewport(context)
        if view is None:
            raise ValueError("there is no 3D viewport to take the view from (e.g. in background mode): "
                             "use the scene camera instead")
        if not view.is_perspective:
            raise ValueError("the viewport is orthographic: switch it to perspective (numpad 5) or use a camera")
        projection, to_world = view.window_matrix, view.view_matrix.inverted()
    basis = to_world.to_3x3()
    eye = to_world.translation - obj.matrix_world.translation
    forward = (basis @ Vector((0.0, 0.0, -1.0))).normalized()
    up = (basis @ Vector((0.0, 1.0, 0.0))).normalized()
    centre = obj.matrix_world.to_3x3() @ (sum((Vector(corner) for corner in obj.bound_box), Vector()) / 8.0)
    target = eye + forward * max((centre - eye).dot(forward), 1e-3)
    to_gltf = lambda v: blender_to_gltf(np.array([tuple(v)], np.float64))[0].tolist()  # noqa: E731
    return {"eye": to_gltf(eye), "target": to_gltf(target), "up": to_gltf(up),
            "fov_y": math.degrees(2.0 * math.atan(1.0 / projection[1][1]))}


def _viewport(context):
    """The view of the 3D viewport the operator was called from, else the window's first one, or None."""
    space = getattr(context, "space_data", None)
    if space is not None and space.type == 'VIEW_3D' and space.region_3d is not None:
        return space.region_3d
    screen = getattr(context, "screen", None)
    for area in (screen.areas if screen else []):
        if area.type == 'VIEW_3D' and area.spaces.active.region_3d is not None:
            return area.spaces.active.region_3d
    return None
