"""TripoSR's configuration: the published `config.yaml` read into one checked dataclass.

The published file names Python classes to build (`*_cls`) and sizes for each. We build our own
modules, so a class name is only checked against the ones TripoSR publishes: a file naming
anything else is not a TripoSR configuration and is refused, never imported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import ModelUnavailable

# The classes the published configuration names, by section (github.com/VAST-AI-Research/TripoSR).
PUBLISHED_CLASSES = {
    "image_tokenizer_cls": "tsr.models.tokenizers.image.DINOSingleImageTokenizer",
    "tokenizer_cls": "tsr.models.tokenizers.triplane.Triplane1DTokenizer",
    "backbone_cls": "tsr.models.transformer.transformer_1d.Transformer1D",
    "post_processor_cls": "tsr.models.network_utils.TriplaneUpsampleNetwork",
    "decoder_cls": "tsr.models.network_utils.NeRFMLP",
    "renderer_cls": "tsr.models.nerf_renderer.TriplaneNeRFRenderer",
}
MAX_CONFIG_BYTES = 64 * 1024  # the published file is under 1 kB


@dataclass(frozen=True)
class TripoSRConfig:
    """Every size and constant of the model; the defaults are the published `stabilityai/TripoSR`.

    Attributes:
        image_size: Side of the square input image (`cond_image_size`).
        vit_hidden, vit_layers, vit_heads, vit_intermediate, vit_patch, vit_image_size: The image
            tokenizer, DINO ViT-B/16 (`facebook/dino-vitb16`'s config: its position embeddings
            are for 224² and are interpolated to `image_size`).
        plane_size: Side of each learned triplane token grid (32: 3 x 32 x 32 = 3072 tokens).
        channels: Width of the tokens and of the transformer (`tokenizer.num_channels`).
        layers, heads, head_dim: The transformer over triplane tokens (16 x 16 x 64).
        norm_groups: GroupNorm groups on the tokens before the transformer.
        triplane_channels: Features per plane after the 2x transposed-convolution upsampling.
        decoder_width, decoder_hidden_layers: The NeRF MLP (64 wide; 9 hidden layers, SiLU).
        radius: Half the side of the cube the triplanes span, in the model's units.
        density_bias: Added to the MLP's raw density before `exp`.
        threshold: Density of the surface the published code extracts.
    """

    image_size: int = 512
    vit_hidden: int = 768
    vit_layers: int = 12
    vit_heads: int = 12
    vit_intermediate: int = 3072
    vit_patch: int = 16
    vit_image_size: int = 224
    plane_size: int = 32
    channels: int = 1024
    layers: int = 16
    heads: int = 16
    head_dim: int = 64
    norm_groups: int = 32
    triplane_channels: int = 40
    decoder_width: int = 64
    decoder_hidden_layers: int = 9
    radius: float = 0.87
    density_bias: float = -1.0
    threshold: float = 25.0


def parse_config(text: str, vit: dict[str, Any]) -> TripoSRConfig:
    """Read the published `config.yaml` (and the ViT's `config.json` values) into a TripoSRConfig.

    Args:
        text: The YAML file's text.
        vit: The image tokenizer's ViT config (`hidden_size`, `num_hidden_layers`, ...); the
            published file only names it (`facebook/dino-vitb16`), so a folder may carry it as
            `vit_config.json`; absent keys take DINO ViT-B/16's values.

    Raises:
        ModelUnavailable: not YAML, too long, a class that is not TripoSR's, a missing or
            inconsistent size, or a setting our implementation does not follow.
    """
    import yaml

    if len(text) > MAX_CONFIG_BYTES:
        raise ModelUnavailable("TripoSR's config.yaml is far longer than the published one: not a TripoSR model")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ModelUnavailable(f"TripoSR's config.yaml is not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise ModelUnavailable("TripoSR's config.yaml holds no settings")
    for key, expected in PUBLISHED_CLASSES.items():
        if data.get(key) != expected:
            raise ModelUnavailable(f"config.yaml's {key} is {data.get(key)!r}, not TripoSR's {expected!r}: "
                                   "this folder holds another model")
    settings, vit_settings = _Settings(data), _Settings(vit)
    get = settings.number
    default = TripoSRConfig()
    config = TripoSRConfig(
        image_size=get("cond_image_size", int),
        vit_hidden=vit_settings.number("hidden_size", int, default.vit_hidden),
        vit_layers=vit_settings.number("num_hidden_layers", int, default.vit_layers),
        vit_heads=vit_settings.number("num_attention_heads", int, default.vit_heads),
        vit_intermediate=vit_settings.number("intermediate_size", int, default.vit_intermediate),
        vit_patch=vit_settings.number("patch_size", int, default.vit_patch),
        vit_image_size=vit_settings.number("image_size", int, default.vit_image_size),
        plane_size=get("tokenizer.plane_size", int),
        channels=get("tokenizer.num_channels", int),
        layers=get("backbone.num_layers", int),
        heads=get("backbone.num_attention_heads", int),
        head_dim=get("backbone.attention_head_dim", int),
        norm_groups=get("backbone.norm_num_groups", int, default.norm_groups),
        triplane_channels=get("post_processor.out_channels", int),
        decoder_width=get("decoder.n_neurons", int),
        decoder_hidden_layers=get("decoder.n_hidden_layers", int),
        radius=get("renderer.radius", float),
        density_bias=get("renderer.density_bias", float, default.density_bias),
    )
    _check_consistent(config, settings)
    return config


def published_yaml(config: TripoSRConfig) -> str:
    """The configuration as TripoSR publishes it (`config.yaml`), e.g. for a folder of test weights."""
    import yaml

    c = config
    data = {
        "cond_image_size": c.image_size,
        "image_tokenizer_cls": PUBLISHED_CLASSES["image_tokenizer_cls"],
        "image_tokenizer": {"pretrained_model_name_or_path": "facebook/dino-vitb16"},
        "tokenizer_cls": PUBLISHED_CLASSES["tokenizer_cls"],
        "tokenizer": {"plane_size": c.plane_size, "num_channels": c.channels},
        "backbone_cls": PUBLISHED_CLASSES["backbone_cls"],
        "backbone": {"in_channels": "${tokenizer.num_channels}", "num_attention_heads": c.heads,
                     "attention_head_dim": c.head_dim, "num_layers": c.layers, "cross_attention_dim": c.vit_hidden,
                     "norm_num_groups": c.norm_groups},
        "post_processor_cls": PUBLISHED_CLASSES["post_processor_cls"],
        "post_processor": {"in_channels": c.channels, "out_channels": c.triplane_channels},
        "decoder_cls": PUBLISHED_CLASSES["decoder_cls"],
        "decoder": {"in_channels": 3 * c.triplane_channels, "n_neurons": c.decoder_width,
                    "n_hidden_layers": c.decoder_hidden_layers, "activation": "silu"},
        "renderer_cls": PUBLISHED_CLASSES["renderer_cls"],
        "renderer": {"radius": c.radius, "feature_reduction": "concat", "density_activation": "exp",
                     "density_bias": c.density_bias, "num_samples_per_ray": 128},
    }
    return yaml.safe_dump(data, sort_keys=False)


def vit_json(config: TripoSRConfig) -> dict[str, Any]:
    """The image tokenizer's ViT settings, as a `vit_config.json` beside config.yaml holds them."""
    return {"hidden_size": config.vit_hidden, "num_hidden_layers": config.vit_layers,
            "num_attention_heads": config.vit_heads, "intermediate_size": config.vit_intermediate,
            "patch_size": config.vit_patch, "image_size": config.vit_image_size}


class _Settings:
    """Reads dotted paths of the parsed file, following `${a.b}` references as OmegaConf does."""

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def raw(self, path: str, depth: int = 0) -> Any:
        node: Any = self.data
        for part in path.split("."):
            if not isinstance(node, dict) or part not in node:
                raise KeyError(path)
            node = node[part]
        match = re.fullmatch(r"\$\{([\w.]+)\}", node) if isinstance(node, str) else None
        return self.raw(match.group(1), depth + 1) if match and depth < 8 else node

    def number(self, path: str, kind=int, *default):
        try:
            value = self.raw(path)
        except KeyError:
            if default:
                return default[0]
            raise ModelUnavailable(f"TripoSR's config.yaml lacks {path}: the file is incomplete") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise ModelUnavailable(f"TripoSR's config.yaml gives {path} = {value!r}, not a number")
        return kind(value)

    def text(self, path: str):
        try:
            return self.raw(path)
        except KeyError:
            return None


def _check_consistent(config: TripoSRConfig, settings: _Settings) -> None:
    sizes = [config.image_size, config.plane_size, config.channels, config.layers, config.heads, config.head_dim,
             config.triplane_channels, config.decoder_width, config.decoder_hidden_layers, config.vit_hidden,
             config.vit_layers, config.vit_heads, config.vit_patch, config.vit_intermediate, config.vit_image_size]
    if any(size < 1 or size > 8192 for size in sizes) or config.image_size % config.vit_patch:
        raise ModelUnavailable("TripoSR's config.yaml has sizes out of range: not a usable TripoSR model")
    needed = {
        "backbone.in_channels": config.channels, "backbone.cross_attention_dim": config.vit_hidden,
        "post_processor.in_channels": config.channels, "decoder.in_channels": 3 * config.triplane_channels,
    }
    for path, expected in needed.items():
        if settings.number(path, int, expected) != expected:
            raise ModelUnavailable(f"TripoSR's config.yaml gives {path} = {settings.number(path)}, but the other "
                                   f"sizes need {expected}: the file is inconsistent")
    if config.channels % config.norm_groups or config.radius <= 0:
        raise ModelUnavailable("TripoSR's config.yaml has a group count that does not divide the channels, or a "
                               "radius that is not positive")
    # What our implementation follows; anything else would load and run but mean something else.
    fixed = {"renderer.feature_reduction": "concat", "renderer.density_activation": "exp",
             "decoder.activation": "silu", "backbone.activation_fn": "geglu"}
    for path, expected in fixed.items():
        value = settings.text(path)
        if value is not None and value != expected:
            raise ModelUnavailable(f"TripoSR's config.yaml sets {path} to {value!r}; this implementation follows "
                                   f"the published {expected!r} only")
