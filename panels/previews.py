"""Job preview images as icons (bpy.utils.previews), loaded on the main thread."""

import bpy
import bpy.utils.previews

from .redraw import tag_redraw

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
        for old in [k for k in _collection if k.startswith(f"{job.key}:") and ":candidate:" not in k]:
            del _collection[old]  # keep only the latest preview of each job
        preview = _collection.load(key, job.preview_path, 'IMAGE')
        job.preview_icon = preview.icon_id
        # Blender turns the image into an icon in the background, once a draw asks for it, and
        # does not redraw the sidebar when it is ready: the last preview of a finished job
        # (no tick follows) would stay blank. Redraw again a little later, off the tick.
        bpy.app.timers.register(lambda: tag_redraw(bpy.context), first_interval=0.5)


def load_candidates(job) -> None:
    """Icons of a gallery job's candidate images, once they are downloaded."""
    global _collection
    if _collection is None:
        _collection = bpy.utils.previews.new()
    icons = []
    for index, path in enumerate(job.candidate_paths):
        key = f"{job.key}:candidate:{index}"
        preview = _collection.get(key) or _collection.load(key, path, 'IMAGE')
        icons.append(preview.icon_id)
    job.candidate_icons = icons
    bpy.app.timers.register(lambda: tag_redraw(bpy.context), first_interval=0.5)  # see `load`


def forget(key: int) -> None:
    """Free a job's icons when it leaves the job list (the list is capped; its icons would stay)."""
    if _collection is not None:
        for old in [k for k in _collection if k.startswith(f"{key}:")]:
            del _collection[old]


def clear(jobs) -> None:
    """Free every preview icon; the jobs (kept if the add-on is enabled again) forget theirs."""
    global _collection
    if _collection is not None:
        bpy.utils.previews.remove(_collection)
        _collection = None
    for job in jobs:
        job.preview_icon = 0
        job.candidate_icons = []
