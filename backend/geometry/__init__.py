"""Mesh formats and geometry helpers (GLB in and out, ...).

Kept free of torch: the add-on and the CLI import these helpers without loading a model.
"""
