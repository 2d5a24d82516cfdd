"""A no-op job's round trip over loopback HTTP: submit -> done -> result. Target: median <= 50 ms.

Starts a real backend subprocess with the test models, runs N `test-cube` jobs (no step
delay) one after another through the add-on's own client (service/client.py: a connection
per request, as in Blender), and prints median / p90 against the target, with a bare
`GET /health` round trip through the same client as the baseline.

    python bench/bench_job_roundtrip.py [--jobs 50]
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from service.client import BackendClient, BackendError  # noqa: E402  (after the path)

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


def wait_healthy(client: BackendClient, process: subprocess.Popen, timeout: float = 120.0) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if process.poll() is not None:
            raise SystemExit(f"backend exited with {process.returncode}:\n{process.stderr.read()}")
        try:
            client.health(timeout=1)
            return time.perf_counter() - t0
        except BackendError:
            pass
        time.sleep(0.05)
    raise SystemExit("backend did not answer /health in time")


def round_trip(client: BackendClient) -> tuple[float, float, float]:
    """One job; returns (submit, wait, result) in seconds."""
    t0 = time.perf_counter()
    job_id = client.submit("text_to_3d", {"prompt": "bench", "step_delay": 0.0}, "test-cube")["id"]
    t1 = time.perf_counter()
    while (state := client.job(job_id)["state"]) in ("queued", "running"):
        time.sleep(POLL_S)
    if state != "succeeded":
        raise SystemExit(f"job {job_id} ended {state}")
    t2 = time.perf_counter()
    assert client.result(job_id)[:4] == b"glTF"
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
            client = BackendClient(url, token, timeout=10)
            startup = wait_healthy(client, process)
            for _ in range(args.warmup):
                round_trip(client)
            health = []
            for _ in range(args.jobs):
                t0 = time.perf_counter()
                client.health()
                health.append(time.perf_counter() - t0)
            parts = [round_trip(client) for _ in range(args.jobs)]
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
