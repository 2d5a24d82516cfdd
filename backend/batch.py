"""`python -m backend batch JOBS.jsonl --out-dir DIR`: many jobs from one file, in this process.

One JSON object per line:

    {"name": "chair-01", "task": "text_to_3d", "model": "builtin", "prompt": "a chair", "params": {"seed": 1}}
    {"task": "texture", "mesh": "meshes/statue.glb", "prompt": "weathered bronze"}
    {"task": "image_to_3d", "image": "photos/mug.png"}
    {"task": "edit_part", "mesh": "chair.glb", "parts": "leg", "prompt": "an office chair on wheels"}

`task` defaults to text_to_3d (image_to_3d when an `image` is named); `prompt` joins `params`;
`mesh`, `image`, `mesh_b`, `texture` and `face_mask` name files (relative to the JSONL file's
folder, or to the output folder when they start with `$OUT/`; meshes in any format `generate`
reads), read when the row runs, so a row may take what an earlier row wrote; `parts` chooses an
edit's parts by name instead of a face mask (examples/part_edits.jsonl). For each row the output folder gets
`<name>.glb`, `<name>.png` (a preview) and `<name>.json` (the row's model, params, notes and
metadata), written whole or not at all, the `.json` last: a row whose `.json` says it succeeded
is skipped when the batch runs again, so an interrupted batch resumes where it stopped and
never makes a row twice. A row that cannot run (bad JSON, a missing file, an empty prompt) is
recorded with its error and the batch goes on. `results.jsonl` lists every row's outcome for
the run.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .errors import GenerationFailed, InputError, JobCancelled, ModelUnavailable
from .input_files import face_mask_for_parts, mesh_as_glb, read_file

MAX_LINE_BYTES = 1 << 20  # a row is a few hundred bytes; a megabyte is not a row
MAX_ROWS = 1_000_000
FILE_FIELDS = ("mesh", "image", "mesh_b", "texture", "face_mask")
ROW_FIELDS = {"name", "task", "model", "prompt", "params", "parts", *FILE_FIELDS}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
OUT_PREFIX = "$OUT/"  # a file an earlier row wrote: "$OUT/chair.glb"


@dataclass
class Row:
    """One line of the batch file, checked: what to run and where its outputs go."""

    number: int
    name: str
    task: str = ""
    model: Optional[str] = None
    params: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)  # read when the row runs: an earlier row may make them
    parts: Optional[str] = None  # an edit's chosen parts, by name, instead of a face_mask file
    error: str = ""  # why it cannot run; set instead of everything above it

    def read_files(self, folder: Path, out_dir: Path) -> dict[str, bytes]:
        """The row's files, as uploads (meshes as GLB): paths relative to `folder`, the JSONL
        file's, or to the output folder when they start with OUT_PREFIX."""
        located = {key: out_dir / path[len(OUT_PREFIX):] if path.startswith(OUT_PREFIX) else folder / path
                   for key, path in self.paths.items()}
        files = {key: mesh_as_glb(str(path)) if key in ("mesh", "mesh_b") else read_file(str(path), key)
                 for key, path in located.items()}
        if self.parts is not None:
            files["face_mask"] = face_mask_for_parts(files["mesh"], self.parts)
        return files


@dataclass
class Summary:
    succeeded: int = 0
    skipped: int = 0  # done by an earlier run
    failed: int = 0


def read_rows(path: Path) -> list[Row]:
    """Every row of the file, each checked on its own (a bad row does not spoil the others).

    Raises:
        InputError: the file itself cannot be read, or holds more than MAX_ROWS rows.
    """
    if not path.is_file():
        raise InputError(f"no batch file at {path}")
    rows, names = [], {}
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number > MAX_ROWS:
                raise InputError(f"{path} has more than {MAX_ROWS:,} rows; split it into several batches")
            if not raw.strip():
                continue
            row = _parse(raw, number)
            if not row.error and row.name in names:
                row.error = f"the name {row.name!r} is row {names[row.name]}'s already: give each row its own name"
            names.setdefault(row.name, number)
            rows.append(row)
    return rows


def _parse(raw: bytes, number: int) -> Row:
    row = Row(number=number, name=f"row-{number:06d}")
    try:
        if len(raw) > MAX_LINE_BYTES:
            raise InputError(f"the line is {len(raw):,} bytes; a row is at most {MAX_LINE_BYTES:,}")
        try:
            data = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as error:
            raise InputError(f"not a JSON object ({error})") from None
        if not isinstance(data, dict):
            raise InputError("not a JSON object")
        unknown = sorted(set(data) - ROW_FIELDS)
        if unknown:
            raise InputError(f"unknown fields {', '.join(unknown)}; a row has {', '.join(sorted(ROW_FIELDS))}")
        if "name" in data:
            if not isinstance(data["name"], str) or not NAME.fullmatch(data["name"]):
                raise InputError("name must be 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit")
            row.name = data["name"]
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise InputError("params must be a JSON object")
        row.params = dict(params)
        if "prompt" in data:
            row.params["prompt"] = data["prompt"]
        row.task = str(data.get("task") or ("image_to_3d" if "image" in data else "text_to_3d"))
        row.model = data.get("model") if isinstance(data.get("model"), str) else None
        for key in FILE_FIELDS:
            if key in data:
                if not isinstance(data[key], str) or not data[key]:
                    raise InputError(f"{key} must be a file path")
                row.paths[key] = data[key]
        if "parts" in data:
            if not isinstance(data["parts"], str) or "mesh" not in row.paths or "face_mask" in row.paths:
                raise InputError("parts must be comma-separated part names, with the mesh they are parts of "
                                 "(and no face_mask)")
            row.parts = data["parts"]
    except InputError as error:
        row.error = str(error)
    return row


class RowRunner:
    """Runs rows one after another in this process, loading each model once (the last one used
    stays loaded). The local batch uses one; on Ray each worker holds its own."""

    def __init__(self, rows_folder: Path, out_dir: Path, load_options):
        from .models import registry

        self.rows_folder, self.out_dir, self.load_options = rows_folder, out_dir, load_options
        self.entries = registry()
        self.loaded: dict[str, Any] = {}

    def run(self, row: Row, before_row: Optional[Callable[[Row], None]] = None) -> dict[str, Any]:
        """The row's outcome for results.jsonl: succeeded, or failed with its error (never raises
        for a row's own fault)."""
        from .jobs import check_inputs, checked_request
        from .models import get_entry

        outcome: dict[str, Any] = {"row": row.number, "name": row.name}
        started = time.monotonic()
        try:
            if row.error:
                raise InputError(row.error)
            entry = get_entry(row.task, row.model, self.entries)
            files = row.read_files(self.rows_folder, self.out_dir)
            check_inputs(row.task, files)
            params = checked_request(entry, row.params, files)
            if before_row:
                before_row(row)
            if entry.name not in self.loaded:
                self.loaded.clear()
                self.loaded[entry.name] = entry.load(self.load_options)
            _run_row(entry, self.loaded[entry.name], params, files, row, self.out_dir)
            outcome.update(state="succeeded", seconds=round(time.monotonic() - started, 3))
        except (InputError, ModelUnavailable, GenerationFailed, JobCancelled, ValueError) as error:
            outcome.update(state="failed", error=str(error))
        return outcome


def run_batch(rows_path: Path, out_dir: Path, load_options, progress: bool = True,
              before_row: Optional[Callable[[Row], None]] = None, ray_address: Optional[str] = None,
              on_outcome: Optional[Callable[[dict], None]] = None, workers: Optional[int] = None) -> Summary:
    """Run every row not done yet: in this process one after another, or spread over a Ray cluster.

    Args:
        rows_path: The JSONL file.
        out_dir: Where the outputs go (made if missing; on Ray, a folder every node reaches).
        load_options: backend.models.LoadOptions for every model (on Ray: each worker picks its
            own device).
        progress: Show a progress bar on stderr (rows, rows a second, time left).
        before_row: Called before each row runs here (tests interrupt a batch with it).
        ray_address: None runs here; "local" starts a Ray cluster on this machine; anything else
            is the address of a running one ("auto": the one this machine belongs to).
        on_outcome: Called with each row's outcome as it comes (tests stop a worker with it).
        workers: On Ray, at most this many workers (default: one per GPU, else per CPU core).

    Returns:
        How many rows succeeded, were skipped as done, or failed.
    """
    from tqdm import tqdm

    out_dir.mkdir(parents=True, exist_ok=True)
    rows, summary = read_rows(rows_path), Summary()
    settled = [_settled(row, out_dir) for row in rows]  # bad or done before: known without running
    pending = [row for row, outcome in zip(rows, settled) if outcome is None]
    if ray_address is None:
        runner = RowRunner(rows_path.parent, out_dir, load_options)
        outcomes = (runner.run(row, before_row) for row in pending)
    else:
        from .cluster.ray_batch import run_on_ray

        outcomes = run_on_ray(pending, rows_path.parent, out_dir, load_options, ray_address, workers)
    with (out_dir / "results.jsonl").open("w", encoding="utf-8") as results, \
            tqdm(total=len(rows), unit="row", disable=not progress, file=sys.stderr) as bar:
        for outcome in [o for o in settled if o is not None]:
            _record(outcome, summary, results, bar)
        for outcome in outcomes:
            _record(outcome, summary, results, bar)
            if on_outcome:
                on_outcome(outcome)
    return summary


def _settled(row: Row, out_dir: Path) -> Optional[dict[str, Any]]:
    if row.error:
        return {"row": row.number, "name": row.name, "state": "failed", "error": row.error}
    if _done(out_dir, row.name):  # (a row reusing a done row's name has its error instead)
        return {"row": row.number, "name": row.name, "state": "skipped: done by an earlier run"}
    return None


def _record(outcome: dict[str, Any], summary: Summary, results, bar) -> None:
    state = str(outcome.get("state", ""))
    if state == "succeeded":
        summary.succeeded += 1
    elif state.startswith("skipped"):
        summary.skipped += 1
    else:
        summary.failed += 1
    results.write(json.dumps(outcome) + "\n")
    results.flush()
    bar.update(1)


def _done(out_dir: Path, name: str) -> bool:
    try:
        return json.loads((out_dir / f"{name}.json").read_text(encoding="utf-8")).get("state") == "succeeded"
    except (OSError, ValueError, AttributeError):
        return False


def _run_row(entry, pipe, params: dict[str, Any], files: dict[str, bytes], row: Row, out_dir: Path) -> None:
    from .geometry.glb import mesh_result_to_glb
    from .job_store import write_atomic
    from .job_run import png_bytes
    from .render.preview import render_result

    last_preview: dict[str, Any] = {}

    def callback(phase, step, total, preview=None, within=0.0, state=None, checkpoint=None):
        if preview is not None:
            last_preview["image"] = preview

    result = entry.run(pipe, params, files, callback)
    for index, image in enumerate(result.candidates):
        write_atomic(out_dir / f"{row.name}-candidate-{index}.png", png_bytes(image))
    if result.parts:
        write_atomic(out_dir / f"{row.name}.glb", mesh_result_to_glb(result))
        preview = render_result(result)
    else:
        preview = last_preview.get("image")
    if preview is not None:
        write_atomic(out_dir / f"{row.name}.png", png_bytes(preview))
    record = {"state": "succeeded", "row": row.number, "task": row.task, "model": entry.name, "params": params,
              "notes": result.metadata.get("notes", []), "metadata": result.metadata}
    write_atomic(out_dir / f"{row.name}.json", json.dumps(record, indent=1, default=str).encode())  # last: done
