"""Checkpoints of a running optimisation, so a cancelled or interrupted run goes on exactly where
it stopped: the same weights, optimiser moments, random draws and step, hence the same result
as a run that never stopped.

A checkpoint is a tree of dicts, lists and tuples whose leaves are tensors or JSON values (an
optimiser's `state_dict()`, a generator's state, the step). `pack` writes it as one safetensors
file: the tensors as they are, the tree's shape as JSON in the file's metadata. No pickle, so
a checkpoint read back cannot run code; `unpack` still treats its bytes as hostile (sizes
capped, every reference checked), and `restore` turns a checkpoint that does not fit the run
(another model's, another version's, other settings) into an InputError that says so.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Callable, Optional, Union

import torch

from ..errors import InputError

FORMAT = "diffusion3d-checkpoint/1"
MAX_TREE_CHARS = 1_000_000  # the JSON of the tree (names and small values; the tensors are apart)
MAX_DEPTH = 16
MAX_TENSORS = 10_000


def pack(tree: Any) -> bytes:
    """`tree` (nested dicts with str or int keys, lists, tuples; tensors and JSON leaves) as bytes."""
    from safetensors.torch import save

    tensors: dict[str, torch.Tensor] = {}

    def encode(node: Any) -> Any:
        if isinstance(node, torch.Tensor):
            name = f"t{len(tensors)}"
            tensors[name] = node.detach().to("cpu", copy=True).contiguous()  # a snapshot: training goes on
            return {"tensor": name}
        if isinstance(node, dict):
            return {"dict": [[key, encode(value)] for key, value in node.items()]}
        if isinstance(node, (list, tuple)):
            return {"tuple" if isinstance(node, tuple) else "list": [encode(value) for value in node]}
        if node is None or isinstance(node, (bool, int, float, str)):
            return {"value": node}
        raise TypeError(f"a checkpoint cannot hold a {type(node).__name__}")

    tree_json = json.dumps(encode(tree))
    return save(tensors, metadata={"format": FORMAT, "tree": tree_json})


def unpack(source: Union[bytes, Path]) -> Any:
    """The tree `pack` wrote, from its bytes or its file (read a tensor at a time, never whole).

    Raises:
        InputError: the bytes are not a checkpoint of this format, or are damaged.
    """
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load

    try:  # safetensors checks the header against the file's length before any view
        if isinstance(source, Path):
            with safe_open(source, "pt") as file:  # one tensor at a time from the mapped file
                metadata = file.metadata() or {}
                tensors = {name: file.get_tensor(name) for name in file.keys()}
        else:
            tensors, metadata = load(source), _metadata(source)
    except (SafetensorError, ValueError, struct.error, OSError) as e:
        raise InputError(f"the checkpoint cannot be read ({e}): it is damaged; start the job again") from None
    if metadata.get("format") != FORMAT:
        raise InputError(f"the checkpoint's format is {metadata.get('format')!r}, not {FORMAT!r}: "
                         "it was written by another version; start the job again")
    tree_json = metadata.get("tree", "")
    if len(tree_json) > MAX_TREE_CHARS or len(tensors) > MAX_TENSORS:
        raise InputError("the checkpoint is larger than any this backend writes; start the job again")
    try:
        return _decode(json.loads(tree_json), tensors, 0)
    except (ValueError, TypeError, KeyError, RecursionError) as e:
        raise InputError(f"the checkpoint's contents are damaged ({e}); start the job again") from None


def _metadata(data: bytes) -> dict[str, str]:
    """The metadata in a safetensors header (8 bytes of little-endian length, then JSON);
    safetensors' own readers give it only for files."""
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ValueError("its header is longer than the file")
    return json.loads(data[8:8 + size]).get("__metadata__") or {}


def _decode(node: Any, tensors: dict[str, torch.Tensor], depth: int) -> Any:
    if depth > MAX_DEPTH or not isinstance(node, dict) or len(node) != 1:
        raise ValueError("a node of unknown form")
    (kind, value), = node.items()
    if kind == "tensor":
        return tensors[value]
    if kind == "value":
        if not (value is None or isinstance(value, (bool, int, float, str))):
            raise ValueError("a value that is not a number, string or null")
        return value
    if kind == "dict":
        out = {}
        for key, item in value:
            if not isinstance(key, (str, int)):
                raise ValueError("a key that is not a string or an integer")
            out[key] = _decode(item, tensors, depth + 1)
        return out
    if kind in ("list", "tuple"):
        items = [_decode(item, tensors, depth + 1) for item in value]
        return tuple(items) if kind == "tuple" else items
    raise ValueError(f"a node of unknown kind {kind!r}")


def restore(what: str, load: Callable[[], Any]) -> Any:
    """Run `load` (e.g. `module.load_state_dict(state)`), naming `what` did not fit if it fails.

    Raises:
        InputError: the checkpoint's `what` does not fit this run.
    """
    try:
        return load()
    except (RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        said = " ".join(line.strip() for line in str(e).strip().splitlines()[:2])  # torch: a title, then the cause
        raise mismatch(what, said[:200] or type(e).__name__) from None


def loop_state(step: int, device: torch.device, generator: torch.Generator, guidance: Any,
               **parts: Any) -> dict[str, Any]:
    """An optimisation loop's state after `step`: its `parts` (anything with `state_dict()`: the
    field, the optimiser), its generator, its guidance's state and the global random state."""
    return {"step": step, "parts": {name: part.state_dict() for name, part in parts.items()},
            "generator": generator.get_state(), "guidance": state_of(guidance), "random": random_state(device)}


def load_loop_state(state: dict[str, Any], steps: int, device: torch.device, generator: torch.Generator,
                    guidance: Any, **parts: Any) -> int:
    """Load what `loop_state` made into a loop of `steps` steps; the step it was made after.

    Raises:
        InputError: it does not fit (the message names which part).
    """
    step = restore("step", lambda: int(state["step"]))
    if not 0 <= step <= steps:
        raise mismatch("step", f"step {step} of a {steps}-step run")
    for name, part in parts.items():
        restore(name, lambda: part.load_state_dict(state["parts"][name]))
    restore("random state", lambda: generator.set_state(state["generator"]))
    load_state_of(guidance, restore("guidance", lambda: state["guidance"]))
    set_random_state(restore("random state", lambda: state["random"]), device)
    return step


def stage_of(resume: Optional[dict[str, Any]], stages: tuple[str, ...]) -> Optional[str]:
    """Which of a pipeline's `stages` its checkpoint stopped in (None: no checkpoint).

    Raises:
        InputError: it names none of them.
    """
    if resume is None:
        return None
    stage = restore("stage", lambda: resume["stage"])
    if stage not in stages or not isinstance(resume.get(stage), dict):
        raise mismatch("stage", f"{stage!r}, where this model has {', '.join(stages)}")
    return stage


def pipeline_state(stage: str, state: dict[str, Any], placement: Any = None, **more: Any) -> dict[str, Any]:
    """A pipeline's checkpoint: the stage it stopped in, that stage's loop state under the
    stage's name (what `stage_of` finds), where a draft was placed (distill.init.Placement or
    None) and anything else the stage needs to start again (`more`)."""
    return {"stage": stage, stage: state, "placement": placement and placement.checkpoint_state(), **more}


def mismatch(what: str, detail: str) -> InputError:
    return InputError(f"the checkpoint's {what} does not fit this run ({detail}): it was saved by another "
                      "model, version or settings; start the job again")


def state_of(part: Any) -> dict[str, Any]:
    """What a run's part (a guidance method, a schedule) needs kept to go on exactly: its
    `checkpoint_state()`, or nothing for a part that holds no state of its own."""
    get = getattr(part, "checkpoint_state", None)
    return get() if get is not None else {}


def load_state_of(part: Any, state: Any) -> None:
    """Give a part back what `state_of` took from it.

    Raises:
        InputError: it does not fit.
    """
    load = getattr(part, "load_checkpoint_state", None)
    if load is not None:
        restore(type(part).__name__, lambda: load(state))
    elif state:
        raise mismatch(type(part).__name__, "it holds no state, the checkpoint has some")


def generator_states(**generators: Optional[torch.Generator]) -> dict[str, torch.Tensor]:
    """The states of a part's random generators, by name (those it has: None is skipped)."""
    return {name: generator.get_state() for name, generator in generators.items() if generator is not None}


def set_generator_states(states: dict[str, torch.Tensor], **generators: Optional[torch.Generator]) -> None:
    for name, generator in generators.items():
        if generator is not None:
            generator.set_state(states[name])


def random_state(device: torch.device) -> dict[str, torch.Tensor]:
    """The global random generators a run draws from besides its own (initial weights, a VAE's
    posterior sample): the CPU's, and the accelerator's when there is one."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_random_state(state: dict[str, torch.Tensor], device: torch.device) -> None:
    restore("random state", lambda: torch.set_rng_state(state["cpu"]))
    if device.type == "cuda" and "cuda" in state:
        restore("random state", lambda: torch.cuda.set_rng_state(state["cuda"], device))
