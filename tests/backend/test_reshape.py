"""Reshape the selected region: against an oracle prior whose answer is a known edited shape,
the real engine (region graph, smooth displacement, clay renders, DDS) must reach the edit
inside the selection and leave every vertex outside it exactly where it was."""

import numpy as np
import pytest
import torch
import trimesh

from backend.distill import checkpoint as checkpoints
from backend.distill.guidance.delta import DDSConfig, DeltaDenoisingScore
from backend.distill.guidance.oracle import OracleDenoiser
from backend.distill.metrics import chamfer_distance, psnr
from backend.errors import JobCancelled
from backend.reshape.optimise import ReshapeConfig, region_view, reshape
from backend.reshape.region import SmoothDisplacement, region_frame, region_graph
from backend.reshape.shading import shade

torch.set_num_threads(1)
BUMP = 0.3  # the edit: the cap above y = 0.6 pushed out by up to 30% of the radius


def sphere_and_edit():
    """An icosphere, its top cap selected, and the cap pushed out into a smooth bump (the
    "edited" shape the oracle knows)."""
    ball = trimesh.creation.icosphere(subdivisions=4)
    vertices, faces = ball.vertices.astype(np.float32), ball.faces.astype(np.int64)
    selected = vertices[faces].mean(1)[:, 1] > 0.6
    s = np.clip((vertices[:, 1] - 0.6) / 0.4, 0, 1)
    target = vertices * (1 + BUMP * s * s * (3 - 2 * s))[:, None]
    return vertices, faces, selected, target.astype(np.float32)


class PromptOracle(OracleDenoiser):
    """The oracle of each prompt: "a bump" is the edited sphere, "a ball" the sphere as it is,
    each rendered like the engine renders (DDS asks both)."""

    def __init__(self, shapes: dict, faces):
        super().__init__(self._render)
        self.shapes, self.faces = {k: torch.from_numpy(v) for k, v in shapes.items()}, torch.from_numpy(faces)
        self.prompt = None

    def _render(self, view):
        return shade(self.shapes[self.prompt], self.faces, view.camera, view.background)[0]

    def predict_noise(self, x_t, t, condition, views):
        self.prompt, self._last = condition[0], ((), None)  # another prompt, another target
        return super().predict_noise(x_t, t, condition, views)


def held_out_views(graph, config):
    centre, normal, radius = region_frame(graph)
    directions = [(0.5, 1.0, 0.2), (-0.4, 1.0, -0.5), (0.0, 0.6, 1.0), (-0.7, 0.8, 0.1)]
    return [region_view(centre, normal, radius, np.array(d) / np.linalg.norm(d), config, 128) for d in directions]


def test_dds_reshape_reaches_the_oracle_edit_and_keeps_the_rest_exactly():
    vertices, faces, selected, target = sphere_and_edit()
    graph = region_graph(vertices, faces, selected, border=0.0)
    config = ReshapeConfig(steps=500, resolution=128, seed=0)
    oracle = PromptOracle({"a bump": target, "a ball": vertices}, faces)
    guidance = DeltaDenoisingScore(oracle, DDSConfig(guidance_scale=1.0, weighting="sds"), total_steps=config.steps,
                                   generator=torch.Generator().manual_seed(0))
    previews = []
    moved = reshape(graph, guidance, "a bump", config, source_prompt="a ball",
                    callback=lambda phase, step, total, preview=None, **_: previews.append(preview))
    result = moved[graph.weld]  # back to the input's vertices

    fixed = np.ones(len(vertices), bool)
    fixed[faces[selected].reshape(-1)] = False
    fixed[faces[~selected].reshape(-1)] = True  # the rim is shared with unselected faces: it stays too
    assert np.array_equal(result[fixed], vertices[fixed])  # bit for bit
    diagonal = float(np.linalg.norm(target.max(0) - target.min(0)))
    after = chamfer_distance(result, faces[selected], target, faces[selected], samples=20000) / diagonal
    before = chamfer_distance(vertices, faces[selected], target, faces[selected], samples=20000) / diagonal
    truth = torch.from_numpy(target)
    views = held_out_views(graph, config)
    render = lambda v, view: shade(torch.from_numpy(v), torch.from_numpy(faces), view.camera, view.background)[0]  # noqa: E731
    reached = psnr(torch.stack([render(result, v) for v in views]), torch.stack([render(target, v) for v in views]))
    untouched = psnr(torch.stack([render(vertices, v) for v in views]), torch.stack([render(target, v) for v in views]))
    print(f"Chamfer {after:.2%} of the diagonal (unedited {before:.2%}); held-out PSNR {reached:.1f} dB "
          f"(unedited {untouched:.1f} dB)")
    assert after <= 0.01 and before > 0.03, (after, before)
    assert reached >= 28.0 and untouched < 25.0, (reached, untouched)
    assert truth.shape == torch.from_numpy(result).shape
    assert sum(p is not None for p in previews) >= 1 and len(previews) == config.steps


def test_a_reshape_stopped_and_resumed_ends_exactly_where_an_unstopped_one_does():
    """The displacement, Adam's moments, the shrinking step size and DDS's draws all go on."""
    vertices, faces, selected, target = sphere_and_edit()
    graph = region_graph(vertices, faces, selected, border=0.0)
    config = ReshapeConfig(steps=12, resolution=32, seed=0)

    def run(stop_at=None, resume=None):
        oracle = PromptOracle({"a bump": target, "a ball": vertices}, faces)
        guidance = DeltaDenoisingScore(oracle, DDSConfig(guidance_scale=1.0, weighting="sds"),
                                       total_steps=config.steps, generator=torch.Generator().manual_seed(0))
        kept = {}

        def callback(phase, step, total, preview=None, checkpoint=None, **_):
            if step == stop_at:
                kept["data"] = checkpoints.pack(checkpoint())
                raise JobCancelled()
        try:
            return reshape(graph, guidance, "a bump", config, callback, source_prompt="a ball", resume=resume)
        except JobCancelled:
            return kept["data"]

    whole = run()
    assert np.array_equal(whole, run(resume=checkpoints.unpack(run(stop_at=5))))
    assert not np.array_equal(whole, graph.positions)  # it moved: there was something to get right


def test_the_border_band_moves_by_a_falling_weight_and_nothing_beyond_it():
    vertices, faces, selected, _ = sphere_and_edit()
    graph = region_graph(vertices, faces, selected, border=0.2)
    inside = np.zeros(len(graph.positions), bool)
    inside[graph.faces[selected].reshape(-1)] = True
    weight = np.zeros(len(graph.positions))
    weight[graph.free] = graph.weight
    distance_to_cap = np.clip(0.6 - graph.positions[:, 1], 0, None)  # roughly: the cap's rim is at y = 0.6
    assert (weight[inside] == 1).all()
    band = ~inside & (weight > 0)
    assert band.sum() > 20 and (weight[band] < 1).all()
    assert (weight[~inside & (distance_to_cap > 0.25)] == 0).all()  # beyond the band: never written
    far = weight[~inside & (distance_to_cap > 0.05)]
    assert far.max() < 1  # the weight falls across the band
    # A displacement moves free vertices only, and the band less than the selection.
    deformation = SmoothDisplacement(graph, smoothness=10.0)
    with torch.no_grad():
        deformation.u.fill_(0.1)
    moved = deformation.positions().detach().numpy()
    shift = np.linalg.norm(moved - graph.positions, axis=1)
    assert (shift[weight == 0] == 0).all() and shift[inside].mean() > shift[band].mean() > 0


def test_smooth_displacement_gradients_match_finite_differences():
    vertices, faces, selected, _ = sphere_and_edit()
    graph = region_graph(vertices, faces, selected, border=0.1)
    deformation = SmoothDisplacement(graph, smoothness=10.0, along_normals=False).double()
    deformation.rest, deformation.weight = deformation.rest.double(), deformation.weight.double()
    probe = torch.randn(len(graph.positions), 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    loss = lambda: (deformation.positions() * probe).sum()  # noqa: E731
    loss().backward()
    grad = deformation.u.grad.clone()
    for i, axis in ((0, 0), (len(graph.free) // 2, 1), (len(graph.free) - 1, 2)):
        with torch.no_grad():
            deformation.u[i, axis] += 1e-6
            up = float(loss())
            deformation.u[i, axis] -= 2e-6
            down = float(loss())
            deformation.u[i, axis] += 1e-6
        assert (up - down) / 2e-6 == pytest.approx(float(grad[i, axis]), rel=1e-5, abs=1e-8)


# --- the model through the job system (tiny random Stable Diffusion: the wiring is tested) ----

def test_reshape_sd_moves_only_the_masked_region_through_the_service(tmp_path, monkeypatch):
    import json
    import sys
    from pathlib import Path

    from fastapi.testclient import TestClient

    from backend.distill.guidance.stable_diffusion import DEFAULT_MODEL
    from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes
    from backend.hub import MODEL_SOURCES_ENV
    from backend.results import MeshPart, MeshResult
    from backend.server import Settings, create_app
    from tests.backend.test_server import wait

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
    import tiny_sd

    monkeypatch.setenv(MODEL_SOURCES_ENV, f"{DEFAULT_MODEL}={tiny_sd.text_pipeline(tmp_path / 'sd')}")
    vertices, faces, selected, _ = sphere_and_edit()
    uv = np.stack([vertices[:, 0], vertices[:, 2]], 1) * 0.5 + 0.5
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", vertices, faces, uv=uv.astype(np.float32))]))
    app = create_app(Settings(token="t", cache_dir=str(tmp_path / "cache"), device="cpu", offline=True,
                              allowed_hosts=("testserver",)))
    with TestClient(app, headers={"Authorization": "Bearer t"}) as client:
        for identity in ("dds", "pds", "sds"):
            spec = {"task": "edit_part", "model": "reshape-sd",
                    "params": {"prompt": "horns", "identity": identity, "num_inference_steps": 3,
                               "render_resolution": 16, "seed": 1}}
            files = {"mesh": ("ball.glb", glb), "face_mask": ("mask", selected.astype(np.uint8).tobytes())}
            job = client.post("/jobs", data={"spec": json.dumps(spec)}, files=files).json()
            record = wait(client, job["id"], timeout=120)
            assert record["state"] == "succeeded", record["error"]
            assert (record["phase"], record["step"], record["total"]) == ("reshape", 3, 3)
            parts, extras = read_glb_meshes(client.get(f"/jobs/{job['id']}/result").content)
            result = parts[0]
            assert np.array_equal(result.faces, faces) and np.array_equal(result.uv, uv.astype(np.float32))
            moved = (result.vertices != vertices).any(1)
            inside = np.zeros(len(vertices), bool)
            inside[faces[selected].reshape(-1)] = True
            meta = extras["diffusion3d"]
            assert meta["identity"] == identity and meta["source_prompt"] == "a 3D model"
            named = np.zeros(len(vertices), bool)
            for start, stop in meta["reshape"]["moved"]:
                named[start:stop] = True
            assert moved.any() and np.array_equal(moved, named)  # the metadata names exactly what moved
            over = client.get(f"/jobs/{job['id']}/current")  # done: its result is where it ended
            assert over.status_code == 409 and "has succeeded" in over.json()["detail"]
            # With the default 2% border the band reaches a little beyond the selection, no further.
            assert not moved[vertices[:, 1] < 0.45].any()
        bad = client.post("/jobs", data={"spec": json.dumps({"task": "edit_part", "model": "reshape-sd",
                                                             "params": {"prompt": "horns"}})},
                          files={"mesh": ("ball.glb", glb)})
        assert bad.status_code == 400 and "face_mask" in bad.json()["detail"]
        bad = client.post("/jobs", data={"spec": json.dumps({"task": "edit_part", "model": "reshape-sd",
                                                             "params": {"prompt": "horns", "identity": "magic"}})},
                          files=files)
        assert bad.status_code == 400 and "identity must be one of" in bad.json()["detail"]


def test_a_selection_with_nothing_free_to_move_is_refused():
    """One face, no border: its corners all belong to unselected faces too, so nothing may move."""
    from backend.errors import InputError
    from backend.geometry.glb import mesh_result_to_glb
    from backend.pipelines.reshape import run
    from backend.results import MeshPart, MeshResult, no_progress

    vertices, faces, _, _ = sphere_and_edit()
    one = np.zeros(len(faces), np.uint8)
    one[7] = 1
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", vertices, faces)]))
    with pytest.raises(InputError, match="no vertex of their own"):
        run(None, {"prompt": "horns", "border_width": 0.0}, {"mesh": glb, "face_mask": one.tobytes()}, no_progress)
