"""MODEL_CARD.md for the built-in part model, written from its config.json (and evaluation figures)."""

from __future__ import annotations

import json
import os

from .appearance import COLOURS, MATERIALS


def _runs(template: list[str]) -> str:
    """["leg", "leg", "seat"] → "leg ×2, seat"."""
    runs = {label: template.count(label) for label in dict.fromkeys(template)}
    return ", ".join(label if n == 1 else f"{label} ×{n}" for label, n in runs.items())


def _caption_kinds(kinds: list[str]) -> str:
    """["all", "all", "some", "none"] → "2 stating every attribute, 1 some, 1 none"."""
    words = {"all": "stating every attribute", "some": "some", "none": "none (the object alone)"}
    return ", ".join(f"{kinds.count(k)} {words[k]}" for k in dict.fromkeys(kinds))


def evaluation_lines(metrics: dict) -> list[str]:
    """The figures `evaluate.py` printed, as tables."""
    lines = ["", "Attribute accuracy (prompts stating every attribute; read from the delivered mesh). The model",
             "holds the part counts the values it read decide while it samples (`slot_constraints.py`); \"counts not",
             "held\" is the same model conditioned on the text alone:", "",
             "| split | attributes | whole shape | n |", "|---|---|---|---|"]
    keys = [k for k in metrics if k.startswith("attributes.")]
    order = ("attributes.counts not held.", "attributes.baseline.")  # the splits, the ablation, then the baselines
    for key in sorted(keys, key=lambda k: [k.startswith(prefix) for prefix in order][::-1]):
        m = metrics[key]
        name = key[len("attributes."):].replace("baseline.", "baseline: ").replace("counts not held.", "counts not held: ")
        lines.append(f"| {name} | {m['attribute']:.3f} ± {m['attribute_se']:.3f} | {m['shape']:.3f} ± "
                     f"{m['shape_se']:.3f} | {m['n']} |")
    reading = [k for k in metrics if k.startswith("reading.")]
    if reading:
        lines += ["", "Phrase reading alone (`eval_reading.py`, text only): of the attributes a prompt states, the share",
                  "read as stated; of those it does not state (prompts stating about 40%), the share read anyway.",
                  "Its constants were chosen on the paraphrases of the tuned categories (the even-numbered ones in",
                  "`captions.PHRASES`); the others were never looked at while choosing them:", "",
                  "| system | prompts | stated right | invented | n |", "|---|---|---|---|---|"]
        for key in reading:
            m, (_, system, prompts) = metrics[key], key.split(".", 2)
            invented = f"{m['invented']:.3f}" if "invented" in m else "-"
            lines.append(f"| {system} | {prompts} | {m['stated']:.3f} | {invented} | {m['n']} |")
    appearance = [k for k in metrics if k.startswith("appearance.")]
    if appearance:
        lines += ["", "Colours and materials per part (held-out shapes, every prompt states some; a part label is right",
                  "when its colour and material class both are). The reader's prompts first have colour and material",
                  "words the captions never use put in training words by the lexicon (\"crimson\" as red, \"steel\" as",
                  "metal: `appearance_reader.plain_looks`); the lexicon keywords baseline shows that step alone:", "",
                  "| wording | system | parts | colour | material | whole prompt | n |", "|---|---|---|---|---|---|---|"]
        for key in appearance:
            m, (_, wording, system) = metrics[key], key.split(".", 2)
            lines.append(f"| {wording} | {system} | {m['part']:.3f} ± {m['part_se']:.3f} | {m['colour']:.3f} | "
                         f"{m['material']:.3f} | {m['prompt']:.3f} | {m['n']} |")
    lines += ["", f"Validity (one connected solid): {metrics['validity']:.3f} ({metrics['validity_before_attaching']:.3f}"
              f" before floating parts are attached; {metrics['validity_with_fragments']:.3f} counting fragments).",
              "", "Distribution, category-level prompts against held-out shapes, unpaired, means over categories"
              " (1-NNA 0.5: indistinguishable):", "", "| system | coverage | MMD | 1-NNA | n |", "|---|---|---|---|---|"]
    for name, m in metrics["distribution"].items():
        lines.append(f"| {name} | {m['coverage']:.3f} | {m['mmd']:.5f} | {m['1-nna']:.3f} | {m['n']} |")
    per = metrics["distribution"]["model"]["per_category"]
    lines += ["", "Model per category (coverage / 1-NNA): " + ", ".join(
        f"{c} {m['coverage']:.2f} / {m['1-nna']:.2f}" for c, m in per.items()) + ".",
        "", f"Part completion accuracy: {metrics['completion_accuracy']:.3f}; seconds per shape at 128³: "
        f"{metrics['seconds_per_shape_128']:.2f}."]
    return lines


def write_card(folder: str, config: dict) -> str:
    """Write folder/MODEL_CARD.md from `config` (as saved in config.json). Returns the path."""
    t, tm, fl = config["train"], config["timings"], config["final_losses"]
    metrics = config.get("metrics")
    lines = [
        "# Diffusion 3D built-in part model",
        "",
        "Offline text → part-aware 3D shape model in the spirit of SALAD (Koo et al. 2023) / SPAGHETTI",
        "(Hertz et al. 2022): each part is a Gaussian (centre, rotation, half extents, weight) with a",
        "label, plus a latent of a part occupancy autoencoder; phase 1 diffuses the Gaussians and labels,",
        "phase 2 the latents. Both are transformers over part slots that see the all-MiniLM-L6-v2",
        "sentence embedding, cross-attend to its token states and know the prompt's category: the one",
        "its nouns name by `lexicon.json` (WordNet 3.0's nouns that are kinds of the training nouns: \"a",
        "keg\" is a barrel, conditioned on as \"a barrel\"), else the nearest known one by embedding"
        + (", and to one extra token per count the prompt states (`prompt_counts.py`: the words"
           " counted and a one-hot of the number)" if config["layout_net"].get("count_dim") else "")
        + ". The prompt's attributes are first read into the training captions' own words",
        "(`phrase_reader.py`: \"three feet\" is \"three legs\", and a clause none of whose stretches matched",
        "is read whole: \"a ring of eight\" is \"eight petals\"; only training phrases are anchors) and the",
        "shape is conditioned on that caption. Each category has a slot template (a run of slots per label),",
        "so a slot holds the same part in every shape of its category, and a count read from the prompt says",
        "which slots exist: those the read values decide (learned from training shapes: \"three legs\", not",
        "\"single bed\" → no footboard) are held while phase 1 samples (`slot_constraints.py`). After sampling, a part that",
        "passes right through a larger one where the category's training shapes never do (a leg up",
        "through the seat) is shortened to end inside it, and new parts left floating are moved until",
        "they touch the rest (`contact.py`).",
        "",
        "## Data",
        f"- {t['n_shapes']} procedural part-annotated shapes from `backend/parts/data.py` (seed {t['seed']}),",
        f"  {config['n_parts']} parts, {config['n_captions']} captions"
        + (f" (per shape: {_caption_kinds(config['caption_kinds'])})." if config.get("caption_kinds") else "."),
        f"- Categories it knows: {', '.join(config['categories'])}.",
        f"- Part vocabulary: {', '.join(config['vocabulary'])} (repeats numbered `leg.0`, `leg.1`, …; at most {config['max_parts']} parts).",
        "- Slot templates: " + "; ".join(f"{c}: {_runs(t)}" for c, t in config.get("slot_templates", {}).items()) + ".",
        f"- Primitives: {', '.join(config['primitives'])}.",
        "",
        "## Training (`python -m backend.parts.train --seed %d --out DIR`; without `--out` it replaces these weights)" % t["seed"],
        f"- Autoencoder: {t['ae_steps']} steps, latent {config['autoencoder']['latent_dim']} dims, final BCE {fl['autoencoder']:.4f}.",
        f"- Phase 1 (layout) transformer width {config['layout_net']['width']} × {config['layout_net']['depth']}: "
        f"{t['layout_steps']} steps, final v-loss {fl['layout']:.4f}"
        + (f" (a present part's geometry features weigh {t['geometry_weight']:g}× in its loss)."
           if t.get("geometry_weight", 1) != 1 else ".")
        + (f" All but {t['full_slots_rate']:.0%} of its batches are cut to their categories' slot templates, so"
           " its loss leaves out most always-empty slots: not comparable with losses of full-slot training."
           if t.get("full_slots_rate", 1) < 1 else ""),
        f"- Phase 2 (latents) transformer width {config['latent_net']['width']} × {config['latent_net']['depth']}: "
        f"{t['latent_steps']} steps, final v-loss {fl['latent']:.4f}.",
        *([f"- Colour and material reader (`appearance_reader.py`): {config['appearance_training']['captions']} captions"
           f" dressed with colours and materials, {config['appearance_training']['steps']} steps, final loss "
           f"{config['appearance_training']['final_loss']:.4f}. A share {config['look_rate']:g} of the shape model's"
           " captions state colours and materials too, so they do not disturb its shapes."]
          if config.get("appearance_training") and "look_rate" in config else []),
        f"- DDPM, {config['scheduler']['num_train_timesteps']} steps, cosine schedule, v-prediction; text dropout {t['text_dropout']} for guidance.",
        f"- Wall time on {t['threads']} CPU threads: " + ", ".join(f"{k} {v:.0f} s" for k, v in tm.items()) + "."
        + (f" {config['timings_note']}" if config.get("timings_note") else ""),
        "",
        "## Evaluation (`python -m backend.parts.evaluate`)",
    ]
    if metrics:
        lines += evaluation_lines(metrics)
    else:
        lines += ["- not run yet for these weights."]
    if config.get("autoencoder_from"):
        lines += ["", "Note: this run loaded stage 1 (the autoencoder) from an earlier run with the same seed and",
                  "config instead of retraining it; its training time is included in total_s."]
    lines += [
        "",
        "## Targets",
        "- Attribute accuracy ≥ 92% on unseen wordings of seen combinations, ≥ 85% on paraphrases and on",
        "  unseen combinations; every stated attribute right in ≥ 80% of shapes; ≤ 1.5 s per shape at 128³.",
        "- Attributes are read from the delivered mesh (a part with no faces is gone; sizes are its faces'",
        "  box); ± is the binomial standard error. Validity counts the solids of the delivered mesh (one",
        "  26-connected solid at 64³); `validity_with_fragments` counts the crumbs the mesh leaves out too.",
        "- The distribution metrics have no target: they place the model between the reference systems.",
        "- Every figure on this card is written by the scripts named above from these weights; nothing",
        "  here is carried over from earlier weights.",
        "",
        "## What it does not know",
        "- Anything outside the categories above: such prompts are answered with the nearest category",
        "  (by text embedding) and a note saying so. A noun WordNet does not place under a training",
        "  noun is read by the embedding alone, which knows few rare nouns (\"a sideboard\" reads as a bed);",
        "  one WordNet knows as another physical thing, food or imaginary being (\"an elephant\", \"a pizza\",",
        "  \"a dragon\") must be nearer still, or state an attribute of the category, to be taken for it.",
        "  A prompt that names no such thing (\"something to sit on\") is judged by the embedding alone.",
        "- Fine detail below the primitives' level and textures; materials are one of "
        + ", ".join(MATERIALS) + " in one of " + ", ".join(COLOURS) + " per part label (all legs alike);",
        "  sizes are normalised to ~2 units.",
        "- Attribute phrases are matched to the training phrases by MiniLM similarity, count by count:",
        "  training phrases in new sentence frames are read in full and many synonyms are, but wordings",
        "  that need world knowledge (\"a rounded cupola\" for a dome roof, \"a sloop\" for one mast) are",
        "  not, and a stretch near a wrong phrase is read wrong (\"three axles\" as three wheels, not six):",
        "  the paraphrase rows are what such wordings cost, and the invented column how often an attribute",
        "  the prompt does not state is read.",
        "- Asked for a category alone (\"a chair\"), it varies its shapes far less than the data does:",
        "  see the distribution table's coverage and 1-NNA beside the ideal and collapsed systems.",
        "- Meshes it did not make are fitted before an edit (`fitting.py`): a piece's 8-number latent",
        "  reproduces primitive-like pieces closely and others roughly. Kept pieces keep the artist's own",
        "  triangles, so this limits only how well new parts fit around them.",
    ]
    path = os.path.join(folder, "MODEL_CARD.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def update_metrics(folder: str, metrics: dict) -> None:
    """Store evaluation figures in config.json and rewrite the card."""
    path = os.path.join(folder, "config.json")
    with open(path) as f:
        config = json.load(f)
    config["metrics"] = metrics
    with open(path, "w") as f:
        json.dump(config, f, indent=1)
    write_card(folder, config)
