"""HTTP client for the backend (docs/http-api.md), every call with a timeout.

Built on the standard library's http.client: the add-on runs inside Blender's Python, and a
Linux distribution's Blender may come without `requests`. Every failure becomes a
`BackendError` whose message an artist can act on.
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
import struct
from typing import Any, NamedTuple, Optional
from urllib.parse import urlencode, urlsplit


# What the add-on reads of a reply at most: a remote backend is another machine, and a broken or
# hostile one must not run Blender out of memory. Results carry meshes and 4096² textures.
MAX_JSON_BYTES = 64 * 2**20
MAX_PREVIEW_BYTES = 16 * 2**20
MAX_PREVIEW_PIXELS = 4096 * 4096
MAX_RESULT_BYTES = 2 * 2**30


class BackendError(RuntimeError):
    """A readable failure talking to the backend.

    Attributes:
        status: HTTP status, or None when no answer came back (not running, timeout).
    """

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


class Reply(NamedTuple):
    status: int
    reason: str
    content: bytes

    def json(self) -> Any:
        """The body as JSON; ValueError for anything else (also JSON nested past Python's limits)."""
        try:
            return json.loads(self.content)
        except RecursionError:
            raise ValueError("the answer is nested too deeply to be JSON the API sends") from None


def multipart(fields: dict[str, tuple[Optional[str], bytes | str, str]]) -> tuple[bytes, str]:
    """Encode form fields `name -> (filename or None, data, content type)` as multipart/form-data.

    Returns the body and its Content-Type header (with the boundary)."""
    boundary = secrets.token_hex(16)
    chunks = []
    for name, (filename, data, kind) in fields.items():
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n"
        chunks += [head.encode(), data.encode() if isinstance(data, str) else data, b"\r\n"]
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


class BackendClient:
    """One backend at `url` (http or https, optionally under a path) with its bearer token.

    Each call opens its own connection, so one client may serve several threads."""

    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BackendError(f"backend URL {url!r} is not an http:// or https:// address "
                               f"(e.g. http://127.0.0.1:8000): fix it in the add-on preferences")
        self._https = parts.scheme == "https"
        self._host, self._port, self._base = parts.hostname, parts.port, parts.path

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, timeout: Optional[float] = None, body: bytes = b"",
                 content_type: str = "", params: Optional[dict] = None, limit: Optional[int] = None) -> Reply:
        timeout = timeout or self.timeout
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if content_type:
            headers["Content-Type"] = content_type
        target = self._base + path + (f"?{urlencode(params)}" if params else "")
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = kind(self._host, self._port, timeout=timeout)
        try:
            connection.request(method, target, body=body or None, headers=headers)
            response = connection.getresponse()
            reply = Reply(response.status, response.reason,
                          _read_at_most(response, limit or MAX_JSON_BYTES, f"{self.url}{path}"))
        except (TimeoutError, socket.timeout) as exc:
            raise BackendError(
                f"backend at {self.url} did not answer within {timeout:.0f} s "
                f"(raise the request timeout in the preferences if it is busy)"
            ) from exc
        except (ConnectionRefusedError, socket.gaierror) as exc:
            raise BackendError(
                f"backend not running at {self.url}: start it from the sidebar (Diffusion 3D › Backend) "
                f"or check the add-on preferences"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise BackendError(f"request to {self.url}{path} failed: {exc}") from exc
        finally:
            connection.close()
        if reply.status >= 400:
            raise BackendError(self._describe_error(reply), reply.status)
        return reply

    def _describe_error(self, reply: Reply) -> str:
        detail = ""
        try:
            body = reply.json()
            detail = body.get("detail", "") if isinstance(body, dict) else ""
            if isinstance(detail, list):  # FastAPI validation errors
                detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        except ValueError:
            detail = reply.content[:300].decode("utf-8", "replace").strip()
        status = reply.status
        if status == 401 or status == 403:
            return (
                f"backend at {self.url} refused the token ({status}): check the token in the add-on "
                f"preferences{': ' + str(detail) if detail else ''}"
            )
        if status >= 500:
            return f"backend error {status} (a bug in the backend; see its log): {detail or reply.reason}"
        return str(detail) or f"backend answered {status} {reply.reason}"

    def _json(self, method: str, path: str, **kwargs) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"backend at {self.url} sent an unreadable answer for {path}") from exc

    # ------------------------------------------------------------------ API
    def health(self, timeout: Optional[float] = None) -> dict:
        return self._json("GET", "/health", timeout=timeout)

    def models(self) -> list[dict]:
        return self._json("GET", "/models")

    def submit(
        self,
        task: str,
        params: dict[str, Any],
        model: str = "",
        files: Optional[dict[str, bytes]] = None,
        timeout: Optional[float] = None,
    ) -> dict:
        """POST /jobs. `files` maps form names (mesh, image, face_mask, mesh_b) to bytes."""
        spec = {"task": task, "params": params}
        if model:
            spec["model"] = model
        fields = {"spec": (None, json.dumps(spec), "application/json")}
        for name, blob in (files or {}).items():
            filename, kind = f"{name}.bin", "application/octet-stream"
            if name in ("mesh", "mesh_b"):
                filename, kind = f"{name}.glb", "model/gltf-binary"
            elif name == "image":
                jpeg = blob[:3] == b"\xff\xd8\xff"
                filename, kind = ("image.jpg", "image/jpeg") if jpeg else ("image.png", "image/png")
            fields[name] = (filename, blob, kind)
        body, content_type = multipart(fields)
        return self._json("POST", "/jobs", body=body, content_type=content_type, timeout=timeout)

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{job_id}")

    def jobs(self, limit: int = 50) -> list[dict]:
        return self._json("GET", "/jobs", params={"limit": limit})

    def result(self, job_id: str, timeout: Optional[float] = None) -> bytes:
        return self._request("GET", f"/jobs/{job_id}/result", timeout=timeout, limit=MAX_RESULT_BYTES).content

    def current_state(self, job_id: str, timeout: Optional[float] = None) -> bytes:
        """GLB of where a long job stands (a running one makes it at its next step: allow time)."""
        return self._request("GET", f"/jobs/{job_id}/current", timeout=timeout, limit=MAX_RESULT_BYTES).content

    def preview(self, job_id: str) -> Optional[bytes]:
        """The job's latest preview PNG, or None when it has none.

        Raises:
            BackendError: also for an answer that is no PNG, or one whose header claims more than
                MAX_PREVIEW_PIXELS (Blender would decode it whole).
        """
        try:
            return self._png(f"/jobs/{job_id}/preview", "a preview")
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    def candidate(self, job_id: str, index: int) -> bytes:
        """Candidate image `index` of a gallery job (text to image to 3D), checked as previews are."""
        return self._png(f"/jobs/{job_id}/candidates/{int(index)}", "a candidate image")

    def _png(self, path: str, what: str) -> bytes:
        data = self._request("GET", path, limit=MAX_PREVIEW_BYTES).content
        if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
            raise BackendError(f"backend at {self.url} sent {what} that is not a PNG")
        width, height = struct.unpack_from(">II", data, 16)
        if width * height > MAX_PREVIEW_PIXELS:
            raise BackendError(f"backend at {self.url} sent {what} of {width}x{height} pixels; "
                               f"images are at most {MAX_PREVIEW_PIXELS:,} pixels")
        return data

    def cancel(self, job_id: str) -> dict:
        return self._json("DELETE", f"/jobs/{job_id}")

    def resume(self, job_id: str) -> dict:
        """POST /jobs/{id}/resume: a new job going on exactly where a stopped one stood."""
        return self._json("POST", f"/jobs/{job_id}/resume")


def _read_at_most(response: http.client.HTTPResponse, limit: int, what: str) -> bytes:
    """The reply's body, refused once it passes `limit` bytes (announced or as it arrives)."""
    announced = response.getheader("Content-Length", "")
    if announced.isdigit() and int(announced) > limit:
        raise BackendError(f"{what} answered {int(announced) / 2**20:,.0f} MB, more than the "
                           f"{limit / 2**20:,.0f} MB the add-on reads: is that a Diffusion 3D backend?")
    chunks, size = [], 0
    while chunk := response.read(min(1 << 20, limit + 1 - size)):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise BackendError(f"{what} answered more than the {limit / 2**20:,.0f} MB the add-on reads: "
                               "is that a Diffusion 3D backend?")
    return b"".join(chunks)
