"""What the add-on needs inside Blender's Python: the standard library, Blender's own modules
and numpy. A Linux distribution's Blender may have nothing more (Debian's has neither requests
nor, unless installed, numpy); without numpy the add-on must refuse with a fix, not a traceback."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADDON = ["__init__.py", "operators", "panels", "service", "scene_io", "formats"]
BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "gpu", "gpu_extras", "blf", "bl_math", "addon_utils"}
ALLOWED = set(sys.stdlib_module_names) | BLENDER_MODULES | {"numpy"}


def addon_files():
    for entry in ADDON:
        path = ROOT / entry
        yield from ([path] if path.is_file() else sorted(path.rglob("*.py")))


def test_addon_imports_only_what_every_blender_has():
    outside = []
    for path in addon_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            outside += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] not in ALLOWED]
    assert not outside, outside


def test_a_blender_without_numpy_gets_the_fix_not_a_traceback(tmp_path):
    """The root package imported as Blender does (bpy loaded), with numpy hidden."""
    script = (
        "import importlib.util, sys, types\n"
        "sys.modules['bpy'] = types.ModuleType('bpy')\n"
        "sys.modules['numpy'] = None\n"
        f"spec = importlib.util.spec_from_file_location('diffusion3d', {str(ROOT / '__init__.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "try:\n"
        "    spec.loader.exec_module(module)\n"
        "except ImportError as exc:\n"
        "    print('REFUSED:', exc, '| name:', exc.name)\n"
    )
    output = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60).stdout
    assert "REFUSED: Diffusion 3D needs numpy" in output and "python3-numpy" in output, output
    assert "| name: numpy" in output, output  # Blender 4.3's add-on loader fails on a nameless ImportError
