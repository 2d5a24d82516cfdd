"""Edit Selected Part on a chair the artist modelled (not generated): its parts are fitted, the legs
selected in Edit Mode are regenerated, and the seat and back stay exactly as modelled: the same
vertices, quads, UVs, material and vertex groups. A second edit (the back) keeps the seat again."""

import bpy
import bmesh  # after bpy: the bpy module provides it
from bl_harness import MODULE, addon_module, done, install

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
wood = bpy.data.materials.new("Wood")
chair.data.materials.append(wood)
pin = chair.vertex_groups.new(name="pin")  # the artist's own group, on the seat
pinned = sorted(tuple(v.co) for v in chair.data.vertices if 0.445 < v.co.z < 0.6)
chair.shape_key_add(name="Basis")
raised = chair.shape_key_add(name="Raised")  # the artist's shape key: the seat and back lifted
for point in raised.data:
    if point.co.z > 0.445:
        point.co.z += 0.1
pin.add([v.index for v in chair.data.vertices if 0.445 < v.co.z < 0.6], 1.0, 'REPLACE')
bpy.ops.ed.undo_push(message="modelled")
matrix = chair.matrix_world.copy()
upper = sorted((v.co.x, v.co.y, v.co.z) for v in chair.data.vertices if v.co.z > 0.445)  # seat and back
n_before = len(chair.data.vertices)
assert len(upper) == 16


def upper_corners(obj) -> list:
    """(position, UV) of every face corner of the seat and back (the modelled faces above the legs,
    in the Wood slot), and their polygons' sizes."""
    mesh, uv = obj.data, obj.data.uv_layers["UVMap"].data
    upper = [p for p in mesh.polygons if p.center.z > 0.445 and p.material_index == 0]
    corners = sorted((tuple(mesh.vertices[mesh.loops[i].vertex_index].co), tuple(uv[i].uv))
                     for p in upper for i in p.loop_indices)
    return corners, sorted(len(p.vertices) for p in upper)


corners_before, sizes_before = upper_corners(chair)
assert sizes_before == [4] * 12

# 2. Select the legs' faces in Edit Mode, then Edit Selected Part.
bpy.ops.object.mode_set(mode='EDIT')
edit = bmesh.from_edit_mesh(chair.data)
for face in edit.faces:
    face.select_set(face.calc_center_median().z < 0.445)
bmesh.update_edit_mesh(chair.data)
bpy.ops.diffusion3d.edit_part('EXEC_DEFAULT', True, prompt="an office chair on wheels", mode='EDIT', seed=0)
# Still in Edit Mode, with exactly the new parts (on their own materials' slots) selected: ready to try again.
assert chair.mode == 'EDIT'
edit = bmesh.from_edit_mesh(chair.data)
assert [f.select for f in edit.faces] == [f.material_index >= 1 for f in edit.faces]
assert any(f.select for f in edit.faces) and not all(f.select for f in edit.faces)
bpy.ops.object.mode_set(mode='OBJECT')

# 3. Same object and transform; the seat and back are the artist's vertices, exactly; new parts
# stand where the legs were, below the seat; every part is a vertex group.
assert context.active_object == chair and chair.matrix_world == matrix
groups = {g.name for g in chair.vertex_groups}
assert {"seat", "back"} <= groups, groups
seat_back = {chair.vertex_groups["seat"].index, chair.vertex_groups["back"].index}
kept = sorted((v.co.x, v.co.y, v.co.z) for v in chair.data.vertices if any(g.group in seat_back for g in v.groups))
assert kept == upper, (len(kept), len(upper))  # the same vertices: none moved, none split or added
assert upper_corners(chair) == (corners_before, sizes_before)  # the same quads with the same UVs
assert chair.material_slots[0].material == wood and len(chair.material_slots) >= 2
part_materials = [slot.material.get("diffusion3d_part_material") for slot in chair.material_slots[1:]]
assert all(part_materials) and len(set(part_materials)) == len(part_materials), part_materials  # one slot per material
pin = chair.vertex_groups["pin"].index
keys = chair.data.shape_keys.key_blocks
assert [k.name for k in keys] == ["Basis", "Raised"]
assert all((keys["Basis"].data[v.index].co - v.co).length < 1e-6 for v in chair.data.vertices)  # new parts in place
lifted = [keys["Raised"].data[v.index].co.z - v.co.z for v in chair.data.vertices if v.co.z > 0.445
          and any(g.group in seat_back for g in v.groups)]
assert lifted and all(abs(d - 0.1) < 1e-5 for d in lifted)  # the artist's key still lifts the seat and back
assert sorted(tuple(v.co) for v in chair.data.vertices if any(g.group == pin for g in v.groups)) == pinned
new = sorted(v.co.z for v in chair.data.vertices if not any(g.group in seat_back for g in v.groups))
assert len(new) > 100 and min(new) > -0.1 and max(new) < 0.8, (len(new), new[0], new[-1])  # not up at the back
assert new[int(0.95 * len(new))] < 0.5, new[int(0.95 * len(new))]  # almost all of it below the seat
print("fitted and edited parts:", sorted(groups))
jobs = addon_module("operators.jobs")
job = jobs.JOBS[0]
assert any("fitted 6 part(s)" in note and "chair" in note for note in job.notes), job.notes  # told to the artist

# What the next edit sends: each triangle's part, read from the part vertex groups.
glb, _ = addon_module("scene_io.mesh_export").object_to_glb(chair)
face_parts = addon_module("formats.face_parts")
extras = addon_module("formats.glb").read_glb_extras(glb)
names, index = face_parts.decode_face_parts(extras[face_parts.FACE_PARTS_KEY], len(chair.data.loop_triangles))
assert (index >= 0).all() and set(names) == groups - {"pin"}, (set(names), groups)
assert face_parts.VERTEX_IDS_KEY in extras  # split at UV seams: which uploaded vertices are one

# 4. One undo brings the modelled chair back, as it was; redo brings the edit again.
bpy.ops.ed.undo()
chair = bpy.data.objects["Chair"]
assert len(chair.data.vertices) == n_before and [g.name for g in chair.vertex_groups] == ["pin"]
assert upper_corners(chair) == (corners_before, sizes_before) and len(chair.material_slots) == 1
bpy.ops.ed.redo()
chair = bpy.data.objects["Chair"]
if chair.mode == 'EDIT':  # the edit's undo step was pushed back in Edit Mode
    bpy.ops.object.mode_set(mode='OBJECT')
assert {"seat", "back"} <= {g.name for g in chair.vertex_groups}

# 5. Edit again, the back this time (selected through its vertex group): the seat stays as modelled.


def group_corners(obj, name: str) -> list:
    """(position, UV) of the corners of the polygons whose vertices are all in the vertex group."""
    mesh, uv, group = obj.data, obj.data.uv_layers["UVMap"].data, obj.vertex_groups[name].index
    inside = [p for p in mesh.polygons if all(any(g.group == group for g in mesh.vertices[v].groups) for v in p.vertices)]
    return sorted((tuple(mesh.vertices[mesh.loops[i].vertex_index].co), tuple(uv[i].uv)) for p in inside for i in p.loop_indices)


seat_corners = group_corners(chair, "seat")
assert len(seat_corners) == 24  # six quads
context.view_layer.objects.active = chair
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_all(action='DESELECT')
chair.vertex_groups.active_index = chair.vertex_groups["back"].index
bpy.ops.object.vertex_group_select()
bpy.ops.object.mode_set(mode='OBJECT')
back = chair.vertex_groups["back"].index
back_before = sorted(tuple(v.co) for v in chair.data.vertices if any(g.group == back for g in v.groups))
bpy.ops.object.mode_set(mode='EDIT')
jobs_listed = len(jobs.JOBS)
assert bpy.ops.diffusion3d.edit_part('EXEC_DEFAULT', True, prompt="a chair with a slatted back", mode='EDIT',
                                     seed=1) == {'FINISHED'}
assert len(jobs.JOBS) == jobs_listed + 1 and jobs.JOBS[0].applied_to == "Chair", jobs.JOBS[0].error
bpy.ops.object.mode_set(mode='OBJECT')
new_back = [g.index for g in chair.vertex_groups if g.name.split(".")[0] in ("back", "slat", "post")]
back_after = sorted(tuple(v.co) for v in chair.data.vertices if any(g.group in new_back for g in v.groups))
assert back_after and back_after != back_before  # the back was regenerated, not left as modelled
assert group_corners(chair, "seat") == seat_corners
after = [slot.material.get("diffusion3d_part_material") for slot in chair.material_slots[1:]]
assert len(set(after)) == len(after) and set(part_materials) <= set(after)  # slots reused, edit after edit
assert any(g.name.split(".")[0] in ("back", "slat", "post") for g in chair.vertex_groups)  # a new back
print("after editing the back:", sorted(g.name for g in chair.vertex_groups))

# 4. The artist changes the mesh while an edit runs: the result's patch no longer fits the
# triangles it was made for, so the result replaces the mesh whole (the job's own mesh, with its
# kept parts as the backend returned them), rather than patching the wrong polygons.
mesh_export = addon_module("scene_io.mesh_export")
settings = addon_module("panels.preferences").backend_settings(context)
bpy.ops.object.mode_set(mode='EDIT')
bpy.ops.mesh.select_all(action='DESELECT')
chair.vertex_groups.active_index = chair.vertex_groups["seat"].index
bpy.ops.object.vertex_group_select()
glb, mask = mesh_export.object_to_glb(chair, with_mask=True)
bpy.ops.object.mode_set(mode='OBJECT')
late = jobs.Job(jobs.JobRequest("edit_part", {"mode": "complete", "seed": 2}, "late", "builtin",
                                {"mesh": glb, "face_mask": mask}, target="Chair"))
jobs.run_job(late, settings)  # here, in this thread; the edit below stands in for one made meanwhile
assert late.state == "succeeded" and late.result.metadata.get("patch"), late.error
edit = bmesh.new()
edit.from_mesh(chair.data)
edit.faces.ensure_lookup_table()
bmesh.ops.delete(edit, geom=[edit.faces[0]], context='FACES')
edit.to_mesh(chair.data)
edit.free()
written = jobs.tick(context, [late])
assert written == [chair] and late.applied_to == "Chair", late.error
assert all(len(p.vertices) == 3 for p in chair.data.polygons)  # the result's triangles, not a patched quad mesh
done()
