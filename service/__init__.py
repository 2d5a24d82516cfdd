"""Talking to the backend: HTTP client, local process manager, venv installer (no bpy)."""
