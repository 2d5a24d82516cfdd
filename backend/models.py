"""The model registry: which (task, model) pairs exist, how to load and run them.

An explicit list built by `registry()`, never filled by import side effects; the same list
feeds `/models`, the CLI and the add-on's model menu.
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from .errors import GenerationFailed, InputError, ModelUnavailable
from .params import SEED_LIMITS, Limits, check_limits, check_value
from .results import MeshPart, MeshResult, RunFunction, StepCallback

log = logging.getLogger(__name__)

TASKS = ("text_to_3d", "image_to_3d", "edit_part", "texture")
UPLOADS = ("mesh", "image", "face_mask", "mesh_b", "texture")
# Files a task cannot run without; the pipelines check mode-specific ones (e.g. mesh_b).
TASK_FILES = {"text_to_3d": (), "image_to_3d": ("image",), "edit_part": ("mesh",), "texture": ("mesh",)}
TEST_MODELS_ENV = "DIFFUSION3D_TEST_MODELS"


@dataclass
class LoadOptions:
    """How a pipeline is loaded.

    Attributes:
        device: "cuda", "mps" or "cpu".
        dtype: torch dtype (float16 on CUDA, else float32); None means float32.
        allow_downloads: False = local files only (HF_HUB_OFFLINE, --offline, Blender's online access).
        cache_dir: Hugging Face cache folder; None means its default (~/.cache/huggingface).
        attention_slicing: Compute attention in slices (less memory at large sizes, a little slower).
        cpu_offload: Keep models on the CPU, each moved to the GPU only while it runs (CUDA: the
            least GPU memory, about 3x slower per step).
    """

    device: str = "cpu"
    dtype: Any = None
    allow_downloads: bool = False
    cache_dir: Optional[str] = None
    attention_slicing: bool = False
    cpu_offload: bool = False


@dataclass
class ModelEntry:
    """One (task, model) pair.

    Attributes:
        name: Model name used in requests ("builtin", "shap-e", ...).
        task: One of TASKS.
        description: One line for the model menu.
        source: "builtin", a Hugging Face id or a local folder.
        load: LoadOptions -> pipeline object (called once, then cached by the worker).
        run: (pipeline, params, files, callback) -> MeshResult.
        params: Accepted parameters and their defaults; anything else is refused.
        limits: Numeric parameters' allowed [low, high], checked when a job is submitted.
        check: (params, files) -> None, raising InputError for what a request lacks beyond types
            and ranges (e.g. the file a mode needs); run when a job is submitted.
        is_available_offline: Whether the weights are already on this machine.
        knows: What the model can make (object categories), empty when open-ended.
        default: The task's default model.
        takes_draft: A text_to_3d model that can start from a `mesh` upload (a draft to refine).
        resumable: A long optimisation that offers checkpoints as it runs, and whose `run` takes
            `resume=` (one of them) to go on exactly where a cancelled or interrupted job stood.
        expected_time: How long a job takes, in a few words, for the model menu ("about 1 s on a
            CPU"; the score-distillation figures are estimates from per-step costs, not measured).
        tier: "draft" (seconds to a minute: try ideas) or "quality" (the best this task has, slow),
            for the sidebar's Fast Draft / Quality choice; "" for neither.
    """

    name: str
    task: str
    description: str
    source: str
    load: Callable[[LoadOptions], Any]
    run: RunFunction
    params: dict[str, Any]
    limits: Limits = field(default_factory=dict)
    check: Optional[Callable[[dict[str, Any], dict[str, bytes]], None]] = None
    is_available_offline: Callable[[], bool] = lambda: True
    knows: Callable[[], list[str]] = list
    default: bool = False
    takes_draft: bool = False
    resumable: bool = False
    expected_time: str = ""
    tier: str = ""

    def effective_source(self) -> str:
        """Where the weights come from after DIFFUSION3D_MODEL_SOURCES' overrides."""
        return self.source if self.source == "builtin" else _effective_source_of(self.source)

    def describe(self) -> dict[str, Any]:
        """The entry as `/models` lists it."""
        try:
            offline = bool(self.is_available_offline())
        except Exception:  # a broken check must not break the model list
            log.exception("is_available_offline failed for %s", self.name)
            offline = False
        return {
            "name": self.name, "task": self.task, "default": self.default,
            "available_offline": offline, "description": self.description,
            "source": self.effective_source(), "knows": list(self.knows()), "params": dict(self.params),
            "limits": {**SEED_LIMITS, **self.limits}, "expected_time": self.expected_time, "tier": self.tier,
            "takes_draft": self.takes_draft,
            "resumable": self.resumable,
        }


def _effective_source_of(source: str) -> str:
    from .hub import effective_source  # huggingface_hub: imported when first needed

    return " + ".join(effective_source(piece) for piece in source.split(" + "))


def downloads_allowed(offline: bool = False) -> bool:
    """False when --offline was given or HF_HUB_OFFLINE is set: local weights only."""
    return not (offline or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"))


def registry() -> list[ModelEntry]:
    """Every model this installation serves, in menu order.

    Pipeline modules that are not installed are left out (with a warning in the log);
    `test-cube` and `test-texture` join only when the environment variable DIFFUSION3D_TEST_MODELS=1.

    Returns:
        The entries.
    """
    entries = (_guarded(_builtin_entries, "built-in") + _guarded(_reconstruct_entries, "reconstruction")
               + _guarded(_shap_e_entries, "Shap-E")
               + _guarded(_distill_entries, "score distillation") + _guarded(_texture_entries, "texture"))
    if os.environ.get(TEST_MODELS_ENV) == "1":
        entries.append(_test_cube_entry())
        entries += _guarded(_test_texture_entries, "test texture")
    return entries


def get_entry(task: str, model: Optional[str] = None, entries: Optional[list[ModelEntry]] = None) -> ModelEntry:
    """Find the entry for a task and model name.

    Args:
        task: One of TASKS.
        model: Model name; None or "" picks the task's default.
        entries: The registry to search (default: `registry()`).

    Returns:
        The entry.

    Raises:
        InputError: unknown task, unknown model, or a task with no model yet.
    """
    entries = registry() if entries is None else entries
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    candidates = [e for e in entries if e.task == task]
    if not candidates:
        raise InputError(f"no model for this task yet: nothing serves {task!r} in this version")
    if not model:
        return next((e for e in candidates if e.default), candidates[0])
    for entry in candidates:
        if entry.name == model:
            return entry
    names = ", ".join(e.name for e in candidates)
    raise InputError(f"unknown model {model!r} for task {task!r}; available: {names}")


# The type of each parameter whose default (None, or an empty list) does not say it; a test
# checks that every model's parameters are covered, so no value goes unchecked.
DECLARED_TYPES: dict[str, tuple[type, Optional[type]]] = {  # name: (type, type of a list's items)
    "seed": (int, None),
    "negative_prompt": (str, None),
    "start_step": (int, None),
    "reference_camera": (dict, None),  # its contents: the model's own check
    "take_from_b": (list, str),
}


def resolve_params(entry: ModelEntry, params: dict[str, Any]) -> dict[str, Any]:
    """Check request parameters against an entry and fill in its defaults.

    `seed` is accepted by every model. Values are checked against the type of their
    default, or their DECLARED_TYPES (an int is fine where a float is expected; NaN and infinity
    never are; a list or an object never where text is), text and lists against the caps of
    `params.check_value`, and numbers against the entry's limits, so a bad value is refused
    before the job is queued.

    Args:
        entry: The model.
        params: What the request sent.

    Returns:
        The full parameter dict.

    Raises:
        InputError: an unknown parameter or a value of the wrong type, named.
    """
    if not isinstance(params, dict):
        raise InputError("params must be a JSON object, e.g. {\"prompt\": \"a chair\"}")
    accepted = {"seed": None, **entry.params}
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise InputError(
            f"unknown parameter(s) {', '.join(repr(k)[:40] for k in unknown[:10])} for model {entry.name!r} "
            f"({entry.task}); accepted: {', '.join(sorted(accepted))}"
        )
    resolved = dict(accepted)
    for key, value in params.items():
        check_value(key, value)
        resolved[key] = _check_type(key, value, accepted[key])
    check_limits(resolved, {**SEED_LIMITS, **entry.limits})
    return resolved


def _check_type(key: str, value: Any, default: Any) -> Any:
    if value is None:
        return value
    kind, item_kind = DECLARED_TYPES.get(key, (type(default), None))
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        try:
            ok = ok and math.isfinite(float(value))
        except OverflowError:  # an int past float's range: refused as out of range, not a crash
            ok = False
        value = float(value) if ok else value
    else:
        ok = isinstance(value, kind) and (item_kind is None or all(isinstance(v, item_kind) for v in value))
    if not ok:
        what = f"a list of {item_kind.__name__}" if item_kind else _TYPE_WORDS.get(kind, kind.__name__)
        raise InputError(f"parameter {key} must be {what}, got {_describe(value)}")
    return value


_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text", list: "a list",
               dict: "a JSON object"}


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{type(value).__name__} {text[:50]}..."


def _guarded(build: Callable[[], list[ModelEntry]], what: str) -> list[ModelEntry]:
    """Entries from a pipeline module, or none (logged) when it or a package it needs is missing:
    one broken model must not take the others down."""
    try:
        return build()
    except (ImportError, AttributeError) as e:  # not installed, or an older pipeline module
        log.warning("%s models are left out: %s", what, e)
    except Exception:
        log.exception("%s models are left out: their module failed to import", what)
    return []


def _builtin_entries() -> list[ModelEntry]:
    parts = importlib.import_module(".parts.service", __package__)
    weights = os.path.join(parts.DEFAULT_WEIGHTS, "model.safetensors")
    common = dict(source="builtin", load=parts.load_builtin, knows=parts.knows, default=True,
                  is_available_offline=lambda: os.path.isfile(weights))
    return [
        ModelEntry("builtin", "text_to_3d", "Built-in part-aware shape model (offline, knows a fixed set of objects)",
                   run=parts.run_text, params=parts.TEXT_PARAMS, limits=parts.TEXT_LIMITS, **common, expected_time="about 1 s, any computer", tier="draft"),
        ModelEntry("builtin", "edit_part", "Built-in part-aware model: regenerate, complete or mix parts",
                   run=parts.run_edit, params=parts.EDIT_PARAMS, limits=parts.EDIT_LIMITS,
                   check=parts.check_edit_request, **common, expected_time="about 1 s, any computer"),
    ]


def _reconstruct_entries() -> list[ModelEntry]:
    triposr = importlib.import_module(".pipelines.triposr", __package__)
    sd_triposr = importlib.import_module(".pipelines.sd_triposr", __package__)
    source = triposr.DEFAULT_MODEL
    return [
        ModelEntry("triposr", "image_to_3d",
                   "TripoSR: a photo's object to a textured mesh in one network pass (downloads ~1.7 GB once)",
                   source=source, load=lambda options: triposr.load(options, source), run=triposr.run,
                   params=triposr.PARAMS, limits=triposr.LIMITS, check=triposr.check_request, default=True,
                   is_available_offline=lambda: triposr.is_available_offline(source),
                   expected_time="~1 s on a GPU, under a minute on a CPU", tier="draft"),
        ModelEntry("sd-triposr", "text_to_3d",
                   "Stable Diffusion 2.1-base draws the object, TripoSR lifts it to a textured mesh; draw several "
                   "candidates and pick (downloads ~7 GB once)",
                   source=sd_triposr.SOURCE, load=sd_triposr.load, run=sd_triposr.run, params=sd_triposr.PARAMS,
                   limits=sd_triposr.LIMITS, check=sd_triposr.check_request,
                   is_available_offline=sd_triposr.is_available_offline,
                   expected_time="seconds on a GPU, minutes on a CPU", tier="draft"),
    ]


def _shap_e_entries() -> list[ModelEntry]:
    shap_e = importlib.import_module(".pipelines.shap_e", __package__)
    offline = shap_e.is_available_offline  # fail here, not on the first /models request
    return [
        ModelEntry("shap-e", "text_to_3d", "OpenAI Shap-E, text to coloured mesh (downloads ~3 GB once)",
                   source="openai/shap-e", load=shap_e.load_text_pipeline, run=shap_e.run_text,
                   params=shap_e.TEXT_PARAMS, limits=shap_e.LIMITS, is_available_offline=lambda: offline("openai/shap-e"), expected_time="under a minute on a GPU, ~20 min on a CPU", tier="draft"),
        ModelEntry("shap-e-img2img", "image_to_3d", "OpenAI Shap-E, image to coloured mesh (downloads ~3 GB once)",
                   source="openai/shap-e-img2img", load=shap_e.load_image_pipeline, run=shap_e.run_image,
                   params=shap_e.IMAGE_PARAMS, limits=shap_e.LIMITS,
                   is_available_offline=lambda: offline("openai/shap-e-img2img"), expected_time="under a minute on a GPU, ~20 min on a CPU", tier="draft"),
    ]


def _distill_entries() -> list[ModelEntry]:
    dreamfusion = importlib.import_module(".pipelines.dreamfusion", __package__)
    reshape = importlib.import_module(".pipelines.reshape", __package__)
    magic3d = importlib.import_module(".pipelines.magic3d", __package__)
    prolificdreamer = importlib.import_module(".pipelines.prolificdreamer", __package__)
    dreamfields = importlib.import_module(".pipelines.dreamfields", __package__)
    clip_source = dreamfields.DEFAULT_MODEL
    zero123 = importlib.import_module(".pipelines.zero123", __package__)
    zero123_source = importlib.import_module(".distill.guidance.zero123", __package__).DEFAULT_MODEL
    offline = importlib.import_module(".hub", __package__).is_available_offline
    source = dreamfusion.DEFAULT_MODEL

    def load_prior(options: LoadOptions):  # one Stable Diffusion prior serves every model below
        return dreamfusion.load(options, source)
    return [
        ModelEntry("dreamfusion-sd", "text_to_3d",
                   "Score distillation from Stable Diffusion 2.1-base: any object, slow (a GPU: minutes to an hour; "
                   "downloads ~5 GB once)",
                   source=source, load=load_prior, run=dreamfusion.run,
                   params=dreamfusion.PARAMS, limits=dreamfusion.LIMITS, check=dreamfusion.check_request,
                   resumable=True,
                   is_available_offline=lambda: offline(source), takes_draft=True, expected_time="~15 min on a GPU (estimate)"),
        ModelEntry("prolificdreamer-sd", "text_to_3d",
                   "ProlificDreamer (VSD) from Stable Diffusion 2.1-base: score distillation at guidance 7.5 with a "
                   "camera-conditioned LoRA, more detail than DreamFusion (slowest: a GPU, an hour or more)",
                   source=source, load=load_prior, run=prolificdreamer.run,
                   params=prolificdreamer.PARAMS, limits=prolificdreamer.LIMITS, check=prolificdreamer.check_request,
                   resumable=True,
                   is_available_offline=lambda: offline(source), takes_draft=True, expected_time="~40 min on a GPU (estimate)"),
        ModelEntry("dreamfields-clip", "text_to_3d",
                   "DreamFields: a field CLIP finds closest to the prompt, kept sparse; the lightest open-domain "
                   "model, rough shapes (a GPU: tens of minutes; downloads ~600 MB once)",
                   source=clip_source, load=lambda options: dreamfields.load(options, clip_source), run=dreamfields.run,
                   params=dreamfields.PARAMS, limits=dreamfields.LIMITS, check=dreamfields.check_request,
                   resumable=True,
                   is_available_offline=lambda: offline(clip_source), takes_draft=True, expected_time="~5 min on a GPU (estimate)"),
        ModelEntry("zero123-sds", "image_to_3d",
                   "Zero-1-to-3 score distillation: the photo's object from every side, its own view kept "
                   "(a GPU: tens of minutes; downloads ~5 GB once)",
                   source=zero123_source, load=lambda options: zero123.load(options, zero123_source), run=zero123.run,
                   params=zero123.PARAMS, limits=zero123.LIMITS, check=zero123.check_request,
                   resumable=True,
                   is_available_offline=lambda: offline(zero123_source), expected_time="~5 min on a GPU (estimate)", tier="quality"),
        ModelEntry("magic3d-sd", "text_to_3d",
                   "Magic3D coarse to fine from Stable Diffusion 2.1-base: a field, then its surface as a textured "
                   "mesh refined at 512²; refines a draft too (slow: a GPU, an hour; downloads ~5 GB once)",
                   source=source, load=load_prior, run=magic3d.run,
                   params=magic3d.PARAMS, limits=magic3d.LIMITS, check=magic3d.check_request,
                   resumable=True,
                   is_available_offline=lambda: offline(source), takes_draft=True, expected_time="~25 min on a GPU (estimate)", tier="quality"),
        ModelEntry("reshape-sd", "edit_part",
                   "Reshape the selected faces of any mesh by score distillation from Stable Diffusion 2.1-base; "
                   "the rest stays exactly as it is (a GPU: minutes; downloads ~5 GB once)",
                   source=source, load=load_prior, run=reshape.run,
                   params=reshape.PARAMS, limits=reshape.LIMITS, check=reshape.check_request,
                   resumable=True,
                   is_available_offline=lambda: offline(source), expected_time="~3 min on a GPU (estimate)"),
    ]


def _texture_entries() -> list[ModelEntry]:
    texture = importlib.import_module(".pipelines.texture", __package__)
    depth = importlib.import_module(".texture.sd_depth", __package__).DEFAULT_MODEL
    controlnet = importlib.import_module(".texture.controlnet_depth", __package__)
    offline = importlib.import_module(".hub", __package__).is_available_offline
    common = dict(run=texture.run_texture, params=texture.TEXTURE_PARAMS, limits=texture.TEXTURE_LIMITS,
                  check=texture.check_texture_request)
    return [
        ModelEntry("sd2-depth", "texture", "Stable Diffusion 2 depth, painted from every side and baked to UV (downloads ~5 GB once)",
                   source=depth, load=texture.load_texture_pipeline, default=True,
                   is_available_offline=lambda: offline(depth), **common, expected_time="about a minute on a GPU (estimate)"),
        ModelEntry("sd15-controlnet-depth", "texture",
                   "Stable Diffusion 1.5 inpainting + depth ControlNet, painted from every side and baked to UV "
                   "(downloads ~7 GB once)",
                   source=f"{controlnet.DEFAULT_BASE} + {controlnet.DEFAULT_CONTROLNET}",
                   load=texture.load_controlnet_texture_pipeline,
                   is_available_offline=lambda: offline(controlnet.DEFAULT_BASE) and offline(controlnet.DEFAULT_CONTROLNET),
                   **common, expected_time="about a minute on a GPU (estimate)"),
    ]


# --- test-cube: an instant model for tests and benchmarks -----------------------------

TEST_CUBE_PARAMS = {"prompt": "", "num_inference_steps": 4, "step_delay": 0.0, "fail": "", "offer_state": False}
_FAILURES = {
    "input": lambda: InputError("test-cube was asked to fail with an input error"),
    "unavailable": lambda: ModelUnavailable("test-cube was asked to be unavailable"),
    "generation": lambda: GenerationFailed("test-cube was asked to produce an empty surface"),
    "oom": lambda: RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),
    "crash": lambda: ZeroDivisionError("test-cube was asked to crash"),
}


def _test_cube_entry() -> ModelEntry:
    return ModelEntry("test-cube", "text_to_3d", "Test model: an instant coloured cube",
                      source="builtin", load=lambda options: options, run=run_test_cube, params=TEST_CUBE_PARAMS)


def run_test_cube(pipe: Any, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """Make a unit cube with one colour per face, reporting `num_inference_steps` steps.

    `step_delay` seconds pass between steps (to test cancel); `fail` names an error to
    raise after the first step (input, unavailable, generation, oom, crash); with
    `offer_state`, each step offers its current state: the cube grown to step / steps.
    """
    steps = params["num_inference_steps"]
    if steps < 1:
        raise InputError("num_inference_steps must be at least 1")
    if params["fail"] and params["fail"] not in _FAILURES:
        raise InputError(f"fail must be one of {', '.join(_FAILURES)}, got {params['fail']!r}")
    rng = np.random.default_rng(params.get("seed") or 0)
    preview = np.zeros((16, 16, 3), np.uint8)
    for step in range(1, steps + 1):
        if params["step_delay"]:
            time.sleep(params["step_delay"])
        preview[:] = rng.integers(0, 256, 3)
        state = (lambda size=step / steps: _cube(params, size)) if params.get("offer_state") else None
        callback("denoise", step, steps, preview, state=state)  # raises JobCancelled when asked to stop
        if params["fail"]:
            raise _FAILURES[params["fail"]]()
    return _cube(params, 1.0, rng.integers(0, 256, (6, 4)).astype(np.uint8))


def _cube(params: dict[str, Any], size: float, face_colors: Optional[np.ndarray] = None) -> MeshResult:
    """A cube of edge `size`, one colour per face (grey without `face_colors`)."""
    corners = size * np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)], np.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]  # -x +x -y +y -z +z, outward
    vertices = corners[np.array(quads).reshape(-1)]  # (24, 3): own vertices per face, so colours stay flat
    faces = np.array([[4 * i, 4 * i + 1, 4 * i + 2, 4 * i, 4 * i + 2, 4 * i + 3] for i in range(6)]).reshape(-1, 3)
    face_colors = np.full((6, 4), 128, np.uint8) if face_colors is None else face_colors
    colors = np.repeat(face_colors | np.array([0, 0, 0, 255], np.uint8), 4, axis=0)
    return MeshResult(
        parts=[MeshPart("cube", vertices, faces, colors)],
        metadata={"model": "test-cube", "prompt": params["prompt"], "seed": params.get("seed")},
    )


# --- test-texture: the real painting pipeline with a weightless view generator ----------------

# Few, small views: a whole job takes about a second on CPU, yet every side gets painted.
TEST_TEXTURE_OVERRIDES = {"num_views": 4, "view_resolution": 128, "num_inference_steps": 1}


def _test_texture_entries() -> list[ModelEntry]:
    texture = importlib.import_module(".pipelines.texture", __package__)
    views = importlib.import_module(".texture.direction_views", __package__)

    def load(options: LoadOptions):
        return texture.TexturePaintingPipeline(views.DirectionColourGenerator(), device=options.device)

    return [
        ModelEntry("test-texture", "texture", "Test model: each side painted in the colour of its view direction",
                   source="builtin", load=load, run=texture.run_texture, check=texture.check_texture_request,
                   params={**texture.TEXTURE_PARAMS, **TEST_TEXTURE_OVERRIDES}, limits=texture.TEXTURE_LIMITS),
    ]
