"""Write-back and export inside Blender on synthetic GLBs (no backend needed)."""


def test_write_back_and_export(run_blender):
    run_blender("bl_write_back.py")
