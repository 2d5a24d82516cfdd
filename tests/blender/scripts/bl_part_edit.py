"""The built-in model's part edits in Blender, as an artist does them: generate a chair, select
its legs in Edit Mode through their vertex groups, Edit Selected Part (then Complete instead, then
Mix in the wheels of a second chair); the seat and back stay put every time."""

import bpy
import bmesh  # after bpy: the bpy module provides it
from bl_harness import MODULE, done, install
from mathutils.kdtree import KDTree

install()
bpy.context.preferences.addons[MODULE].preferences.startup_timeout = 180.0
context = bpy.context
bpy.ops.ed.undo_push(message="start")  # background mode starts with undo off


def world_positions(obj, groups: set[str]) -> list:
    """World positions of the vertices in any of the named vertex groups."""
    index = {obj.vertex_groups[name].index for name in groups}
    return [obj.matrix_world @ v.co for v in obj.data.vertices if any(g.group in index for g in v.groups)]


def tree(points) -> KDTree:
    kd = KDTree(len(points))
    for i, p in enumerate(points):
        kd.insert(p, i)
    kd.balance()
    return kd


def select_groups(obj, groups: set[str]) -> None:
    """Edit Mode with exactly the faces of the named vertex groups selected."""
    context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode='EDIT')
    bpy.ops.mesh.select_all(action='DESELECT')
    for group in sorted(groups):
        obj.vertex_groups.active_index = obj.vertex_groups[group].index
        bpy.ops.object.vertex_group_select()


def assert_far_parts_kept(obj) -> None:
    """Seat and back vertices away from the old legs and from every new part are exactly in place
    (where a new part meets the seat, the surface of the union changes around the seam, as it
    should; 0.15 is a few decode voxels beyond the new part's nearest vertex)."""
    new = {g.name for g in obj.vertex_groups} - (names - legs)  # regenerated legs and parts added
    near_new = tree(world_positions(obj, new)) if new else None
    away = [p for p in far if near_new is None or near_new.find(p)[2] > 0.15]
    assert len(away) > 100, len(away)
    now = tree([obj.matrix_world @ v.co for v in obj.data.vertices])
    moved = [p for p in away if now.find(p)[2] > 1e-4]
    assert not moved, f"{len(moved)} of {len(away)} seat/back vertices moved, e.g. {moved[0]}"


# 1. Generate on the built-in model (seed 0 is a four-legged chair with a seat and a back).
# ('EXEC_DEFAULT', True) here and for the edit: run as the UI would, pushing each operator's undo step.
bpy.ops.diffusion3d.generate_mesh('EXEC_DEFAULT', True, prompt="a chair with four legs", model="builtin", seed=0,
                                  random_seed=False)
chair = context.active_object
names = {g.name for g in chair.vertex_groups}
legs = {n for n in names if n.startswith("leg.")}
kept = {n for n in names if n == "seat" or n.split(".")[0] == "back"}
assert len(legs) == 4 and "seat" in kept, names
chair.location = (1.0, -2.0, 0.5)  # an artist moved it: the edit must keep the transform
context.view_layer.update()
bpy.ops.ed.undo_push(message="move")  # as the move tool does: undoing an edit comes back here
matrix = chair.matrix_world.copy()
n_before = len(chair.data.vertices)

# Seat and back vertices well away from the legs: the edit must leave exactly these in place.
leg_tree = tree(world_positions(chair, legs))
far = [p for p in world_positions(chair, kept) if leg_tree.find(p)[2] > 0.08]
assert len(far) > 100, len(far)
legs_before = world_positions(chair, legs)

# 2. Select the legs in Edit Mode through their vertex groups, then regenerate them.
select_groups(chair, legs)
selected_faces = sum(f.select for f in bmesh.from_edit_mesh(chair.data).faces)
assert selected_faces > 0
bpy.ops.diffusion3d.edit_part('EXEC_DEFAULT', True, prompt="an office chair on wheels", mode='EDIT', seed=1)
assert chair.mode == 'EDIT'  # the artist stays in Edit Mode, with the new parts selected
bpy.ops.object.mode_set(mode='OBJECT')
selected = [v for v in chair.data.vertices if v.select]
kept_groups = {chair.vertex_groups[n].index for n in kept}
assert selected and not any(g.group in kept_groups for v in selected for g in v.groups), len(selected)
assert len(selected) < len(chair.data.vertices)


# 3. Same object, same transform; seat and back unchanged away from the edit; the legs' region changed.
assert context.active_object == chair and chair.matrix_world == matrix
assert_far_parts_kept(chair)
after = tree([chair.matrix_world @ v.co for v in chair.data.vertices])
changed = sum(after.find(p)[2] > 1e-4 for p in legs_before)
assert changed > len(legs_before) // 4, f"the legs barely changed ({changed} of {len(legs_before)} vertices)"
print("edited parts:", sorted(g.name for g in chair.vertex_groups), "vertices", n_before, "->", len(chair.data.vertices))

# 4. One undo brings the original chair back.
name = chair.name
bpy.ops.ed.undo()
chair = bpy.data.objects[name]
assert len(chair.data.vertices) == n_before, (len(chair.data.vertices), n_before)


# 5. Part completion: the selected legs are regenerated from the rest of the chair, no prompt.
select_groups(chair, legs)
assert bpy.ops.diffusion3d.edit_part('EXEC_DEFAULT', True, mode='COMPLETE', seed=2) == {'FINISHED'}
bpy.ops.object.mode_set(mode='OBJECT')
assert_far_parts_kept(chair)
after = tree([chair.matrix_world @ v.co for v in chair.data.vertices])
changed = sum(after.find(p)[2] > 1e-4 for p in legs_before)
assert changed > len(legs_before) // 4, f"completion left the legs as they were ({changed} of {len(legs_before)})"
completed = {g.name.split(".")[0] for g in chair.vertex_groups}
assert {"seat", "leg"} <= completed, completed
print("completed parts:", sorted(g.name for g in chair.vertex_groups))
bpy.ops.ed.undo()
chair = bpy.data.objects[name]
assert len(chair.data.vertices) == n_before

# 6. Part mixing: a second generated chair's wheels come into the first (both selected, the first active).
if context.mode != 'OBJECT':
    bpy.ops.object.mode_set(mode='OBJECT')
bpy.ops.diffusion3d.generate_mesh('EXEC_DEFAULT', True, prompt="an office chair on wheels", model="builtin", seed=3,
                                  random_seed=False)
donor = context.active_object
assert any(g.name.startswith("wheel") for g in donor.vertex_groups), [g.name for g in donor.vertex_groups]
donor.location = (4.0, 0.0, 0.0)
bpy.ops.object.select_all(action='DESELECT')
donor.select_set(True)
chair.select_set(True)
context.view_layer.objects.active = chair
bpy.ops.diffusion3d.edit_part('EXEC_DEFAULT', True, mode='MIX', take_from_b="wheel", seed=4)
assert_far_parts_kept(chair)
mixed = sorted(g.name for g in chair.vertex_groups)
assert any(n.startswith("wheel") for n in mixed), mixed
wheels = sorted(p.z for p in world_positions(chair, {n for n in mixed if n.startswith("wheel")}))
seat_bottom = min(p.z for p in world_positions(chair, {"seat"}))
assert wheels[int(0.9 * len(wheels))] < seat_bottom, (wheels[-1], seat_bottom)  # under the seat, not up at it
print("mixed parts:", mixed)

done()
