"""The HTTP service on loopback (TestClient): security, errors, cancel, restart."""

import asyncio
import io
import json
import struct
import time
import zlib

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from backend.geometry.glb import mesh_result_to_glb, read_glb_meshes
from backend.results import MeshPart, MeshResult
from backend.server import Settings, create_app

TOKEN = "test-token-123"
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def make_client(tmp_path, monkeypatch):
    """Start an app (test models on) and return a TestClient; several may share a cache dir."""
    monkeypatch.setenv("DIFFUSION3D_TEST_MODELS", "1")
    clients = []

    def make(**overrides):
        settings = Settings(token=TOKEN, port=PORT, cache_dir=str(tmp_path / "cache"), device="cpu", **overrides)
        client = TestClient(create_app(settings), base_url=BASE, headers=AUTH)
        client.__enter__()  # runs the lifespan: the worker thread starts
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    return make_client()


def submit(client, params=None, model="test-cube", task="text_to_3d", files=None):
    spec = {"task": task, "model": model, "params": params or {}}
    return client.post("/jobs", data={"spec": json.dumps(spec)}, files=files or {})


def wait(client, job_id, until=("succeeded", "failed", "cancelled"), timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = client.get(f"/jobs/{job_id}").json()
        if record["state"] in until:
            return record
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} still {record['state']} after {timeout} s")


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str) and detail  # one readable sentence, never a list
    for word in words:
        assert word in detail, detail


def test_health_models_and_openapi(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["device"] == "cpu" and health["queue_length"] == 0
    models = client.get("/models").json()
    cube = next(m for m in models if m["name"] == "test-cube")
    assert cube["task"] == "text_to_3d" and cube["available_offline"] is True
    assert cube["params"]["step_delay"] == 0.0
    schema = client.get("/openapi.json").json()
    assert {"/health", "/models", "/jobs", "/jobs/{job_id}", "/jobs/{job_id}/result"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/jobs"]["post"]["requestBody"]["content"]


@pytest.mark.parametrize("path", ["/health", "/models", "/jobs", "/openapi.json"])
def test_token_is_required_everywhere(client, path):
    no_token = client.get(path, headers={"Authorization": ""})
    assert_error(no_token, 401, "Bearer")
    assert no_token.headers["www-authenticate"] == "Bearer"
    assert_error(client.get(path, headers={"Authorization": "Bearer wrong"}), 401, "wrong token")
    assert_error(client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"}), 401)
    assert_error(client.get(path, headers={"Authorization": TOKEN}), 401)  # no "Bearer " scheme
    assert client.get(path).status_code == 200


def test_token_is_checked_before_the_upload_is_read(client):
    response = client.post("/jobs", headers={"Authorization": "Bearer wrong"},
                           data={"spec": json.dumps({"task": "text_to_3d", "model": "test-cube"})})
    assert_error(response, 401)
    assert client.get("/jobs").json() == []


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8765", 200), ("localhost:8765", 200), ("localhost", 200), ("[::1]:8765", 200),
    ("evil.example.com:8765", 403), ("evil.example.com", 403), ("localhost:9999", 403),
    ("127.0.0.1.evil.example.com", 403), ("gpu-box:8765", 403),
])
def test_host_header_is_checked(client, host, status):
    response = client.get("/health", headers={"Host": host})
    assert response.status_code == status, response.text
    if status == 403:
        assert "--allowed-host" in response.json()["detail"]


def test_allowed_host_option(make_client):
    client = make_client(allowed_hosts=("gpu-box", "proxy.example:443"))
    assert client.get("/health", headers={"Host": "gpu-box:8765"}).status_code == 200
    assert client.get("/health", headers={"Host": "proxy.example:443"}).status_code == 200
    assert client.get("/health", headers={"Host": "proxy.example:8765"}).status_code == 403
    assert client.get("/health", headers={"Host": "other-box:8765"}).status_code == 403


def test_websockets_are_refused_before_any_route(client):
    """No route speaks WebSocket; one added later must not bypass the Host and token checks."""
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed:
        with client.websocket_connect("/health"):
            pass
    assert closed.value.code == 1008


def test_missing_host_header_is_400(client):
    app, sent = client.app, []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/health", "raw_path": b"/health", "query_string": b"",
             "headers": [(b"authorization", f"Bearer {TOKEN}".encode())], "http_version": "1.1",
             "scheme": "http", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", PORT), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 400
    assert "Host" in json.loads(sent[1]["body"])["detail"]


@pytest.mark.parametrize("spec, words", [
    ("{not json", ["not valid JSON"]),
    ("[1, 2]", ["JSON object"]),
    ('{"model": "test-cube"}', ["task"]),
    ('{"task": "text_to_3d", "model": "test-cube", "colour": "red"}', ["colour"]),
    ('{"task": "text_to_3d", "model": "test-cube", "params": [1]}', ["params"]),
    ('{"task": "text_to_3d", "model": "test-cube", "params": []}', ["params", "JSON object"]),
    ("[" * 30_000 + "]" * 30_000, ["nested too deeply"]),
])
def test_bad_spec_is_400(client, spec, words):
    assert_error(client.post("/jobs", data={"spec": spec}), 400, *words)


def test_missing_spec_is_400(client):
    assert_error(client.post("/jobs", files={"mesh": ("m.glb", b"x")}), 400, "spec")
    assert_error(client.post("/jobs"), 400)  # not even a form


def test_unknown_task_model_and_params_are_400(client):
    assert_error(submit(client, task="make_it_pretty"), 400, "unknown task", "text_to_3d")
    assert_error(submit(client, model="no-such-model"), 400, "unknown model 'no-such-model'", "test-cube")
    assert_error(submit(client, model=None, task="texture"), 400, "mesh")  # texturing needs the mesh uploaded
    assert_error(submit(client, {"prompt": "x", "colour": 1, "size": 2}), 400, "colour", "size", "accepted")
    assert_error(submit(client, {"num_inference_steps": "many"}), 400, "num_inference_steps", "whole number")
    assert_error(submit(client, {"seed": 1.5}), 400, "seed")
    assert client.get("/jobs").json() == []  # nothing was queued


@pytest.mark.parametrize("params, words", [
    ('{"seed": 100000000000000000000}', ["seed", "from 0 to"]),
    ('{"seed": 1%s}' % ("0" * 400), ["seed", "from 0 to"]),
    ('{"guidance_scale": 1%s}' % ("0" * 400), ["guidance_scale"]),
    ('{"seed": -1}', ["seed", "from 0 to"]),
    ('{"guidance_scale": NaN}', ["guidance_scale", "a number"]),
    ('{"start_azimuth": Infinity}', ["start_azimuth"]),
    ('{"num_inference_steps": 5000}', ["num_inference_steps", "from 1 to 500"]),
    ('{"num_views": 0}', ["num_views", "from 1 to 64"]),
    ('{"texture_size": 8192}', ["texture_size", "from 1024 to 4096"]),
])
def test_out_of_range_parameters_are_400_before_anything_is_queued(client, params, words):
    """Ranges are the model's (here the texture route's), checked at submit: a bad value never
    waits in the queue, nor for a model download, to fail."""
    spec = '{"task": "texture", "model": "test-texture", "params": %s}' % params
    mesh = mesh_result_to_glb(MeshResult(parts=[MeshPart("m", np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))]))
    assert_error(client.post("/jobs", data={"spec": spec}, files={"mesh": ("m.glb", mesh)}), 400, *words)
    assert client.get("/jobs").json() == []
    limits = next(m for m in client.get("/models").json() if m["name"] == "test-texture")["limits"]
    assert limits["num_views"] == [1, 64] and limits["seed"] == [0, 2**63 - 1]


@pytest.mark.parametrize("params, files, words", [
    ({"mode": "grow"}, ("mesh", "face_mask"), ["mode must be one of"]),
    ({"mode": "edit"}, ("mesh", "face_mask"), ["edit needs a prompt"]),
    ({"mode": "complete"}, ("mesh",), ["complete needs face_mask"]),
    ({"mode": "mix"}, ("mesh",), ["mix needs a second object (mesh_b)"]),
])
def test_what_an_edit_mode_needs_is_checked_at_submit(client, params, files, words):
    mesh = mesh_result_to_glb(MeshResult(parts=[MeshPart("m", np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))]))
    uploads = {"mesh": ("m.glb", mesh), "face_mask": ("mask", b"\1")}
    response = submit(client, params, model="builtin", task="edit_part", files={k: uploads[k] for k in files})
    assert_error(response, 400, *words)
    assert client.get("/jobs").json() == []


def _glb_with_json(document: bytes) -> bytes:
    document += b" " * (-len(document) % 4)
    return struct.pack("<III", 0x46546C67, 2, 20 + len(document)) + struct.pack("<II", len(document), 0x4E4F534A) + document


@pytest.mark.parametrize("document", [
    b"[]", b'{"scenes": [1]}', b'{"asset": "x", "nodes": ["a"]}', b"[" * 50_000 + b"]" * 50_000,
    b'{"meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}], "nodes": [{"mesh": 0}],'
    b' "accessors": [{"componentType": 5126, "type": "VEC3", "count": 10000000000000}]}',
])
def test_hostile_glb_documents_are_400(client, document):
    assert_error(submit(client, files={"mesh": ("m.glb", _glb_with_json(document))}), 400, "mesh", "GLB")


def test_decompression_bomb_image_is_400(client):
    header = io.BytesIO()
    Image.new("L", (1, 1)).save(header, "PNG")
    data = bytearray(header.getvalue())
    struct.pack_into(">II", data, 16, 30000, 30000)  # IHDR's size: 900 M pixels claimed in a few bytes
    struct.pack_into(">I", data, 29, zlib.crc32(bytes(data[12:29])))  # its checksum, so only the size is wrong
    assert_error(submit(client, model="shap-e-img2img", task="image_to_3d", files={"image": ("a.png", bytes(data))}),
                 400, "image", "too large")


def test_bad_uploads_are_400(client):
    assert_error(submit(client, files={"mesh": ("m.glb", b"this is no glb")}), 400, "mesh", "GLB")
    assert_error(submit(client, files={"sound": ("a.wav", b"RIFF")}), 400, "sound")
    spec = json.dumps({"task": "text_to_3d", "model": "test-cube"})
    assert_error(client.post("/jobs", data={"spec": spec, "mesh": "not a file"}), 400, "mesh", "file part")
    assert_error(client.post("/jobs", data={"spec": spec, "colour": "red"}), 400, "unknown form field 'colour'")
    assert_error(submit(client, files={"image": ("a.png", b"not png")}), 400, "image")
    mesh = mesh_result_to_glb(MeshResult(parts=[MeshPart("m", np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))]))
    assert_error(submit(client, files={"mesh": ("m.glb", mesh), "face_mask": ("mask", b"\1\1")}), 400, "face_mask", "1 triangles")
    assert submit(client, files={"mesh": ("m.glb", mesh), "face_mask": ("mask", b"\1")}).status_code == 201


def test_oversize_upload_is_413(make_client):
    client = make_client(max_upload_mb=0.01)  # 10 KB
    big = {"mesh": ("m.glb", b"\0" * 20_000)}
    assert_error(submit(client, files=big), 413, "limit", "--max-upload-mb")

    def chunked():  # no Content-Length: counted as it streams
        yield b"--b\r\nContent-Disposition: form-data; name=\"spec\"\r\n\r\n{}\r\n"
        for _ in range(30):
            yield b"\0" * 1000

    response = client.post("/jobs", content=chunked(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert_error(response, 413, "limit")
    assert submit(client).status_code == 201  # a small one still goes through


def test_job_runs_to_a_result(client):
    response = submit(client, {"prompt": "a box", "num_inference_steps": 3})
    assert response.status_code == 201
    record = response.json()
    assert record["state"] in ("queued", "running") and record["model"] == "test-cube"
    assert isinstance(record["params"]["seed"], int)  # drawn and stored
    assert record["params"]["step_delay"] == 0.0  # defaults filled in

    done = wait(client, record["id"])
    assert done["state"] == "succeeded" and done["has_result"] and done["error"] is None
    assert (done["step"], done["total"], done["progress"]) == (3, 3, 1.0)
    assert done["result_metadata"] == {"model": "test-cube", "prompt": "a box", "seed": record["params"]["seed"]}
    assert done["started_at"] >= done["created_at"] and done["finished_at"] >= done["started_at"]

    result = client.get(f"/jobs/{record['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "model/gltf-binary"
    parts, extras = read_glb_meshes(result.content)
    assert parts[0].name == "cube" and len(parts[0].faces) == 12 and parts[0].vertex_colors is not None
    assert extras["diffusion3d"]["prompt"] == "a box"

    preview = client.get(f"/jobs/{record['id']}/preview")
    assert preview.status_code == 200 and preview.content.startswith(b"\x89PNG")
    assert client.get("/jobs").json()[0]["id"] == record["id"]


def test_a_result_deleted_while_it_is_sent_arrives_whole(client, tmp_path, monkeypatch):
    """Pruning may delete a result as it is downloaded: the open file still sends every byte
    (with FileResponse, a 500 once the headers were out)."""
    import backend.server

    job_id = submit(client).json()["id"]
    assert wait(client, job_id)["state"] == "succeeded"
    path = next((tmp_path / "cache").rglob("result.glb"))
    expected = path.read_bytes()
    chunks = backend.server._read_chunks

    def delete_then_read(handle, size=1 << 20):
        path.unlink()
        return chunks(handle, size=7)

    monkeypatch.setattr(backend.server, "_read_chunks", delete_then_read)
    response = client.get(f"/jobs/{job_id}/result")
    assert response.status_code == 200 and response.content == expected and not path.exists()
    assert response.headers["content-length"] == str(len(expected))
    assert_error(client.get(f"/jobs/{job_id}/result"), 404, "gone")


def test_a_preview_replaced_while_it_is_read_arrives_whole(client):
    """The worker replaces preview.png while a client downloads it: every answer is one whole
    file, its length as announced (streaming by path once sent one file's length with another's
    bytes)."""
    import threading
    from backend.job_store import write_atomic

    record = wait(client, submit(client, {"prompt": "a box", "num_inference_steps": 1}).json()["id"])
    path = client.app.state.jobs.store.preview_path(record["id"])
    small, large = b"\x89PNG" + b"s" * 3_000, b"\x89PNG" + b"L" * 300_000
    stop = threading.Event()
    write_atomic(path, small)  # before the first request: the job's own preview is neither

    def rewrite():
        while not stop.is_set():
            for data in (small, large):
                write_atomic(path, data)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        for _ in range(150):
            response = client.get(f"/jobs/{record['id']}/preview")
            assert response.content in (small, large), (response.status_code, len(response.content))
            assert int(response.headers["content-length"]) == len(response.content)
    finally:
        stop.set()
        writer.join()


def test_test_texture_paints_an_uploaded_mesh_from_every_side(client):
    import trimesh

    ball = trimesh.creation.icosphere(subdivisions=2)
    glb = mesh_result_to_glb(MeshResult(parts=[MeshPart("ball", ball.vertices.astype(np.float32), ball.faces)]))
    model = next(m for m in client.get("/models").json() if m["name"] == "test-texture")
    assert model["task"] == "texture" and model["params"]["texture_size"] == 1024
    response = submit(client, {"prompt": "bronze", "seed": 1}, model="test-texture", task="texture",
                      files={"mesh": ("ball.glb", glb, "model/gltf-binary")})
    assert response.status_code == 201, response.text
    done = wait(client, response.json()["id"], timeout=60)
    assert done["state"] == "succeeded", done["error"]
    assert (done["phase"], done["step"], done["total"]) == ("paint", 6, 6)  # 4 around + top + bottom, no fill view needed
    assert done["result_metadata"]["texture"]["size"] == 1024
    assert client.get(f"/jobs/{done['id']}/preview").content.startswith(b"\x89PNG")
    parts, _ = read_glb_meshes(client.get(f"/jobs/{done['id']}/result").content)
    assert len(parts[0].faces) == len(ball.faces) and parts[0].uv is not None  # same triangles, unwrapped


def test_explicit_seed_is_kept_and_reproducible(client):
    a = wait(client, submit(client, {"seed": 42}).json()["id"])
    b = wait(client, submit(client, {"seed": 42}).json()["id"])
    assert a["params"]["seed"] == b["params"]["seed"] == 42
    glb_a = client.get(f"/jobs/{a['id']}/result").content
    glb_b = client.get(f"/jobs/{b['id']}/result").content
    assert np.array_equal(read_glb_meshes(glb_a)[0][0].vertex_colors, read_glb_meshes(glb_b)[0][0].vertex_colors)
    c = wait(client, submit(client, {"seed": 43}).json()["id"])  # the seed reaches the model: another one differs
    glb_c = client.get(f"/jobs/{c['id']}/result").content
    assert not np.array_equal(read_glb_meshes(glb_a)[0][0].vertex_colors, read_glb_meshes(glb_c)[0][0].vertex_colors)


def test_unknown_job_is_404_and_unready_result_is_409(client):
    for method, path in [("get", "/jobs/nope"), ("get", "/jobs/nope/result"), ("get", "/jobs/nope/preview"),
                         ("delete", "/jobs/nope")]:
        assert_error(getattr(client, method)(path), 404, "no job with id nope")
    assert_error(client.get("/no/such/route"), 404, "no such endpoint")
    assert_error(client.get("/jobs?limit=0"), 400, "limit")

    job = submit(client, {"num_inference_steps": 100, "step_delay": 0.05}).json()
    assert_error(client.get(f"/jobs/{job['id']}/result"), 409, "result is ready once it has succeeded")
    client.delete(f"/jobs/{job['id']}")
    wait(client, job["id"])
    assert_error(client.get(f"/jobs/{job['id']}/result"), 409, "cancelled")


def test_cancel_running_job_stops_within_a_step(client):
    job = submit(client, {"num_inference_steps": 1000, "step_delay": 0.05}).json()
    running = wait(client, job["id"], until=("running",))
    while running["step"] < 2:
        running = client.get(f"/jobs/{job['id']}").json()
    cancel = client.delete(f"/jobs/{job['id']}")
    assert cancel.status_code == 200
    step_at_cancel = cancel.json()["step"]
    done = wait(client, job["id"])
    assert done["state"] == "cancelled" and not done["has_result"]
    assert done["step"] <= step_at_cancel + 1  # the step under way finishes, no further one starts
    assert client.get("/health").json()["queue_length"] == 0


def test_cancel_queued_job_ends_at_once(client):
    first = submit(client, {"num_inference_steps": 1000, "step_delay": 0.05}).json()
    second = submit(client, {"prompt": "never"}).json()
    assert client.get(f"/jobs/{second['id']}").json()["message"].startswith("queued")
    cancelled = client.delete(f"/jobs/{second['id']}").json()
    assert cancelled["state"] == "cancelled" and cancelled["started_at"] is None
    client.delete(f"/jobs/{first['id']}")
    assert wait(client, first["id"])["state"] == "cancelled"
    assert client.get(f"/jobs/{second['id']}").json()["started_at"] is None  # it never ran
    assert client.delete(f"/jobs/{second['id']}").json()["state"] == "cancelled"  # idempotent


@pytest.mark.parametrize("fail, expected", [
    ("input", "test-cube was asked to fail with an input error"),
    ("unavailable", "test-cube was asked to be unavailable"),
    ("generation", "test-cube was asked to produce an empty surface"),
    ("oom", "out of system memory: lower the resolution (grid, view or texture size), or close programs that hold memory"),
    ("crash", "internal error: ZeroDivisionError: test-cube was asked to crash"),
])
def test_failed_job_keeps_its_error_text(client, fail, expected):
    done = wait(client, submit(client, {"fail": fail}).json()["id"])
    assert done["state"] == "failed" and done["error"] == expected
    assert_error(client.get(f"/jobs/{done['id']}/result"), 409, expected)
    # The worker survives any failure: the next job still runs.
    assert wait(client, submit(client).json()["id"])["state"] == "succeeded"


def test_results_and_errors_are_listed_after_a_restart(make_client):
    first = make_client()
    good = wait(first, submit(first, {"prompt": "kept"}).json()["id"])
    bad = wait(first, submit(first, {"fail": "crash"}).json()["id"])
    glb = first.get(f"/jobs/{good['id']}/result").content
    first.__exit__(None, None, None)

    second = make_client()  # a new process would see the same: a new app on the same cache dir
    listed = {r["id"]: r for r in second.get("/jobs").json()}
    assert listed[good["id"]]["state"] == "succeeded" and listed[good["id"]]["result_metadata"]["prompt"] == "kept"
    assert listed[bad["id"]]["state"] == "failed" and listed[bad["id"]]["error"].startswith("internal error")
    assert [r["id"] for r in second.get("/jobs").json()] == [bad["id"], good["id"]]  # newest first
    assert second.get(f"/jobs/{good['id']}/result").content == glb
    assert second.get(f"/jobs/{good['id']}/preview").status_code == 200


@pytest.mark.parametrize("params, words", [
    ({"prompt": "x" * 5000}, ["prompt is 5,000 characters long", "limit is 4,000"]),
    ({"prompt": ["a", "chair"]}, ["parameter prompt must be text", "['a', 'chair']"]),
    ({"negative_prompt": ["blurry"]}, ["parameter negative_prompt must be text"]),
    ({"negative_prompt": {"a": 1}}, ["parameter negative_prompt must be text"]),
    ({"take_from_b": ["seat", 3]}, ["take_from_b must be a list of str"]),
    ({"take_from_b": ["leg"] * 100}, ["take_from_b has 100 items; the limit is 64"]),
    ({"prompt": "rust", "reference_camera": {"eye": [0, 0]}}, ["reference_camera needs 3-number eye"]),
    ({"prompt": "rust", "reference_camera": {"eye": [[[[[[0]]]]]]}}, ["nested more than 4 levels"]),
])
def test_every_text_list_and_object_parameter_is_typed_and_capped_at_submit(client, params, words):
    """A wrong type or an oversized value is refused before the job exists (it used to fail at
    run time with an internal TypeError, or be accepted and stored)."""
    mesh = mesh_result_to_glb(MeshResult(parts=[MeshPart("m", np.eye(3, dtype=np.float32), np.array([[0, 1, 2]]))]))
    model, task, files = "test-texture", "texture", {"mesh": ("m.glb", mesh)}
    if "take_from_b" in params:
        model, task, files = "builtin", "edit_part", {"mesh": ("m.glb", mesh), "mesh_b": ("b.glb", mesh)}
        params = {**params, "mode": "mix"}
    elif "negative_prompt" in params:
        model, task, files = "builtin", "text_to_3d", {}
    assert_error(submit(client, params, model=model, task=task, files=files), 400, *words)
    assert client.get("/jobs").json() == []


def test_text_that_is_not_unicode_is_400_and_leaves_no_job(client):
    """A lone UTF-16 surrogate used to answer 500 yet create the job, after which every listing
    answered 500 until the record was pruned."""
    spec = '{"task": "text_to_3d", "model": "test-cube", "params": {"prompt": "a chair \\ud800"}}'
    assert_error(client.post("/jobs", data={"spec": spec}), 400, "prompt is not valid text", "surrogate")
    spec = '{"task": "text_to_3d", "model": "test-cube", "params": {"\\udfff": 1}}'
    assert_error(client.post("/jobs", data={"spec": spec}), 400, "unknown parameter", "\\udfff")
    assert client.get("/jobs").status_code == 200 and client.get("/jobs").json() == []


def test_a_spec_sent_as_a_large_file_part_is_read_no_further_than_its_cap(client):
    spec = json.dumps({"task": "text_to_3d", "model": "test-cube", "params": {"prompt": "x" * 200_000}})
    response = client.post("/jobs", files={"spec": ("spec.json", spec.encode())})
    assert_error(response, 400, "spec is larger than 64 KB")
    small = json.dumps({"task": "text_to_3d", "model": "test-cube", "params": {"prompt": "a cube"}})
    assert client.post("/jobs", files={"spec": ("spec.json", small.encode())}).status_code == 201


def test_a_method_a_path_does_not_take_is_405_naming_every_method_it_takes(client):
    response = client.put("/jobs/" + "0" * 32)
    assert_error(response, 405, "PUT is not allowed", "DELETE, GET")
    assert response.headers["Allow"] == "DELETE, GET"
    assert client.request("OPTIONS", "/jobs").headers["Allow"] == "GET, POST"


def test_a_stored_record_that_cannot_be_read_back_is_skipped_not_a_500(client, tmp_path, caplog):
    """Rows an older version or a damaged disk left (a lone surrogate, not JSON, a field of the
    wrong type) are left out of listings with a log line; every other job still lists."""
    import sqlite3

    good = wait(client, submit(client).json()["id"])
    db = sqlite3.connect(tmp_path / "cache" / "jobs.sqlite3")
    damaged = {
        "a" * 32: json.dumps({**good, "id": "a" * 32, "params": {"prompt": "\ud800"}}),  # json.dumps escapes it
        "b" * 32: "{not json",
        "c" * 32: json.dumps({**good, "id": "c" * 32, "step": "three"}),
    }
    with db:
        for job_id, text in damaged.items():
            db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?)", (job_id, good["created_at"] + 1, "failed", text))
    db.close()
    listed = client.get("/jobs")
    assert listed.status_code == 200 and [r["id"] for r in listed.json()] == [good["id"]]
    for job_id in damaged:
        assert_error(client.get(f"/jobs/{job_id}"), 404, job_id)
    assert sum("cannot be read back" in r.message for r in caplog.records) == 3  # once each
