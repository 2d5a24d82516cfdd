"""Import the add-on from this checkout by path, as package `diffusion3d`, for benchmarks run with the bpy module."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_addon():
    """The add-on package from this checkout, imported by path as `diffusion3d`."""
    spec = importlib.util.spec_from_file_location("diffusion3d", ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["diffusion3d"] = module
    spec.loader.exec_module(module)
    return module
