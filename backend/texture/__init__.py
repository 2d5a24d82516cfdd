"""Multi-view texture painting: view generators, back-projection into UV space, seam padding.

The pieces compose like threestudio's: the renderer (`backend.render`) says what each
pixel sees, a `ViewGenerator` paints a view, the `TextureProjector` bakes views into the
UV texture, and `pad_texture` fills the texels no triangle owns.
"""

from .padding import pad_texture
from .project import SurfaceSamples, TextureProjector, sample_texture
from .views import ViewGenerator, ViewRequest

__all__ = ["SurfaceSamples", "TextureProjector", "ViewGenerator", "ViewRequest", "pad_texture", "sample_texture"]
