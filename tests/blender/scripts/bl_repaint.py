"""Repaint Selected in background mode against a real backend (test-texture model): only the
selected faces' texels change, in a new image in the same node; the mesh, its UVs, the
material and the original image stay byte for byte; one undo step puts the original back."""

import json

import bpy
import numpy as np
from bl_harness import addon_module, call, done, empty_scene, install

install()
jobs = addon_module("operators.jobs")
image_bytes = addon_module("scene_io.repaint_source").image_bytes
context = bpy.context


def state(obj):
    """Everything a repaint must leave as it was."""
    if obj.mode == 'EDIT':  # Edit Mode keeps the UVs out of reach: read a synced copy
        obj.update_from_editmode()
        copy = obj.data.copy()
        try:
            return _state(copy)
        finally:
            bpy.data.meshes.remove(copy)
    return _state(obj.data)


def _state(mesh):
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    index = np.empty(len(mesh.polygons), np.int32)
    mesh.polygons.foreach_get("material_index", index)
    uv = np.empty(len(mesh.loops) * 2, np.float32)
    mesh.uv_layers[0].data.foreach_get("uv", uv)
    return ([m.name if m else None for m in mesh.materials], [l.name for l in mesh.uv_layers], co.tobytes(), index.tobytes(),
            uv.tobytes(), len(mesh.polygons))


def texels_of(uv, corners, size):
    """(row, column) of the texels under points inside the given faces (their loop indices),
    rows counted from the bottom, as Blender stores images."""
    points = []
    for loops in corners:
        corner_uv = uv[loops]
        centre = corner_uv.mean(0)
        points += [centre] + [0.5 * (c + centre) for c in corner_uv]  # inside the face, clear of its edges
    points = np.array(points)
    width, height = size
    return np.clip((points[:, 1] * height).astype(int), 0, height - 1), np.clip((points[:, 0] * width).astype(int), 0, width - 1)


# 1. A UV sphere whose material reads a non-square image through its UV map.
empty_scene()
bpy.ops.mesh.primitive_uv_sphere_add(segments=48, ring_count=24)
ball = context.object
rng = np.random.default_rng(0)
original = bpy.data.images.new("Wood", 512, 256, alpha=True)
painted = rng.integers(0, 256, (256, 512, 4)).astype(np.uint8)
original.pixels.foreach_set((painted.astype(np.float32) / 255).reshape(-1))
original.pack()
sent_bytes = image_bytes(original)
assert np.array_equal(sent_bytes, painted)  # bytes in, the same bytes out
material = bpy.data.materials.new("Wood")
material.use_nodes = True
node = material.node_tree.nodes.new("ShaderNodeTexImage")
node.image = original
bsdf = material.node_tree.nodes["Principled BSDF"]
material.node_tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
ball.data.materials.append(material)

# 2. Select the top cap in Edit Mode and repaint it.
top = [p.index for p in ball.data.polygons if p.center.z > 0.75]
ball_uv = np.empty(len(ball.data.loops) * 2, np.float32)
ball.data.uv_layers[0].data.foreach_get("uv", ball_uv)
ball_uv = ball_uv.reshape(-1, 2)
top_corners = [list(ball.data.polygons[i].loop_indices) for i in top]
far_corners = [list(p.loop_indices) for p in ball.data.polygons if p.center.z < 0.2]
cap = {v for i in top for v in ball.data.polygons[i].vertices}
for element in (*ball.data.vertices, *ball.data.edges):  # as the selection tools leave them
    element.select = all(v in cap for v in getattr(element, "vertices", [element.index]))
for p in ball.data.polygons:
    p.select = p.index in top
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_mode(type='FACE')
before = state(ball)
bpy.ops.ed.undo_push(message="before repaint")
result = bpy.ops.diffusion3d.texture_mesh('EXEC_DEFAULT', True, prompt="a red cap", model="test-texture", seed=2,
                                          selected_faces_only=True, border=3.0)
assert result == {'FINISHED'}, result
job = jobs.JOBS[0]
assert job.state == "succeeded" and job.applied_to == ball.name, (job.state, job.error)
assert ball.mode == 'EDIT'  # the artist stays where they were
assert state(ball) == before, "the mesh, its UVs or its materials changed"
assert node.image != original and node.image.name.startswith("Wood repaint"), node.image.name
new = image_bytes(node.image)
assert new.shape == painted.shape
assert np.array_equal(image_bytes(original), painted)  # the original image is untouched
differs = (new != painted).any(-1)
meta = json.loads(ball["diffusion3d"])["repaint"]
print("changed texels", int(differs.sum()), "of", differs.size, meta["repaint"])
assert 0 < differs.sum() <= meta["repaint"]["changed_texels"] < 0.4 * differs.size  # the cap is 28% of an equirectangular layout
assert meta["repaint"]["border_width"] == 0.03
rows, cols = texels_of(ball_uv, far_corners, original.size)
assert not differs[rows, cols].any(), "texels of faces far from the selection changed"
rows, cols = texels_of(ball_uv, top_corners, original.size)
assert differs[rows, cols].mean() > 0.9, differs[rows, cols].mean()
assert node.image.packed_file is not None  # unsaved .blend: packed, kept with the file

# 3. One undo step: the node shows the original image again; the mesh is as it was.
names = ball.name, node.name
bpy.ops.ed.undo()
ball = bpy.data.objects[names[0]]
node = bpy.data.materials["Wood"].node_tree.nodes[names[1]]
assert node.image == bpy.data.images["Wood"], node.image
assert np.array_equal(image_bytes(node.image), painted)
assert state(ball) == before

# 4. Faces of two materials at once: refused, nothing changes.
bpy.ops.object.mode_set(mode='OBJECT')
ball.data.materials.append(bpy.data.materials.new("Paint"))
ball.data.polygons[top[0]].material_index = 1
bpy.ops.object.mode_set(mode='EDIT')
unchanged = state(ball)
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="rust", model="test-texture", selected_faces_only=True)
assert result == {'CANCELLED'} and "use 2 materials" in error, error
assert state(ball) == unchanged

# 5. Nothing selected: refused with what to do.
bpy.ops.mesh.select_all(action='DESELECT')
result, error = call(bpy.ops.diffusion3d.texture_mesh, prompt="rust", model="test-texture", selected_faces_only=True)
assert result == {'CANCELLED'} and "select the faces to repaint" in error, error
bpy.ops.object.mode_set(mode='OBJECT')

# 6. A cube in one flat colour: the faces of its material get a textured material whose
# texture is that colour everywhere but the repainted top.
bpy.ops.object.select_all(action='DESELECT')
bpy.ops.mesh.primitive_cube_add(location=(4.0, 0.0, 0.0))
cube = context.object
flat = bpy.data.materials.new("Flat red")
flat.use_nodes = True
flat.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (0.6, 0.05, 0.05, 1.0)
cube.data.materials.append(flat)
for p in cube.data.polygons:  # in Object Mode, as a script selects faces
    p.select = p.normal.z > 0.9
result = bpy.ops.diffusion3d.texture_mesh(prompt="a painted stripe", model="test-texture", selected_faces_only=True,
                                          border=0.0)
assert result == {'FINISHED'}, result
assert len(cube.data.materials) == 2 and cube.data.materials[0] == flat
assert {p.material_index for p in cube.data.polygons} == {1}  # every face of the flat material
textured = cube.data.materials[1]
image = next(n for n in textured.node_tree.nodes if n.type == 'TEX_IMAGE').image
colours = image_bytes(image)
uv_name = next(n for n in textured.node_tree.nodes if n.type == 'UVMAP').uv_map
layer = cube.data.uv_layers[uv_name]
uv = np.empty(len(cube.data.loops) * 2, np.float32)
layer.data.foreach_get("uv", uv)
uv = uv.reshape(-1, 2)
side = next(p for p in cube.data.polygons if p.normal.x > 0.9)
u, v = uv[list(side.loop_indices)].mean(0)
texel = colours[int(v * image.size[1]), int(u * image.size[0]), :3]
linear = np.array([0.6, 0.05, 0.05])
expected = np.round((1.055 * linear ** (1 / 2.4) - 0.055) * 255)  # its sRGB bytes
print("side texel", texel, "flat colour", expected)
assert np.abs(texel.astype(int) - expected).max() <= 2, (texel, expected)  # a side face keeps the flat colour
done()
