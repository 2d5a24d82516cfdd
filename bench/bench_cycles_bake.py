"""Our projection bake against Blender's Cycles bake of the same views, side by side in one run.

The Cycles side does what projection add-ons such as Dream Textures do: each view gets UVs
projected from its camera ("UV Project from View", computed here with the same camera
matrices, since background Blender has no 3D view to project from; stored as a corner
attribute, as a mesh holds at most 8 UV maps), a material reads every
view's image through its projected UV map and blends them by how squarely the surface faces
each camera, and Cycles bakes that material's emission into the target UV map. Ours is
`bench_texture_bake.run` (the texture pipeline's rasterize -> visibility -> bake -> pad).
Same mesh (a 100,000-triangle torus with grid UVs), same 10 cameras, same 512 x 512 images,
same 2048 x 2048 target. Cycles does no occlusion test (a projected UV map sees through the
object), so it does less work than ours per texel.

    PYTHONPATH=. python bench/bench_cycles_bake.py [--threads 2] [--views 10] [--view-size 512]
        [--texture-size 2048] [--samples 1]

Prints figures, asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import bpy
import numpy as np
import torch

from bench_texture_bake import machine_speed, parametric_torus, run
from backend.render import default_views


def build_object(vertices: np.ndarray, faces: np.ndarray, uv: np.ndarray) -> bpy.types.Object:
    """The torus as a Blender object (coordinates as they are: both sides use the same space)."""
    mesh = bpy.data.meshes.new("torus")
    mesh.from_pydata(vertices.tolist(), [], faces.tolist())
    target = mesh.uv_layers.new(name="target")
    corner_uv = uv[faces.reshape(-1)].copy()
    corner_uv[:, 1] = 1.0 - corner_uv[:, 1]  # glTF v-down -> Blender v-up
    target.data.foreach_set("uv", corner_uv.reshape(-1))
    obj = bpy.data.objects.new("torus", mesh)
    bpy.context.scene.collection.objects.link(obj)
    return obj


def add_projected_view(obj, index: int, camera, image: np.ndarray, tree, blend) -> None:
    """One view: a UV map projected from `camera`, its image, and its facing weight in the blend.

    Args:
        blend: dict with the running "colour" and "weight" sockets of the node tree.
    """
    mesh = obj.data
    # UV Project from View: the camera's clip coordinates of every corner, mapped to [0, 1].
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    corner_vertex = np.empty(len(mesh.loops), np.int32)
    mesh.loops.foreach_get("vertex_index", corner_vertex)
    clip = np.c_[co.reshape(-1, 3), np.ones(len(mesh.vertices))] @ camera.full_matrix().numpy().T.astype(np.float64)
    ndc = clip[:, :2] / clip[:, 3:4]
    # A mesh holds at most 8 UV maps, so each view's projected UVs go into a 3D corner
    # attribute (u, v, 0) read by an Attribute node: the same data, no limit on views.
    layer = mesh.attributes.new(f"view{index}", 'FLOAT_VECTOR', 'CORNER')
    projected = np.c_[0.5 * ndc[corner_vertex] + 0.5, np.zeros(len(corner_vertex))]
    layer.data.foreach_set("vector", projected.astype(np.float32).reshape(-1))

    picture = bpy.data.images.new(f"view{index}", image.shape[1], image.shape[0])
    rgba = np.concatenate([image[::-1], np.ones(image.shape[:2] + (1,), np.float32)], -1)  # Blender rows go up
    picture.pixels.foreach_set(rgba.reshape(-1))
    nodes, links = tree.nodes, tree.links
    uv_node = nodes.new("ShaderNodeAttribute")
    uv_node.attribute_name = layer.name
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = picture
    texture.extension = 'CLIP'
    links.new(uv_node.outputs["Vector"], texture.inputs["Vector"])
    # Weight: max(0, n . d)^2, d the direction to the eye (projection add-ons fade by facing ratio).
    direction = np.asarray(camera.eye) - np.asarray(camera.target)
    facing = nodes.new("ShaderNodeVectorMath")
    facing.operation = 'DOT_PRODUCT'
    links.new(blend["normal"], facing.inputs[0])
    facing.inputs[1].default_value = tuple(direction / np.linalg.norm(direction))
    weight = nodes.new("ShaderNodeMath")
    weight.operation = 'POWER'
    clamp = nodes.new("ShaderNodeMath")
    clamp.operation = 'MAXIMUM'
    links.new(facing.outputs["Value"], clamp.inputs[0])
    clamp.inputs[1].default_value = 0.0
    links.new(clamp.outputs[0], weight.inputs[0])
    weight.inputs[1].default_value = 2.0
    scaled = nodes.new("ShaderNodeVectorMath")
    scaled.operation = 'SCALE'
    links.new(texture.outputs["Color"], scaled.inputs[0])
    links.new(weight.outputs[0], scaled.inputs["Scale"])
    colour_sum = nodes.new("ShaderNodeVectorMath")
    colour_sum.operation = 'ADD'
    links.new(blend["colour"], colour_sum.inputs[0])
    links.new(scaled.outputs["Vector"], colour_sum.inputs[1])
    weight_sum = nodes.new("ShaderNodeMath")
    weight_sum.operation = 'ADD'
    links.new(blend["weight"], weight_sum.inputs[0])
    links.new(weight.outputs[0], weight_sum.inputs[1])
    blend["colour"], blend["weight"] = colour_sum.outputs["Vector"], weight_sum.outputs[0]


def cycles_bake(vertices, faces, uv, cameras, images, texture_size: int, threads: int, samples: int) -> dict:
    """Set up the projection material and bake it with Cycles; seconds per stage."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = 'CYCLES'
    scene.cycles.device = 'CPU'
    scene.cycles.samples = samples
    scene.render.threads_mode = 'FIXED'
    scene.render.threads = threads
    times = {}
    t0 = time.perf_counter()
    obj = build_object(vertices, faces, uv)
    t1 = time.perf_counter()
    material = bpy.data.materials.new("projection")
    material.use_nodes = True
    tree = material.node_tree
    tree.nodes.clear()
    geometry = tree.nodes.new("ShaderNodeNewGeometry")
    start_colour = tree.nodes.new("ShaderNodeCombineXYZ")  # (0, 0, 0)
    start_weight = tree.nodes.new("ShaderNodeValue")
    start_weight.outputs[0].default_value = 1e-6  # texels no view faces stay black, not NaN
    blend = {"normal": geometry.outputs["Normal"], "colour": start_colour.outputs[0], "weight": start_weight.outputs[0]}
    for i, (camera, image) in enumerate(zip(cameras, images)):
        add_projected_view(obj, i, camera, image, tree, blend)
    divide = tree.nodes.new("ShaderNodeVectorMath")
    divide.operation = 'DIVIDE'
    tree.links.new(blend["colour"], divide.inputs[0])
    tree.links.new(blend["weight"], divide.inputs[1])  # a float into a vector socket: (w, w, w)
    emission = tree.nodes.new("ShaderNodeEmission")
    tree.links.new(divide.outputs["Vector"], emission.inputs["Color"])
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    tree.links.new(emission.outputs["Emission"], output.inputs["Surface"])
    target = bpy.data.images.new("baked", texture_size, texture_size)
    target_node = tree.nodes.new("ShaderNodeTexImage")  # the bake writes into the active image node
    target_node.image = target
    tree.nodes.active = target_node
    obj.data.materials.append(material)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)
    t2 = time.perf_counter()
    bpy.ops.object.bake(type='EMIT', uv_layer="target", margin=16, use_clear=True)
    t3 = time.perf_counter()
    pixels = np.empty(texture_size * texture_size * 4, np.float32)
    target.pixels.foreach_get(pixels)
    times.update(mesh=t1 - t0, projection_setup=t2 - t1, bake=t3 - t2, total=t3 - t1,
                 nonblack=float((pixels.reshape(-1, 4)[:, :3].max(1) > 0).mean()))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--views", type=int, default=10, help="8 around + top + bottom at 10")
    parser.add_argument("--view-size", type=int, default=512)
    parser.add_argument("--texture-size", type=int, default=2048)
    parser.add_argument("--samples", type=int, default=1, help="Cycles samples per texel (emission needs 1)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    vertices, faces, uv = parametric_torus()
    v = torch.from_numpy(vertices)
    ring = max(1, args.views - 2) if args.views > 2 else args.views
    cameras = default_views(v, num_azimuths=ring, top_and_bottom=args.views > 2, width=args.view_size)[:args.views]
    images = [torch.rand(args.view_size, args.view_size, 3, generator=torch.Generator().manual_seed(i)).numpy()
              for i in range(len(cameras))]

    # Ours: the texture pipeline's bake path (bench_texture_bake.run: fixed 10 x 512 -> 2048),
    # or the same steps at the reduced sizes when asked.
    full = (len(cameras), args.view_size, args.texture_size) == (10, 512, 2048)
    run(cameras=cameras, images=images, texture_size=args.texture_size)  # warm-up
    ours_runs, cycles_runs = [], []
    for _ in range(args.repeats):  # interleaved: on a shared machine both sides see the same load
        ours_runs.append(run(cameras=cameras, images=images, texture_size=args.texture_size))
        cycles_runs.append(cycles_bake(vertices, faces, uv, cameras, images, args.texture_size, args.threads,
                                       args.samples))
    ours = min(ours_runs, key=lambda r: r["total"])
    cycles = min(cycles_runs, key=lambda r: r["total"])

    print(f"mesh: {len(faces)} triangles, {len(cameras)} views at {args.view_size}x{args.view_size}, "
          f"{args.texture_size}x{args.texture_size} texture, {args.threads} threads; best of {args.repeats}"
          + ("" if full else " (reduced from the issue's 10 views / 512 / 2048)"))
    print(f"ours   (torch): uv layout {ours['uv_layout']:.3f} s, view raster {ours['view_raster']:.3f} s, "
          f"project+bake {ours['project_bake']:.3f} s, pad {ours['pad']:.3f} s -> total {ours['total']:.3f} s "
          f"(painted {ours['painted_fraction']:.1%} of surface texels)")
    print(f"Cycles (bpy {bpy.app.version_string}, {args.samples} sample): projection setup "
          f"{cycles['projection_setup']:.3f} s, bake {cycles['bake']:.3f} s -> total {cycles['total']:.3f} s "
          f"(mesh build {cycles['mesh']:.3f} s not counted; {cycles['nonblack']:.1%} of texels written)")
    print("per repeat (ours, Cycles): " + ", ".join(f"({o['total']:.2f} s, {c['total']:.2f} s)"
                                                    for o, c in zip(ours_runs, cycles_runs)))
    print(f"ratio Cycles / ours: {cycles['total'] / ours['total']:.2f}x "
          f"(bake call alone: {cycles['bake'] / ours['total']:.2f}x)")
    print(f"machine yardstick (50 x 4M-float axpy): {machine_speed():.3f} s")


if __name__ == "__main__":
    main()
