"""Random cameras around the object, as score distillation samples them each step.

DreamFusion renders the object from a random camera on a sphere every step, with the field
of view jittered; the guidance sees the same cameras (view-dependent prompts, VSD's
camera-conditioned LoRA, Zero-1-to-3's relative pose).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..render.camera import Camera
from .guidance.base import View


@dataclass
class CameraConfig:
    """Ranges cameras are drawn from (degrees, and distances for an object in [-1, 1]³).

    Attributes:
        elevation: Above the horizon; DreamFusion draws from [-10, 90], most tools stay lower.
        azimuth: Around the object, 0 = the front (+Z).
        distance: From the object's centre.
        fov_y: Vertical field of view (jittered, as DreamFusion does).
        resolution: Render size in pixels (square).
    """

    elevation: tuple[float, float] = (-10.0, 60.0)
    azimuth: tuple[float, float] = (-180.0, 180.0)
    distance: tuple[float, float] = (2.8, 3.4)
    fov_y: tuple[float, float] = (36.0, 44.0)
    resolution: int = 64


def view_at(elevation: float, azimuth: float, distance: float, fov_y: float, resolution: int) -> View:
    """The View (and its Camera) looking at the origin from these spherical coordinates."""
    el, az = math.radians(elevation), math.radians(azimuth)
    eye = (distance * math.cos(el) * math.sin(az), distance * math.sin(el), distance * math.cos(el) * math.cos(az))
    up = (0.0, 1.0, 0.0) if abs(elevation) < 89.9 else (0.0, 0.0, -1.0 if elevation > 0 else 1.0)
    camera = Camera(eye=eye, target=(0.0, 0.0, 0.0), up=up, fov_y=fov_y, width=resolution, height=resolution,
                    near=0.05, far=distance + 4.0)
    return View(elevation=elevation, azimuth=(azimuth + 180.0) % 360.0 - 180.0, distance=distance, fov_y=fov_y,
                camera=camera)


def sample_views(count: int, config: CameraConfig, generator: torch.Generator) -> list[View]:
    """`count` random views, uniform in each range (elevation uniform on the sphere's band)."""
    u = torch.rand(count, 4, generator=generator).tolist()
    views = []
    for a, b, c, d in u:
        # Uniform in area over the elevation band, not in angle: the poles are not oversampled.
        low, high = (math.sin(math.radians(e)) for e in config.elevation)
        elevation = math.degrees(math.asin(low + a * (high - low)))
        azimuth = config.azimuth[0] + b * (config.azimuth[1] - config.azimuth[0])
        distance = config.distance[0] + c * (config.distance[1] - config.distance[0])
        fov = config.fov_y[0] + d * (config.fov_y[1] - config.fov_y[0])
        views.append(view_at(elevation, azimuth, distance, fov, config.resolution))
    return views
