"""The backend's own accelerator: one job at a time in the job manager's worker thread, its
models kept loaded between jobs (`serve`; `serve --ray` uses cluster/ray_executor.py instead)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any, Optional, Union

from .job_run import JobOutput, Report, StepControl, run_loaded
from .models import LoadOptions, ModelEntry


class LocalExecutor:
    """Runs jobs in this process on `options.device`."""

    slots = 1  # jobs at once: one accelerator
    reads_files = True  # runs where the job store is: a checkpoint comes as its file's path

    def capacity(self) -> int:
        return self.slots

    def __init__(self, options: LoadOptions):
        self.options = options
        self.device = options.device
        self._pipelines: dict[tuple[str, str], Any] = {}  # one load per model, kept for later jobs

    def run(self, job_id: str, entry: ModelEntry, params: dict[str, Any], files: dict[str, Union[bytes, Path]],
            control: StepControl, report: Report) -> JobOutput:
        pipe = self._pipeline(entry)
        report.note("")
        return run_loaded(entry, pipe, params, files, control, report)

    def signal(self, job_id: str, control: StepControl) -> None:
        """The job's controls changed: this thread reads them at the next step itself."""

    def failed(self, exc: BaseException) -> None:
        """A job failed with `exc`: after running out of memory, give the cached blocks back."""
        from .jobs import is_out_of_memory

        if is_out_of_memory(exc):
            free_accelerator_memory()

    def replicas(self) -> Optional[list[dict[str, Any]]]:
        return None  # no replicas: /health says so by leaving them out

    def close(self) -> None:
        self._pipelines.clear()

    def _pipeline(self, entry: ModelEntry) -> Any:
        # Keyed by model, not task: "builtin" serves two tasks from one set of weights.
        key = (entry.name, entry.source)
        if key not in self._pipelines:
            if entry.source != "builtin":  # one downloaded model at a time: an 8 GB GPU holds one, not three
                self._drop_downloaded_models()
            self._pipelines[key] = entry.load(self.options)
        return self._pipelines[key]

    def _drop_downloaded_models(self) -> None:
        """Free the loaded hub models (gigabytes each); the built-in one is small and stays."""
        stale = [key for key in self._pipelines if key[1] != "builtin"]
        for key in stale:
            del self._pipelines[key]
        if stale:
            gc.collect()  # the pipelines' tensors go now, so the accelerator's cache can be emptied
            free_accelerator_memory()


def free_accelerator_memory() -> None:
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif torch is not None and torch.backends.mps.is_available():
        torch.mps.empty_cache()
