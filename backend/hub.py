"""Where model weights come from: a Hugging Face repo id or a local folder.

Every pipeline resolves its model through `resolve_model_source`, so "not downloaded and
downloads are off" reads the same for all of them and always names the fix. We load
safetensors only (never pickled `.bin` files) and never run code from a model repo.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional

from huggingface_hub import constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError
from huggingface_hub.utils import validate_repo_id

from .errors import ModelUnavailable

# What a diffusers or transformers model needs: configs, tokenizer vocabularies, safetensors.
# Leaving out *.bin and *.pt keeps pickles (and duplicate gigabytes) off the disk.
DOWNLOAD_PATTERNS = ["*.json", "*.txt", "*.safetensors"]
# Where a studio keeps its own copies: "openai/shap-e=/models/shap-e;<id>=<folder or mirror id>".
# `--model-source ID=FOLDER` sets it; the add-on's backend inherits it from Blender's environment.
MODEL_SOURCES_ENV = "DIFFUSION3D_MODEL_SOURCES"
LOCAL_FOLDER_FIX = f"or point the model at a local folder (`--model-source ID=FOLDER`, or {MODEL_SOURCES_ENV}=ID=FOLDER)"


def model_sources() -> dict[str, str]:
    """The overrides in DIFFUSION3D_MODEL_SOURCES: {hub id: local folder or another repo id}."""
    pairs = (item.partition("=") for item in os.environ.get(MODEL_SOURCES_ENV, "").split(";"))
    return {key.strip(): value.strip() for key, sep, value in pairs if sep and key.strip() and value.strip()}


def effective_source(source: str) -> str:
    """`source`, or the folder (or mirror id) DIFFUSION3D_MODEL_SOURCES puts in its place."""
    return model_sources().get(source, source)


def resolve_model_source(source: str, allow_downloads: bool = False, cache_dir: Optional[str] = None) -> str:
    """Find a model on this machine, downloading it only when allowed.

    Args:
        source: A Hugging Face repo id ("openai/shap-e") or a local folder holding the model
            (a diffusers pipeline folder or a transformers model folder).
        allow_downloads: Whether the user allows downloads (the add-on's "Allow Model Downloads"
            preference, itself off when Blender's online access is off). `HF_HUB_OFFLINE=1`
            turns downloads off whatever this says.
        cache_dir: Hugging Face cache folder; None for the default (`HF_HOME` / `HF_HUB_CACHE`).

    Returns:
        The local folder to pass to `from_pretrained`.

    Raises:
        ModelUnavailable: the folder does not exist or lacks safetensors weights, or the model
            is not in the cache and downloads are off, or the download failed. The message
            names the model and the fix.
    """
    source = effective_source(source)
    local = Path(source).expanduser()
    if local.is_dir():
        _check_complete(local, source)
        return str(local)
    if not _is_repo_id(source):
        raise ModelUnavailable(
            f"Model folder '{source}' does not exist. Fix: point the model at an existing folder "
            "(a diffusers pipeline with model_index.json, or a model with config.json), or use a "
            "Hugging Face repo id such as 'openai/shap-e'."
        )

    # 1. The local cache first: no network, even when downloads are allowed.
    cached = _cached_snapshot(source, cache_dir)
    if cached is not None and not _missing_weights(cached):
        return str(cached)

    # 2. Not here (or only partly): download when allowed, otherwise say how to get it.
    off_reason = _downloads_off_reason(allow_downloads)
    if off_reason:
        raise ModelUnavailable(
            f"Model {source} is not downloaded and downloads are off ({off_reason}). Fix: enable "
            "'Allow Model Downloads' in the Diffusion 3D preferences (for the command line or a server "
            "started by hand: leave out --offline and unset HF_HUB_OFFLINE), or run "
            f"`{_download_command(source, cache_dir)}` on a machine with internet and copy the cache "
            f"here, {LOCAL_FOLDER_FIX}."
        )
    try:
        folder = Path(snapshot_download(source, cache_dir=cache_dir, allow_patterns=DOWNLOAD_PATTERNS))
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise ModelUnavailable(
            f"Could not download model {source}: {error}. Fix: check the internet connection and the "
            f"repo id, or run `{_download_command(source, cache_dir)}` on a machine with internet, "
            f"{LOCAL_FOLDER_FIX}."
        ) from error
    _check_complete(folder, source)
    return str(folder)


def is_available_offline(source: str, cache_dir: Optional[str] = None) -> bool:
    """Whether `source` loads without the network: a complete local folder or cached repo.

    Args:
        source: A Hugging Face repo id or a local folder.
        cache_dir: Hugging Face cache folder; None for the default.

    Returns:
        True when every model folder in it has its safetensors weights on this machine.
    """
    source = effective_source(source)
    local = Path(source).expanduser()
    if local.is_dir():
        folder = local
    elif _is_repo_id(source):
        folder = _cached_snapshot(source, cache_dir)
    else:
        folder = None
    return folder is not None and not _missing_weights(folder)


def weights_variant(folder: str) -> Optional[str]:
    """The `variant` to pass to `from_pretrained` for a resolved model folder.

    "fp16" when some model folder in it has its safetensors only as `*.fp16.safetensors` and
    every one has them (lllyasviel's ControlNet 1.1 repos publish fp32 weights only as
    pickles); None otherwise. diffusers casts fp16 weights to the dtype asked for.
    """
    models = _model_folders(Path(folder))
    plain = [any(not f.name.endswith(".fp16.safetensors") for f in sub.glob("*.safetensors")) for sub in models]
    half = [any(sub.glob("*.fp16.safetensors")) for sub in models]
    return "fp16" if models and not all(plain) and all(half) else None


def _model_folders(folder: Path) -> list[Path]:
    # A pipeline's root or one level down; a folder with a config.json holds a model.
    return [sub for sub in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())] if (sub / "config.json").is_file()]


def _is_repo_id(source: str) -> bool:
    # Anything with a path shape ("./x", "/x", "a/b/c", "C:\\x") is a folder, never a repo id.
    try:
        validate_repo_id(source)
    except HFValidationError:
        return False
    return not source.startswith((".", "~")) and "\\" not in source


def _cached_snapshot(repo_id: str, cache_dir: Optional[str]) -> Optional[Path]:
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True))
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None


def _downloads_off_reason(allow_downloads: bool) -> str:
    # huggingface_hub reads HF_HUB_OFFLINE once at import; a backend started later may have it
    # set in its own environment, so look at both.
    env = os.environ.get("HF_HUB_OFFLINE", "").upper() in constants.ENV_VARS_TRUE_VALUES
    if env or constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if not allow_downloads:
        return "the 'Allow Model Downloads' preference or Blender's online access is off, or the backend runs offline"
    return ""


def _download_command(repo_id: str, cache_dir: Optional[str]) -> str:
    # `hf` is the command-line tool of huggingface_hub >= 1.0 (it replaced `huggingface-cli`).
    # Double quotes: the one quoting that Windows' cmd, PowerShell and POSIX shells all honour.
    patterns = "".join(f' --include "{p}"' for p in DOWNLOAD_PATTERNS)
    cache = f' --cache-dir "{cache_dir}"' if cache_dir else ""
    return f"hf download {repo_id}{patterns}{cache}"


def _missing_weights(folder: Path) -> list[str]:
    """Model folders (root or one level down, as in a diffusers pipeline) without their safetensors.

    A folder with a `config.json` holds a model and needs its `*.safetensors` (every shard
    an index names); tokenizers, schedulers and processors have other config names. A folder
    with neither `model_index.json` nor `config.json` holds no model at all.
    """
    if not (folder / "model_index.json").is_file() and not (folder / "config.json").is_file():
        return ["model_index.json or config.json"]
    missing = []
    for sub in _model_folders(folder):
        name = "." if sub == folder else sub.name
        indexes = list(sub.glob("*.safetensors.index.json"))
        if indexes:
            shards = set(json.loads(indexes[0].read_text()).get("weight_map", {}).values())
            if not shards or any(not (sub / shard).is_file() for shard in shards):
                missing.append(name)
        elif not any(sub.glob("*.safetensors")):
            missing.append(name)
    return missing


def _check_complete(folder: Path, source: str) -> None:
    missing = _missing_weights(folder)
    if missing:
        raise ModelUnavailable(
            f"Model {source} in {folder} is incomplete: no safetensors weights in {', '.join(missing)}. "
            "Fix: download it again with downloads allowed, or convert its weights to safetensors "
            "(Diffusion 3D never loads pickled .bin files)."
        )


def resolve_model_files(source: str, required: tuple[str, ...], weights: tuple[str, ...],
                        allow_downloads: bool = False, cache_dir: Optional[str] = None) -> str:
    """Find a model published as named files rather than in the diffusers/transformers layout
    (TripoSR: `config.yaml` and `model.ckpt`), downloading only those files when allowed.

    Args:
        source: A Hugging Face repo id or a local folder.
        required: Files that must all be there.
        weights: Accepted weight files, any one will do; the last is the one the repo publishes
            and the one downloaded.
        allow_downloads, cache_dir: As for `resolve_model_source`.

    Returns:
        The folder holding them.

    Raises:
        ModelUnavailable: as `resolve_model_source`, naming the files and the fix.
    """
    source = effective_source(source)
    local = Path(source).expanduser()
    if local.is_dir() or not _is_repo_id(source):
        missing = _missing_files(local, required, weights)
        if missing:
            raise ModelUnavailable(
                f"Model folder '{source}' lacks {missing}. Fix: point the model at a folder holding "
                f"{', '.join(required)} and {' or '.join(weights)}, or use its Hugging Face repo id.")
        return str(local)
    cached = _cached_files(source, required, weights, cache_dir)
    if cached is not None:
        return str(cached)
    command = f"hf download {source}" + "".join(f' --include "{f}"' for f in (*required, weights[-1])) + (
        f' --cache-dir "{cache_dir}"' if cache_dir else "")
    off_reason = _downloads_off_reason(allow_downloads)
    if off_reason:
        raise ModelUnavailable(
            f"Model {source} is not downloaded and downloads are off ({off_reason}). Fix: enable 'Allow Model "
            "Downloads' in the Diffusion 3D preferences (for the command line or a server started by hand: leave "
            f"out --offline and unset HF_HUB_OFFLINE), or run `{command}` on a machine with internet and copy the "
            f"cache here, {LOCAL_FOLDER_FIX}.")
    try:
        paths = [hf_hub_download(source, name, cache_dir=cache_dir) for name in (*required, weights[-1])]
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as error:
        raise ModelUnavailable(
            f"Could not download model {source}: {error}. Fix: check the internet connection and the repo id, or "
            f"run `{command}` on a machine with internet, {LOCAL_FOLDER_FIX}.") from error
    return str(Path(paths[0]).parent)


def files_available_offline(source: str, required: tuple[str, ...], weights: tuple[str, ...],
                            cache_dir: Optional[str] = None) -> bool:
    """Whether `resolve_model_files` would find the files without the network."""
    source = effective_source(source)
    local = Path(source).expanduser()
    if local.is_dir() or not _is_repo_id(source):
        return not _missing_files(local, required, weights)
    return _cached_files(source, required, weights, cache_dir) is not None


def _missing_files(folder: Path, required: tuple[str, ...], weights: tuple[str, ...]) -> str:
    missing = [name for name in required if not (folder / name).is_file()]
    if not any((folder / name).is_file() for name in weights):
        missing.append(" or ".join(weights))
    return ", ".join(missing)


def _cached_files(repo_id: str, required: tuple[str, ...], weights: tuple[str, ...],
                  cache_dir: Optional[str]) -> Optional[Path]:
    try:
        folder = Path(hf_hub_download(repo_id, required[0], cache_dir=cache_dir, local_files_only=True)).parent
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    return None if _missing_files(folder, required, weights) else folder
