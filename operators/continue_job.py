"""Continue a long job that was cancelled or interrupted, from where it stood.

A job that kept a checkpoint goes on exactly: the backend runs a new job from it, with the same
model, settings and uploads, and it ends with the result the first run would have had. One
without (it stopped before its first checkpoint, or its checkpoint was deleted to save space)
falls back to its saved state: that becomes the draft of a new job with the same settings, for
the steps it had left; the shape and colours carry over, the optimiser's momentum does not.
"""

import bpy
from bpy.props import IntProperty

from ..panels import properties
from ..panels.preferences import backend_settings
from ..service.client import BackendError
from ..service.session import connect
from .jobs import JobOperator, JobRequest, find_job


def continuable(job) -> bool:
    """A text- or image-to-3D job that stopped early and kept a checkpoint, or a text-to-3D one
    whose model starts from a draft and kept its state. (A reshape resumes through the API: its
    result belongs on the object it was made from, which a new job here would not know.)"""
    if not job.backend_id or job.state not in ("cancelled", "failed"):
        return False
    takes_draft = any(m.get("name") == job.model and m.get("takes_draft") for m in properties.MODELS)
    return (job.has_checkpoint and job.task in ("text_to_3d", "image_to_3d")) \
        or (job.has_current_state and job.task == "text_to_3d" and takes_draft)


def remaining_params(job) -> dict:
    """The job's settings for the steps it had left (a Magic3D job in its mesh stage goes on there)."""
    params = dict(job.params)
    left = max(1, int(job.total) - int(job.step))
    if job.phase == "refine":
        params["num_inference_steps"], params["fine_steps"] = 0, left
    elif job.phase == "distill":
        params["num_inference_steps"] = left
    return params


class DIFFUSION3D_OT_continue_job(JobOperator, bpy.types.Operator):
    """Continue this cancelled or interrupted job from where it stood: a new job with the same settings goes on from its checkpoint, to the result the first run would have had"""

    bl_idname = "diffusion3d.continue_job"
    bl_label = "Continue"
    bl_options = {'UNDO', 'INTERNAL'}

    key: IntProperty(name="Job")

    def build_requests(self, context):
        job = find_job(self.key)
        if job is None or not continuable(job):
            raise ValueError("this job cannot be continued: only a cancelled or interrupted distillation that "
                             "kept its state can")
        label = f"{job.label} (continued)"[:60]
        if job.has_checkpoint:
            return [JobRequest(job.task, dict(job.params), label, job.model, resume=job.backend_id)]
        try:
            state = connect(backend_settings(context), start=True).current_state(job.backend_id, timeout=120.0)
        except BackendError as exc:
            raise ValueError(f"could not get where '{job.label}' stood: {exc}") from None
        return [JobRequest("text_to_3d", remaining_params(job), label, job.model, {"mesh": state})]
