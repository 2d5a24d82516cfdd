"""Diffusion 3D backend: generation pipelines behind a local or remote HTTP service.

Runs in its own interpreter, never inside Blender: importing this package must stay
cheap (no torch at import time) because the add-on imports its pure-format helpers.
"""

__version__ = "0.1.0"
