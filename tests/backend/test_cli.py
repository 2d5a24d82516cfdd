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
