"""A no-op job's round trip over loopback HTTP: submit -> done -> result. Target: median <= 50 ms.

Starts a real backend subprocess with the test models, runs N `test-cube` jobs (no step
delay) one after another, and prints median / p90 against the target, with a bare
`GET /health` round trip measured on the same connection as the baseline.

    python bench/bench_job_roundtrip.py [--jobs 50]
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 50.0
POLL_S = 0.002  # how often a client asks; at most this much of each round trip is waiting to ask


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_backend(port: int, token: str, cache_dir: str) -> subprocess.Popen:
    env = {**os.environ, "DIFFUSION3D_TEST_MODELS": "1", "DIFFUSION3D_TOKEN": token}
    command = [sys.executable, "-m", "backend", "serve", "--port", str(port), "--cache-dir", cache_dir, "--device", "cpu"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_healthy(session: requests.Session, url: str, process: subprocess.Popen, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if process.poll() is not None:
            raise SystemExit(f"backend exited with {process.returncode}:\n{process.stderr.read()}")
        try:
            if session.get(f"{url}/health", timeout=1).ok:
                return time.perf_counter() - t0
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    raise SystemExit("backend did not answer /health in time")


def round_trip(session: requests.Session, url: str) -> tuple[float, float, float]:
    """One job; returns (submit, wait, result) in seconds."""
    spec = {"task": "text_to_3d", "model": "test-cube", "params": {"prompt": "bench", "step_delay": 0.0}}
    t0 = time.perf_counter()
    response = session.post(f"{url}/jobs", files={"spec": (None, json.dumps(spec))}, timeout=10)
    response.raise_for_status()
    job_id = response.json()["id"]
    t1 = time.perf_counter()
    while (state := session.get(f"{url}/jobs/{job_id}", timeout=10).json()["state"]) in ("queued", "running"):
        time.sleep(POLL_S)
    if state != "succeeded":
        raise SystemExit(f"job {job_id} ended {state}")
    t2 = time.perf_counter()
    result = session.get(f"{url}/jobs/{job_id}/result", timeout=10)
    result.raise_for_status()
    assert result.content[:4] == b"glTF"
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()

    port, token = free_port(), "bench-token"
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as cache_dir:
        process = start_backend(port, token, cache_dir)
        try:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            startup = wait_healthy(session, url, process)
            for _ in range(args.warmup):
                round_trip(session, url)
            health = []
            for _ in range(args.jobs):
                t0 = time.perf_counter()
                session.get(f"{url}/health", timeout=10).raise_for_status()
                health.append(time.perf_counter() - t0)
            parts = [round_trip(session, url) for _ in range(args.jobs)]
        finally:
            process.terminate()
            process.wait(timeout=30)

    totals = [1000 * sum(p) for p in parts]
    median, p90 = statistics.median(totals), percentile(totals, 0.9)
    baseline = 1000 * statistics.median(health)
    print(f"backend startup to first /health: {startup:.2f} s")
    print(f"no-op job round trip over {args.jobs} jobs (submit -> done -> result), client polls every {POLL_S * 1000:g} ms:")
    print(f"  median {median:.1f} ms   p90 {p90:.1f} ms   min {min(totals):.1f} ms   max {max(totals):.1f} ms")
    for name, index in (("submit", 0), ("wait", 1), ("result", 2)):
        print(f"  {name:7} median {1000 * statistics.median(p[index] for p in parts):.1f} ms")
    print(f"  target median <= {TARGET_MS:g} ms: median / target = {median / TARGET_MS:.2f} "
          f"({'met' if median <= TARGET_MS else 'NOT met'})")
    print(f"baseline GET /health median {baseline:.2f} ms; round trip / baseline = {median / baseline:.1f}x")


if __name__ == "__main__":
    main()
