"""What hostile requests cost a shared backend: memory per GLB upload, and growth over many requests.

1. The reader over mutated GLBs (tests/fixtures/glb_fuzz.py) and the crash corpus, in this
   process: the peak bytes it allocates per input (tracemalloc, which sees numpy's arrays),
   as a multiple of the input's size. The worst inputs found go on to step 2.
2. A real backend (`serve`, test models on) sent each worst input as a texture upload: the
   rise of its peak resident memory (VmHWM, reset before each request) per upload byte.
   Beside them, a plain mesh of the same size: what an honest upload costs.
3. 1,000 mixed requests (jobs that run, bad specs, hostile GLBs, oversized and non-Unicode
   prompts, wrong tokens, listings): resident memory after the first 10 and after all.

    .venv/bin/python bench/bench_hostile_requests.py [--inputs 3000] [--requests 1000]

Linux only (reads /proc). Targets (issue 14): GLB uploads cost <= 50x their size; <= 10% growth.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "fixtures")]

from formats.glb import GLBError, read_glb, write_glb  # noqa: E402
from glb_fuzz import mutated_glbs  # noqa: E402


def reader_peaks(count: int) -> list[tuple[float, int, bytes]]:
    """(peak bytes / input bytes, peak bytes, input) for mutated inputs and the corpus, worst first."""
    inputs = list(mutated_glbs(seed=7, count=count))
    inputs += [p.read_bytes() for p in sorted((ROOT / "tests" / "fixtures" / "glb_crashes").glob("*.glb"))]
    inputs += [instancing_bomb(n) for n in (10, 30, 100, 300, 1000)]
    out = []
    tracemalloc.start()
    for data in inputs:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        try:
            read_glb(data)
        except GLBError:
            pass
        peak = tracemalloc.get_traced_memory()[1] - before
        out.append((peak / max(len(data), 1), peak, data))
    tracemalloc.stop()
    return sorted(out, key=lambda row: -row[1])


def instancing_bomb(instances: int) -> bytes:
    """One small mesh under `instances` nodes: within glTF's rules, it expands as far as the
    reader's budget lets any file of its size (the worst case by construction, not by search)."""
    mesh = plain_mesh(20_000)
    import struct

    length = struct.unpack_from("<I", mesh, 12)[0]
    doc = json.loads(mesh[20 : 20 + length])
    doc["nodes"] = [{"children": list(range(1, instances + 1))}] + [
        {"mesh": 0, "translation": [i, 0, 0]} for i in range(instances)]
    doc["scenes"] = [{"nodes": [0]}]
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    binary = mesh[20 + length:]
    return struct.pack("<III", 0x46546C67, 2, 12 + 8 + len(text) + len(binary)) + struct.pack(
        "<II", len(text), 0x4E4F534A) + text + binary


def plain_mesh(size: int) -> bytes:
    """A grid mesh of about `size` bytes: what an honest upload of that size is."""
    side = max(2, int((size / 36) ** 0.5))
    u, v = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    vertices = np.stack([u.ravel(), np.sin(3 * u.ravel()) * v.ravel(), v.ravel()], 1).astype(np.float32)
    i = np.arange(side - 1)[:, None] * side + np.arange(side - 1)[None, :]
    faces = np.concatenate([np.stack([i, i + 1, i + side], -1).reshape(-1, 3),
                            np.stack([i + 1, i + side + 1, i + side], -1).reshape(-1, 3)])
    return write_glb(vertices, faces)


class Backend:
    """`python -m backend serve` on a free loopback port, with the test models."""

    def __init__(self, cache: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token = secrets.token_urlsafe(16)
        env = {**os.environ, "DIFFUSION3D_TEST_MODELS": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "backend", "serve", "--port", str(self.port), "--token", self.token,
             "--cache-dir", cache, "--device", "cpu", "--threads", "1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.url = f"http://127.0.0.1:{self.port}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {self.token}"
        for _ in range(300):
            try:
                if self.session.get(self.url + "/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the backend did not start")

    def status(self, key: str) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(key)

    def submit(self, spec: dict, files: dict | None = None, token: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        files = {name: (name, data) for name, data in (files or {}).items()}
        return self.session.post(self.url + "/jobs", data={"spec": json.dumps(spec)}, files=files, headers=headers,
                                 timeout=60).status_code

    def upload_peak(self, mesh: bytes) -> tuple[int, int]:
        """(status, rise of peak resident memory) for one texture upload."""
        Path(f"/proc/{self.process.pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        before = self.status("VmRSS")
        status = self.submit({"task": "texture", "model": "test-texture", "params": {"prompt": "rust"}}, {"mesh": mesh})
        return status, self.status("VmHWM") - before

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def mixed_requests(backend: Backend, n: int, hostile: list[bytes]) -> list[int]:
    """n requests cycling through good and bad kinds; returns resident memory after the first 10 and at the end."""
    good_mesh = plain_mesh(20_000)
    kinds = [
        lambda: backend.submit({"task": "text_to_3d", "model": "test-cube", "params": {"prompt": "a cube"}}),
        lambda: backend.submit({"task": "text_to_3d", "model": "test-cube", "params": {"prompt": "x" * 5000}}),
        lambda: backend.session.post(backend.url + "/jobs", data={"spec": '{"task": "text_to_3d", "params": '
                                                                          '{"prompt": "\\ud800"}}'}).status_code,
        lambda: backend.submit({"task": "text_to_3d", "model": "builtin", "params": {"negative_prompt": {"a": 1}}}),
        lambda: backend.submit({"task": "texture", "model": "test-texture", "params": {"prompt": "rust"}},
                               {"mesh": hostile[np.random.randint(len(hostile))]}),
        lambda: backend.submit({"task": "texture", "model": "test-texture",
                                "params": {"prompt": "rust", "num_views": 1, "fill_views": 0,
                                           "top_and_bottom": False}}, {"mesh": good_mesh}),
        lambda: backend.submit({"task": "text_to_3d"}, token="wrong"),
        lambda: backend.session.get(backend.url + "/jobs?limit=1000").status_code,
        lambda: backend.session.get(backend.url + "/jobs/" + "0" * 32).status_code,
        lambda: backend.session.post(backend.url + "/jobs", data={"spec": "[" * 30000}).status_code,
    ]
    rss, statuses = [], {}
    for i in range(n):
        status = kinds[i % len(kinds)]()
        statuses[status] = statuses.get(status, 0) + 1
        if i + 1 in (10, n):
            while backend.session.get(backend.url + "/health").json()["queue_length"]:  # let jobs finish
                time.sleep(0.05)
            rss.append(backend.status("VmRSS"))
    print(f"  statuses: {dict(sorted(statuses.items()))}")
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=int, default=3000, help="mutated GLBs to scan in step 1")
    parser.add_argument("--requests", type=int, default=1000, help="mixed requests in step 3")
    args = parser.parse_args()

    print(f"1. reader over {args.inputs} mutated GLBs and the crash corpus (tracemalloc peak)")
    peaks = reader_peaks(args.inputs)
    worst = peaks[:5] + sorted(peaks, key=lambda row: -row[0])[:5]
    for ratio, peak, data in worst:
        print(f"  {len(data):>9,} B input  peak {peak / 2**20:8.2f} MB  {ratio:9.1f}x its size")

    with tempfile.TemporaryDirectory() as cache:
        backend = Backend(cache)
        try:
            print("2. a real backend: peak resident memory per texture upload (VmHWM rise)")
            seen = set()
            for _, _, data in worst:
                if data in seen:
                    continue
                seen.add(data)
                status, rise = backend.upload_peak(data)
                honest_status, honest = backend.upload_peak(plain_mesh(len(data)))
                print(f"  {len(data):>9,} B  {status}  +{rise / 2**20:7.2f} MB  {rise / len(data):8.1f}x   "
                      f"| plain mesh of that size: {honest_status}  +{honest / 2**20:7.2f} MB  "
                      f"{honest / len(data):8.1f}x")
            print(f"3. {args.requests} mixed requests")
            hostile = [data for _, _, data in worst]
            first, last = mixed_requests(backend, args.requests, hostile)
            print(f"  resident memory after 10: {first / 2**20:.1f} MB, after {args.requests}: {last / 2**20:.1f} MB "
                  f"({(last - first) / first:+.1%})")
        finally:
            backend.close()


if __name__ == "__main__":
    main()
