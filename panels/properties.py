"""Scene-level settings of the sidebar (`context.scene.diffusion3d`) and the model list cache."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from ..scene_io.reference_camera import REFERENCE_VIEWS

# Blender 4.5+ warns about "//" in paths unless told they may be blend-relative (older versions lack the flag).
PATH_OPTIONS = {'PATH_SUPPORTS_BLEND_RELATIVE'} if bpy.app.version >= (4, 5, 0) else set()

# The sidebar's setting and the edit_part operator offer the same modes.
EDIT_MODES = (
    ('EDIT', "Edit", "Regenerate the selected faces' parts from the prompt"),
    ('COMPLETE', "Complete", "Regenerate the selected faces' parts from the rest of the shape"),
    ('MIX', "Mix", "Bring parts of the other selected object into the active one"),
)

# Filled from GET /models by operators/refresh.py; read by the enums below.
MODELS: list[dict] = []
# Blender needs the strings of dynamic enum items kept alive, one list per enum.
_enum_items_keepalive: dict[str, list] = {}


def task_for(settings) -> str:
    return 'image_to_3d' if settings.image else 'text_to_3d'


def models_for(task: str) -> list[tuple[str, str, str]]:
    """Enum items: the task's default (named once the backend has listed its models), then every
    model the backend lists for the task."""
    entry = next((e for e in MODELS if e.get("task") == task and e.get("default")), {})
    default = entry.get("name", "") + ("" if entry.get("available_offline", True) else ", needs download")
    items = [('DEFAULT', f"Default ({default})" if default else "Default",
              "The backend's default model for this task (the list fills in once the backend has started)")]
    for entry in MODELS:
        if entry.get("task") != task:
            continue
        name = entry.get("name", "")
        offline = "" if entry.get("available_offline", True) else " (needs download)"
        took = str(entry.get("expected_time") or "")[:60]
        items.append((name, name + offline + (f" · {took}" if took else ""), entry.get("description", "")[:200]))
    _enum_items_keepalive[task] = items
    return items


def tier_model(task: str, tier: str) -> str:
    """The model of `tier` ("draft" or "quality") for the task: one whose weights are here first."""
    candidates = [e for e in MODELS if e.get("task") == task and e.get("tier") == tier]
    ready = [e for e in candidates if e.get("available_offline", True)]
    return str((ready or candidates or [{}])[0].get("name", ""))


def _chosen_model(items_of, name_key: str):
    """get/set for a model menu that remembers the chosen model's *name*: Blender stores an enum
    as a position, and a list that changes (another task's models, a reloaded list) would
    silently move the choice to whatever model now sits there."""

    def get(self) -> int:
        names = [item[0] for item in items_of(self)]
        chosen = self.get(name_key, 'DEFAULT')
        return names.index(chosen) if chosen in names else 0  # gone from the list: the default

    def set(self, value: int) -> None:
        items = items_of(self)
        self[name_key] = items[value][0] if 0 <= value < len(items) else 'DEFAULT'

    return get, set


def model_entry(settings, task: str = "") -> dict:
    """The /models entry the panel's choice for `task` stands for (Generate's when none; {}
    before the list is loaded)."""
    task = task or task_for(settings)
    chosen = settings.texture_model if task == 'texture' else settings.model
    for entry in MODELS:
        if entry.get("task") == task and (entry.get("name") == chosen if chosen != 'DEFAULT' else entry.get("default")):
            return entry
    return {}


def sampling_defaults(settings, task: str = "") -> tuple:
    """(steps, guidance) the chosen model uses unless told otherwise; None where unknown."""
    params = model_entry(settings, task).get("params") or {}
    return params.get("num_inference_steps"), params.get("guidance_scale")


def _start_custom_sampling(prefix: str, task: str):
    """An update for `<prefix>custom_sampling`: custom sampling starts from the model's own
    values (the built-in model's guidance is 1.5, Shap-E's 15, Stable Diffusion's 7.5: a fixed
    starting point would be far off for some)."""

    def update(self, context):
        if getattr(self, prefix + "custom_sampling"):
            steps, guidance = sampling_defaults(self, task)
            if steps:
                setattr(self, prefix + "steps", int(steps))
            if guidance is not None:
                setattr(self, prefix + "guidance", float(guidance))

    return update


def model_items(self, context=None):
    return models_for(task_for(self))


def texture_model_items(self, context=None):
    return models_for('texture')


_get_model, _set_model = _chosen_model(model_items, "model_name")
_get_texture_model, _set_texture_model = _chosen_model(texture_model_items, "texture_model_name")


class DIFFUSION3D_PG_settings(bpy.types.PropertyGroup):
    prompt: StringProperty(name="Prompt", description="What to generate, e.g. 'a wooden chair'")
    image: StringProperty(
        name="Image", description="Generate from this image instead of the prompt", subtype='FILE_PATH', options=PATH_OPTIONS
    )
    model: EnumProperty(name="Model", description="Model that runs the job (list from the backend)", items=model_items,
                        get=_get_model, set=_set_model)
    random_seed: BoolProperty(name="Random Seed", description="A new seed for every job", default=True)
    candidates: IntProperty(name="Candidates", description="Images to draw first and pick from (text to image to "
                            "3D): 1 goes straight to 3D", min=1, max=8, default=4)
    seed: IntProperty(name="Seed", description="The same seed and settings give the same result", min=0, default=0)
    custom_sampling: BoolProperty(name="Custom Sampling", description="Override the model's steps and guidance",
                                  default=False, update=_start_custom_sampling("", ""))
    steps: IntProperty(name="Steps", description="Number of denoising steps", min=1, max=1000, default=64)
    guidance: FloatProperty(name="Guidance", description="Classifier-free guidance scale", min=0.0, max=100.0, default=15.0)

    edit_prompt: StringProperty(name="Prompt", description="What the selected part should become")
    edit_mode: EnumProperty(name="Mode", description="What happens to the selected part", items=EDIT_MODES, default='EDIT')
    take_from_b: StringProperty(name="Parts", description="Comma-separated part names to take from the other object (Mix)")

    texture_prompt: StringProperty(name="Prompt", description="How the selected objects should look")
    texture_model: EnumProperty(name="Model", description="Model that paints the views (list from the backend)",
                                items=texture_model_items, get=_get_texture_model, set=_set_texture_model)
    texture_reference: StringProperty(
        name="Reference", description="Optional image to project onto the objects first (the views fill the rest)",
        subtype='FILE_PATH', options=PATH_OPTIONS,
    )
    texture_reference_view: EnumProperty(name="Taken From", description="Where the reference image was seen from",
                                         items=REFERENCE_VIEWS, default='CAMERA')
    texture_negative_prompt: StringProperty(name="Avoid", description="What the texture should not show, e.g. 'blurry, text'")
    texture_size: EnumProperty(
        name="Texture Size", description="Texels per side of the painted image", default='1024',
        items=[(size, f"{size} px", f"{size} x {size} texels") for size in ("1024", "2048", "4096")],
    )
    texture_views: IntProperty(name="Views", description="Views painted around the object, plus one from above and "
                               "one from below. 0: the model's own number (8 for Stable Diffusion)", min=0, max=62, default=0)
    texture_fill_views: IntProperty(name="Extra Views", description="Views added after those, each from the "
                                    "direction that sees most of what they all missed (a mug's inside); "
                                    "one is painted only where it is needed", min=0, max=16, default=2)
    texture_random_seed: BoolProperty(name="Random Seed", description="A new seed for every texture", default=True)
    texture_seed: IntProperty(name="Seed", description="The same seed and settings paint the same texture", min=0,
                              default=0)
    texture_custom_sampling: BoolProperty(name="Custom Sampling", description="Override the model's steps and "
                                          "guidance", default=False, update=_start_custom_sampling("texture_", 'texture'))
    texture_steps: IntProperty(name="Steps", description="Denoising steps for each view (more: finer detail, slower)",
                               min=1, max=500, default=30)
    texture_guidance: FloatProperty(name="Guidance", description="How closely the views follow the prompt "
                                    "(classifier-free guidance scale; higher: stronger, less natural)",
                                    min=0.0, max=100.0, default=7.5)
    reshape_prompt: StringProperty(name="Prompt", description="What the selected faces should become")
    reshape_source_prompt: StringProperty(name="It Is Now", description="What the object is now, e.g. 'a stone "
                                          "vase' (kept where the prompt asks for no change); empty: 'a 3D model'")
    reshape_steps: IntProperty(name="Steps", description="Optimisation steps (more: a bigger change, slower)",
                               min=1, max=20000, default=500)
    reshape_border: FloatProperty(name="Border", description="Width of the band around the selected faces that "
                                  "follows their change, fading out, in percent of the object's size (0: the "
                                  "selection's rim stays put)", min=0.0, max=25.0, default=2.0, subtype='PERCENTAGE')
    reshape_repaint: BoolProperty(name="Repaint After", description="When the faces' material shows an image, "
                                  "repaint the reshaped faces in it afterwards, so the texture fits the new shape",
                                  default=True)
    repaint_border: FloatProperty(name="Border", description="Width of the band around the selected faces that is "
                                  "blended into the texture around it, in percent of the object's size "
                                  "(0: a hard edge)", min=0.0, max=25.0, default=2.0, subtype='PERCENTAGE')


classes = (DIFFUSION3D_PG_settings,)


def register_scene_property():
    bpy.types.Scene.diffusion3d = bpy.props.PointerProperty(type=DIFFUSION3D_PG_settings)


def unregister_scene_property():
    del bpy.types.Scene.diffusion3d
