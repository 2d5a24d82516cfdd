"""formats/glb.py's reader on hostile bytes: it reads a file or refuses it with GLBError, never
crashes, hangs or runs out of memory; and it reads back every kind of GLB the project writes.

The reader runs in a child process with its address space capped, so a segfault, a hang or a
blow-up costs the child, not pytest. Inputs that fail are kept in tests/fixtures/glb_crashes/,
where the regression test reads them on every run. `pytest -s` prints the fuzz counts.
"""

import hashlib
import os
import select
import struct
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from backend.geometry.glb import mesh_result_to_glb
from backend.models import run_test_cube
from backend.results import MeshPart, MeshResult
from formats.glb import read_glb, write_glb
from tests.fixtures.glb_fuzz import CRASHES, mutated_glbs

ROOT = Path(__file__).resolve().parents[2]
FUZZ_SEED, FUZZ_INPUTS, FUZZ_SECONDS = 0, 9000, 18.0  # whichever ends first; ~20 s on 2 cores
MEMORY_LIMIT = 3 << 30  # bytes of address space: a blow-up becomes a MemoryError, not a dead runner
INPUT_TIMEOUT = 10.0  # seconds per input

# Reads length-prefixed files from stdin, answers one line each: "accepted", "refused" (GLBError),
# or "<exception> in <function>: <message>".
_CHILD = r"""
import faulthandler, resource, struct, sys, traceback, warnings
import numpy as np
from formats.glb import GLBError, read_glb, read_glb_extras
faulthandler.enable()  # a segfault prints the Python stack, which says where
warnings.simplefilter("ignore")
np.seterr(all="ignore")
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

def outcome(read, data):
    try:
        read(data)
        return "accepted"
    except GLBError:
        return "refused"
    except BaseException as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        where = ([f for f in frames if "/formats/" in f.filename] or frames)[-1].name
        return f"{type(exc).__name__} in {where}: {str(exc)[:120]}"

stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
while header := stdin.read(4):
    data = stdin.read(struct.unpack("<I", header)[0])
    extras = outcome(read_glb_extras, data)
    scene = outcome(lambda d: read_glb(d, centre_far_off=True), data)
    reply = scene if extras in ("accepted", "refused") else extras
    stdout.write(reply.replace("\n", " ").encode() + b"\n")
    stdout.flush()
"""


class ReaderProcess:
    """formats.glb's reader in a child process, restarted after a crash, a hang or a MemoryError."""

    def __init__(self, log: Path):
        self.log, self.proc = log, None
        self._start()

    def _start(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
        with open(self.log, "wb") as stderr:
            self.proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(MEMORY_LIMIT)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, cwd=ROOT,
                                         env=env)

    def read(self, data: bytes) -> str:
        """"accepted", "refused", or how the reader failed: "<what> in <function>: <details>", "timeout"."""
        try:
            self.proc.stdin.write(struct.pack("<I", len(data)) + data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # it died: the read below says how
        if not select.select([self.proc.stdout], [], [], INPUT_TIMEOUT)[0]:
            self.proc.kill()
            self.proc.wait()
            self._start()
            return "timeout"
        reply = self.proc.stdout.readline().decode().strip()
        if not reply:  # the child died on this input
            _, status, usage = os.wait4(self.proc.pid, 0)
            self.proc.returncode = code = os.waitstatus_to_exitcode(status)
            log = self.log.read_text(errors="replace").splitlines()
            where = [line.split(" in ")[-1] for line in log if "/formats/" in line and " in " in line]
            self._start()
            if code >= 0:  # not the reader: the runner itself broke
                return f"runner exited {code}: {log[-1] if log else ''}"
            # A failed allocation under the cap can kill numpy's BLAS outright: the peak tells a blow-up.
            peak = usage.ru_maxrss / 2**20  # ru_maxrss is in KiB
            return f"signal {-code}" + (f" in {where[0]}" if where else "") + f": peak memory {peak:.1f} GiB"
        if reply.startswith("MemoryError"):
            self.close()
            self._start()
        return reply

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


@pytest.fixture(scope="module")
def reader(tmp_path_factory):
    process = ReaderProcess(tmp_path_factory.mktemp("glb_reader") / "stderr.txt")
    yield process
    process.close()


def _keep(data: bytes) -> Path:
    """Save a failing input to the regression corpus, named by its content."""
    CRASHES.mkdir(exist_ok=True)
    path = CRASHES / f"{hashlib.sha1(data).hexdigest()[:12]}.glb"
    path.write_bytes(data)
    return path


def test_reader_survives_mutated_glbs(reader):
    counts, smallest = Counter(), {}  # smallest: failure kind -> (input, outcome)
    start = time.monotonic()
    for data in mutated_glbs(FUZZ_SEED, FUZZ_INPUTS):
        if time.monotonic() - start > FUZZ_SECONDS:
            break
        outcome = reader.read(data)
        counts[outcome if outcome in ("accepted", "refused") else "failed"] += 1
        kind = outcome.split(":")[0]  # the exception and where, not its message's numbers
        if outcome not in ("accepted", "refused") and (kind not in smallest or len(data) < len(smallest[kind][0])):
            smallest[kind] = (data, outcome)
    print(f"\nGLB fuzz: {sum(counts.values())} inputs in {time.monotonic() - start:.0f} s: {counts['accepted']} "
          f"accepted, {counts['refused']} refused, {counts['failed']} failed ({len(smallest)} kinds)")
    kept = [f"{_keep(data).relative_to(ROOT)}: {outcome}" for data, outcome in smallest.values()]
    assert not kept, "the GLB reader failed; the smallest input of each kind is kept:\n" + "\n".join(kept)


@pytest.mark.parametrize("path", sorted(CRASHES.glob("*.glb")), ids=lambda p: p.name)
def test_reader_refuses_or_reads_known_bad_glbs(reader, path):
    outcome = reader.read(path.read_bytes())
    assert outcome in ("accepted", "refused"), f"{path.name}: {outcome}"


# ---------------------------------------------------------------------------- round trip

VERTS = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], np.float32)
FACES = np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3], [1, 4, 2]], np.int64)
UV = np.random.default_rng(0).random((5, 2)).astype(np.float32)
RGBA = np.random.default_rng(1).integers(0, 256, (5, 4)).astype(np.uint8)
TURNED = np.array([[0, -2, 0, 1], [2, 0, 0, 2], [0, 0, 2, 3], [0, 0, 0, 1]], np.float64)  # rotation, scale 2, move
MIRRORED = np.diag([-1.0, 1.0, 1.0, 1.0])
SHEARED = np.array([[1, 0.5, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)  # written baked


def _placed(matrix: np.ndarray, name: str) -> MeshPart:
    return MeshPart(name, VERTS @ matrix[:3, :3].T.astype(np.float32) + matrix[:3, 3], FACES, node_matrix=matrix)


def _result(*parts: MeshPart, texture: bool = False) -> MeshResult:
    return MeshResult(list(parts), np.full((4, 4, 3), 90, np.uint8) if texture else None, {"prompt": "x"})


CUBE = run_test_cube(None, {"num_inference_steps": 1, "step_delay": 0.0, "fail": "", "prompt": "", "seed": 1}, {},
                     lambda *a, **k: None)
ORIGIN = np.array([1e6, -2e6, 30.0])
WRITTEN = {  # name: (GLB bytes, the parts written)
    "write_glb": (write_glb(VERTS, FACES), [MeshPart("mesh", VERTS, FACES)]),
    "write_glb_uv_colors": (write_glb(VERTS, FACES, UV, RGBA / 255.0, {"diffusion3d": {"seed": 1}}),
                            [MeshPart("mesh", VERTS, FACES)]),
    "write_glb_uv": (write_glb(VERTS, FACES, uv=UV), [MeshPart("mesh", VERTS, FACES)]),
    "result_colors": _result(MeshPart("mesh", VERTS, FACES, RGBA)),
    "result_uv_texture": _result(MeshPart("mesh", VERTS, FACES, uv=UV), texture=True),
    "result_parts": _result(MeshPart("a", VERTS, FACES, RGBA, UV), MeshPart("b", VERTS + 2, FACES),
                            MeshPart("c", VERTS - 1, FACES[:2], uv=UV), texture=True),
    "result_node_matrix": _result(_placed(TURNED, "turned"), _placed(MIRRORED, "mirrored"),
                                  _placed(SHEARED, "sheared")),
    "result_origin": _result(MeshPart("far", VERTS, FACES, origin=ORIGIN), MeshPart("far2", VERTS * 2, FACES,
                                                                                    origin=ORIGIN)),
    "test_cube": CUBE,
}


@pytest.mark.parametrize("name", WRITTEN)
def test_every_glb_we_write_reads_back(name):
    written = WRITTEN[name]
    data, parts = written if isinstance(written, tuple) else (mesh_result_to_glb(written), written.parts)
    scene = read_glb(data, centre_far_off=True)
    got = {p.name: p for p in scene.parts}
    assert sorted(got) == sorted(p.name for p in parts)
    shift = np.zeros(3) if scene.origin is None else scene.origin
    for want in parts:
        origin = np.zeros(3) if want.origin is None else want.origin
        np.testing.assert_allclose(got[want.name].vertices + shift, np.asarray(want.vertices, np.float64) + origin,
                                   rtol=1e-6, atol=1e-5)
        np.testing.assert_array_equal(got[want.name].faces, want.faces)
