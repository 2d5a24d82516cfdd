"""Files named on the command line (meshes, images), read as uploads are: size-capped, meshes
converted to GLB in glTF axes. Used by `generate`, `texture` and `batch`."""

from __future__ import annotations

from pathlib import Path

from .errors import InputError

MAX_INPUT_MB = 1024  # a mesh or image file read whole; beyond it, a file is damaged or not what it claims


def read_file(path: str, what: str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no {what} file at {file}")
    check_size(file, what)
    return file.read_bytes()


def check_size(file: Path, what: str) -> None:
    size = file.stat().st_size
    if size > MAX_INPUT_MB * 2**20:
        raise InputError(f"the {what} file {file} is {size / 2**20:,.0f} MB; the limit is {MAX_INPUT_MB} MB")


Z_UP_SUFFIXES = (".stl", ".ply")  # what Blender's own exporters, CAD and scanning tools write Z up


def mesh_as_glb(path: str, up: str = "auto") -> bytes:
    """The mesh file as GLB bytes (glTF axes, Y up): a .glb as it is, other formats trimesh
    reads converted, turned Y up when they are Z up (`up`: "y", "z", or "auto" by suffix)."""
    file = Path(path)
    if not file.is_file():
        raise InputError(f"no mesh file at {file}")
    check_size(file, "mesh")
    with file.open("rb") as handle:  # only its start: a scan of hundreds of MB is read once, by trimesh
        is_glb = handle.read(4) == b"glTF"
    if is_glb:
        return file.read_bytes()  # checked like an upload by the request check
    import numpy as np
    import trimesh
    from formats.glb_buffers import DEFAULT_LIMITS

    try:
        scene = trimesh.load(path, force="scene")
    except MemoryError:  # a header that claims more elements than memory holds
        raise InputError(f"the mesh {path} is too large to read into memory (or its header is damaged)") from None
    except Exception as e:  # trimesh raises many kinds for a file it cannot read
        raise InputError(f"cannot read the mesh {path} ({e}); give a .glb, .obj, .ply, .stl or .off file") from None
    if not scene.geometry:
        raise InputError(f"the file {path} holds no mesh")
    triangles = sum(len(getattr(g, "faces", ())) for g in scene.geometry.values())
    if triangles > DEFAULT_LIMITS.max_triangles:
        raise InputError(f"the mesh {path} has {triangles:,} triangles; the limit is {DEFAULT_LIMITS.max_triangles:,}")
    if up == "z" or (up == "auto" and Path(path).suffix.lower() in Z_UP_SUFFIXES):
        z_up_to_y_up = np.array([[1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1]], float)  # (x, y, z) -> (x, z, -y)
        for geometry in scene.geometry.values():  # into the vertices: a node turned -90 degrees would come back
            geometry.apply_transform(z_up_to_y_up)
    return scene.export(file_type="glb")


def face_mask_for_parts(glb: bytes, names: str) -> bytes:
    """The face mask (one byte per triangle, in the GLB's triangle order) selecting the parts
    named in `names`, comma-separated: a part's node name ("leg.0") or its label ("leg", every
    leg).

    Raises:
        InputError: a name that matches no part, saying which parts there are.
    """
    import numpy as np

    from .geometry.glb import read_glb_meshes

    parts, _ = read_glb_meshes(glb)
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    if not wanted:
        raise InputError("--parts names no part: give part names or labels, e.g. --parts leg,back")
    labels = [part.name.split(".")[0] for part in parts]
    unknown = [name for name in wanted if name not in labels and name not in (p.name for p in parts)]
    if unknown:
        raise InputError(f"the mesh has no part {', '.join(map(repr, unknown))}; its parts are "
                         f"{', '.join(part.name for part in parts)}")
    mask = np.concatenate([np.full(len(part.faces), part.name in wanted or label in wanted, np.uint8)
                           for part, label in zip(parts, labels)])
    return mask.tobytes()
