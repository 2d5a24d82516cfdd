"""PartDiffusionPipeline: text → part shape → named meshes, and the part edits (complete, mix, edit).

Two-phase cascaded diffusion after SALAD (Koo et al. 2023): phase 1 ("layout") denoises every
part's Gaussian and label, phase 2 ("geometry") every part's latent given the layout. Part
completion and text-guided editing are RePaint (Lugmayr et al. 2022) over the part slots, part
mixing is SDEdit (Meng et al. 2022) from the spliced shape. Parts the user did not choose are
pasted back at the end, so they stay bit-identical; new parts left floating are moved until they
touch the rest, and (in shapes fitted to an artist's mesh) new parts that pass right through a
kept part are shortened (contact.py).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence

import torch
from safetensors.torch import load_file

from backend.errors import InputError, ModelUnavailable
from backend.results import MeshPart, StepCallback, no_progress

from .appearance import clean_looks
from .appearance_reader import load_reader, looks_note, plain_looks
from .autoencoder import AutoencoderConfig, PartAutoencoder
from .contact import attach_floating_parts, stop_inside_kept_parts, stop_smaller_crossing_parts, world_boxes
from .decode import EXTENT, decode_shape
from .diffusion import DenoiserConfig, PartDenoiser, SlotCodec, TextCondition
from .lexicon import shipped as shipped_lexicon
from .phrase_reader import PhraseReader, reading_note
from .prompt_counts import with_count_tokens
from .representation import PartShape, number_parts, rotation_from_6d
from .slot_constraints import slot_constraints
from .text import TextEncoder

DEFAULT_WEIGHTS = os.path.join(os.path.dirname(__file__), "weights")
KNOWN_SIMILARITY = 0.45  # below this cosine similarity to every training caption a prompt is "unknown"
# ... and below this one when it names a thing WordNet knows is of no category: MiniLM puts "an
# elephant" at 0.45 from an arch, "a piano" at 0.55 from a guitar, "a lamp" at 0.85 from a desk lamp
OTHER_THING_SIMILARITY = 0.6
RESOLVED_CACHE = 64  # prompts whose resolution is kept (PartDiffusionPipeline.resolve_prompt)
EDIT_MARGIN = 0.2  # how far beyond the chosen parts' box an edit may add parts (shape units)
# Where part mixing's SDEdit starts, as a fraction of the steps. A fitted shape (an artist's mesh)
# lies outside what the model knows and the model pulls brought parts towards its own layouts
# (from 85% a wheeled base rose through a modelled seat): there the aligned parts only settle.
MIX_START, MIX_START_FITTED = 0.5, 0.92


def _put(prompt: str, words: str, noun: str) -> str:
    """`prompt` with the first `words` (any case) replaced by `noun`, its article made to fit."""
    def swap(match: re.Match) -> str:
        article = match.group(1)
        if not article:
            return noun
        fitting = "an" if noun[0] in "aeiou" else "a"
        return f"{fitting if article.islower() else fitting.capitalize()} {noun}"
    return re.sub(rf"\b(?:(an?) +)?{re.escape(words)}\b", swap, prompt, count=1, flags=re.IGNORECASE)


class Resolved(NamedTuple):
    """What `resolve_prompt` makes of a prompt."""

    prompt: str  # the prompt in the category's own noun, colours kept ("a keg ..." -> "a barrel ...")
    category: str
    note: Optional[str]  # for the artist: the prompt is unknown, a noun or phrase was read in the model's words
    known: bool
    reading: Optional[str] = None  # the attributes read, as a training caption: what the shape is conditioned on
    values: tuple = ()  # the (attribute, value) pairs read: the part counts they decide are held while sampling


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
        self.appearance = load_reader(config, tensors)  # None for weights trained before it
        self.lexicon = shipped_lexicon()
        self.reader = PhraseReader(text_encoder, lexicon=self.lexicon)
        self.hold_counts = True  # hold the part counts a prompt states while sampling (slot_constraints.py)
        self._resolved: OrderedDict[str, Resolved] = OrderedDict()  # bounded: RESOLVED_CACHE
        self._resolved_lock = threading.Lock()

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

    def resolve_prompt(self, prompt: str) -> "Resolved":
        """`_resolve` once per prompt: a job resolves its prompt for its notes, then again for
        each shape it conditions (20-110 ms each, the phrase reader's share), so the last
        RESOLVED_CACHE prompts are kept."""
        with self._resolved_lock:
            if prompt in self._resolved:
                self._resolved.move_to_end(prompt)
                return self._resolved[prompt]
        resolved = self._resolve(prompt)
        said = looks_note(prompt, self.lexicon) if self.appearance is not None else None
        if said:
            resolved = resolved._replace(note=" ".join(n for n in (resolved.note, said) if n))
        with self._resolved_lock:
            self._resolved[prompt] = resolved
            while len(self._resolved) > RESOLVED_CACHE:
                self._resolved.popitem(last=False)
        return resolved

    def _resolve(self, prompt: str) -> "Resolved":
        """The prompt to condition on, the nearest known category, a note when the prompt is
        unknown or a noun in it was read as a category's own word, and whether it is known.

        A prompt whose nouns name categories (the lexicon: WordNet's nouns, "a keg" is a kind of
        barrel) is one of those or a kind of one ("a beacon tower" may be a lighthouse), the one
        whose training captions are nearest; when none of its nouns is one the captions use for
        that category, the first that names it is put in the category's own word ("a keg with
        three hoops" is conditioned on as "a barrel with three hoops"). Otherwise the nearest
        category by cosine similarity of MiniLM embeddings to the training captions, of the
        prompt without its colour and material words (a share of the captions state some: "a
        red elephant" must not pass for known by its colour), known only when that similarity
        clears KNOWN_SIMILARITY; a prompt that names a physical thing WordNet places under no
        category must clear OTHER_THING_SIMILARITY too, or state an attribute of the category.
        """
        text = self.lexicon.without_looks(prompt)
        emb = self.text_encoder.encode([text])[0]
        sims = self.caption_embeds @ emb  # (M,)
        named = [n for n in self.lexicon.named(text) if n.category in self.categories]
        if named:
            def nearest(category: str) -> float:
                return float(sims[self.caption_category == self.categories.index(category)].max())
            candidates = dict.fromkeys(c for n in named for c in [n.category, *self.lexicon.kinds.get(n.category, [])])
            category = max((c for c in candidates if c in self.categories), key=nearest)
            own = [n for n in named if n.category == category]
            if not own or any(n.noun in self.lexicon.training for n in own):
                return self._read(prompt, category, None)
            prompt = _put(prompt, own[0].words, category)
            return self._read(prompt, category, f"Read \"{own[0].words}\" as a {category}.")
        best = int(sims.argmax())
        category = self.categories[int(self.caption_category[best])]
        if sims[best] >= KNOWN_SIMILARITY:
            resolved = self._read(prompt, category, None)
            # naming another thing ("an elephant"), a prompt must be nearer, or say something of the category's
            if resolved.reading or sims[best] >= OTHER_THING_SIMILARITY or not self.lexicon.other_things(text):
                return resolved
        note = (f"The built-in model does not know \"{prompt}\"; it made the nearest thing it knows, a {category}. "
                f"It knows: {', '.join(self.categories)}.")
        return Resolved(f"a {category.replace('_', ' ')}", category, note, False)

    def _read(self, prompt: str, category: str, note: Optional[str]) -> "Resolved":
        """A known prompt resolved, with its attributes read into a training caption (phrase_reader)."""
        read = self.reader.read(prompt, category)
        if not read:
            return Resolved(prompt, category, note, True)
        said = reading_note(read)
        note = " ".join(n for n in (note, said) if n) or None
        return Resolved(prompt, category, note, True, self.reader.caption(category, read),
                        tuple((p.attribute, p.value) for p in read))

    def _batch(self, prompt: str | Sequence[str], n: int) -> list[str]:
        """The `n` prompts of a batch (one repeated, or one per shape)."""
        prompts = [prompt] * n if isinstance(prompt, str) else list(prompt)
        if len(prompts) != n:
            raise InputError(f"got {len(prompts)} prompts for {n} shapes")
        return prompts

    def _embed(self, prompt: str | Sequence[str], n: int, resolved: Optional[list["Resolved"]] = None) -> TextCondition:
        """The prompts as the denoisers see them: sentence embedding, token states, nearest category.
        `resolved`: what each prompt resolves to, when the caller has it already."""
        prompts = self._batch(prompt, n)
        resolved = resolved if resolved is not None else [self.resolve_prompt(p) for p in prompts]
        # A known prompt is conditioned on the attributes read from it, in training words, or else
        # in its category's noun ("keg": barrel); an unknown prompt as it is (run_text sends the
        # nearest category's name in its place).
        prompts = [r.reading or (r.prompt if r.known else p) for r, p in zip(resolved, prompts)]
        emb = self.text_encoder.encode(prompts)  # (n, 384) unit vectors
        if "text_mean" in self.codec.stats:  # standardised as in training
            emb = (emb - self.codec.stats["text_mean"]) / self.codec.stats["text_std"]
        category = torch.tensor([self.categories.index(r.category) for r in resolved])
        tokens, mask = self.text_encoder.encode_tokens(prompts)
        if self.layout_net.config.count_dim:  # weights trained with count tokens (prompt_counts.py)
            tokens, mask = with_count_tokens(self.text_encoder, prompts, tokens, mask)
        return TextCondition(emb, tokens, mask, category=category).to(self.device)

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
                 jump_length: int = 1, jump_n_sample: int = 1, held: Optional[torch.Tensor] = None,
                 held_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """One phase's sampling loop over levels 0 (noise) … steps (clean).

        Args:
            size: (B, S, D). known/known_mask: (B, S, D) clean values and (B, S) 1 where the slot is
                given, or (B, S, D) 1 where the feature is given: after every step those slots are replaced by the known values noised to the
                same level (RePaint). init: (B, S, D) shape to start from at level `start_step`
                (SDEdit); None starts from pure noise at level 0.
            jump_length, jump_n_sample: RePaint resampling; (1, 1) is plain DDIM.
            held/held_mask: (B, S, D) clean values and 1 where a feature is held: at every step the
                denoiser's clean estimate takes them before the DDIM step, so the held features
                reach their values along the sample's own noise (no fresh noise as in RePaint).
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
                if held is not None:  # v-prediction: x0 = √ᾱ x − √(1−ᾱ) v; held features of x0 replaced, v solved back
                    ab = self._alpha_bar(ts, a, n)
                    x0 = ab ** 0.5 * x - (1 - ab) ** 0.5 * v
                    x0 = held_mask * held + (1 - held_mask) * x0
                    v = (ab ** 0.5 * x - x0) / (1 - ab) ** 0.5
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
        resolved = [self.resolve_prompt(p) for p in self._batch(prompt, num_shapes)]  # once: a batch may outgrow the cache
        text = self._embed(prompt, num_shapes, resolved)
        negative = self._embed(negative_prompt, num_shapes) if negative_prompt else None
        on_device = lambda x: None if x is None else x.to(self.device)  # noqa: E731  (shapes live on the CPU)
        layout_known, latent_known, known_mask, layout_init, latent_init, layout_mask = map(
            on_device, (layout_known, latent_known, known_mask, layout_init, latent_init, layout_mask))
        if layout_mask is None and known_mask is not None:
            layout_mask = known_mask[..., None].expand(-1, -1, self.codec.layout_dim)
        held, held_mask = None, None
        if layout_init is None and self.hold_counts:  # the counts the prompt states are held in the slots sampled
            held, held_mask = self._stated_counts(resolved)
            if held is not None and layout_mask is not None:  # a given part stays as given (an edit keeps it)
                held_mask = held_mask * (1 - layout_mask)
        S, L = self.codec.max_parts, self.codec.stats["latent_mean"].shape[0]
        opts = dict(start_step=start_step, jump_length=jump_length, jump_n_sample=jump_n_sample)
        layout = self._denoise(self.layout_net, (num_shapes, S, self.codec.layout_dim), text, negative, guidance_scale,
                               steps, generator, callback, "layout", known=layout_known, known_mask=layout_mask,
                               init=layout_init, held=held, held_mask=held_mask, **opts)
        layout = self.codec.snap_layout(layout)
        if layout_known is not None:
            layout = torch.where(layout_mask.bool(), layout_known, layout)
        if held is not None:
            layout = torch.where(held_mask.bool(), held, layout)
        latents = self._denoise(self.latent_net, (num_shapes, S, L), text, negative, guidance_scale, steps, generator,
                                callback, "geometry", cond=layout, known=latent_known, known_mask=known_mask,
                                init=latent_init, **opts)
        return layout, latents

    def _stated_counts(self, resolved: list["Resolved"]) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Known layout features and their mask (n, S, 13+V) for the part counts the resolved
        prompts' read values decide (slot_constraints.py), or (None, None) when they decide none."""
        held = [slot_constraints(self.codec, r.category, dict(r.values)) if r.values else None for r in resolved]
        if not any(h is not None for h in held):
            return None, None
        empty = torch.zeros(self.codec.max_parts, self.codec.layout_dim)
        known = torch.stack([h[0] if h is not None else empty for h in held]).to(self.device)
        return known, torch.stack([h[1] if h is not None else empty for h in held]).to(self.device)

    def _to_shape(self, layout, latents, prompt: str, base: Optional[PartShape] = None,
                  kept_slots: Sequence[int] = (), attach_parts: bool = True,
                  region: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> PartShape:
        """Slots → PartShape. `kept_slots[i]` holds `base`'s part i: pasted back exactly. New parts
        whose centre is outside `region` (lo, hi) or the decode grid are left out. With
        `attach_parts`, new parts left floating are moved to touch the rest; in a fitted shape,
        new parts through a kept one are shortened (contact.py)."""
        labels, gaussians, lat, slots = self.codec.decode(layout.cpu(), latents.cpu())
        new = [i for i, s in enumerate(slots) if s not in set(kept_slots)]
        if region is not None:
            new = [i for i in new if bool(((gaussians[i, :3] >= region[0]) & (gaussians[i, :3] <= region[1])).all())]
        # A part centred outside the decode grid would be meshed as a cut sliver or not at all
        # (about one part in a hundred, e.g. a chair leg far above the back): leave it out.
        beyond = (gaussians[:, :3].abs() > EXTENT).any(1)  # (N,)
        outside = [labels[i] for i in new if beyond[i]]
        new = [i for i in new if not beyond[i]]
        if base is None:
            base = PartShape([], [], torch.zeros(0, gaussians.shape[1]), torch.zeros(0, lat.shape[1]), None, prompt,
                             self.resolve_prompt(prompt)[1])
        kept = list(range(len(kept_slots)))
        new_names = number_parts([labels[i] for i in new], gaussians[new, :3], taken=set(base.names[i] for i in kept))
        shape = PartShape([base.names[i] for i in kept] + new_names,
                          [base.labels[i] for i in kept] + [labels[i] for i in new],
                          torch.cat([base.gaussians[kept], gaussians[new]]), torch.cat([base.latents[kept], lat[new]]),
                          base.origin, prompt, base.category, dict(base.extra))
        for key in ("attached", "shortened", "left_outside"):
            shape.extra.pop(key, None)
        shape.extra["looks"] = self.looks(prompt, shape.labels, base.extra.get("looks"), {labels[i] for i in new})
        if outside:
            shape.extra["left_outside"] = outside
        moved: list[str] = []
        shortened: list[str] = []
        if not kept and attach_parts and new:
            shape, moved, shortened = settle_new_shape(shape, self.autoencoder)
        elif attach_parts and new:
            shape, moved = attach_floating_parts(shape, self.autoencoder, movable=range(len(kept), len(shape)))
        if kept and new and "frame_scale" in shape.extra:  # parts fitted to an artist's mesh, whose
            # proportions the model never saw (a seat thinner than any in training)
            shape, shortened = stop_inside_kept_parts(shape, kept)
        if moved:
            shape.extra["attached"] = moved
        if shortened:
            shape.extra["shortened"] = shortened
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
                    negative_prompt: Optional[str] = None, new_parts: bool = True,
                    region: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> PartShape:
        """RePaint (Lugmayr et al. 2022): keep the parts at `keep`, regenerate the rest; with `new_parts`
        the free slots may become parts too (those centred inside `region`, when given), otherwise
        they are held empty."""
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
        return self._to_shape(layout_out[0], latents_out[0], prompt, shape.select(keep), kept_slots=kept_slots,
                              region=region)

    def read_looks(self, prompt: str, labels: Sequence[str]) -> dict[str, tuple]:
        """label -> (colour, material kind) the prompt states for each label (None where it states
        none); {} without an appearance reader."""
        if self.appearance is None or not prompt:
            return {}
        return self.read_looks_of([prompt], [labels])[0]

    def read_looks_of(self, prompts: Sequence[str], labels: Sequence[Sequence[str]]) -> list[dict]:
        """`read_looks` of many prompts at once, each with its labels (needs the appearance reader)."""
        plain = [plain_looks(p, self.lexicon) for p in prompts]
        return self.appearance.read(self.text_encoder, plain, [list(names) for names in labels])

    def looks(self, prompt: str, labels: Sequence[str], before=None, new_labels: set = frozenset()) -> dict[str, list]:
        """The looks of a shape's labels (label -> [colour, kind]): what the prompt states, but a
        label that had a look `before` keeps it unless it has new parts and the prompt states one
        for it (an edit of the legs to "black metal legs")."""
        before = clean_looks(before)
        said = self.read_looks(prompt, labels)
        looks = {}
        for label in dict.fromkeys(labels):
            stated = said.get(label, (None, None))
            keep = label in before and (label not in new_labels or stated == (None, None))
            looks[label] = list(before[label] if keep else stated)
        return looks

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
             callback: StepCallback = no_progress, negative_prompt: Optional[str] = None,
             margin: Optional[float] = EDIT_MARGIN) -> PartShape:
        """Text-guided part editing: regenerate the parts named in `parts` so the shape matches `prompt`.

        New parts appear only where the chosen parts were: centred inside their bounding box grown
        by `margin` (shape units; the shape spans about ±0.95) — editing the legs into "an office
        chair on wheels" gives a wheeled base, not also arms. `margin=None` lets them appear anywhere.
        """
        if not prompt or not prompt.strip():
            raise InputError("edit needs a prompt saying what the selected parts should become")
        chosen = self._names_to_index(shape, parts, "edit")
        if not chosen:
            raise InputError("edit needs at least one part to regenerate")
        keep = [i for i in range(len(shape)) if i not in chosen]
        region = None
        if margin is not None:
            reach = (shape.rotations[chosen].abs() @ shape.half_extents[chosen, :, None])[..., 0]  # (C, 3)
            centers = shape.centers[chosen]
            region = ((centers - reach).min(0).values - margin, (centers + reach).max(0).values + margin)
        return self._regenerate(shape, keep, prompt, seed, steps, guidance_scale, jump_length, jump_n_sample,
                                callback, negative_prompt, region=region)

    def mix(self, shape_a: PartShape, shape_b: PartShape, take_from_b: Sequence[str], replace: Optional[Sequence[str]] = None,
            prompt: Optional[str] = None, seed: int = 0, steps: int = 25, guidance_scale: float = 1.5,
            start_step: Optional[int] = None, callback: StepCallback = no_progress,
            negative_prompt: Optional[str] = None) -> PartShape:
        """Part mixing by SDEdit (Meng et al. 2022): A's parts plus B's parts named in `take_from_b`.

        A's parts with the labels taken from B (or those named in `replace`) are dropped; B's parts
        are placed relative to A as they were relative to B (`align_to_anchor`); the spliced shape
        is noised to `start_step` (of `steps`; default half way, 92% for a shape fitted to an
        artist's mesh) and denoised with A's kept parts held fixed, so B's parts settle into A:
        they move and resize, but stay parts with their labels and geometry latents; no other part
        appears. A's kept parts come back bit-identical.
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
        brought = align_to_anchor(shape_b, take, base)
        spliced = PartShape(base.names + [shape_b.names[i] for i in take], base.labels + [shape_b.labels[i] for i in take],
                            torch.cat([base.gaussians, brought]), torch.cat([base.latents, shape_b.latents[take]]),
                            category=shape_a.category)
        layout, latents, _, slot_of = self.codec.encode(spliced)
        kept_slots, b_slots = slot_of[: len(keep)], slot_of[len(keep):]
        # Phase 1: A's kept parts are given; B's parts keep being parts with their labels, while
        # SDEdit settles their places into A. Phase 2: both keep their geometry latents.
        # Slots holding no part stay empty: mixing brings B's parts in, it adds none of its own.
        layout_mask = torch.ones(1, self.codec.max_parts, self.codec.layout_dim)
        layout_mask[0, b_slots, :12] = 0.0  # B's parts keep their weight and label, not their place
        known_mask = torch.ones(1, self.codec.max_parts)  # (1, S)
        if start_step is None:  # half way; a shape fitted to an artist's mesh is outside what the
            # model knows, so the aligned parts are trusted more and only settled
            start_step = round(steps * (MIX_START_FITTED if "frame_scale" in shape_a.extra else MIX_START))
        # Without a prompt, the category alone: A's own prompt ("a chair with four legs") would pull
        # B's parts (wheels) to wherever that prompt has room for them (up at the seat).
        prompt = prompt if prompt else category_prompt(shape_a.category)
        layout_out, latents_out = self._sample_shapes(
            prompt, negative_prompt, 1, steps, guidance_scale, torch.Generator().manual_seed(seed), callback,
            layout_known=layout[None], latent_known=latents[None], known_mask=known_mask, layout_mask=layout_mask,
            layout_init=layout[None], latent_init=latents[None], start_step=start_step)
        mixed = self._to_shape(layout_out[0], latents_out[0], prompt, base, kept_slots=kept_slots)
        looks_b = clean_looks(shape_b.extra.get("looks"))  # B's parts come with their looks
        mixed.extra["looks"].update({label: list(looks_b[label]) for label in taken_labels if label in looks_b})
        return mixed

    @torch.no_grad()
    def guess_primitives(self, latents: torch.Tensor) -> list[tuple[str, dict]]:
        """The primitive (and its parameters) of the nearest training part latent, for each (N, L) latent."""
        nearest = torch.cdist(latents.float(), self.bank_latents.float()).argmin(1)
        return [(self.primitives[int(self.bank_primitive[i])], self.bank_params[int(i)] if self.bank_params else {})
                for i in nearest]


def category_prompt(category: Optional[str]) -> str:
    """"a chair", "an airplane"; "an object" when the category is unknown."""
    if not category:
        return "an object"
    return f"{'an' if category[0] in 'aeiou' else 'a'} {category}"


def align_to_anchor(shape_b: PartShape, take: Sequence[int], base: PartShape, limit: float = 2.0) -> torch.Tensor:
    """B's Gaussians at `take`, placed relative to A's parts as they were relative to B's: of the
    labels both keep, the anchor is the one nearest the taken parts in B (a chair's seat for its
    base; the larger in A on a tie), and B's parts move and scale, axis by axis, as B's anchor box
    maps onto A's (scales clamped to [1/limit, limit]). Shapes of different proportions (a chair
    the artist modelled) then receive parts where they fit, and SDEdit only has to settle them.
    Returns (len(take), 13); unchanged when there is no anchor."""
    gaussians = shape_b.gaussians[list(take)].clone()
    rest_b = [i for i in range(len(shape_b)) if i not in set(take)]
    common = sorted({shape_b.labels[i] for i in rest_b} & set(base.labels))  # sorted: ties break the same way every run
    if not common or not len(base):
        return gaussians

    def box(shape: PartShape, label: str, index) -> tuple[torch.Tensor, torch.Tensor]:
        lo, hi = world_boxes(shape.gaussians[[i for i in index if shape.labels[i] == label]])
        return lo.min(0).values, hi.max(0).values

    t_lo, t_hi = world_boxes(gaussians)
    t_lo, t_hi = t_lo.min(0).values, t_hi.max(0).values

    def gap(label: str) -> float:  # distance between the taken parts' box and the label's box in B
        lo, hi = box(shape_b, label, rest_b)
        return float(torch.maximum(torch.maximum(lo - t_hi, t_lo - hi), torch.zeros(3)).norm())

    volume = base.half_extents.prod(-1)
    size = {l: float(sum(volume[i] for i in range(len(base)) if base.labels[i] == l)) for l in common}
    anchor = min(common, key=lambda l: (round(gap(l), 3), -size[l]))
    a_lo, a_hi = box(base, anchor, range(len(base)))
    b_lo, b_hi = box(shape_b, anchor, rest_b)
    scale = ((a_hi - a_lo) / (b_hi - b_lo).clamp(min=1e-4)).clamp(1 / limit, limit)  # (3,) per world axis
    centre = (a_lo + a_hi) / 2
    gaussians = _scale_about(gaussians, centre, scale, (b_lo + b_hi) / 2)
    # Parts reaching beyond the decode grid would be cut off or left out (a tall office-chair base
    # under a modelled chair with short legs): squeeze them towards the anchor until they fit.
    lo, hi = world_boxes(gaussians)
    lo, hi = lo.min(0).values, hi.max(0).values
    room = 0.95 * EXTENT
    over = torch.maximum((hi - centre) / (room - centre).clamp(min=1e-4), (centre - lo) / (centre + room).clamp(min=1e-4))
    fit = torch.where(over > 1, 1 / over, torch.ones(3)).clamp(min=1 / limit)
    return _scale_about(gaussians, centre, fit, centre) if bool((fit < 1).any()) else gaussians


def _scale_about(gaussians: torch.Tensor, to: torch.Tensor, scale: torch.Tensor, about: torch.Tensor) -> torch.Tensor:
    """Gaussians moved from around `about` to around `to` and stretched by `scale` (3,) per world axis."""
    out = gaussians.clone()
    out[:, :3] = to + (gaussians[:, :3] - about) * scale
    rotations = rotation_from_6d(gaussians[:, 3:9])  # (N, 3, 3) columns = local axes
    out[:, 9:12] *= (rotations.abs().transpose(1, 2) @ scale[:, None])[..., 0]  # each local axis by its world mix
    return out


def settle_new_shape(shape: PartShape, autoencoder: PartAutoencoder) -> tuple[PartShape, list[str], list[str]]:
    """A freshly generated shape made physically tidy: a part poking right through a larger one
    (a leg up through the seat) ends inside it, and parts left floating are moved to touch the
    rest. Shortening can leave a part apart and attaching can push one through again, so both
    run twice, attaching last. Returns (shape, names moved, names shortened)."""
    moved: list[str] = []
    shortened: list[str] = []
    for _ in range(2):
        shape, more = stop_smaller_crossing_parts(shape)
        shortened += [n for n in more if n not in shortened]
        shape, more = attach_floating_parts(shape, autoencoder)
        moved += [n for n in more if n not in moved]
    return shape, moved, shortened
