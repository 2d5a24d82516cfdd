"""PartDiffusionPipeline: text → part shape → named meshes, and the part edits (complete, mix, edit).

Two-phase cascaded diffusion after SALAD (Koo et al. 2023): phase 1 ("layout") denoises every
part's Gaussian and label, phase 2 ("geometry") every part's latent given the layout. Part
completion and text-guided editing are RePaint (Lugmayr et al. 2022) over the part slots, part
mixing is SDEdit (Meng et al. 2022) from the spliced shape. Parts the user did not choose are
pasted back at the end, so they stay bit-identical; new parts left floating are moved until they
touch the rest (contact.py).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any, Optional, Sequence

import torch
from safetensors.torch import load_file

from backend.pipelines.base import InputError, MeshPart, MeshResult, ModelUnavailable, StepCallback, draw_seed, no_progress

from .autoencoder import AutoencoderConfig, PartAutoencoder
from .contact import attach_floating_parts
from .decode import decode_shape
from .diffusion import DenoiserConfig, PartDenoiser, SlotCodec, TextCondition
from .representation import PartShape, number_parts
from .text import TextEncoder

DEFAULT_WEIGHTS = os.path.join(os.path.dirname(__file__), "weights")
KNOWN_SIMILARITY = 0.45  # below this cosine similarity to every training caption a prompt is "unknown"


@dataclass
class PartPipelineOutput:
    shapes: list[PartShape]
    meshes: Optional[list[list[MeshPart]]] = None


def repaint_path(n: int, jump_length: int, jump_n_sample: int) -> list[int]:
    """RePaint's resampling schedule (Lugmayr et al. 2022) over levels 0 (pure noise) … n (clean).

    After every `jump_length` steps down, jump back up `jump_length` levels, `jump_n_sample - 1`
    times, so the generated region harmonises with the known one. Returns the visited levels.
    """
    jumps = {j: max(jump_n_sample - 1, 0) for j in range(jump_length, n, max(jump_length, 1))}
    path, j = [0], 0
    while j < n:
        j += 1
        path.append(j)
        if jumps.get(j, 0) > 0:
            jumps[j] -= 1
            for _ in range(jump_length):
                j -= 1
                path.append(j)
    return path


class PartDiffusionPipeline:
    """The built-in part-aware shape model. Load with `from_pretrained()`."""

    def __init__(self, autoencoder: PartAutoencoder, layout_net: PartDenoiser, latent_net: PartDenoiser,
                 codec: SlotCodec, config: dict, tensors: dict[str, torch.Tensor], text_encoder: TextEncoder,
                 device: str = "cpu"):
        self.autoencoder, self.layout_net, self.latent_net = autoencoder, layout_net, latent_net
        self.codec, self.config, self.text_encoder, self.device = codec, config, text_encoder, device
        from diffusers import DDIMScheduler  # here: importing diffusers takes seconds, and /models needs none of it

        self.scheduler = DDIMScheduler(**config["scheduler"], timestep_spacing="trailing", set_alpha_to_one=True)
        self.categories: list[str] = config["categories"]
        self.primitives: list[str] = config["primitives"]
        self.bank_latents = tensors["bank.latents"]  # (K, L)
        self.bank_primitive = tensors["bank.primitive"]  # (K,)
        self.bank_params: list[dict] = config.get("bank_params", [])
        self.caption_embeds = tensors["text.captions"]  # (M, 384)
        self.caption_category = tensors["text.caption_category"]  # (M,)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, folder: Optional[str] = None, device: str = "cpu", text_model: Optional[str] = None) -> "PartDiffusionPipeline":
        """Load weights from `folder` (default: the shipped backend/parts/weights)."""
        folder = folder or DEFAULT_WEIGHTS
        weights, cfg_path = os.path.join(folder, "model.safetensors"), os.path.join(folder, "config.json")
        if not (os.path.isfile(weights) and os.path.isfile(cfg_path)):
            raise ModelUnavailable(f"the built-in part model has no weights in {folder}; train them with "
                                   "`python -m backend.parts.train --out <folder>`")
        with open(cfg_path) as f:
            config = json.load(f)
        tensors = load_file(weights)

        def sub(prefix: str) -> dict[str, torch.Tensor]:
            return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

        autoencoder = PartAutoencoder(AutoencoderConfig(**config["autoencoder"]))
        autoencoder.load_state_dict(sub("autoencoder."))
        layout_net = PartDenoiser(DenoiserConfig(**config["layout_net"]))
        layout_net.load_state_dict(sub("layout."))
        latent_net = PartDenoiser(DenoiserConfig(**config["latent_net"]))
        latent_net.load_state_dict(sub("latent."))
        codec = SlotCodec(config["vocabulary"], config["max_parts"], sub("stats."), config.get("slot_templates"))
        for m in (autoencoder, layout_net, latent_net):
            m.to(device).eval()
        return cls(autoencoder, layout_net, latent_net, codec, config, tensors, TextEncoder(text_model, device), device)

    # ------------------------------------------------------------------ text
    def knows(self) -> list[str]:
        return list(self.categories)

    def resolve_prompt(self, prompt: str) -> tuple[str, str, Optional[str]]:
        """The prompt to condition on, the nearest known category, and a note when the prompt is unknown.

        Nearest by cosine similarity of MiniLM embeddings to the training captions.
        """
        emb = self.text_encoder.encode([prompt])[0]
        sims = self.caption_embeds @ emb  # (M,)
        best = int(sims.argmax())
        category = self.categories[int(self.caption_category[best])]
        mentions = any(c.replace("_", " ") in prompt.lower() for c in self.categories)
        if sims[best] >= KNOWN_SIMILARITY or mentions:
            return prompt, category, None
        note = (f"The built-in model does not know \"{prompt}\"; it made the nearest thing it knows, a {category}. "
                f"It knows: {', '.join(self.categories)}.")
        return f"a {category.replace('_', ' ')}", category, note

    def _embed(self, prompt: str | Sequence[str], n: int) -> TextCondition:
        """The prompts as the denoisers see them: sentence embedding, token states, nearest category."""
        prompts = [prompt] * n if isinstance(prompt, str) else list(prompt)
        if len(prompts) != n:
            raise InputError(f"got {len(prompts)} prompts for {n} shapes")
        emb = self.text_encoder.encode(prompts)  # (n, 384) unit vectors
        if "text_mean" in self.codec.stats:  # standardised as in training
            emb = (emb - self.codec.stats["text_mean"]) / self.codec.stats["text_std"]
        category = torch.tensor([self.categories.index(self.resolve_prompt(p)[1]) for p in prompts])
        return TextCondition(emb, *self.text_encoder.encode_tokens(prompts), category=category).to(self.device)

    # ------------------------------------------------------------------ denoising
    def _velocity(self, net: PartDenoiser, x, t: int, text: TextCondition, negative: Optional[TextCondition],
                  guidance_scale: float, cond=None):
        """Classifier-free guided v-prediction (Ho & Salimans 2022). x (B, S, D) → (B, S, D)."""
        B = x.shape[0]
        neg = net.unconditional(text) if negative is None else negative
        tt = torch.full((2 * B,), int(t), device=x.device)
        c2 = None if cond is None else torch.cat([cond, cond])
        v_text, v_neg = net(torch.cat([x, x]), tt, TextCondition.cat([text, neg]), c2).chunk(2)
        return v_neg + guidance_scale * (v_text - v_neg)

    def _alpha_bar(self, timesteps, level: int, n: int) -> float:
        return 1.0 if level >= n else float(self.scheduler.alphas_cumprod[int(timesteps[level])])

    @torch.no_grad()
    def _denoise(self, net: PartDenoiser, size: tuple, text: TextCondition, negative: Optional[TextCondition],
                 guidance_scale: float, steps: int,
                 generator: torch.Generator, callback: StepCallback, phase: str, cond=None,
                 known: Optional[torch.Tensor] = None, known_mask: Optional[torch.Tensor] = None,
                 init: Optional[torch.Tensor] = None, start_step: int = 0,
                 jump_length: int = 1, jump_n_sample: int = 1) -> torch.Tensor:
        """One phase's sampling loop over levels 0 (noise) … steps (clean).

        Args:
            size: (B, S, D). known/known_mask: (B, S, D) clean values and (B, S) 1 where the slot is
                given, or (B, S, D) 1 where the feature is given: after every step those slots are replaced by the known values noised to the
                same level (RePaint). init: (B, S, D) shape to start from at level `start_step`
                (SDEdit); None starts from pure noise at level 0.
            jump_length, jump_n_sample: RePaint resampling; (1, 1) is plain DDIM.
        Returns: (B, S, D) clean sample.
        """
        self.scheduler.set_timesteps(steps)
        ts = self.scheduler.timesteps  # (steps,) descending
        n = len(ts)
        randn = lambda: torch.randn(size, generator=generator).to(self.device)  # noqa: E731
        start_step = min(max(int(start_step), 0), n - 1) if init is not None else 0
        if init is not None:  # SDEdit: the given shape, noised to the starting level (Meng et al. 2022)
            x = self.scheduler.add_noise(init, randn(), ts[start_step : start_step + 1])
        else:
            x = randn()
        path = [start_step + j for j in repaint_path(n - start_step, jump_length, jump_n_sample)] if known is not None \
            else list(range(start_step, n + 1))
        total = len(path) - 1
        m = None if known_mask is None else (known_mask[..., None] if known_mask.dim() == 2 else known_mask).to(x.dtype)
        for k, (a, b) in enumerate(zip(path[:-1], path[1:])):
            if b > a:  # down one level: a DDIM step at ts[a]
                v = self._velocity(net, x, ts[a], text, negative, guidance_scale, cond)
                x = self.scheduler.step(v, ts[a], x, eta=0.0).prev_sample
                if known is not None:  # RePaint: known slots, noised to level b
                    known_b = known if b >= n else self.scheduler.add_noise(known, randn(), ts[b : b + 1])
                    x = m * known_b + (1 - m) * x
            else:  # up one level: re-noise from level a to b (RePaint's jump back)
                ratio = self._alpha_bar(ts, b, n) / self._alpha_bar(ts, a, n)
                x = ratio ** 0.5 * x + (1 - ratio) ** 0.5 * randn()
            callback(phase, k + 1, total)
        return x

    def _sample_shapes(self, prompt, negative_prompt, num_shapes: int, steps: int, guidance_scale: float,
                       generator: torch.Generator, callback: StepCallback, layout_known=None, latent_known=None,
                       known_mask=None, layout_init=None, latent_init=None, start_step: int = 0,
                       jump_length: int = 1, jump_n_sample: int = 1, layout_mask=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both phases. Returns snapped layouts (B, S, 13+V) and latents (B, S, L).

        `known_mask` (B, S) marks the given slots of both phases; `layout_mask` (B, S, 13+V), when
        given, marks the given layout features instead (e.g. a part's label but not its place).
        """
        text = self._embed(prompt, num_shapes)
        negative = self._embed(negative_prompt, num_shapes) if negative_prompt else None
        on_device = lambda x: None if x is None else x.to(self.device)  # noqa: E731  (shapes live on the CPU)
        layout_known, latent_known, known_mask, layout_init, latent_init, layout_mask = map(
            on_device, (layout_known, latent_known, known_mask, layout_init, latent_init, layout_mask))
        if layout_mask is None and known_mask is not None:
            layout_mask = known_mask[..., None].expand(-1, -1, self.codec.layout_dim)
        S, L = self.codec.max_parts, self.codec.stats["latent_mean"].shape[0]
        opts = dict(start_step=start_step, jump_length=jump_length, jump_n_sample=jump_n_sample)
        layout = self._denoise(self.layout_net, (num_shapes, S, self.codec.layout_dim), text, negative, guidance_scale,
                               steps, generator, callback, "layout", known=layout_known, known_mask=layout_mask,
                               init=layout_init, **opts)
        layout = self.codec.snap_layout(layout)
        if layout_known is not None:
            layout = torch.where(layout_mask.bool(), layout_known, layout)
        latents = self._denoise(self.latent_net, (num_shapes, S, L), text, negative, guidance_scale, steps, generator,
                                callback, "geometry", cond=layout, known=latent_known, known_mask=known_mask,
                                init=latent_init, **opts)
        return layout, latents

    def _to_shape(self, layout, latents, prompt: str, base: Optional[PartShape] = None,
                  kept_slots: Sequence[int] = (), attach_parts: bool = True) -> PartShape:
        """Slots → PartShape. `kept_slots[i]` holds `base`'s part i: pasted back exactly. With
        `attach_parts`, new parts left floating are moved to touch the rest (see contact.py)."""
        labels, gaussians, lat, slots = self.codec.decode(layout.cpu(), latents.cpu())
        new = [i for i, s in enumerate(slots) if s not in set(kept_slots)]
        if base is None:
            base = PartShape([], [], torch.zeros(0, gaussians.shape[1]), torch.zeros(0, lat.shape[1]), None, prompt,
                             self.resolve_prompt(prompt)[1])
        kept = list(range(len(kept_slots)))
        new_names = number_parts([labels[i] for i in new], gaussians[new, :3], taken=set(base.names[i] for i in kept))
        shape = PartShape([base.names[i] for i in kept] + new_names,
                          [base.labels[i] for i in kept] + [labels[i] for i in new],
                          torch.cat([base.gaussians[kept], gaussians[new]]), torch.cat([base.latents[kept], lat[new]]),
                          base.origin, prompt, base.category, dict(base.extra))
        shape.extra.pop("attached", None)
        if attach_parts and new:
            shape, moved = attach_floating_parts(shape, self.autoencoder, movable=range(len(kept), len(shape)))
            if moved:
                shape.extra["attached"] = moved
        return shape

    # ------------------------------------------------------------------ public API
    @torch.no_grad()
    def __call__(self, prompt: str | list[str], negative_prompt: Optional[str] = None, num_shapes: int = 1,
                 num_inference_steps: int = 25, guidance_scale: float = 1.5, generator: Optional[torch.Generator] = None,
                 callback_on_step_end: StepCallback = no_progress, output_type: str = "shape",
                 resolution: int = 128, attach_parts: bool = True) -> PartPipelineOutput:
        """Generate part shapes from text.

        Args:
            prompt: text (or one per shape). negative_prompt: steer away from it (default: unconditional).
            num_shapes: shapes per call. num_inference_steps: DDIM steps per phase.
            guidance_scale: classifier-free guidance weight. generator: torch RNG for reproducibility.
            callback_on_step_end: StepCallback, called each step of both phases and of decoding.
            output_type: "shape" (PartShape only) or "mesh" (also decode to MeshParts).
            attach_parts: move parts that float free of the rest until they touch it (contact.py).
        Returns:
            PartPipelineOutput with `shapes` (and `meshes` for output_type="mesh").
        """
        # 1. Check inputs
        if not prompt or (isinstance(prompt, str) and not prompt.strip()):
            raise InputError("prompt is empty: describe the object, e.g. \"a chair with four legs\"")
        if num_inference_steps < 1 or num_shapes < 1:
            raise InputError("num_inference_steps and num_shapes must be at least 1")
        if output_type not in ("shape", "mesh"):
            raise InputError(f"output_type must be 'shape' or 'mesh', not {output_type!r}")
        generator = generator or torch.Generator().manual_seed(0)
        # 2-5. Encode prompt, prepare timesteps and noise, denoise layout then geometry
        layout, latents = self._sample_shapes(prompt, negative_prompt, num_shapes, num_inference_steps, guidance_scale,
                                              generator, callback_on_step_end)
        prompts = [prompt] * num_shapes if isinstance(prompt, str) else prompt
        shapes = [self._to_shape(layout[b], latents[b], prompts[b], attach_parts=attach_parts) for b in range(num_shapes)]
        # 6. Decode to mesh
        meshes = [self.decode(s, resolution, callback_on_step_end) for s in shapes] if output_type == "mesh" else None
        return PartPipelineOutput(shapes, meshes)

    def generate(self, prompt: str, num_shapes: int = 1, seed: int = 0, steps: int = 25, guidance_scale: float = 1.5,
                 callback: StepCallback = no_progress, negative_prompt: Optional[str] = None) -> list[PartShape]:
        """Shapes for `prompt`, reproducible from `seed`."""
        return self(prompt, negative_prompt, num_shapes, steps, guidance_scale, torch.Generator().manual_seed(seed),
                    callback).shapes

    def decode(self, shape: PartShape, resolution: int = 128, callback: StepCallback = no_progress) -> list[MeshPart]:
        """Named, coloured meshes of `shape`; sets `shape.origin` on its first decode."""
        parts, origin = decode_shape(shape, self.autoencoder, resolution, callback)
        shape.origin = origin
        return parts

    def _regenerate(self, shape: PartShape, keep: list[int], prompt: str, seed: int, steps: int, guidance_scale: float,
                    jump_length: int, jump_n_sample: int, callback: StepCallback,
                    negative_prompt: Optional[str] = None, new_parts: bool = True) -> PartShape:
        """RePaint (Lugmayr et al. 2022): keep the parts at `keep`, regenerate the rest; with `new_parts`
        the free slots may become parts too, otherwise they are held empty."""
        layout, latents, _, slot_of = self.codec.encode(shape)  # the whole shape in its category's slots
        kept_slots = [slot_of[i] for i in keep]
        mask = torch.zeros(1, self.codec.max_parts)  # (1, S), 1 = known
        mask[0, kept_slots] = 1.0
        if not new_parts:  # only the parts' own slots are regenerated: free slots stay known-empty
            mask[0] = 1.0
            mask[0, [slot_of[i] for i in range(len(shape)) if i not in keep]] = 0.0
        layout_out, latents_out = self._sample_shapes(
            prompt, negative_prompt, 1, steps, guidance_scale, torch.Generator().manual_seed(seed), callback,
            layout_known=layout[None], latent_known=latents[None], known_mask=mask,
            jump_length=jump_length, jump_n_sample=jump_n_sample)
        return self._to_shape(layout_out[0], latents_out[0], prompt, shape.select(keep), kept_slots=kept_slots)

    def _names_to_index(self, shape: PartShape, names: Sequence[str], what: str) -> list[int]:
        """Indices of parts named (or labelled) in `names`; unknown names are an InputError."""
        index = []
        for name in names:
            hits = [i for i, (n, l) in enumerate(zip(shape.names, shape.labels)) if name in (n, l)]
            if not hits:
                raise InputError(f"{what}: no part named {name!r}; the parts are {', '.join(shape.names)}")
            index += [i for i in hits if i not in index]
        return index

    def complete(self, shape: PartShape, keep: Sequence[str], prompt: Optional[str] = None, seed: int = 0,
                 steps: int = 25, guidance_scale: float = 1.5, jump_length: int = 5, jump_n_sample: int = 3,
                 callback: StepCallback = no_progress, negative_prompt: Optional[str] = None) -> PartShape:
        """Part completion: keep the parts named in `keep` bit-identical, regenerate the others in their slots.

        Args: prompt: defaults to the shape's own prompt. jump_length / jump_n_sample: RePaint resampling.
        """
        keep_idx = self._names_to_index(shape, keep, "complete") if keep else []
        prompt = prompt if prompt else (shape.prompt or (f"a {shape.category}" if shape.category else "an object"))
        return self._regenerate(shape, keep_idx, prompt, seed, steps, guidance_scale, jump_length, jump_n_sample,
                                callback, negative_prompt, new_parts=False)

    def edit(self, shape: PartShape, parts: Sequence[str], prompt: str, seed: int = 0, steps: int = 25,
             guidance_scale: float = 2.0, jump_length: int = 5, jump_n_sample: int = 3,
             callback: StepCallback = no_progress, negative_prompt: Optional[str] = None) -> PartShape:
        """Text-guided part editing: regenerate the parts named in `parts` so the shape matches `prompt`."""
        if not prompt or not prompt.strip():
            raise InputError("edit needs a prompt saying what the selected parts should become")
        chosen = self._names_to_index(shape, parts, "edit")
        if not chosen:
            raise InputError("edit needs at least one part to regenerate")
        keep = [i for i in range(len(shape)) if i not in chosen]
        return self._regenerate(shape, keep, prompt, seed, steps, guidance_scale, jump_length, jump_n_sample,
                                callback, negative_prompt)

    def mix(self, shape_a: PartShape, shape_b: PartShape, take_from_b: Sequence[str], replace: Optional[Sequence[str]] = None,
            prompt: Optional[str] = None, seed: int = 0, steps: int = 25, guidance_scale: float = 1.5,
            start_step: Optional[int] = None, callback: StepCallback = no_progress,
            negative_prompt: Optional[str] = None) -> PartShape:
        """Part mixing by SDEdit (Meng et al. 2022): A's parts plus B's parts named in `take_from_b`.

        A's parts with the labels taken from B (or those named in `replace`) are dropped; the spliced
        shape is noised to `start_step` (of `steps`; default half way) and denoised with A's kept
        parts held fixed, so B's parts settle into A: they move and resize, but stay parts with
        their labels and geometry latents. A's kept parts come back bit-identical.
        """
        take = self._names_to_index(shape_b, take_from_b, "mix (take_from_b)")
        if not take:
            raise InputError("mix needs take_from_b: the names or labels of the parts of the second shape to bring in")
        taken_labels = {shape_b.labels[i] for i in take}
        drop = self._names_to_index(shape_a, replace, "mix (replace)") if replace else \
            [i for i, l in enumerate(shape_a.labels) if l in taken_labels]
        keep = [i for i in range(len(shape_a)) if i not in drop]
        if len(keep) + len(take) > self.codec.max_parts:
            raise InputError(f"the mixed shape would have {len(keep) + len(take)} parts; at most {self.codec.max_parts}")
        base = shape_a.select(keep)
        spliced = PartShape(base.names + [shape_b.names[i] for i in take], base.labels + [shape_b.labels[i] for i in take],
                            torch.cat([base.gaussians, shape_b.gaussians[take]]), torch.cat([base.latents, shape_b.latents[take]]),
                            category=shape_a.category)
        layout, latents, _, slot_of = self.codec.encode(spliced)
        kept_slots, b_slots = slot_of[: len(keep)], slot_of[len(keep):]
        # Phase 1: A's kept parts are given; B's parts keep being parts with their labels, while
        # SDEdit settles their places into A. Phase 2: both keep their geometry latents.
        layout_mask = torch.zeros(1, self.codec.max_parts, self.codec.layout_dim)
        layout_mask[0, kept_slots] = 1.0
        layout_mask[0, b_slots, 12:] = 1.0  # weight and label
        known_mask = torch.zeros(1, self.codec.max_parts)  # (1, S)
        known_mask[0, slot_of] = 1.0
        start = steps // 2 if start_step is None else start_step
        prompt = prompt if prompt else (shape_a.prompt or "an object")
        layout_out, latents_out = self._sample_shapes(
            prompt, negative_prompt, 1, steps, guidance_scale, torch.Generator().manual_seed(seed), callback,
            layout_known=layout[None], latent_known=latents[None], known_mask=known_mask, layout_mask=layout_mask,
            layout_init=layout[None], latent_init=latents[None], start_step=start)
        return self._to_shape(layout_out[0], latents_out[0], prompt, base, kept_slots=kept_slots)

    @torch.no_grad()
    def guess_primitives(self, latents: torch.Tensor) -> list[tuple[str, dict]]:
        """The primitive (and its parameters) of the nearest training part latent, for each (N, L) latent."""
        nearest = torch.cdist(latents.float(), self.bank_latents.float()).argmin(1)
        return [(self.primitives[int(self.bank_primitive[i])], self.bank_params[int(i)] if self.bank_params else {})
                for i in nearest]


# ---------------------------------------------------------------------- registry adapters
# The service imports exactly these names: load_builtin, run_text, run_edit, TEXT_PARAMS, EDIT_PARAMS, knows.

TEXT_PARAMS: dict[str, Any] = {"prompt": "", "negative_prompt": None, "seed": None, "num_inference_steps": 25,
                               "guidance_scale": 1.5, "resolution": 128}
EDIT_PARAMS: dict[str, Any] = {"mode": "edit", "prompt": "", "negative_prompt": None, "seed": None, "num_inference_steps": 25,
                               "guidance_scale": 2.0, "resolution": 128, "take_from_b": [], "jump_length": 5,
                               "jump_n_sample": 3, "start_step": None}
EDIT_MODES = ("edit", "complete", "mix")


@functools.lru_cache(maxsize=4)  # /models asks on every request; the weights' config does not change
def knows(folder: Optional[str] = None) -> list[str]:
    """Categories the shipped model was trained on (read from its config, no weights loaded)."""
    try:
        with open(os.path.join(folder or DEFAULT_WEIGHTS, "config.json")) as f:
            return list(json.load(f)["categories"])
    except (OSError, KeyError, ValueError):
        return []


def load_builtin(options) -> PartDiffusionPipeline:
    """Registry loader: the shipped weights on `options.device` (float32 throughout; the nets are tiny)."""
    return PartDiffusionPipeline.from_pretrained(device=str(getattr(options, "device", "cpu") or "cpu"))


def _with_defaults(params: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise InputError(f"unknown parameter(s) {', '.join(unknown)}; accepted: {', '.join(defaults)}")
    p = {**defaults, **{k: v for k, v in params.items() if v is not None}}
    if p.get("seed") is None:
        p["seed"] = draw_seed()
    try:
        p["seed"], p["num_inference_steps"], p["resolution"] = int(p["seed"]), int(p["num_inference_steps"]), int(p["resolution"])
        p["guidance_scale"] = float(p["guidance_scale"])
    except (TypeError, ValueError) as exc:
        raise InputError(f"seed, num_inference_steps and resolution must be integers, guidance_scale a number ({exc})")
    if not 1 <= p["num_inference_steps"] <= 500:
        raise InputError("num_inference_steps must be between 1 and 500")
    if not 16 <= p["resolution"] <= 384:
        raise InputError("resolution must be between 16 and 384 grid points per axis")
    return p


def _result(pipe: PartDiffusionPipeline, shape: PartShape, params: dict, notes: list[str], callback, **extra) -> MeshResult:
    parts = pipe.decode(shape, params["resolution"], callback)
    hidden = [n for n in shape.names if n not in {p.name for p in parts}]
    if hidden:
        notes.append(f"part(s) {', '.join(hidden)} lie inside other parts and have no visible faces")
    metadata = {"model": "builtin", "shape": shape.to_dict(), "parts": [p.name for p in parts], "notes": notes,
                "seed": params["seed"], **extra}
    return MeshResult(parts=parts, metadata=metadata)


def run_text(pipe: PartDiffusionPipeline, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """text_to_3d with the built-in model: prompt → named part meshes (+ the PartShape in metadata)."""
    p = _with_defaults(params, TEXT_PARAMS)
    if not str(p["prompt"]).strip():
        raise InputError("prompt is empty: describe the object, e.g. \"a chair with four legs\"")
    prompt, category, note = pipe.resolve_prompt(str(p["prompt"]))
    out = pipe(prompt, p["negative_prompt"], 1, p["num_inference_steps"], p["guidance_scale"],
               torch.Generator().manual_seed(p["seed"]), callback)
    shape = out.shapes[0]
    shape.prompt, shape.category = str(p["prompt"]), category
    return _result(pipe, shape, p, [note] if note else [], callback, category=category)


def _shape_from_glb(pipe: PartDiffusionPipeline, data: bytes, what: str) -> tuple[PartShape, list[MeshPart]]:
    """The part shape a built-in result carries in its GLB, checked against this model."""
    from backend.geometry.glb import EXTRAS_KEY, read_glb_meshes

    meshes, extras = read_glb_meshes(data)
    d = (extras or {}).get(EXTRAS_KEY, {}) if isinstance(extras, dict) else {}
    if not isinstance(d, dict) or "shape" not in d:
        raise InputError(f"{what} was not generated by the built-in model (its GLB carries no part shape); "
                         "fitting parts to other meshes is not supported yet: generate the object with the "
                         "built-in model first, then edit it")
    try:
        shape = PartShape.from_dict(d["shape"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{what}: its part shape is damaged ({exc})")
    unknown = sorted(set(shape.labels) - set(pipe.codec.vocabulary))
    latent_dim = pipe.codec.stats["latent_mean"].shape[0]
    if unknown or len(shape) > pipe.codec.max_parts or (len(shape) and shape.latents.shape[1] != latent_dim):
        raise InputError(f"{what}: its part shape does not fit this model ({len(shape)} parts of at most "
                         f"{pipe.codec.max_parts}, labels {', '.join(unknown) or 'known'}, latents "
                         f"{tuple(shape.latents.shape)}); generate it again with this model")
    return shape, meshes


def selected_parts(shape: PartShape, meshes: list[MeshPart], face_mask: bytes, min_fraction: float = 0.3) -> list[str]:
    """Parts the artist selected: each face goes to the part named like its mesh, else to the part
    whose box (Gaussian frame) is nearest its centre; a part is chosen when at least `min_fraction`
    of its faces are selected (or, if none is, the part with most selected faces)."""
    import numpy as np

    n_faces = sum(len(m.faces) for m in meshes)
    mask = np.frombuffer(face_mask, dtype=np.uint8)
    if len(mask) != n_faces:
        raise InputError(f"face_mask has {len(mask)} entries but the mesh has {n_faces} triangles (one byte per triangle)")
    if not mask.any():
        raise InputError("no faces are selected: select the faces of the parts to change")
    origin = (shape.origin if shape.origin is not None else torch.zeros(3)).numpy()
    rot, ctr, half = shape.rotations.numpy(), shape.centers.numpy(), shape.half_extents.clamp(min=1e-4).numpy()
    owners = []
    for m in meshes:
        if m.name in shape.names:
            owners.append(np.full(len(m.faces), shape.names.index(m.name)))
            continue
        x = np.asarray(m.vertices, np.float32)[np.asarray(m.faces)].mean(1) + origin  # (F, 3) face centres, shape frame
        local = np.einsum("fpk,pkj->fpj", x[:, None, :] - ctr[None], rot) / half[None]  # (F, P, 3)
        owners.append(np.abs(local).max(-1).argmin(-1))
    owner = np.concatenate(owners) if owners else np.zeros(0, int)
    counts = np.bincount(owner, minlength=len(shape))
    chosen_counts = np.bincount(owner[mask != 0], minlength=len(shape))
    chosen = [shape.names[i] for i in range(len(shape)) if counts[i] and chosen_counts[i] / counts[i] >= min_fraction]
    return chosen or [shape.names[int(chosen_counts.argmax())]]


def run_edit(pipe: PartDiffusionPipeline, params: dict[str, Any], files: dict[str, bytes], callback: StepCallback) -> MeshResult:
    """edit_part with the built-in model. mode "edit": regenerate the selected parts from the prompt;
    "complete": regenerate them from the rest; "mix": bring the parts of `mesh_b` named in take_from_b in."""
    p = _with_defaults(params, EDIT_PARAMS)
    if p["mode"] not in EDIT_MODES:
        raise InputError(f"mode must be one of {', '.join(EDIT_MODES)}, not {p['mode']!r}")
    if "mesh" not in files:
        raise InputError("edit_part needs the mesh (GLB) to edit")
    shape, meshes = _shape_from_glb(pipe, files["mesh"], "the mesh")
    common = dict(seed=p["seed"], steps=p["num_inference_steps"], guidance_scale=p["guidance_scale"], callback=callback,
                  negative_prompt=p["negative_prompt"])
    notes: list[str] = []
    prompt = str(p["prompt"] or "").strip()
    if p["mode"] == "mix":
        if "mesh_b" not in files:
            raise InputError("mix needs a second generated object (mesh_b) to take parts from")
        shape_b, _ = _shape_from_glb(pipe, files["mesh_b"], "the second mesh (mesh_b)")
        take = p["take_from_b"]
        take = [t.strip() for t in take.split(",") if t.strip()] if isinstance(take, str) else list(take)
        replace = selected_parts(shape, meshes, files["face_mask"]) if files.get("face_mask") else None
        result = pipe.mix(shape, shape_b, take, replace=replace, prompt=prompt or None, start_step=p["start_step"], **common)
        changed = take
    else:
        if not files.get("face_mask"):
            raise InputError(f"{p['mode']} needs face_mask: one byte per triangle, nonzero on the selected faces")
        chosen = selected_parts(shape, meshes, files["face_mask"])
        notes.append(f"regenerated part(s): {', '.join(chosen)}")
        jumps = dict(jump_length=int(p["jump_length"]), jump_n_sample=int(p["jump_n_sample"]))
        if p["mode"] == "edit":
            if not prompt:
                raise InputError("edit needs a prompt saying what the selected parts should become")
            prompt, _, note = pipe.resolve_prompt(prompt)
            notes += [note] if note else []
            result = pipe.edit(shape, chosen, prompt, **jumps, **common)
        else:
            keep = [n for n in shape.names if n not in chosen]
            result = pipe.complete(shape, keep, prompt or None, **jumps, **common)
        changed = chosen
    return _result(pipe, result, p, notes, callback, mode=p["mode"], changed=list(changed))
