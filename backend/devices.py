"""Which accelerator the backend runs on, and in which precision."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads only when a device is picked
    import torch

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def set_cpu_threads(requested: int = 0) -> int:
    """Threads for torch's CPU kernels: `requested` when positive, else torch's default (the
    physical cores). Returns the count in use.

    The default is fastest on a machine of its own (a 2-core bake: 1.7 s with 2 threads, 3.1 s
    with 1), but cores shared with other busy programs make torch's kernels stall (4-13x slower
    with 2 threads than with 1 on a loaded 2-core machine): that is what a smaller number is for.
    """
    import torch

    if requested > 0:
        torch.set_num_threads(int(requested))
    return torch.get_num_threads()


def pick_device(choice: str = "auto", full_precision: bool = False) -> tuple[str, torch.dtype]:
    """Choose the device and dtype for the pipelines.

    `auto` takes CUDA, then Apple's MPS, then the CPU. Half precision only on CUDA (MPS
    and CPU kernels are slower or missing in fp16), unless `full_precision` is asked for.

    Args:
        choice: "auto", "cuda", "mps" or "cpu".
        full_precision: float32 on CUDA too: about twice the GPU memory, for GPUs whose
            fp16 gives black or noisy images.

    Returns:
        (device, dtype), e.g. ("cuda", torch.float16).

    Raises:
        ValueError: the choice is unknown, or names a device this machine lacks.
    """
    import torch

    if choice not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        choice = "cuda" if cuda else "mps" if mps else "cpu"
    elif choice == "cuda" and not cuda:
        raise ValueError(
            f"device 'cuda' was asked for but torch {torch.__version__} sees no CUDA GPU "
            "(a CPU-only torch build, or no driver); use --device auto or cpu"
        )
    elif choice == "mps" and not mps:
        raise ValueError("device 'mps' was asked for but Apple's Metal backend is not available here; use --device auto or cpu")
    return choice, torch.float16 if choice == "cuda" and not full_precision else torch.float32


def place_pipeline(pipe: Any, device: str, attention_slicing: bool = False, cpu_offload: bool = False) -> Any:
    """Put a loaded diffusers pipeline on its device, with the memory savers asked for.

    Args:
        pipe: The pipeline.
        device: Target device.
        attention_slicing: Compute attention in slices.
        cpu_offload: Model CPU offload (CUDA only; ignored elsewhere).

    Returns:
        The same pipeline, its progress bar off (progress goes through the job's callback).
    """
    if attention_slicing:
        pipe.enable_attention_slicing()
    if cpu_offload and str(device).startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe
