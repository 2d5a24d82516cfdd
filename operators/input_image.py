"""An image-to-3D object keeps the image it was made from."""

import bpy

PROPERTY = "diffusion3d_input_image"


def keep_input_image(operator, job) -> None:
    """Pack the job's input image into the .blend and name it in the new object's
    `diffusion3d_input_image`, so the artist can compare, share or rerun from it: the photo it
    was sent, or the candidate a text-to-image-to-3D job picked itself."""
    path = job.request.source_image if job.request else ""
    pick = job.params.get("pick")
    if not path and type(pick) is int and 0 <= pick < len(job.candidate_paths):
        path = job.candidate_paths[pick]
    obj = bpy.data.objects.get(job.applied_to)
    if not path or obj is None:
        return
    try:
        image = bpy.data.images.load(path, check_existing=True)
        if image.packed_file is None:
            image.pack()
    except RuntimeError as exc:  # moved or unreadable since it was sent: the result stays
        operator.report({'WARNING'}, f"the input image was not kept with '{obj.name}': {exc}")
        return
    obj[PROPERTY] = image.name
