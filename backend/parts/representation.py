"""The part representation: per part a Gaussian (extrinsic) and a latent (intrinsic), plus its name.

After SPAGHETTI (Hertz et al. 2022) and SALAD (Koo et al. 2023): the Gaussian says where a part
is, how it is turned and how big it is; the latent (see autoencoder.py) says what fills its box.
`PartShape` travels in GLB extras and Blender custom properties, so it serialises to plain JSON
and back bit-exactly (float32 values written as Python floats, whose repr round-trips).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

import torch

# Gaussian layout, (13,): centre (3) | rotation as its first two columns, "6D" (6) | half extents (3) | weight (1)
CENTER, ROT6D, SCALE, WEIGHT = slice(0, 3), slice(3, 9), slice(9, 12), slice(12, 13)
GAUSSIAN_DIM = 13


def rotation_to_6d(rotation: torch.Tensor) -> torch.Tensor:
    """(…, 3, 3) rotation with columns = local axes → (…, 6) its first two columns."""
    return torch.cat([rotation[..., :, 0], rotation[..., :, 1]], -1)


def rotation_from_6d(six: torch.Tensor) -> torch.Tensor:
    """(…, 6) → (…, 3, 3) by Gram-Schmidt (Zhou et al. 2019, continuity of rotation representations)."""
    a = torch.nn.functional.normalize(six[..., 0:3], dim=-1)
    b = six[..., 3:6] - (a * six[..., 3:6]).sum(-1, keepdim=True) * a
    b = torch.nn.functional.normalize(b, dim=-1)
    return torch.stack([a, b, torch.cross(a, b, dim=-1)], -1)


def number_parts(labels: list[str], centers: torch.Tensor, taken: Optional[set[str]] = None) -> list[str]:
    """Names like "leg.0": a label used once keeps its bare name; repeats are numbered by position.

    Args:
        labels: one label per part; centers: (N, 3) part centres (ordering key: x, then z, then y).
        taken: names already used by other parts (new parts get the next free number).
    """
    taken = set(taken or ())
    names: list[Optional[str]] = [None] * len(labels)
    for label in dict.fromkeys(labels):
        idx = [i for i, l in enumerate(labels) if l == label]
        idx.sort(key=lambda i: (round(float(centers[i, 0]), 3), round(float(centers[i, 2]), 3), float(centers[i, 1])))
        repeated = len(idx) > 1 or any(n == label or n.startswith(label + ".") for n in taken)
        k = 0
        for i in idx:
            if not repeated:
                names[i] = label
                continue
            while f"{label}.{k}" in taken:
                k += 1
            names[i] = f"{label}.{k}"
            taken.add(names[i])
    return names  # type: ignore[return-value]


@dataclass
class PartShape:
    """One shape as named parts. Tensors are float32 on the CPU.

    Attributes:
        names: part names ("leg.0"). labels: vocabulary labels ("leg").
        gaussians: (N, 13) see the layout above. latents: (N, L) autoencoder latents.
        origin: (3,) the point placed at the object origin when decoded (bottom centre of the
            first decode); kept through edits so unedited parts do not move.
    """

    names: list[str]
    labels: list[str]
    gaussians: torch.Tensor
    latents: torch.Tensor
    origin: Optional[torch.Tensor] = None
    prompt: str = ""
    category: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def centers(self) -> torch.Tensor:  # (N, 3)
        return self.gaussians[:, CENTER]

    @property
    def rotations(self) -> torch.Tensor:  # (N, 3, 3)
        return rotation_from_6d(self.gaussians[:, ROT6D])

    @property
    def half_extents(self) -> torch.Tensor:  # (N, 3)
        return self.gaussians[:, SCALE]

    def select(self, index: list[int]) -> "PartShape":
        """The sub-shape made of the parts at `index` (same origin)."""
        return PartShape([self.names[i] for i in index], [self.labels[i] for i in index],
                         self.gaussians[index].clone(), self.latents[index].clone(), self.origin,
                         self.prompt, self.category, dict(self.extra))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict; `from_dict(to_dict(s))` restores every float bit-exactly."""
        return {
            "format": "diffusion3d.partshape/1",
            "names": list(self.names),
            "labels": list(self.labels),
            "gaussians": self.gaussians.float().tolist(),
            "latents": self.latents.float().tolist(),
            "origin": None if self.origin is None else self.origin.float().tolist(),
            "prompt": self.prompt,
            "category": self.category,
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PartShape":
        if not isinstance(d, dict) or not str(d.get("format", "")).startswith("diffusion3d.partshape/"):
            raise ValueError("not a diffusion3d part shape (missing 'format': 'diffusion3d.partshape/1')")
        n = len(d["names"])
        gaussians = torch.tensor(d["gaussians"], dtype=torch.float32).reshape(n, GAUSSIAN_DIM)
        latents = torch.tensor(d["latents"], dtype=torch.float32).reshape(n, -1) if n else torch.zeros(0, 0)
        origin = None if d.get("origin") is None else torch.tensor(d["origin"], dtype=torch.float32)
        return cls(list(d["names"]), list(d["labels"]), gaussians, latents, origin,
                   d.get("prompt", ""), d.get("category", ""), dict(d.get("extra") or {}))
