"""Mesh formats and geometry helpers (GLB in and out, ...).

Kept free of torch: the server checks uploads with them before any model is loaded.
"""
