"""Add-on preferences: where the backend runs and how the add-on talks to it."""

import os
import sys

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..service.installer import INSTALLER, venv_python
from ..service.session import BackendSettings

ADDON_ID = __package__.rpartition(".")[0]  # the extension's own package (bl_ext.<repo>.diffusion3d)
EXTENSION_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_dir(*parts: str) -> str:
    """A path inside the extension's user directory (created); never inside the add-on folder."""
    return os.path.join(bpy.utils.extension_path_user(ADDON_ID, create=True), *parts)


def managed_venv_dir() -> str:
    return bpy.utils.extension_path_user(ADDON_ID, path="venv", create=True)


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon else None


def effective_python(prefs) -> str:
    """The chosen interpreter; else the managed venv when it was installed; else Blender's own."""
    if prefs is not None and prefs.python_path:
        return bpy.path.abspath(prefs.python_path)
    managed = venv_python(os.path.join(bpy.utils.extension_path_user(ADDON_ID), "venv"))
    if os.path.exists(managed):
        return managed
    return sys.executable


def downloads_allowed(prefs) -> bool:
    """The preference, which Blender's own online access overrides."""
    return bool(prefs.allow_downloads and bpy.app.online_access)


def backend_settings(context=None) -> BackendSettings:
    """The preferences as plain values for the bpy-free service layer."""
    prefs = get_prefs(context)
    settings = BackendSettings(
        python=effective_python(prefs),
        extension_dir=EXTENSION_DIR,
        user_dir=bpy.utils.extension_path_user(ADDON_ID, create=True),
    )
    if prefs is not None:
        settings.mode = prefs.backend_mode
        settings.remote_url = prefs.remote_url
        settings.remote_token = prefs.remote_token
        settings.device = prefs.device.lower()
        settings.threads = prefs.cpu_threads
        settings.allow_downloads = downloads_allowed(prefs)
        settings.attention_slicing = prefs.attention_slicing
        settings.cpu_offload = prefs.cpu_offload
        settings.full_precision = prefs.full_precision
        settings.request_timeout = prefs.request_timeout
        settings.startup_timeout = prefs.startup_timeout
    return settings


class DIFFUSION3D_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    backend_mode: EnumProperty(
        name="Backend",
        description="Where generation runs: a process this add-on starts, or a service already running elsewhere",
        items=(
            ('LOCAL', "Local", "The add-on starts the backend on this computer as a separate process"),
            ('REMOTE', "Remote", "Use a backend service already running at a URL (e.g. a shared GPU machine)"),
        ),
        default='LOCAL',
    )
    python_path: StringProperty(
        name="Python Interpreter",
        description="Interpreter that runs the backend (needs torch and diffusers). Empty: the venv made by "
        "'Install Backend Requirements' if present, else Blender's own Python",
        subtype='FILE_PATH',
    )
    remote_url: StringProperty(name="URL", description="Address of the remote backend", default="http://127.0.0.1:8765")  # serve's default port
    remote_token: StringProperty(name="Token", description="Bearer token of the remote backend", subtype='PASSWORD')
    device: EnumProperty(
        name="Device",
        description="Where the local backend computes (read when it starts)",
        items=(
            ('AUTO', "Auto", "CUDA, then Apple MPS, then CPU"),
            ('CUDA', "CUDA", "NVIDIA GPU"),
            ('MPS', "MPS", "Apple GPU"),
            ('CPU', "CPU", "Slow but works everywhere"),
        ),
        default='AUTO',
    )
    cpu_threads: IntProperty(
        name="CPU Threads",
        description="Threads the local backend computes with on the CPU. 0: automatic (the physical cores). "
        "Lower it when other busy programs share the machine",
        default=0, min=0, max=256,
    )
    allow_downloads: BoolProperty(
        name="Allow Model Downloads",
        description="Let the backend download model weights (also needs Blender's 'Allow Online Access')",
        default=False,
    )
    attention_slicing: BoolProperty(
        name="Attention Slicing",
        description="Compute the models' attention layers in slices: saves memory only where PyTorch's fused "
                    "attention is missing (e.g. some Apple or older GPUs); with it, texturing needs what 16-bit does "
                    "(3.1 to 4.4 GB); a little slower",
        default=False,
    )
    cpu_offload: BoolProperty(
        name="Model CPU Offload",
        description="Keep models in system memory and move each to the GPU only while it runs: the least GPU "
        "memory (texturing in 2.0 to 3.3 GB, by model and texture size, plus about 0.5 GB CUDA itself uses), "
        "about 3x slower per step. For GPUs with little memory",
        default=False,
    )
    full_precision: BoolProperty(
        name="Full Precision",
        description="Run models in 32-bit floats on NVIDIA GPUs too (16-bit is the default there, texturing in "
        "3.1 to 4.4 GB): about twice the GPU memory (6.0 to 7.2 GB), for GPUs whose 16-bit results come out black "
        "or noisy",
        default=False,
    )
    request_timeout: FloatProperty(name="Request Timeout", description="How long a request to the backend may take "
                                   "before it is given up", default=30.0, min=1.0, max=600.0, subtype='TIME_ABSOLUTE', unit='TIME_ABSOLUTE')
    startup_timeout: FloatProperty(name="Startup Timeout", description="How long the local backend may take to "
                                   "start (loading torch can take a minute on a slow disk)", default=120.0, min=5.0, max=1200.0, subtype='TIME_ABSOLUTE', unit='TIME_ABSOLUTE')
    texture_storage: EnumProperty(
        name="Save Textures",
        description="Where generated texture images are kept",
        items=(
            ('PACK', "Pack into .blend", "Generated textures are packed into the .blend file"),
            ('NEXT_TO_BLEND', "Next to .blend", "Saved to a 'textures' folder beside the saved .blend (packed while unsaved)"),
        ),
        default='PACK',
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.row().prop(self, "backend_mode", expand=True)  # side by side, not a list
        if self.backend_mode == 'LOCAL':
            col = layout.column()
            col.prop(self, "python_path")
            col.label(text=f"Using: {effective_python(self)}", icon='INFO')
            col.prop(self, "device")
            col.prop(self, "cpu_threads")
            memory = col.column(heading="GPU Memory")  # the figures in their tooltips: README, "VRAM"
            memory.prop(self, "attention_slicing")
            memory.prop(self, "cpu_offload")
            memory.prop(self, "full_precision")
            row = col.row()
            row.prop(self, "allow_downloads")
            if self.allow_downloads and not bpy.app.online_access:
                col.label(text="Blender's online access is off: downloads stay disabled", icon='ERROR')
            col.prop(self, "startup_timeout")
            self.draw_installer(col)
        else:
            layout.prop(self, "remote_url")
            layout.prop(self, "remote_token")
        layout.prop(self, "request_timeout")
        layout.prop(self, "texture_storage")

    def draw_installer(self, layout):
        box = layout.box()
        row = box.row()
        row.operator("diffusion3d.install_requirements", icon='IMPORT')
        row.label(text=f"Status: {INSTALLER.state.title()}")
        for line in INSTALLER.lines[-12:]:
            box.label(text=line[:160])


classes = (DIFFUSION3D_AddonPreferences,)
