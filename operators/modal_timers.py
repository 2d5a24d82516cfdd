"""Window-manager timers of running modal operators, kept so disabling the add-on removes them.

Blender drops a modal handler whose operator class is unregistered without calling its
`cancel`, and its timer would go on waking Blender up for good.
"""

_RUNNING: list = []  # (window manager, timer)


def add(context, interval: float):
    """A timer of `interval` seconds for the context's window; remove it with `remove`."""
    window_manager = context.window_manager
    timer = window_manager.event_timer_add(interval, window=context.window)
    _RUNNING.append((window_manager, timer))
    return timer


def remove(context, timer) -> None:
    """Remove a timer made by `add` (a second call does nothing)."""
    for entry in [e for e in _RUNNING if e[1] == timer]:
        _RUNNING.remove(entry)
        context.window_manager.event_timer_remove(timer)


def remove_all() -> None:
    """On unregister: every timer still running."""
    while _RUNNING:
        window_manager, timer = _RUNNING.pop()
        try:
            window_manager.event_timer_remove(timer)
        except ReferenceError:  # its window manager is gone (a file was loaded meanwhile)
            pass
