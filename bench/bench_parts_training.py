"""Phase-1 training speed of the built-in part model: batches cut to the template length of
their categories and to the prompts' longest token run, beside batches padded to every slot and
token as before. Phase 1 is most of the 60-minute training budget, and every category added
shares it, so samples per second is what decides how many categories the model can learn.

Real inputs: procedural shapes of every category with their captions through MiniLM, the
shipped phase-1 net size; the rounds alternate the variants so they share the machine's load.

    PYTHONPATH=. python bench/bench_parts_training.py [--shapes 800] [--steps 150] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from backend.parts import data
from backend.parts.diffusion import SlotCodec, TextCondition
from backend.parts.representation import SCALE, PartShape, number_parts
from backend.parts.text import TextEncoder
from backend.parts.train import TrainConfig, gaussian_of, slot_templates, train_denoiser


def inputs(n_shapes: int, seed: int = 0):
    """Layout slots, captions and template lengths as train.py builds them (latents left out:
    phase 1 does not read them)."""
    shapes = data.dataset(n_shapes, seed, split="train")
    templates = slot_templates(shapes, data.PART_VOCABULARY)
    gaussians = [torch.stack([gaussian_of(p) for p in s.parts]) for s in shapes]
    raw = torch.cat([SlotCodec.raw_layout(g) for g in gaussians])
    stats = {"layout_mean": raw.mean(0), "layout_std": raw.std(0).clamp(min=1e-3),
             "latent_mean": torch.zeros(1), "latent_std": torch.ones(1)}
    codec = SlotCodec(data.PART_VOCABULARY, max(data.MAX_PARTS, *map(len, templates.values())), stats, templates)
    layout = torch.stack([codec.encode(PartShape(number_parts([p.label for p in s.parts], g[:, :3]),
                                                 [p.label for p in s.parts], g, torch.zeros(len(g), 1),
                                                 category=s.category))[0] for s, g in zip(shapes, gaussians)])
    captions = [(i, c) for i, s in enumerate(shapes) for c in s.captions]
    encoder = TextEncoder(max_cached=len(captions))
    pooled = encoder.encode([c for _, c in captions])
    tokens, mask = encoder.encode_tokens([c for _, c in captions])
    categories = sorted(templates)
    text = TextCondition((pooled - pooled.mean(0)) / pooled.std(0).clamp(min=1e-4), tokens.half(), mask,
                         torch.tensor([categories.index(shapes[i].category) for i, _ in captions]))
    slots = torch.tensor([len(templates[shapes[i].category]) for i, _ in captions])
    return layout, text, torch.tensor([i for i, _ in captions]), slots, codec, len(categories)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=800)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    layout, text, caption_shape, slots, codec, n_categories = inputs(args.shapes)
    cfg = TrainConfig()
    net = replace(cfg.layout_net, token_dim=codec.layout_dim, slots=codec.max_parts, categories=n_categories)
    geometry = torch.zeros(codec.layout_dim, dtype=torch.bool)
    geometry[: SCALE.stop] = True
    weight = 1 + (cfg.geometry_weight - 1) * ((layout[..., 12:13] > 0) & geometry).float()
    print(f"{len(caption_shape)} captions of {n_categories} categories; {codec.max_parts} slots, "
          f"templates {slots.float().mean():.1f} long on average; tokens padded to {text.tokens.shape[1]}")

    trim = TextCondition.trimmed
    variants = {"padded (before)": (None, False), "tokens cut": (None, True), "tokens and slots cut": (slots, True)}
    seconds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (caption_slots, cut_tokens) in variants.items():
            TextCondition.trimmed = trim if cut_tokens else (lambda self: self)
            t = time.perf_counter()
            train_denoiser(cfg, net, layout, None, None, text, caption_shape, args.steps, "layout", lambda _: None,
                           feature_weight=weight, caption_slots=caption_slots)
            seconds[name].append(time.perf_counter() - t)
    TextCondition.trimmed = trim
    base = min(seconds["padded (before)"])
    print(f"{'batches':<24}{'samples/s':>10}{'speed-up':>10}   (best of {args.rounds} rounds of {args.steps} steps, "
          f"batch {cfg.batch}, {args.threads} threads)")
    for name, times in seconds.items():
        print(f"{name:<24}{args.steps * cfg.batch / min(times):>10.0f}{base / min(times):>9.2f}x")


if __name__ == "__main__":
    main()
