"""Pure file formats (numpy only, no bpy): importable and testable without Blender."""
