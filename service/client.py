"""HTTP client for the backend (docs/http-api.md): requests only, every call with a timeout.

Every failure becomes a `BackendError` whose message an artist can act on.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import requests


class BackendError(RuntimeError):
    """A readable failure talking to the backend.

    Attributes:
        status: HTTP status, or None when no answer came back (not running, timeout).
    """

    def __init__(self, message: str, status: Optional[int] = None):
        super().__init__(message)
        self.status = status


class BackendClient:
    """One backend at `url` with its bearer token."""

    def __init__(self, url: str, token: str = "", timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session = requests.Session()
        self._session.trust_env = False  # a system proxy must never see loopback traffic or the token

    # ------------------------------------------------------------------ plumbing
    def _request(self, method: str, path: str, timeout: Optional[float] = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            response = self._session.request(
                method, self.url + path, headers=headers, timeout=timeout or self.timeout, **kwargs
            )
        except requests.ConnectionError as exc:
            raise BackendError(
                f"backend not running at {self.url}: start it from the sidebar (Diffusion 3D › Backend) "
                f"or check the add-on preferences"
            ) from exc
        except requests.Timeout as exc:
            raise BackendError(
                f"backend at {self.url} did not answer within {timeout or self.timeout:.0f} s "
                f"(raise the request timeout in the preferences if it is busy)"
            ) from exc
        except requests.RequestException as exc:
            raise BackendError(f"request to {self.url}{path} failed: {exc}") from exc
        if response.status_code >= 400:
            raise BackendError(self._describe_error(response), response.status_code)
        return response

    def _describe_error(self, response: requests.Response) -> str:
        detail = ""
        try:
            body = response.json()
            detail = body.get("detail", "") if isinstance(body, dict) else ""
            if isinstance(detail, list):  # FastAPI validation errors
                detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        except ValueError:
            detail = response.text[:300].strip()
        status = response.status_code
        if status == 401 or status == 403:
            return (
                f"backend at {self.url} refused the token ({status}): check the token in the add-on "
                f"preferences{': ' + str(detail) if detail else ''}"
            )
        if status >= 500:
            return f"backend error {status} (a bug in the backend; see its log): {detail or response.reason}"
        return str(detail) or f"backend answered {status} {response.reason}"

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
        multipart = {"spec": (None, json.dumps(spec), "application/json")}
        for name, blob in (files or {}).items():
            filename, kind = f"{name}.bin", "application/octet-stream"
            if name in ("mesh", "mesh_b"):
                filename, kind = f"{name}.glb", "model/gltf-binary"
            elif name == "image":
                jpeg = blob[:3] == b"\xff\xd8\xff"
                filename, kind = ("image.jpg", "image/jpeg") if jpeg else ("image.png", "image/png")
            multipart[name] = (filename, blob, kind)
        return self._json("POST", "/jobs", files=multipart, timeout=timeout)

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{job_id}")

    def jobs(self, limit: int = 50) -> list[dict]:
        return self._json("GET", "/jobs", params={"limit": limit})

    def result(self, job_id: str, timeout: Optional[float] = None) -> bytes:
        return self._request("GET", f"/jobs/{job_id}/result", timeout=timeout).content

    def preview(self, job_id: str) -> Optional[bytes]:
        try:
            return self._request("GET", f"/jobs/{job_id}/preview").content
        except BackendError as exc:
            if exc.status == 404:
                return None
            raise

    def cancel(self, job_id: str) -> dict:
        return self._json("DELETE", f"/jobs/{job_id}")
