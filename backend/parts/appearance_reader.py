"""Reads, per part label, the colour and material a prompt states: a small net learned from captions.

The prompt's MiniLM token states (the same the shape model reads) pass two transformer layers;
each part label then attends over them with its own learned query and predicts a colour class
and a material class (appearance.COLOUR_CLASSES / MATERIAL_CLASSES, None: "not stated").
Binding is what it learns: in "a red chair with black metal legs" the seat is red and the legs
black metal; a keyword matcher cannot tell (eval_appearance.py prints one beside the reader).
Each label's query starts from the MiniLM embedding of its noun, so a part named by a near word
("tabletop") can still find its phrase. Colour and material words the captions never use are
first put in the training words the lexicon says they name (`plain_looks`: "crimson" is red,
"steel legs" are metal legs): MiniLM alone places "steel" far from "metal".

Trained by train.py after the shape model, on captions dressed by appearance_captions.dress,
and stored in the same weights file under "appearance.".
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .appearance import COLOUR_CLASSES, MATERIAL_CLASSES
from .appearance_captions import COLOUR_WORDS, MATERIAL_WORDS, PLURALS, dress, training_looks
from .captions import caption_shape
from .lexicon import Lexicon


@dataclass
class ReaderConfig:
    text_dim: int = 384
    width: int = 128
    heads: int = 4
    layers: int = 2  # over the prompt's tokens, before the labels attend
    labels: tuple = ()  # the part vocabulary, in order


class AppearanceReader(nn.Module):
    def __init__(self, cfg: ReaderConfig):
        super().__init__()
        self.cfg = cfg
        self.project = nn.Linear(cfg.text_dim, cfg.width)
        layer = nn.TransformerEncoderLayer(cfg.width, cfg.heads, 2 * cfg.width, dropout=0.0, batch_first=True)
        self.context = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.query = nn.Embedding(len(cfg.labels), cfg.width)
        self.noun = nn.Linear(cfg.text_dim, cfg.width)
        self.register_buffer("label_text", torch.zeros(len(cfg.labels), cfg.text_dim))  # set by train_reader
        self.attend = nn.MultiheadAttention(cfg.width, cfg.heads, batch_first=True)
        self.head = nn.Sequential(nn.Linear(2 * cfg.width, cfg.width), nn.GELU(),
                                  nn.Linear(cfg.width, len(COLOUR_CLASSES) + len(MATERIAL_CLASSES)))

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T, text_dim), mask (B, T) True on real tokens, label (B,) vocabulary index ->
        colour logits (B, len(COLOUR_CLASSES)), material logits (B, len(MATERIAL_CLASSES))."""
        h = self.context(self.project(tokens.float()), src_key_padding_mask=~mask)  # (B, T, W)
        query = (self.query(label) + self.noun(self.label_text[label]))[:, None]  # (B, 1, W)
        found, _ = self.attend(query, h, h, key_padding_mask=~mask)  # (B, 1, W)
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        out = self.head(torch.cat([found[:, 0], pooled], -1))
        return out[:, : len(COLOUR_CLASSES)], out[:, len(COLOUR_CLASSES):]

    @torch.no_grad()
    def read(self, text_encoder, prompts: Sequence[str], labels: Sequence[Sequence[str]]) -> list[dict]:
        """For each prompt, label -> (colour or None, material kind or None) for its labels."""
        tokens, mask = text_encoder.encode_tokens(list(prompts))
        rows = [(b, label) for b, names in enumerate(labels) for label in dict.fromkeys(names)
                if label in self.cfg.labels]
        out = [{} for _ in prompts]
        if not rows:
            return out
        index = torch.tensor([b for b, _ in rows])
        label = torch.tensor([self.cfg.labels.index(name) for _, name in rows])
        colour, kind = self(tokens[index], mask[index], label)
        for (b, name), c, k in zip(rows, colour.argmax(1).tolist(), kind.argmax(1).tolist()):
            out[b][name] = (COLOUR_CLASSES[c], MATERIAL_CLASSES[k])
        return out


_COLOURS, _, _MATERIALS = training_looks()
_TRAINING_LOOK_WORDS = {w for table in (_COLOURS, _MATERIALS) for words in table.values() for w in words}


def _new_looks(prompt: str, lexicon: Lexicon):
    """The prompt's colour and material words that the captions never use."""
    return [look for look in lexicon.find_looks(prompt) if prompt[look.start:look.end].lower() not in _TRAINING_LOOK_WORDS]


def plain_looks(prompt: str, lexicon: Lexicon) -> str:
    """`prompt` with each colour and material word the captions never use in the training words
    for what it names: "a crimson chair with oak legs, made of steel" -> "a red chair with wooden
    legs, made of metal" (a material's adjective before a word, its noun elsewhere)."""
    out, at = [], 0
    for look in _new_looks(prompt, lexicon):
        adjective = prompt[look.end:].lstrip()[:1].isalpha()
        words = [COLOUR_WORDS[look.colour][0][0]] if look.colour else []
        if look.kind:
            words.append(MATERIAL_WORDS[look.kind][0][0][0 if adjective else 1])
        said = " ".join(words)
        before = re.sub(r"\b([Aa])n? $", lambda m: m.group(1) + ("n " if said[0] in "aeiou" else " "),
                        prompt[at:look.start])  # "an oak table" -> "a wooden table"
        out += [before, said]
        at = look.end
    return "".join(out) + prompt[at:]


def looks_note(prompt: str, lexicon: Lexicon) -> str | None:
    """For the artist: the colour and material words read as others ("crimson" as red), or None."""
    said = dict.fromkeys(f"\"{prompt[look.start:look.end]}\" as {' '.join(w for w in (look.colour, look.kind) if w)}"
                         for look in _new_looks(prompt, lexicon))
    return f"Read {', '.join(said)}." if said else None


def reader_examples(shapes, seed: int, per_shape: int = 3, rate: float = 0.85) -> tuple[list[str], list[dict]]:
    """Training captions with their targets: `per_shape` per shape, a share `rate` dressed."""
    rng = np.random.default_rng([seed, 7])
    prompts, targets = [], []
    for shape in shapes:
        labels = [p.label for p in shape.parts]
        for _ in range(per_shape):
            look = dress(labels, rng) if rng.random() < rate else None
            keys = [k for k in shape.attributes if rng.random() < 0.6]
            prompts.append(caption_shape(shape, rng, keys=keys, look=look))
            targets.append(look.targets if look else {label: (None, None) for label in labels})
    return prompts, targets


def train_reader(shapes, text_encoder, vocabulary: Sequence[str], seed: int = 0, steps: int = 4000,
                 batch: int = 128, log=print) -> tuple[AppearanceReader, dict]:
    """Train a reader on dressed captions of `shapes`. Returns the reader and a summary."""
    t0 = time.time()
    torch.manual_seed(seed)
    prompts, targets = reader_examples(shapes, seed)
    tokens, mask = text_encoder.encode_tokens(prompts)
    tokens = tokens.half()  # storage only: 0.1 GB for 12k captions
    rows = torch.tensor([(k, list(vocabulary).index(label), COLOUR_CLASSES.index(c), MATERIAL_CLASSES.index(m))
                         for k, t in enumerate(targets) for label, (c, m) in t.items()])
    reader = AppearanceReader(ReaderConfig(labels=tuple(vocabulary)))
    reader.label_text.copy_(text_encoder.encode([PLURALS.get(v, v + "s") for v in vocabulary]))
    optimiser = torch.optim.AdamW(reader.parameters(), lr=1e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-3, total_steps=steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    for step in range(steps):
        pick = rows[torch.randint(len(rows), (batch,), generator=generator)]
        used = mask[pick[:, 0]].any(0).nonzero().max() + 1  # token columns no prompt of the batch uses cut off
        colour, kind = reader(tokens[pick[:, 0], :used], mask[pick[:, 0], :used], pick[:, 1])
        loss = nn.functional.cross_entropy(colour, pick[:, 2]) + nn.functional.cross_entropy(kind, pick[:, 3])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(loss.item())
        if (step + 1) % 500 == 0:
            log(f"  appearance reader step {step + 1}/{steps}: loss {np.mean(losses[-500:]):.4f}")
    reader.eval()
    return reader, {"captions": len(prompts), "pairs": len(rows), "steps": steps, "seconds": round(time.time() - t0, 1),
                    "final_loss": float(np.mean(losses[-100:]))}


def reader_config(reader: AppearanceReader) -> dict:
    return {**asdict(reader.cfg), "labels": list(reader.cfg.labels)}


def load_reader(config: dict, tensors: dict) -> AppearanceReader | None:
    """The reader stored in a weights folder, or None for weights trained before it existed."""
    if "appearance_reader" not in config:
        return None
    cfg = dict(config["appearance_reader"])
    reader = AppearanceReader(ReaderConfig(**{**cfg, "labels": tuple(cfg["labels"])}))
    reader.load_state_dict({k[len("appearance."):]: v for k, v in tensors.items() if k.startswith("appearance.")})
    return reader.eval()


def main(argv=None) -> None:
    """`python -m backend.parts.appearance_reader [--weights DIR]`: (re)train the reader of a
    weights folder on its own training shapes, as train.py does at its end, and store it there."""
    import argparse
    import json
    import os

    from safetensors.torch import load_file, save_file

    from . import data
    from .pipeline import DEFAULT_WEIGHTS
    from .text import TextEncoder

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config_path, weights_path = os.path.join(args.weights, "config.json"), os.path.join(args.weights, "model.safetensors")
    with open(config_path) as f:
        config = json.load(f)
    train = config["train"]
    shapes = data.dataset(train["n_shapes"], train["seed"], split="train")
    steps = train.get("appearance_steps", 4000)
    reader, summary = train_reader(shapes, TextEncoder(), config["vocabulary"], train["seed"], steps)
    tensors = {k: v for k, v in load_file(weights_path).items() if not k.startswith("appearance.")}
    tensors.update({f"appearance.{k}": v.contiguous() for k, v in reader.state_dict().items()})
    save_file(tensors, weights_path)
    config.update({"appearance_reader": reader_config(reader), "appearance_training": summary})
    config["train"]["appearance_steps"] = steps
    config["timings"]["appearance_s"] = summary["seconds"]
    with open(config_path, "w") as f:
        json.dump(config, f, indent=1, default=str)
    print(f"appearance reader stored in {args.weights}: {summary}")


if __name__ == "__main__":
    main()
