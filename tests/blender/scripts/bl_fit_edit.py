"""Edit Selected Part on a chair the artist modelled (not generated): its parts are fitted, the legs
selected in Edit Mode are regenerated, and the seat and back keep their own vertices exactly."""

import bpy
import bmesh  # after bpy: the bpy module provides it
from bl_harness import MODULE, done, install

install()
bpy.context.preferences.addons[MODULE].preferences.startup_timeout = 180.0
context = bpy.context
bpy.ops.ed.undo_push(message="start")  # background mode starts with undo off

# 1. Model a chair from primitives and join it into one object (Z up, as Blender is).
for obj in list(bpy.data.objects):  # the start-up scene's cube would join the chair
    bpy.data.objects.remove(obj)
bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, 0, 0.5), scale=(1.0, 1.0, 0.1))
seat = context.active_object
bpy.ops.mesh.primitive_cube_add(size=1.0, location=(0, -0.45, 1.0), scale=(1.0, 0.1, 1.0))
for x in (-0.42, 0.42):
    for y in (-0.42, 0.42):
        bpy.ops.mesh.primitive_cylinder_add(radius=0.05, depth=0.44, location=(x, y, 0.22), vertices=16)
bpy.ops.object.select_all(action='SELECT')
context.view_layer.objects.active = seat
bpy.ops.object.join()
bpy.ops.object.transform_apply(location=True, rotation=True, scale=True)  # object space = the modelled sizes
chair = context.active_object
chair.name = "Chair"
chair.location = (2.0, 1.0, 0.0)
bpy.ops.ed.undo_push(message="modelled")
matrix = chair.matrix_world.copy()
upper = sorted((v.co.x, v.co.y, v.co.z) for v in chair.data.vertices if v.co.z > 0.445)  # seat and back
n_before = len(chair.data.vertices)
assert len(upper) == 16

# 2. Select the legs' faces in Edit Mode, then Edit Selected Part.
bpy.ops.object.mode_set(mode='EDIT')
edit = bmesh.from_edit_mesh(chair.data)
for face in edit.faces:
    face.select_set(face.calc_center_median().z < 0.445)
bmesh.update_edit_mesh(chair.data)
bpy.ops.diffusion3d.edit_part('EXEC_DEFAULT', True, prompt="an office chair on wheels", mode='EDIT', seed=0)
if chair.mode == 'EDIT':
    bpy.ops.object.mode_set(mode='OBJECT')

# 3. Same object and transform; the seat and back are the artist's vertices, exactly; new parts
# stand where the legs were, below the seat; every part is a vertex group.
assert context.active_object == chair and chair.matrix_world == matrix
groups = {g.name for g in chair.vertex_groups}
assert {"seat", "back"} <= groups, groups
seat_back = {chair.vertex_groups["seat"].index, chair.vertex_groups["back"].index}
kept = sorted((v.co.x, v.co.y, v.co.z) for v in chair.data.vertices if any(g.group in seat_back for g in v.groups))
assert kept == upper, (len(kept), len(upper))  # the same vertices: none moved, none split or added
new = sorted(v.co.z for v in chair.data.vertices if not any(g.group in seat_back for g in v.groups))
assert len(new) > 100 and min(new) > -0.1 and max(new) < 0.8, (len(new), new[0], new[-1])  # not up at the back
assert new[int(0.95 * len(new))] < 0.5, new[int(0.95 * len(new))]  # almost all of it below the seat
print("fitted and edited parts:", sorted(groups))

# 4. One undo brings the modelled chair back.
bpy.ops.ed.undo()
chair = bpy.data.objects["Chair"]
assert len(chair.data.vertices) == n_before and not chair.vertex_groups
done()
