"""Write-back of a 1,000,000-triangle GLB: ours (numpy + foreach_set) vs bpy.ops.import_scene.gltf.

    PYTHONPATH=. python bench/bench_write_back.py [--triangles 1000000] [--repeat 3]

Both run in this process on the same file, alternating, after one uncounted warm-up run of
each; medians and ratios are printed. Ours is timed in its two halves as the add-on runs them:
the job's worker thread parses the GLB and lays the mesh out (read_glb + MeshArrays) while
Blender stays responsive, then the main thread writes it into the scene (new_object), the only
time Blender is blocked. glTF's importer does all of its work on the main thread.
"""

import argparse
import os
import statistics
import tempfile
import time

import bpy
import numpy as np
from addon_loader import load_addon


def grid_glb(triangles: int, write_glb) -> bytes:
    """A wavy coloured grid with at least `triangles` triangles, in glTF axes."""
    n = int(np.ceil(np.sqrt(triangles / 2))) + 1  # n×n vertices → 2(n-1)² triangles
    u, v = np.meshgrid(np.linspace(-1, 1, n, dtype=np.float32), np.linspace(-1, 1, n, dtype=np.float32))
    y = 0.1 * np.sin(6 * u) * np.cos(6 * v)
    vertices = np.stack([u, y, v], axis=-1).reshape(-1, 3)
    i = np.arange(n - 1)
    a = (i[:, None] * n + i[None, :]).reshape(-1)
    quads = np.stack([a, a + n, a + n + 1, a + 1], axis=1)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    colors = np.concatenate([(vertices + 1) / 2, np.ones((len(vertices), 1), np.float32)], axis=1)
    uv = ((vertices[:, [0, 2]] + 1) / 2).astype(np.float32)
    return write_glb(vertices, faces, uv=uv, colors=colors, extras={"diffusion3d": {"model": "bench"}}, name="grid")


def clear_scene():
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj)
    for mesh in list(bpy.data.meshes):
        bpy.data.meshes.remove(mesh)
    for material in list(bpy.data.materials):
        bpy.data.materials.remove(material)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--triangles", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    addon = load_addon()
    from diffusion3d.formats.blender_layout import MeshArrays
    from diffusion3d.formats.glb import read_glb, write_glb
    from diffusion3d.scene_io.write_back import new_object

    data = grid_glb(args.triangles, write_glb)
    path = os.path.join(tempfile.mkdtemp(), "bench.glb")
    with open(path, "wb") as handle:
        handle.write(data)
    prepare, write, gltf = [], [], []
    n_faces = {}
    for run in range(args.repeat + 1):  # run 0 warms both up (first-touch allocations) and is not counted
        clear_scene()
        start = time.perf_counter()
        with open(path, "rb") as handle:
            result = read_glb(handle.read())
        arrays = MeshArrays(result)
        middle = time.perf_counter()
        obj = new_object(bpy.context, "grid", result, arrays=arrays)
        end = time.perf_counter()
        n_faces["ours"] = len(obj.data.polygons)
        clear_scene()
        start_gltf = time.perf_counter()
        bpy.ops.import_scene.gltf(filepath=path)
        gltf_t = time.perf_counter() - start_gltf
        if run:
            prepare.append(middle - start)
            write.append(end - middle)
            gltf.append(gltf_t)
        n_faces["gltf"] = sum(len(o.data.polygons) for o in bpy.data.objects if o.type == 'MESH')
    prepare_s, write_s, gltf_s = statistics.median(prepare), statistics.median(write), statistics.median(gltf)
    total_s = statistics.median([a + b for a, b in zip(prepare, write)])
    print(f"triangles: ours {n_faces['ours']:,}  import_scene.gltf {n_faces['gltf']:,}  (file {len(data) / 1e6:.1f} MB)")
    print(f"ours, worker thread (read_glb + MeshArrays): median {prepare_s:.3f} s  runs {[round(t, 3) for t in prepare]}")
    print(f"ours, main thread (new_object):              median {write_s:.3f} s  runs {[round(t, 3) for t in write]}")
    print(f"bpy.ops.import_scene.gltf (main thread):     median {gltf_s:.3f} s  runs {[round(t, 3) for t in gltf]}")
    print(f"ratio, time Blender is blocked: ours is {gltf_s / write_s:.1f}x shorter (target >= 5x)")
    print(f"ratio, all work on both threads: ours is {gltf_s / total_s:.1f}x faster")
    del addon


if __name__ == "__main__":
    main()
