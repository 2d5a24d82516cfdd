"""Diffusion 3D backend: generation pipelines behind a local or remote HTTP service.

Runs in its own interpreter, never inside Blender. Importing this package stays cheap (no torch
at import time): the CLI answers `--help` and `models` without loading a model. It reads GLB
files with the extension's own `formats/` package, so it runs from the repository root (or
the installed extension's folder).
"""

__version__ = "0.1.0"
