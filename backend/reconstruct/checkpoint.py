"""TripoSR's weights: the published pickle read as tensors only, kept as safetensors after.

`stabilityai/TripoSR` publishes `model.ckpt`, a `torch.save` pickle. We never let a pickle run
code: it is read with `torch.load(weights_only=True)` (the restricted unpickler that builds
tensors and plain containers only), checked key by key against our model, and saved once as
`model.safetensors` in the cache, so every later load is safetensors only. A folder that already
holds `model.safetensors` (converted on another machine) is read without any pickle at all.

Keys are stored under the published names. transformers 5 renamed the ViT's modules
(`encoder.layer.N.attention.attention.query` became `layers.N.attention.q_proj`, ...);
`to_model_keys` maps the published names onto whichever our installed transformers uses.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Optional

import torch

from ..errors import ModelUnavailable

VIT_PREFIX = "image_tokenizer.model."
# Published (transformers 4) ViT names and transformers 5's, within VIT_PREFIX; {i} is the layer.
VIT_RENAMES = (
    ("encoder.layer.{i}.attention.attention.query.", "layers.{i}.attention.q_proj."),
    ("encoder.layer.{i}.attention.attention.key.", "layers.{i}.attention.k_proj."),
    ("encoder.layer.{i}.attention.attention.value.", "layers.{i}.attention.v_proj."),
    ("encoder.layer.{i}.attention.output.dense.", "layers.{i}.attention.o_proj."),
    ("encoder.layer.{i}.intermediate.dense.", "layers.{i}.mlp.fc1."),
    ("encoder.layer.{i}.output.dense.", "layers.{i}.mlp.fc2."),
    ("encoder.layer.{i}.layernorm_", "layers.{i}.layernorm_"),
)
MAX_KEYS = 10_000  # the published file has 549
SAFETENSORS_NAME, PICKLE_NAME = "model.safetensors", "model.ckpt"


def to_model_keys(state: dict[str, torch.Tensor], model_keys: set[str]) -> dict[str, torch.Tensor]:
    """Rename a published state dict's keys to `model_keys` and check that they match one to one.

    Raises:
        ModelUnavailable: keys left over or missing (naming the first few), so a checkpoint of
            another model, or one cut short, never loads half-filled.
    """
    renamed, unexpected = {}, []
    for key, value in state.items():
        name = key if key in model_keys else _rename(key, VIT_RENAMES)
        if name in model_keys and name not in renamed:
            renamed[name] = value
        else:
            unexpected.append(key)
    missing = sorted(model_keys - set(renamed))
    if unexpected or missing:
        raise ModelUnavailable(
            f"the TripoSR weights do not fit the model: {len(unexpected)} unexpected keys "
            f"{_first(unexpected)}, {len(missing)} missing {_first(missing)}. Fix: use the complete "
            "stabilityai/TripoSR checkpoint with its own config.yaml")
    return renamed


def to_published_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our model's state dict under the published names (what the safetensors copy stores)."""
    return {_rename(key, [(ours, published) for published, ours in VIT_RENAMES]): value for key, value in state.items()}


def _rename(key: str, renames) -> str:
    """`key` with the first of `renames` ((from, to) templates) that matches inside the ViT applied."""
    if not key.startswith(VIT_PREFIX):
        return key
    rest = key[len(VIT_PREFIX):]
    for source, target in renames:
        pattern = re.escape(source).replace(re.escape("{i}"), r"(\d+)")
        match = re.match(pattern, rest)
        if match:
            return VIT_PREFIX + target.replace("{i}", match.group(1)) + rest[match.end():]
    return key


def _first(keys: list[str], count: int = 3) -> str:
    return "(" + ", ".join(keys[:count]) + (", ..." if len(keys) > count else "") + ")" if keys else ""


def read_weights(folder: Path, cache_root: Optional[Path]) -> dict[str, torch.Tensor]:
    """The folder's weights under the published names, from safetensors whenever there can be.

    Order: the folder's own `model.safetensors`; else our cached copy of its `model.ckpt`
    (keyed by the file's path, size and time, so a replaced file is read again); else the
    pickle, read as tensors only, then saved to that copy.

    Args:
        folder: Holds `model.safetensors` or `model.ckpt`.
        cache_root: Where converted copies go; None: next to nothing (the pickle is read each time).

    Raises:
        ModelUnavailable: no weights, an unreadable file, or a pickle holding anything but a flat
            dict of named tensors.
    """
    from safetensors.torch import load_file

    own = folder / SAFETENSORS_NAME
    if own.is_file():
        return _load_safetensors(load_file, own)
    pickle = folder / PICKLE_NAME
    if not pickle.is_file():
        raise ModelUnavailable(f"no TripoSR weights in {folder}: it needs {SAFETENSORS_NAME} or {PICKLE_NAME}")
    copy = converted_path(pickle, cache_root) if cache_root is not None else None
    if copy is not None and copy.is_file():
        return _load_safetensors(load_file, copy)
    state = _load_pickle(pickle)
    if copy is not None:
        _save_copy(state, copy)
    return state


def converted_path(pickle: Path, cache_root: Path) -> Path:
    """Where the safetensors copy of `pickle` lives in the cache."""
    stat = pickle.stat()
    identity = f"{pickle.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    return cache_root / "diffusion3d" / "triposr" / hashlib.sha256(identity.encode()).hexdigest()[:24] / SAFETENSORS_NAME


def _load_safetensors(load_file, path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path))
    except Exception as error:  # safetensors' SafetensorError derives from Exception only
        raise ModelUnavailable(f"{path} is not a readable safetensors file ({error}); delete it and load again") from None


def _load_pickle(path: Path) -> dict[str, torch.Tensor]:
    try:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # an old-format (non-zip) file cannot be memory-mapped
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # weights_only refuses any global that is not a tensor or container
        raise ModelUnavailable(
            f"{path} could not be read as tensors only ({type(error).__name__}: {str(error)[:300]}). It may be "
            "damaged or hold code; Diffusion 3D never runs code from a checkpoint. Fix: download it again") from None
    if (not isinstance(state, dict) or len(state) > MAX_KEYS
            or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())):
        raise ModelUnavailable(f"{path} does not hold a flat dict of named tensors, as TripoSR's checkpoint does")
    return state


def _save_copy(state: dict[str, torch.Tensor], copy: Path) -> None:
    """Write the safetensors copy atomically; a failure only costs the next load a pickle read."""
    from safetensors.torch import save_file

    try:
        copy.parent.mkdir(parents=True, exist_ok=True)
        partial = copy.with_suffix(f".{os.getpid()}.partial")
        seen: set[int] = set()  # safetensors refuses tensors that share memory: copy those
        tensors = {}
        for key, value in state.items():
            pointer = value.untyped_storage().data_ptr()
            tensors[key] = value.contiguous() if pointer not in seen else value.clone()
            seen.add(pointer)
        save_file(tensors, str(partial))
        os.replace(partial, copy)
    except (OSError, RuntimeError, ValueError):
        pass


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Fill every parameter of a model built on the meta device from a published state dict.

    Raises:
        ModelUnavailable: keys that do not match one to one, or a tensor of the wrong shape.
    """
    expected = model.state_dict()
    renamed = to_model_keys(state, set(expected))
    wrong = [f"{k} {tuple(v.shape)} (needs {tuple(expected[k].shape)})" for k, v in renamed.items()
             if v.shape != expected[k].shape]
    if wrong:
        raise ModelUnavailable(f"the TripoSR weights have the wrong shapes for their config.yaml: {_first(wrong)}")
    model.load_state_dict({k: v.float() for k, v in renamed.items()}, strict=True, assign=True)


def load_model(folder: Path, device: torch.device, cache_root: Optional[Path]):
    """TripoSR from a folder: `config.yaml` (and `vit_config.json` when the ViT is not DINO ViT-B/16),
    weights as `read_weights` finds them; built on the meta device, so no memory goes to a random
    initialisation the weights would overwrite.

    Returns:
        The TripoSR network in eval mode on `device`, fp32 (its density is an exponential: fp16
        would move the surface).
    """
    import json

    from .config import MAX_CONFIG_BYTES, parse_config
    from .network import TripoSR

    def small_text(name: str) -> Optional[str]:
        path = folder / name
        if not path.is_file():
            return None
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ModelUnavailable(f"{path} is far larger than TripoSR's: not a TripoSR model")
        return path.read_text(encoding="utf-8", errors="replace")

    text = small_text("config.yaml")
    if text is None:
        raise ModelUnavailable(f"no config.yaml in {folder}: a TripoSR folder holds config.yaml and model.ckpt")
    vit_text = small_text("vit_config.json")
    try:
        vit = json.loads(vit_text) if vit_text else {}
    except json.JSONDecodeError as error:
        raise ModelUnavailable(f"{folder / 'vit_config.json'} is not valid JSON ({error})") from None
    config = parse_config(text, vit if isinstance(vit, dict) else {})
    with torch.device("meta"):
        model = TripoSR(config)
    load_state(model, read_weights(folder, cache_root))
    return model.to(device).eval()
