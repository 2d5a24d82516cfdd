"""The errors every layer raises, each named for what the artist can do about it.

A leaf module: geometry/, parts/, texture/, pipelines/ and the service all import it, and it
imports nothing of theirs, so the layers depend one way only.
"""

from __future__ import annotations


class JobCancelled(Exception):
    """Raised by a step callback when the user asked the job to stop."""


class InputError(ValueError):
    """The request itself is wrong (bad prompt, mesh, mask, parameter); the message says how to fix it."""


class ModelUnavailable(RuntimeError):
    """A model cannot be loaded here (not downloaded and downloads are off, missing package).

    The message names the model and the exact fix.
    """


class GenerationFailed(RuntimeError):
    """The model ran but produced nothing usable (an empty or degenerate surface)."""
