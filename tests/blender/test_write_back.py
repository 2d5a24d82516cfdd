"""Write-back and export inside Blender on synthetic GLBs (no backend service needed)."""

from backend.geometry.glb import mesh_result_to_glb
from backend.parts.appearance import resolve
from backend.results import MeshResult
from tests.fixtures.part_boxes import box_part


def glass_table_glb() -> bytes:
    """A glass top and two black metal legs, written as the backend writes the built-in model's parts."""
    top, legs = resolve("table", "top", None, "glass"), resolve("table", "leg", "black", "metal")
    parts = [box_part("top", 0, top)] + [box_part(f"leg.{i}", 2 * (i + 1), legs) for i in range(2)]
    return mesh_result_to_glb(MeshResult(parts=parts))


def test_write_back_and_export(run_blender, tmp_path):
    path = tmp_path / "table.glb"
    path.write_bytes(glass_table_glb())
    run_blender("bl_write_back.py", str(path))
