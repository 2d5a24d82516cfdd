"""The HTTP service (docs/http-api.md): FastAPI routes over a JobManager, behind a guard
that checks the Host header, the bearer token and the upload size on every request."""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.routing import Match

from . import __version__
from .api_schema import JOB_FORM, Health, JobRecord, ModelInfo, errors, openapi_schema
from .cluster.ray_executor import DEFAULT_STALL_S
from .cluster.scaling import DEFAULT_MAX_REPLICAS
from .errors import InputError
from .jobs import DEFAULT_KEEP_JOBS, StateRequestsBusy
from .models import TASKS, UPLOADS, LoadOptions, downloads_allowed, registry

log = logging.getLogger(__name__)

DEFAULT_PORT = 8765
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def default_cache_dir() -> str:
    """`$DIFFUSION3D_CACHE`, else `$XDG_CACHE_HOME/diffusion3d` (~/.cache/diffusion3d)."""
    if os.environ.get("DIFFUSION3D_CACHE"):
        return os.environ["DIFFUSION3D_CACHE"]
    return str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "diffusion3d")


@dataclass
class Settings:
    """How the service runs.

    Attributes:
        token: The bearer token every request must carry.
        host: Address to bind; also a name the Host header may use.
        port: Port to bind.
        cache_dir: Job database, results and previews.
        device: "auto", "cuda", "mps" or "cpu".
        offline: Never download model weights.
        max_upload_mb: Largest request body accepted.
        allowed_hosts: Extra names the Host header may use ("name" or "name:port").
        keep_jobs: Finished jobs kept with their results; the oldest beyond it are deleted.
        attention_slicing, cpu_offload: Memory savings for the models loaded (see LoadOptions).
        full_precision: float32 on CUDA too (see `devices.pick_device`).
        ray_address: Run the jobs on a Ray cluster's replicas ("local": a Ray instance here);
            None runs them in this process (see cluster/ray_executor.py).
        replicas, models_per_replica, replica_threads, max_replicas, stall_s: With ray_address, see
            `RayExecutor`.
    """

    token: str
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    cache_dir: str = ""
    device: str = "auto"
    offline: bool = False
    max_upload_mb: float = 256
    allowed_hosts: tuple[str, ...] = ()
    keep_jobs: int = DEFAULT_KEEP_JOBS
    attention_slicing: bool = False
    cpu_offload: bool = False
    full_precision: bool = False
    ray_address: Optional[str] = None
    replicas: int = 0
    models_per_replica: int = 2
    replica_threads: int = 0
    max_replicas: int = DEFAULT_MAX_REPLICAS
    stall_s: float = DEFAULT_STALL_S


def create_app(settings: Settings) -> FastAPI:
    """Build the service: job manager, routes, error handlers and the request guard.

    The worker thread starts with the app's lifespan (uvicorn, or `with TestClient(app)`).

    Args:
        settings: See Settings.

    Returns:
        The FastAPI app; `app.state.jobs` is its JobManager.

    Raises:
        ValueError: the requested device is not available, or another backend uses the cache dir.
    """
    from .devices import pick_device
    from .job_store import StorageFull
    from .jobs import BackendStopping, JobManager

    device, dtype = pick_device(settings.device, settings.full_precision)
    options = LoadOptions(device=device, dtype=dtype, allow_downloads=downloads_allowed(settings.offline),
                          attention_slicing=settings.attention_slicing, cpu_offload=settings.cpu_offload)
    executor = None
    if settings.ray_address:
        from .cluster.ray_executor import RayExecutor

        executor = RayExecutor(settings.ray_address, options, settings.replicas, settings.models_per_replica,
                               settings.replica_threads, settings.max_replicas, settings.stall_s)
    try:
        jobs = JobManager(settings.cache_dir or default_cache_dir(), registry(), options, settings.keep_jobs, executor)
    except BaseException:
        if executor is not None:
            executor.close()
        raise

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        jobs.start()
        yield
        await run_in_threadpool(jobs.close)

    # No /docs pages: a browser cannot send the bearer token they would need.
    app = FastAPI(title="Diffusion 3D backend", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.jobs, app.state.settings = jobs, settings
    app.openapi = lambda: openapi_schema(app)  # FastAPI's hook for a schema of one's own

    @app.get("/health", response_model=Health, responses=errors())
    def health() -> dict:
        """Liveness, version, device and how many jobs are queued or running; with `serve --ray`,
        each replica with its node, the models it holds and the job it runs."""
        return {"status": "ok", "version": __version__, "device": jobs.executor.device, "queue_length": jobs.queue_length(),
                "replicas": jobs.replicas()}

    @app.get("/models", response_model=list[ModelInfo], responses=errors())
    def models() -> list[dict]:
        """Every (model, task) pair this backend serves."""
        return [entry.describe() for entry in jobs.entries]

    @app.post("/jobs", status_code=201, response_model=JobRecord, responses=errors(503, 507),
              openapi_extra=JOB_FORM)
    async def submit(request: Request) -> dict:
        """Queue a job: multipart form with `spec` (JSON) and optional files."""
        form = await request.form(max_files=len(UPLOADS), max_fields=len(UPLOADS) + 1)
        try:
            files: dict[str, bytes] = {}
            spec_text = None
            for key, value in form.multi_items():
                if key == "spec":
                    spec_text = await _spec_text(value)
                elif isinstance(value, UploadFile):
                    files[key] = await value.read()
                elif key in UPLOADS:
                    raise InputError(f"{key} must be sent as a file part (with a filename), not as a text field")
                else:
                    raise InputError(f"unknown form field {key!r}; accepted: spec, {', '.join(UPLOADS)}")
        finally:
            await form.close()
        task, model, params = _parse_spec(spec_text)
        return await run_in_threadpool(jobs.submit, task, model, params, files)

    @app.get("/jobs", response_model=list[JobRecord], responses=errors())
    def list_jobs(limit: int = Query(50, ge=1, le=1000)) -> list[dict]:
        """Job records, newest first."""
        return jobs.list(limit)

    @app.get("/jobs/{job_id}", response_model=JobRecord, responses=errors(404))
    def get_job(job_id: str) -> dict:
        """One job's state, progress and error."""
        return _job_or_404(jobs.get(job_id), job_id)

    @app.delete("/jobs/{job_id}", response_model=JobRecord, responses=errors(404))
    def cancel_job(job_id: str) -> dict:
        """Cancel: a queued job ends at once, a running one within one step."""
        return _job_or_404(jobs.cancel(job_id), job_id)

    @app.post("/jobs/{job_id}/resume", status_code=201, response_model=JobRecord, responses=errors(404, 409, 503, 507))
    def resume_job(job_id: str) -> dict:
        """A new job that goes on exactly where a cancelled or interrupted one stopped (its
        checkpoint), to the result it would have had; 409 when it kept no checkpoint."""
        try:
            return jobs.resume(job_id)
        except KeyError:
            raise HTTPException(404, f"no job with id {job_id}") from None
        except LookupError as e:
            raise HTTPException(409, str(e)) from None

    @app.get("/jobs/{job_id}/result", response_class=StreamingResponse,
             responses={200: {"content": {"model/gltf-binary": {}}}, **errors(404, 409)})
    def get_result(job_id: str):
        """The result GLB; 409 until the job has succeeded, or when it made only candidate images."""
        record = _job_or_404(jobs.get(job_id), job_id)
        if record["state"] != "succeeded":
            detail = {
                "failed": f"job {job_id} failed, so it has no result: {record['error']}",
                "cancelled": f"job {job_id} was cancelled, so it has no result",
            }.get(record["state"], f"job {job_id} is {record['state']}; its result is ready once it has succeeded")
            raise HTTPException(409, detail)
        if not record.get("has_result", True):
            raise HTTPException(409, f"job {job_id} made {record.get('candidates') or 0} candidate image(s) and no "
                                     "mesh: send the one you pick to an image-to-3D model (GET /jobs/{id}/candidates/{k})")
        # Opened before answering: a file pruned meanwhile is a 404 here, never a 500 mid-response.
        try:
            handle = jobs.store.result_path(job_id).open("rb")
        except FileNotFoundError:
            raise HTTPException(404, f"the result file of job {job_id} is gone from the cache directory") from None
        size = os.fstat(handle.fileno()).st_size
        return StreamingResponse(_read_chunks(handle), media_type="model/gltf-binary", headers={
            "Content-Length": str(size), "Content-Disposition": f'attachment; filename="{job_id}.glb"'})

    @app.get("/jobs/{job_id}/current", response_class=StreamingResponse,
             responses={200: {"content": {"model/gltf-binary": {}}}, **errors(404, 409, 429, 504)})
    async def get_current_state(job_id: str):
        """Where a long job stands, as a GLB: a running job makes it at its next step (the answer
        waits for that); a cancelled one saved it when it stopped. 409 when there is none."""
        try:
            path = await run_in_threadpool(jobs.current_state, job_id)
        except KeyError:
            raise HTTPException(404, f"no job with id {job_id}") from None
        except LookupError as e:
            raise HTTPException(409, str(e)) from None
        except TimeoutError as e:
            raise HTTPException(504, f"{e}; ask again") from None
        except StateRequestsBusy as e:
            raise HTTPException(429, str(e)) from None
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise HTTPException(404, f"the current state of job {job_id} is gone from the cache directory") from None
        size = os.fstat(handle.fileno()).st_size
        return StreamingResponse(_read_chunks(handle), media_type="model/gltf-binary", headers={
            "Content-Length": str(size), "Content-Disposition": f'attachment; filename="{job_id}-current.glb"'})

    @app.get("/jobs/{job_id}/preview", response_class=Response,
             responses={200: {"content": {"image/png": {}}}, **errors(404)})
    def get_preview(job_id: str):
        """The latest preview image; 404 when the job has none."""
        _job_or_404(jobs.get(job_id), job_id)
        # Read whole, not streamed by path: the worker replaces the file while the job runs, and a
        # FileResponse would announce one file's length and send another's bytes.
        try:
            data = jobs.store.preview_path(job_id).read_bytes()
        except FileNotFoundError:
            raise HTTPException(404, f"job {job_id} has no preview (yet)") from None
        return Response(data, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/jobs/{job_id}/candidates/{index}", response_class=Response,
             responses={200: {"content": {"image/png": {}}}, **errors(404)})
    def get_candidate(job_id: str, index: int):
        """Candidate image `index` of a gallery job (text to image to 3D): the artist picks one and
        sends it to an image-to-3D model; 404 when the job has no such candidate."""
        record = _job_or_404(jobs.get(job_id), job_id)
        if not 0 <= index < int(record.get("candidates") or 0):
            raise HTTPException(404, f"job {job_id} has {record.get('candidates') or 0} candidate images; "
                                     f"there is no number {index}")
        try:
            data = jobs.store.candidate_path(job_id, index).read_bytes()
        except FileNotFoundError:
            raise HTTPException(404, f"candidate {index} of job {job_id} is gone from the cache directory") from None
        return Response(data, media_type="image/png")

    @app.exception_handler(BackendStopping)
    async def stopping(request: Request, exc: BackendStopping) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(StorageFull)  # a full or read-only cache folder: the job was not created
    async def storage_full(request: Request, exc: StorageFull) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=507)

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> JSONResponse:
        # The message may quote what was sent: text that is not UTF-8 is shown escaped.
        return JSONResponse({"detail": str(exc).encode("utf-8", "backslashreplace").decode()}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default is a 422 with a list; the contract is one readable sentence.
        sentences = [f"{' '.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()]
        return JSONResponse({"detail": "bad request: " + "; ".join(sentences)}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no such endpoint: {request.method} {request.url.path} (see /openapi.json)"
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            # Starlette names the methods of the first route whose path matched; HTTP's Allow lists
            # every method the resource takes (GET and DELETE on a job).
            allowed = sorted({method for route in request.app.routes if route.matches(request.scope)[0] != Match.NONE
                              for method in getattr(route, "methods", ())})
            detail = f"{request.method} is not allowed on {request.url.path}; it takes {', '.join(allowed)}"
            headers = {"Allow": ", ".join(allowed)}
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers)

    app.add_middleware(_Guard, settings=settings)
    return app


MAX_SPEC_BYTES = 64 * 1024  # a job description: prompts are capped far below (params.MAX_TEXT_CHARS)


async def _spec_text(value: Union[str, UploadFile]) -> str:
    """The spec field's text, refused when longer than MAX_SPEC_BYTES (sent as a file part, it
    is read no further than that)."""
    if isinstance(value, UploadFile):
        data = await value.read(MAX_SPEC_BYTES + 1)
        if len(data) > MAX_SPEC_BYTES:
            raise InputError(f"spec is larger than {MAX_SPEC_BYTES // 1024} KB; it describes a job, "
                             "its files go in their own form fields")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"spec is not UTF-8 text (byte {e.start})") from None
    if len(value) > MAX_SPEC_BYTES:
        raise InputError(f"spec is larger than {MAX_SPEC_BYTES // 1024} KB; it describes a job, "
                         "its files go in their own form fields")
    return value


def _parse_spec(text: Optional[str]) -> tuple[str, Optional[str], dict[str, Any]]:
    if text is None:
        raise InputError('the form has no "spec" field: POST /jobs takes multipart/form-data with '
                         'spec={"task": "text_to_3d", "params": {...}} and optional files')
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"spec is not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise InputError("spec is nested too deeply to be a job description") from None
    if not isinstance(spec, dict):
        raise InputError('spec must be a JSON object: {"task": ..., "model": ..., "params": {...}}')
    unknown = sorted(set(spec) - {"task", "model", "params"})
    if unknown:
        raise InputError(f"unknown key(s) {', '.join(unknown)} in spec; accepted: task, model, params")
    if not isinstance(spec.get("task"), str):
        raise InputError(f'spec needs "task": one of {", ".join(TASKS)}')
    if spec.get("model") is not None and not isinstance(spec["model"], str):
        raise InputError('spec "model" must be a model name (a string) or left out')
    params = {} if spec.get("params") is None else spec["params"]
    if not isinstance(params, dict):
        raise InputError('spec "params" must be a JSON object, e.g. {"prompt": "a chair"}, or left out')
    return spec["task"], spec.get("model"), params


def _read_chunks(handle, size: int = 1 << 20):
    """A file's bytes in chunks, closing it at the end (StreamingResponse runs this in a thread)."""
    with handle:
        while chunk := handle.read(size):
            yield chunk


def _job_or_404(record: Optional[dict], job_id: str) -> dict:
    if record is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return record


class _Guard:
    """ASGI wrapper run before any route: Host header (DNS rebinding), bearer token, body size.

    Pure ASGI rather than BaseHTTPMiddleware: it costs nothing per request and can count
    a streamed body without buffering it.
    """

    def __init__(self, app, settings: Settings):
        self.app = app
        self.token = settings.token.encode()
        self.port = str(settings.port)
        self.limit = int(settings.max_upload_mb * 1024 * 1024)
        names = {*LOOPBACK_NAMES, *(h.lower() for h in settings.allowed_hosts)}
        if settings.host not in ("0.0.0.0", "::", ""):
            names.add(settings.host.lower())
        self.names = names

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":  # none is served: refused rather than let past the checks below
            return await send({"type": "websocket.close", "code": 1008})
        if scope["type"] != "http":  # lifespan
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        host = headers.get(b"host", b"").decode("latin-1")
        if not host:
            return await _reply(send, 400, "the request has no Host header")
        if not self._host_ok(host):
            return await _reply(send, 403, (
                f"Host {host!r} is not a name of this backend (accepted: {', '.join(sorted(self.names))} "
                f"on port {self.port}); start it with --allowed-host NAME to accept another"))
        auth = headers.get(b"authorization", b"")
        if not auth.startswith(b"Bearer "):
            return await _reply(send, 401, "missing 'Authorization: Bearer <token>' header", auth_hint=True)
        if not hmac.compare_digest(auth[7:].strip(), self.token):
            return await _reply(send, 401, "wrong token: use the token the backend was started with", auth_hint=True)
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await _reply(send, 413, self._too_large())
        return await self.app(scope, self._counting(receive), send)

    def _host_ok(self, host: str) -> bool:
        host = host.lower()
        if host.startswith("["):  # [::1]:8765
            name, _, rest = host[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ""
        else:
            name, _, port = host.partition(":")
        if f"{name}:{port}" in self.names:  # an --allowed-host given with its own port (a proxy)
            return True
        return name.rstrip(".") in self.names and port in ("", self.port)

    def _too_large(self) -> str:
        return (f"the upload is larger than this backend's limit of {self.limit / 2**20:g} MB; "
                "send a smaller mesh or image, or start it with --max-upload-mb N")

    def _counting(self, receive):
        # A body without Content-Length (chunked) is counted as it arrives.
        seen = 0

        async def wrapped():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise HTTPException(413, self._too_large())
            return message

        return wrapped


async def _reply(send, status: int, detail: str, auth_hint: bool = False) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if auth_hint:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(settings: Settings, log_level: str = "info", stop_when_stdin_closes: bool = False) -> None:
    """Run the service with uvicorn until interrupted.

    Args:
        settings: See Settings.
        log_level: uvicorn's log level.
        stop_when_stdin_closes: Stop (gracefully) at the end of standard input. The add-on keeps
            its end of the pipe open while Blender lives; when Blender is gone, closed, crashed
            or killed, the backend stops too instead of holding the GPU and the cache directory.
    """
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    app = create_app(settings)
    if settings.host in ("0.0.0.0", "::") and not settings.allowed_hosts:
        log.warning("listening on all interfaces, but only loopback names pass the Host check: "
                    "add --allowed-host with the name clients use for this machine")
    # The add-on polls job state several times a second: an access log would drown the rest.
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                                           access_log=False))
    if stop_when_stdin_closes:
        threading.Thread(target=_stop_at_end_of_input, args=(server,), name="stdin-watch", daemon=True).start()
    server.run()


def _stop_at_end_of_input(server) -> None:
    try:
        while sys.stdin.buffer.read(4096):
            pass
    except (AttributeError, OSError, ValueError):  # no usable stdin counts as closed
        pass
    log.info("standard input closed (the program that started this backend is gone): stopping")
    server.should_exit = True
