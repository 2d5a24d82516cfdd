"""The one-shot command line: `python -m backend generate ...`, and its CPU thread setting."""

import pytest
import torch

from backend.__main__ import main
from backend.devices import set_cpu_threads


@pytest.fixture
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_generate_writes_a_glb_with_the_threads_asked_for(tmp_path, keep_threads, capsys):
    out = tmp_path / "stool.glb"
    status = main(["generate", "--prompt", "a stool with three legs", "--model", "builtin", "--seed", "0", "--steps", "2",
                   "--param", "resolution=32", "--threads", "1", "--out", str(out)])
    assert status == 0 and out.read_bytes()[:4] == b"glTF"
    assert torch.get_num_threads() == 1 and "(1 CPU threads)" in capsys.readouterr().err


def test_bad_thread_count_is_a_usage_error(tmp_path, capsys):
    status = main(["generate", "--prompt", "a stool", "--model", "builtin", "--threads", "-2",
                   "--out", str(tmp_path / "x.glb")])
    assert status == 2 and "--threads" in capsys.readouterr().err


def test_automatic_threads_keep_torchs_default(keep_threads):
    torch.set_num_threads(3)  # whatever torch chose at start-up
    assert set_cpu_threads(0) == 3 and torch.get_num_threads() == 3
    assert set_cpu_threads(1) == 1 and torch.get_num_threads() == 1


@pytest.mark.parametrize("args, words", [
    (["--keep-jobs", "0"], "--keep-jobs"),
    (["--port", "0"], "--port"),
    (["--max-upload-mb", "nan"], "--max-upload-mb"),
    (["--model-source", "openai/shap-e"], "--model-source"),
])
def test_serve_refuses_settings_that_would_break_the_service(args, words, capsys):
    """Refused before anything starts: keeping no jobs deleted each result as it finished, port 0
    failed every Host check, a NaN upload limit crashed."""
    assert main(["serve", "--token", "t", *args]) == 2 and words in capsys.readouterr().err


def test_model_source_points_a_hub_id_at_a_folder(tmp_path, monkeypatch, capsys):
    from backend.hub import MODEL_SOURCES_ENV

    monkeypatch.setenv(MODEL_SOURCES_ENV, "")
    status = main(["generate", "--prompt", "a chair", "--model", "shap-e", "--offline", "--out", str(tmp_path / "x.glb"),
                   "--model-source", f"openai/shap-e={tmp_path / 'missing'}"])
    assert status == 1 and f"Model folder '{tmp_path / 'missing'}' does not exist" in capsys.readouterr().err
