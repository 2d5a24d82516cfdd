"""Make 3D: send one image of a gallery job (text to image to 3D) to TripoSR."""

import os

import bpy
from bpy.props import IntProperty, StringProperty

from .input_image import keep_input_image
from .jobs import JobOperator, JobRequest, find_job

RECONSTRUCTION_MODEL = "triposr"


class DIFFUSION3D_OT_use_candidate(JobOperator, bpy.types.Operator):
    """Make this candidate image a textured mesh (TripoSR unless told otherwise); it appears at the 3D cursor"""

    bl_idname = "diffusion3d.use_candidate"
    bl_label = "Make 3D"
    bl_options = {'REGISTER', 'UNDO'}

    key: IntProperty(name="Job", description="The gallery job, by its key in the job list")
    index: IntProperty(name="Candidate", min=0, description="Which of its images, numbered from 0")
    model: StringProperty(name="Model", default=RECONSTRUCTION_MODEL,
                          description="The image-to-3D model (triposr: seconds; zero123-sds: slow, every side)")

    def build_requests(self, context):
        job = find_job(self.key)
        if job is None or not job.candidate_paths:
            raise ValueError("that gallery is no longer in the job list: draw the candidates again")
        if self.index >= len(job.candidate_paths):
            raise ValueError(f"the gallery has {len(job.candidate_paths)} candidates, numbered from 0; "
                             f"there is no {self.index}")
        path = job.candidate_paths[self.index]
        if not os.path.isfile(path):
            raise ValueError(f"candidate {self.index} is gone from {os.path.dirname(path)}: draw the candidates again")
        with open(path, "rb") as handle:
            image = handle.read()
        return [JobRequest("image_to_3d", {}, f"{job.label} {self.index}", self.model or RECONSTRUCTION_MODEL,
                           {"image": image}, source_image=path)]

    def after_written(self, context, job) -> None:
        keep_input_image(self, job)
