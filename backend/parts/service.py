"""The built-in model's entries in the backend's registry: parameters, uploads in, meshes out.

The service imports exactly the names in `__all__`. An uploaded mesh is either a built-in
result (its GLB carries the part shape) or anything else, whose parts are fitted first
(fitting.py); the parts of the artist's own geometry that an edit keeps are written back with
their own triangles.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import torch

from backend.errors import InputError
from backend.params import SEED_LIMITS, Limits, check_limits, draw_seed
from backend.results import Material, MeshPart, MeshResult, StepCallback
from formats.face_parts import FACE_PARTS_KEY, VERTEX_IDS_KEY, decode_face_parts, decode_indices, to_runs

from .appearance import part_materials
from .fitting import fit_mesh, merge_meshes, to_mesh_frame, to_shape_frame
from .pipeline import DEFAULT_WEIGHTS, PartDiffusionPipeline
from .representation import PartShape

__all__ = ["DEFAULT_WEIGHTS", "EDIT_LIMITS", "EDIT_PARAMS", "TEXT_LIMITS", "TEXT_PARAMS", "check_edit_request", "knows",
           "load_builtin", "run_edit", "run_text"]

TEXT_PARAMS: dict[str, Any] = {"prompt": "", "negative_prompt": None, "seed": None, "num_inference_steps": 25,
                               "guidance_scale": 1.5, "resolution": 128}
EDIT_PARAMS: dict[str, Any] = {"mode": "edit", "prompt": "", "negative_prompt": None, "seed": None, "num_inference_steps": 25,
                               "guidance_scale": 2.0, "resolution": 128, "take_from_b": [], "jump_length": 5,
                               "jump_n_sample": 3, "start_step": None}
EDIT_MODES = ("edit", "complete", "mix")
# Names Blender gives new objects ("Cube", "Plane.001"): they say nothing of what the object is,
# though some read as a category ("Plane" as an airplane, "Cube" as a crate).
BLENDER_DEFAULT_NAME = re.compile(r"(cube|plane|sphere|uv ?sphere|ico ?sphere|cylinder|cone|torus|circle|grid|"
                                  r"monkey|suzanne|mesh|object)(\.\d+)?", re.IGNORECASE)
TEXT_LIMITS: Limits = {"num_inference_steps": (1, 500), "guidance_scale": (0.0, 100.0), "resolution": (16, 384), **SEED_LIMITS}
# RePaint's resampling multiplies the steps by about jump_n_sample: bounded so an edit stays minutes at most.
EDIT_LIMITS: Limits = {**TEXT_LIMITS, "jump_length": (1, 50), "jump_n_sample": (1, 10), "start_step": (0, 500)}


@functools.lru_cache(maxsize=4)  # /models asks on every request; the weights' config does not change
def knows(folder: Optional[str] = None) -> list[str]:
    """Categories the shipped model was trained on (read from its config, no weights loaded)."""
    try:
        with open(os.path.join(folder or DEFAULT_WEIGHTS, "config.json")) as f:
            return list(json.load(f)["categories"])
    except (OSError, KeyError, ValueError):
        return []


def load_builtin(options) -> PartDiffusionPipeline:
    """Registry loader: the shipped weights on `options.device` (float32 throughout; the nets are tiny)."""
    return PartDiffusionPipeline.from_pretrained(device=str(getattr(options, "device", "cpu") or "cpu"))


def _with_defaults(params: dict[str, Any], defaults: dict[str, Any], limits: Limits) -> dict[str, Any]:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(defaults)}")
    p = {**defaults, **{k: v for k, v in params.items() if v is not None}}
    check_limits(p, limits)
    if p.get("seed") is None:
        p["seed"] = draw_seed()
    p["guidance_scale"] = float(p["guidance_scale"])
    return p


# ---------------------------------------------------------------------- uploads


@dataclass
class Upload:
    """An uploaded mesh as the model sees it.

    Attributes:
        shape: its parts. meshes: the GLB's meshes (glTF axes, file triangle order).
        owner: (T,) the part index of every triangle of `meshes` (see `face_owners`).
        mask: (T,) the face mask sent with it, or None.
        part_faces: for parts that are the artist's own geometry (`shape.extra["source_parts"]`),
            the indices of their triangles in `meshes` (all meshes in file order).
        selected: the parts the face mask chose, when fitting cut them out exactly; else None.
        fitted: True when the parts were fitted just now (the mesh was not a built-in result).
        note: what to tell the artist about the fit (e.g. the category was a guess).
    """

    shape: PartShape
    meshes: list[MeshPart]
    owner: np.ndarray
    mask: Optional[np.ndarray]
    part_faces: dict[str, np.ndarray]
    selected: Optional[list[str]] = None
    fitted: bool = False
    note: str = ""

    @functools.cached_property
    def triangles(self) -> tuple[np.ndarray, np.ndarray]:
        """All meshes as one (vertices (V, 3) float32, faces (T, 3) int64), triangles in file order."""
        vertices, faces, _ = merge_meshes(self.meshes)
        return vertices.astype(np.float32, copy=False), faces


def read_upload(pipe: PartDiffusionPipeline, data: bytes, what: str, face_mask: Optional[bytes], hint: str) -> Upload:
    """The part shape of an uploaded GLB: the one a built-in result carries, else one fitted to its
    meshes for the category `hint` (the prompt, or the object's name) reads as."""
    from backend.geometry.glb import EXTRAS_KEY, read_glb_meshes

    meshes, extras = read_glb_meshes(data)
    mask = _face_mask(face_mask, meshes) if face_mask else None
    d = (extras or {}).get(EXTRAS_KEY, {}) if isinstance(extras, dict) else {}
    if not isinstance(d, dict) or "shape" not in d:
        named = hint or meshes[0].name
        resolved = pipe.resolve_prompt(named)
        category = resolved.category
        unknown = not resolved.known or (not hint and BLENDER_DEFAULT_NAME.fullmatch(named.strip()) is not None)
        ids = decode_indices(extras.get(VERTEX_IDS_KEY), sum(len(m.vertices) for m in meshes)) \
            if isinstance(extras, dict) and VERTEX_IDS_KEY in extras else None
        fit = fit_mesh(pipe.autoencoder, meshes, mask, category, pipe.codec.templates.get(category, []),
                       pipe.codec.max_parts, hint, ids)
        note = f"fitted {len(fit.shape)} part(s) to {what}, read as a {category}: {', '.join(fit.shape.names)}"
        if unknown:
            note += f" (a guess from \"{named}\": name the object in the prompt, e.g. \"a chair with ...\")"
        owner = np.empty(sum(len(m.faces) for m in meshes), np.int64)
        for name, faces in fit.faces.items():
            owner[faces] = fit.shape.names.index(name)
        return Upload(fit.shape, meshes, owner, mask, fit.faces, fit.selected if mask is not None else None, True, note)
    try:
        shape = PartShape.from_dict(d["shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{what}: its part shape is damaged ({exc})")
    unknown = sorted(set(shape.labels) - set(pipe.codec.vocabulary))
    latent_dim = pipe.codec.stats["latent_mean"].shape[0]
    if unknown or len(shape) > pipe.codec.max_parts or (len(shape) and shape.latents.shape[1] != latent_dim):
        raise InputError(f"{what}: its part shape does not fit this model ({len(shape)} parts of at most "
                         f"{pipe.codec.max_parts}, labels {', '.join(unknown) or 'known'}, latents "
                         f"{tuple(shape.latents.shape)}); generate it again with this model")
    owner = face_owners(shape, meshes, extras.get(FACE_PARTS_KEY) if isinstance(extras, dict) else None)
    part_faces = {n: np.nonzero(owner == shape.names.index(n))[0] for n in shape.extra.get("source_parts", [])
                  if n in shape.names}
    return Upload(shape, meshes, owner, mask, part_faces)


def _face_mask(face_mask: bytes, meshes: list[MeshPart]) -> np.ndarray:
    n_faces = sum(len(m.faces) for m in meshes)
    mask = np.frombuffer(face_mask, dtype=np.uint8)
    if len(mask) != n_faces:
        raise InputError(f"face_mask has {len(mask)} entries but the mesh has {n_faces} triangles (one byte per triangle)")
    if not mask.any():
        raise InputError("no faces are selected: select the faces of the parts to change")
    return mask


def face_owners(shape: PartShape, meshes: list[MeshPart], face_parts: Any = None) -> np.ndarray:
    """The part of every triangle (file order): as the add-on sent it (`face_parts`, from the
    object's part vertex groups), else the part its mesh is named after, else the part whose box
    (Gaussian frame) is nearest the triangle's centre."""
    sent = decode_face_parts(face_parts, sum(len(m.faces) for m in meshes)) if face_parts else None
    if sent is not None:
        names, index = sent
        known = np.array([shape.names.index(n) if n in shape.names else -1 for n in names] + [-1])
        owner = known[index]  # index -1 → the trailing -1
        if (owner >= 0).all():
            return owner
        guessed = face_owners(shape, meshes)  # triangles in no part group: by their boxes
        return np.where(owner >= 0, owner, guessed)
    rot, ctr, half = shape.rotations.numpy(), shape.centers.numpy(), shape.half_extents.clamp(min=1e-4).numpy()
    owners = []
    for m in meshes:
        if m.name in shape.names:
            owners.append(np.full(len(m.faces), shape.names.index(m.name)))
            continue
        x = to_shape_frame(np.asarray(m.vertices, np.float32)[np.asarray(m.faces)].mean(1), shape)  # (F, 3) triangle centres
        local = np.einsum("fpk,pkj->fpj", x[:, None, :] - ctr[None], rot) / half[None]  # (F, P, 3)
        owners.append(np.abs(local).max(-1).argmin(-1))
    return np.concatenate(owners) if owners else np.zeros(0, int)


def selected_parts(upload: Upload, min_fraction: float = 0.3) -> list[str]:
    """Parts the artist selected (the upload's face mask): exactly those cut out of the selection
    when the parts were just fitted; otherwise a part is chosen when at least `min_fraction` of its
    triangles are selected (or, if none is, the part with most selected triangles)."""
    if upload.selected:
        return list(upload.selected)
    shape, owner, mask = upload.shape, upload.owner, upload.mask
    counts = np.bincount(owner, minlength=len(shape))
    chosen_counts = np.bincount(owner[mask != 0], minlength=len(shape))
    chosen = [shape.names[i] for i in range(len(shape)) if counts[i] and chosen_counts[i] / counts[i] >= min_fraction]
    return chosen or [shape.names[int(chosen_counts.argmax())]]


# ---------------------------------------------------------------------- results


def _kept_source_parts(shape: PartShape, upload: Optional[Upload]) -> list[int]:
    """Indices of `shape`'s parts that are still the artist's own geometry: source parts of the
    upload with triangles there, bit-identical to it (a regenerated part may reuse a freed name)."""
    if upload is None or not upload.part_faces:
        return []
    before = {n: i for i, n in enumerate(upload.shape.names)}
    return [i for i, n in enumerate(shape.names) if n in before and len(upload.part_faces.get(n, ()))
            and torch.equal(shape.gaussians[i], upload.shape.gaussians[before[n]])
            and torch.equal(shape.latents[i], upload.shape.latents[before[n]])]


def _source_mesh(upload: Upload, name: str, material: Material) -> MeshPart:
    """The artist's triangles of one part, exactly as uploaded, with the material of its label.
    Corners the export split (along UV seams) are joined again: the part comes back with the
    vertices it had in Blender, not one per UV island."""
    vertices, faces = upload.triangles
    corners = vertices[faces[upload.part_faces[name]]].reshape(-1, 3)
    positions, inverse = np.unique(corners, axis=0, return_inverse=True)
    return MeshPart(name, positions, inverse.reshape(-1, 3).astype(np.int64), material=material)


def _result(pipe: PartDiffusionPipeline, shape: PartShape, params: dict, notes: list[str], callback,
            upload: Optional[Upload] = None, **extra) -> MeshResult:
    kept = _kept_source_parts(shape, upload)
    decoded = [i for i in range(len(shape)) if i not in kept]
    fresh = shape.select(decoded) if kept else shape
    parts = pipe.decode(fresh, params["resolution"], callback) if decoded else []
    shape.origin = fresh.origin  # a first decode sets it
    for part in parts:  # decoded in the shape's frame: back onto the mesh the artist gave
        part.vertices = to_mesh_frame(part.vertices, shape)
    materials = part_materials(shape.category, shape.labels, shape.extra.get("looks"))
    parts = [_source_mesh(upload, shape.names[i], materials[shape.labels[i]]) for i in kept] + parts
    patch = None
    if upload is not None and upload.part_faces:
        shape.extra["source_parts"] = [shape.names[i] for i in kept]
        # The artist's mesh can be patched instead of replaced: keep these triangles as they are
        # (with their polygons, UVs and materials), drop the rest, add the decoded parts.
        patch = {"triangles": int(sum(len(m.faces) for m in upload.meshes)),
                 "keep": {shape.names[i]: to_runs(upload.part_faces[shape.names[i]]) for i in kept},
                 "new_parts": [p.name for p in parts[len(kept):]]}
    hidden = [n for n in shape.names if n not in {p.name for p in parts}]
    if hidden:
        notes.append(f"part(s) {', '.join(hidden)} lie inside other parts and have no visible faces")
    metadata = {"model": "builtin", "shape": shape.to_dict(), "parts": [p.name for p in parts], "notes": notes,
                "seed": params["seed"], **extra}
    if patch is not None:
        metadata["patch"] = patch
    return MeshResult(parts=parts, metadata=metadata)


def run_text(pipe: PartDiffusionPipeline, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """text_to_3d with the built-in model: prompt → named part meshes (+ the PartShape in metadata)."""
    p = _with_defaults(params, TEXT_PARAMS, TEXT_LIMITS)
    if not str(p["prompt"]).strip():
        raise InputError("prompt is empty: describe the object, e.g. \"a chair with four legs\"")
    resolved = pipe.resolve_prompt(str(p["prompt"]))
    prompt, category, note = resolved.prompt, resolved.category, resolved.note
    # a known prompt goes as asked (its reading is kept: "a keg" is not read again as "a barrel");
    # an unknown one as the nearest category's name
    asked = str(p["prompt"]) if resolved.known else prompt
    out = pipe(asked, p["negative_prompt"], 1, p["num_inference_steps"], p["guidance_scale"],
               torch.Generator().manual_seed(p["seed"]), callback)
    shape = out.shapes[0]
    shape.prompt, shape.category = str(p["prompt"]), category
    if prompt != shape.prompt:  # the nearest thing the model knows was made: in the colours asked for
        shape.extra["looks"] = pipe.looks(shape.prompt, shape.labels)
    return _result(pipe, shape, p, [note] if note else [], callback, category=category)


def check_edit_request(params: dict[str, Any], files: dict[str, bytes]) -> None:
    """What an edit_part request needs for its mode, checked when it is submitted (and run).

    Raises:
        InputError: an unknown mode, or the prompt, face mask or second mesh the mode needs.
    """
    mode = params.get("mode", EDIT_PARAMS["mode"])
    if mode not in EDIT_MODES:
        raise InputError(f"mode must be one of {', '.join(EDIT_MODES)}, not {mode!r}")
    if "mesh" not in files:
        raise InputError("edit_part needs the mesh (GLB) to edit")
    if mode == "edit" and not str(params.get("prompt") or "").strip():
        raise InputError("edit needs a prompt saying what the selected parts should become")
    if mode != "mix" and not files.get("face_mask"):
        raise InputError(f"{mode} needs face_mask: one byte per triangle, nonzero on the selected faces")
    if mode == "mix" and "mesh_b" not in files:
        raise InputError("mix needs a second object (mesh_b) to take parts from")


def run_edit(pipe: PartDiffusionPipeline, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """edit_part with the built-in model. mode "edit": regenerate the selected parts from the prompt;
    "complete": regenerate them from the rest; "mix": bring the parts of `mesh_b` named in take_from_b in.
    Meshes the model did not make get parts fitted first (the prompt, else the object's name,
    says what the object is)."""
    p = _with_defaults(params, EDIT_PARAMS, EDIT_LIMITS)
    check_edit_request(p, files)
    prompt = str(p["prompt"] or "").strip()
    upload = read_upload(pipe, files["mesh"], "the mesh", files.get("face_mask"), prompt)
    shape = upload.shape
    common = dict(seed=p["seed"], steps=p["num_inference_steps"], guidance_scale=p["guidance_scale"], callback=callback,
                  negative_prompt=p["negative_prompt"])
    notes: list[str] = []
    notes += [upload.note] if upload.note else []
    if p["mode"] == "mix":
        shape_b = read_upload(pipe, files["mesh_b"], "the second mesh (mesh_b)", None, prompt or shape.category).shape
        take = p["take_from_b"]
        take = [t.strip() for t in take.split(",") if t.strip()] if isinstance(take, str) else list(take)
        replace = selected_parts(upload) if upload.mask is not None else None
        result = pipe.mix(shape, shape_b, take, replace=replace, prompt=prompt or None, start_step=p["start_step"], **common)
        changed = take
    else:
        chosen = selected_parts(upload)
        notes.append(f"regenerated part(s): {', '.join(chosen)}")
        jumps = dict(jump_length=int(p["jump_length"]), jump_n_sample=int(p["jump_n_sample"]))
        if p["mode"] == "edit":
            resolved = pipe.resolve_prompt(prompt)
            prompt, note = resolved.prompt, resolved.note
            notes += [note] if note else []
            result = pipe.edit(shape, chosen, prompt, **jumps, **common)
        else:
            keep = [n for n in shape.names if n not in chosen]
            result = pipe.complete(shape, keep, prompt or None, **jumps, **common)
        changed = chosen
    return _result(pipe, result, p, notes, callback, upload, mode=p["mode"], changed=list(changed))
