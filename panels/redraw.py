"""Redraw the Diffusion 3D sidebars (cheap: no data is touched)."""


def tag_redraw(context) -> None:
    """Tag the sidebar region of every 3D viewport for redraw."""
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == 'VIEW_3D':
                for region in area.regions:
                    if region.type == 'UI':
                        region.tag_redraw()
