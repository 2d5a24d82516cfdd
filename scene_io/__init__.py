"""Moving meshes between GLB arrays and Blender data (main thread only)."""
