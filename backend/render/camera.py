"""Pinhole cameras: look-at placement, OpenGL-style projection, auto-framing, view sets.

Conventions (glTF axes, like every mesh in the backend): Y up, the object's front faces
+Z. Cameras look down their own -Z with +Y up (OpenGL). Images are row-major with row 0
at the top. Azimuth 0 looks at the front (camera on +Z); positive azimuth turns the
camera towards +X; positive elevation lifts it towards +Y.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Optional, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class Camera:
    """A perspective camera.

    Attributes:
        eye: (3,) camera position.
        target: (3,) point the camera looks at.
        up: (3,) approximate up direction (made orthogonal to the view direction).
        fov_y: Vertical field of view in degrees.
        width, height: Image size in pixels.
        near, far: Clip distances along the view axis.
    """

    eye: tuple[float, float, float]
    target: tuple[float, float, float]
    up: tuple[float, float, float] = (0.0, 1.0, 0.0)
    fov_y: float = 40.0
    width: int = 512
    height: int = 512
    near: float = 0.01
    far: float = 100.0

    @property
    def aspect(self) -> float:
        return self.width / self.height

    def with_size(self, width: int, height: Optional[int] = None) -> "Camera":
        """The same camera rendering at another resolution."""
        return replace(self, width=int(width), height=int(height if height is not None else width))

    def view_matrix(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """World to camera, (4, 4)."""
        return torch.as_tensor(look_at(self.eye, self.target, self.up), device=device, dtype=dtype)

    def projection_matrix(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """Camera to clip space, (4, 4)."""
        return torch.as_tensor(perspective(self.fov_y, self.aspect, self.near, self.far), device=device, dtype=dtype)

    def full_matrix(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """World to clip space, (4, 4): projection @ view."""
        m = perspective(self.fov_y, self.aspect, self.near, self.far) @ look_at(self.eye, self.target, self.up)
        return torch.as_tensor(m, device=device, dtype=dtype)

    def forward(self) -> np.ndarray:
        """(3,) unit view direction (eye towards target)."""
        d = np.asarray(self.target, np.float64) - np.asarray(self.eye, np.float64)
        return d / np.linalg.norm(d)

    def to_dict(self) -> dict:
        return {"eye": list(self.eye), "target": list(self.target), "up": list(self.up), "fov_y": self.fov_y,
                "width": self.width, "height": self.height, "near": self.near, "far": self.far}


def look_at(eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 1.0, 0.0)) -> np.ndarray:
    """World-to-camera matrix of a camera at `eye` looking at `target`.

    Args:
        eye, target, up: 3-vectors; `up` must not be parallel to the view direction.

    Returns:
        (4, 4) float64 matrix; the camera looks down its -Z axis.

    Raises:
        ValueError: eye equals target, or up is parallel to the view direction.
    """
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-12:
        raise ValueError("camera eye and target are the same point")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise ValueError("camera up vector is parallel to its view direction")
    right /= np.linalg.norm(right)
    true_up = np.cross(right, forward)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3] = right, true_up, -forward
    m[:3, 3] = -m[:3, :3] @ eye
    return m


def perspective(fov_y: float, aspect: float, near: float, far: float) -> np.ndarray:
    """OpenGL projection matrix (clip w = distance along the view axis).

    Args:
        fov_y: Vertical field of view in degrees.
        aspect: width / height.
        near, far: Clip distances, 0 < near < far.

    Returns:
        (4, 4) float64 matrix.
    """
    if not 0 < near < far:
        raise ValueError(f"need 0 < near < far, got near={near}, far={far}")
    f = 1.0 / math.tan(math.radians(fov_y) / 2)
    m = np.zeros((4, 4))
    m[0, 0], m[1, 1] = f / aspect, f
    m[2, 2], m[2, 3] = (far + near) / (near - far), 2 * far * near / (near - far)
    m[3, 2] = -1.0
    return m


def bounding_sphere(vertices) -> tuple[np.ndarray, float]:
    """Centre of the bounding box and the radius of the sphere around it holding every vertex."""
    v = np.asarray(vertices.detach().cpu() if torch.is_tensor(vertices) else vertices, np.float64).reshape(-1, 3)
    if len(v) == 0:
        raise ValueError("cannot frame an empty mesh")
    center = (v.min(0) + v.max(0)) / 2
    radius = float(np.linalg.norm(v - center, axis=1).max())
    return center, max(radius, 1e-6)


def frame_camera(vertices, azimuth: float, elevation: float, fov_y: float = 40.0, width: int = 512,
                 height: Optional[int] = None, margin: float = 1.1) -> Camera:
    """A camera on an orbit around the object that keeps all of it in frame.

    Args:
        vertices: (N, 3) points to frame (numpy or torch).
        azimuth: Degrees around +Y; 0 = front (camera on +Z), 90 = camera on +X.
        elevation: Degrees above the horizon; +90 looks straight down.
        fov_y: Vertical field of view in degrees.
        width, height: Image size (height defaults to width).
        margin: Extra room around the bounding sphere (1 = touching the frame).

    Returns:
        The camera, with near/far hugging the bounding sphere.
    """
    height = width if height is None else height
    center, radius = bounding_sphere(vertices)
    fov_x = 2 * math.degrees(math.atan(math.tan(math.radians(fov_y) / 2) * width / height))
    half = math.radians(min(fov_y, fov_x)) / 2
    distance = radius * margin / math.sin(half)
    az, el = math.radians(azimuth), math.radians(elevation)
    direction = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
    eye = center + distance * direction
    # Straight above / below, +Y cannot be "up": the image top then points to the back (-Z) from above.
    up = (0.0, 1.0, 0.0) if abs(elevation) < 89.0 else (0.0, 0.0, -1.0 if elevation > 0 else 1.0)
    near = max(distance - radius * 1.5, distance * 1e-3)
    return Camera(eye=tuple(eye), target=tuple(center), up=up, fov_y=fov_y, width=width, height=height,
                  near=near, far=distance + radius * 1.5)


def orbit_views(vertices, azimuths: Sequence[float], elevations: Sequence[float], **kwargs) -> list[Camera]:
    """One framed camera per (azimuth, elevation) pair; kwargs go to `frame_camera`."""
    return [frame_camera(vertices, a, e, **kwargs) for a, e in zip(azimuths, elevations)]


def default_views(vertices, num_azimuths: int = 8, elevation: float = 15.0, top_and_bottom: bool = True,
                  start_azimuth: float = 0.0, **kwargs) -> list[Camera]:
    """The painting view set: `num_azimuths` around the object, then top and bottom.

    Going round in order means each new view overlaps the one before it, so inpainting
    always has painted neighbours to continue from (TEXTure paints in the same order).

    Args:
        vertices: (N, 3) points to frame.
        num_azimuths: Views evenly spaced around +Y, starting at the front.
        elevation: Degrees above the horizon for the ring of views.
        top_and_bottom: Add a view from straight above and one from straight below.
        start_azimuth: Azimuth of the first view in degrees.
        **kwargs: fov_y, width, height, margin for `frame_camera`.

    Returns:
        The cameras, in painting order.
    """
    azimuths = [start_azimuth + 360.0 * i / num_azimuths for i in range(num_azimuths)]
    elevations = [elevation] * num_azimuths
    if top_and_bottom:
        azimuths += [start_azimuth, start_azimuth]
        elevations += [90.0, -90.0]
    return orbit_views(vertices, azimuths, elevations, **kwargs)
