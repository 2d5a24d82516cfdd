"""Job preview images as icons (bpy.utils.previews), loaded on the main thread."""

import bpy.utils.previews

_collection = None


def load(job) -> None:
    """(Re)load the job's latest preview PNG under a fresh key (previews are cached by key)."""
    global _collection
    if not job.preview_path:
        return
    if _collection is None:
        _collection = bpy.utils.previews.new()
    key = f"{job.key}:{job.preview_version}"
    if key not in _collection:
        for old in [k for k in _collection if k.startswith(f"{job.key}:")]:
            del _collection[old]  # keep only the latest preview of each job
        preview = _collection.load(key, job.preview_path, 'IMAGE')
        # Loading is deferred until something asks for the size; ask now, or a job's last preview
        # stays blank until an unrelated redraw (no tick follows a finished job).
        preview.icon_size[:]
        job.preview_icon = preview.icon_id


def clear() -> None:
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None
