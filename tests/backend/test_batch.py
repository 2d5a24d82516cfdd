"""`python -m backend batch`: many rows in one process, bad rows recorded and skipped over,
an interrupted batch resumed with every good row made exactly once."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import trimesh

from backend.__main__ import main
from backend.batch import read_rows, run_batch
from backend.models import TEST_MODELS_ENV, LoadOptions

ROWS, BAD = 100, {7, 23, 24, 51, 52, 77, 90}  # numbers of the rows that cannot run


def write_batch(folder):
    trimesh.creation.box().export(folder / "box.glb")
    lines = []
    for n in range(1, ROWS + 1):
        row = {"name": f"cube-{n:03d}", "model": "test-cube", "prompt": f"cube {n}", "params": {"seed": n}}
        if n == 7:
            row["model"] = "no-such-model"
        elif n == 23:
            row = {"name": "tex-023", "task": "texture", "mesh": "missing.glb", "prompt": "rust"}  # no such file
        elif n == 24:
            lines.append('{"name": "broken", "prompt": ')  # not JSON
            continue
        elif n == 51:
            row["name"] = "cube-050"  # row 50's name again
        elif n == 52:
            row["colour"] = "red"  # not a field of a row
        elif n == 77:
            row["name"] = "../escape"  # not a plain name
        elif n == 90:
            row["params"]["fail"] = "generation"  # runs, and fails while running
        lines.append(json.dumps(row))
    (folder / "jobs.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "jobs.jsonl"


def test_an_interrupted_batch_resumes_and_makes_every_good_row_once(tmp_path, monkeypatch):
    monkeypatch.setenv(TEST_MODELS_ENV, "1")
    jobs, out = write_batch(tmp_path), tmp_path / "out"
    rows = read_rows(jobs)
    assert len(rows) == ROWS and {r.number for r in rows if r.error} == BAD - {7, 23, 90}  # those fail as they run
    ran = Counter()

    def interrupt_at_40(row):
        if len(ran) == 40:
            raise KeyboardInterrupt
        ran[row.name] += 1

    with pytest.raises(KeyboardInterrupt):
        run_batch(jobs, out, LoadOptions(), progress=False, before_row=interrupt_at_40)
    summary = run_batch(jobs, out, LoadOptions(), progress=False, before_row=lambda row: ran.update([row.name]))
    good = {f"cube-{n:03d}" for n in range(1, ROWS + 1) if n not in BAD}
    assert set(ran) == good | {"cube-090"} and set(ran.values()) == {1}  # each row run exactly once, over both runs
    assert (summary.succeeded, summary.skipped, summary.failed) == (len(good) - 40, 40, len(BAD))
    assert all((out / f"{name}.glb").read_bytes()[:4] == b"glTF" and (out / f"{name}.png").is_file() for name in good)
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    errors = {r["row"]: r["error"] for r in results if r["state"] == "failed"}
    assert set(errors) == BAD
    assert "unknown model 'no-such-model'" in errors[7] and "produce an empty surface" in errors[90]
    assert "no mesh file" in errors[23] and "not a JSON object" in errors[24] and "row 50's already" in errors[51]
    assert "unknown fields colour" in errors[52] and "name must be" in errors[77]
    assert not list(out.glob("*.partial*")) and not list(out.glob(".*"))  # nothing half-written left behind
    record = json.loads((out / "cube-001.json").read_text())
    assert record["state"] == "succeeded" and record["model"] == "test-cube" and record["params"]["seed"] == 1


def test_the_command_runs_a_batch_and_says_what_failed(tmp_path, capsys):
    (tmp_path / "jobs.jsonl").write_text(
        json.dumps({"name": "stool", "prompt": "a stool with three legs", "params": {"resolution": 32, "seed": 0,
                                                                                    "num_inference_steps": 2}})
        + "\n" + json.dumps({"name": "nothing", "prompt": ""}) + "\n")
    status = main(["batch", str(tmp_path / "jobs.jsonl"), "--out-dir", str(tmp_path / "out"), "--offline",
                   "--threads", "1"])
    assert status == 1 and "1 succeeded, 0 done before, 1 failed" in capsys.readouterr().err
    parts = trimesh.load(tmp_path / "out" / "stool.glb", force="scene").geometry
    assert any(name.startswith("leg") for name in parts)  # the built-in model's named parts
    again = main(["batch", str(tmp_path / "jobs.jsonl"), "--out-dir", str(tmp_path / "out"), "--offline"])
    assert again == 1 and "0 succeeded, 1 done before, 1 failed" in capsys.readouterr().err


def test_the_part_edits_example_chains_rows_through_the_output_folder(tmp_path):
    example = Path(__file__).resolve().parents[2] / "examples" / "part_edits.jsonl"
    summary = run_batch(example, tmp_path, LoadOptions(), progress=False)
    assert (summary.succeeded, summary.failed) == (5, 0), (tmp_path / "results.jsonl").read_text()
    office = trimesh.load(tmp_path / "office-chair.glb", force="scene").geometry
    assert any(name.startswith("wheel") for name in office)
    mixed = json.loads((tmp_path / "chair-stool-legs.json").read_text())
    assert mixed["params"]["mode"] == "mix" and "seat" in mixed["metadata"]["parts"]
