"""Main-thread work per modal timer tick while a job streams progress.

    python bench/bench_modal_tick.py [--source backend|fake] [--seconds 5]

`backend`: a real backend subprocess runs test-cube slowly (DIFFUSION3D_TEST_MODELS=1) while a
worker thread polls it, exactly as in the add-on; `fake`: a thread bumps the job's progress
and writes a new preview PNG every 50 ms (worst case). The main thread calls the driver's
`tick()` every 100 ms, as the window-manager timer does, and times each call. The final
write-back tick is reported separately (it is not streaming work).
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import zlib

import bpy
import numpy as np
from addon_loader import ROOT, load_addon

TICK = 0.1  # the add-on's timer interval (operators/jobs.py)


def png(rgb: np.ndarray) -> bytes:
    """A tiny PNG encoder (numpy + zlib) for the fake preview source."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\0" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def fake_source(job, seconds: float, folder: str):
    rng = np.random.default_rng(0)
    total = int(seconds / 0.005)
    for step in range(1, total + 1):
        time.sleep(0.005)
        job.state, job.phase, job.step, job.total = "running", "denoise", step, total
        job.progress, job.eta_s = step / total, (total - step) * 0.005
        job.version += 1
        if step % 10 == 0:
            path = os.path.join(folder, f"preview{step}.png")
            with open(path, "wb") as handle:
                handle.write(png(np.full((64, 64, 3), rng.integers(0, 256, 3), np.uint8)))
            job.preview_path = path
            job.preview_version += 1
    job.state = "cancelled"  # ends without a result: only streaming is measured
    job.version += 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", choices=("backend", "fake"), default="backend")
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    load_addon()
    from diffusion3d.operators import jobs
    from diffusion3d.service.session import LOCAL, BackendSettings

    user_dir = tempfile.mkdtemp()
    job = jobs.add_job(jobs.Job(jobs.JobRequest(
        "text_to_3d", {"prompt": "bench", "num_inference_steps": int(args.seconds / 0.02), "step_delay": 0.02},
        "bench", "test-cube")))
    if args.source == "backend":
        os.environ["DIFFUSION3D_TEST_MODELS"] = "1"
        settings = BackendSettings(python=sys.executable, extension_dir=str(ROOT), user_dir=user_dir, device="cpu")
        worker = jobs.start_worker(job, settings)
        while job.state in ("submitting", "queued") and worker.is_alive():  # startup is not streaming
            time.sleep(0.05)
    else:
        worker = threading.Thread(target=fake_source, args=(job, args.seconds, user_dir), daemon=True)
        worker.start()

    streaming, final = [], None
    while True:
        time.sleep(TICK)
        finished_before = job.state == "succeeded" and job.result is not None
        start = time.perf_counter()
        jobs.tick(bpy.context, [job])
        elapsed = (time.perf_counter() - start) * 1000
        if finished_before:
            final = elapsed
        else:
            streaming.append(elapsed)
        if job.done:
            break
    LOCAL.stop()
    print(f"source: {args.source}; job ended '{job.state}' {job.error or ''}; steps {job.step}/{job.total}; "
          f"previews loaded {job.preview_version}")
    print(f"ticks while streaming: {len(streaming)}; median {statistics.median(streaming):.3f} ms; "
          f"longest {max(streaming):.3f} ms (target <= 20 ms)")
    if final is not None:
        print(f"final tick with the write-back: {final:.1f} ms")


if __name__ == "__main__":
    main()
