"""The bytes of a GLB, read as hostile: chunks, buffers, buffer views and accessors.

Every offset, length, stride, count and index is checked against the bytes that exist before
any array is made, and every array is counted against a budget that grows with the file's
size, so no file can make the reader read outside its buffers or allocate without bound.
Arrays are only ever copied out of a bounds-checked slice: no strided view of raw memory.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

GLB_MAGIC = 0x46546C67  # b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

COMPONENT_DTYPES = {
    5120: np.dtype("<i1"),
    5121: np.dtype("<u1"),
    5122: np.dtype("<i2"),
    5123: np.dtype("<u2"),
    5125: np.dtype("<u4"),
    5126: np.dtype("<f4"),
}
TYPE_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
_SPARSE_INDEX_TYPES = (5121, 5123, 5125)  # glTF: sparse indices are unsigned


class GLBError(ValueError):
    """The file is not a GLB this reader understands; the message says what is wrong."""


@dataclass(frozen=True)
class ReadLimits:
    """Hard caps on what one GLB may expand to; each refusal names the cap and the value.

    Attributes:
        max_vertices: Vertices of all parts together, every instance of a mesh counted.
        max_triangles: Triangles of all parts together, likewise.
        max_nodes: Nodes in the file.
        max_images: Images in the file.
        max_image_pixels: Pixels of all images together once decoded (a PNG of a few KB can
            decode to gigabytes).
        bytes_per_file_byte, min_budget_bytes: The arrays decoded from a file may take at most
            max(min_budget_bytes, bytes_per_file_byte x its size). A plain mesh needs under 8x
            (uint16 indices become int64); only heavy instancing or a hostile file needs more.
    """

    max_vertices: int = 20_000_000
    max_triangles: int = 20_000_000
    max_nodes: int = 100_000
    max_images: int = 256
    max_image_pixels: int = 8 * 4096 * 4096
    bytes_per_file_byte: int = 32
    min_budget_bytes: int = 1 << 20


DEFAULT_LIMITS = ReadLimits()


class Budget:
    """Counts what a read allocates against its ReadLimits, before it allocates it."""

    def __init__(self, limits: ReadLimits, file_size: int):
        self.limits = limits
        self.bytes_left = max(limits.min_budget_bytes, limits.bytes_per_file_byte * file_size)
        self.vertices = self.triangles = self.pixels = 0

    def take(self, nbytes: int, what: str) -> None:
        """Reserve `nbytes` for `what`, or refuse the file."""
        if nbytes > self.bytes_left:
            raise GLBError(
                f"{what} would take {nbytes / 2**20:.1f} MB, more than this file may expand to "
                f"({self.limits.bytes_per_file_byte}x its size, at least {self.limits.min_budget_bytes >> 20} MB): "
                "the file is damaged, or instances far more geometry than it stores (realise the instances first)"
            )
        self.bytes_left -= nbytes

    def count(self, vertices: int, triangles: int) -> None:
        """Add one placed mesh's vertices and triangles to the totals, or refuse the file."""
        self.vertices += vertices
        self.triangles += triangles
        if self.vertices > self.limits.max_vertices:
            raise GLBError(f"the file has more than {self.limits.max_vertices:,} vertices (at least "
                           f"{self.vertices:,}, instances counted); decimate or split it")
        if self.triangles > self.limits.max_triangles:
            raise GLBError(f"the file has more than {self.limits.max_triangles:,} triangles (at least "
                           f"{self.triangles:,}, instances counted); decimate or split it")


# ---------------------------------------------------------------------------- checked fields


def whole(value: Any, what: str, low: int = 0, high: Optional[int] = None) -> int:
    """`value` as an int in [low, high], else GLBError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise GLBError(f"{what} must be a whole number {bounds}, got {_short(value)}")
    return value


def numbers(value: Any, length: int, what: str) -> list[float]:
    """`value` as `length` finite numbers, else GLBError."""
    ok = isinstance(value, list) and len(value) == length and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)
    if not ok:
        raise GLBError(f"{what} must be a list of {length} finite numbers, got {_short(value)}")
    return [float(v) for v in value]


def item(doc: dict, key: str, index: Any, what: str) -> dict:
    """`doc[key][index]` as a JSON object, with the index checked."""
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        raise GLBError(f"{what} {_short(index)} is referred to, but the file has no {key}")
    found = items[whole(index, f"{what} index", 0, len(items) - 1)]
    if not isinstance(found, dict):
        raise GLBError(f"{key}[{index}] is not a JSON object")
    return found


def listed(doc: dict, key: str) -> list:
    """`doc[key]` as a list ([] when absent)."""
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise GLBError(f"{key} must be a list, got {_short(value)}")
    return value


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------------- chunks and buffers


def split_chunks(data: bytes) -> tuple[dict, memoryview]:
    """The JSON document and the BIN chunk (a view, not a copy) of a GLB file."""
    if len(data) < 20:
        raise GLBError("file too short to be a GLB")
    magic, version, length = struct.unpack_from("<III", data, 0)
    if magic != GLB_MAGIC:
        raise GLBError("not a GLB file (bad magic); only binary glTF is supported")
    if version != 2:
        raise GLBError(f"glTF version {version} is not supported (need 2)")
    length = min(length, len(data))
    offset, doc, binary = 12, None, memoryview(b"")
    whole_file = memoryview(data)
    while offset + 8 <= length:
        chunk_len, chunk_type = struct.unpack_from("<II", data, offset)
        if chunk_len > length - offset - 8:
            raise GLBError(f"the file is cut short: a chunk claims {chunk_len} bytes, {length - offset - 8} remain")
        body = whole_file[offset + 8 : offset + 8 + chunk_len]
        if chunk_type == CHUNK_JSON and doc is None:
            try:
                doc = json.loads(bytes(body).decode("utf-8"))
            except RecursionError:
                raise GLBError("the JSON chunk is nested too deeply to be a glTF document") from None
            except ValueError as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                raise GLBError(f"the JSON chunk is not valid JSON text ({str(e)[:80]})") from None
        elif chunk_type == CHUNK_BIN and not len(binary):
            binary = body
        offset += 8 + chunk_len
    if doc is None:
        raise GLBError("GLB has no JSON chunk")
    if not isinstance(doc, dict):
        raise GLBError("the GLB's JSON chunk is not a glTF document (a JSON object)")
    return doc, binary


class Buffers:
    """The file's buffers, decoded once each (a data URI), and views and accessors into them."""

    def __init__(self, doc: dict, binary: memoryview, budget: Budget):
        self.doc, self.binary, self.budget = doc, binary, budget
        self._decoded: dict[int, memoryview] = {}

    def buffer(self, index: Any) -> memoryview:
        spec = item(self.doc, "buffers", index, "buffer")
        if index in self._decoded:
            return self._decoded[index]
        uri = spec.get("uri")
        if uri is None:  # the GLB's own BIN chunk
            data = self.binary
        elif not isinstance(uri, str) or not uri.startswith("data:"):
            raise GLBError(f"the GLB refers to an external file {_short(uri)}; embed all data in the .glb")
        else:  # some exporters embed a buffer as a base64 data URI
            try:
                data = memoryview(base64.b64decode(uri.partition(",")[2], validate=True))
            except (binascii.Error, ValueError):
                raise GLBError(f"buffer {index} has a data URI that is not base64") from None
        declared = whole(spec.get("byteLength"), f"buffer {index} byteLength")
        if declared > len(data):
            raise GLBError(f"buffer {index} declares {declared} bytes but holds {len(data)}")
        self._decoded[index] = data[:declared]
        return self._decoded[index]

    def view(self, index: Any) -> tuple[memoryview, Optional[int]]:
        """Buffer view `index` as (bytes, byteStride or None), checked against its buffer."""
        spec = item(self.doc, "bufferViews", index, "bufferView")
        data = self.buffer(spec.get("buffer"))
        start = whole(spec.get("byteOffset", 0), f"bufferView {index} byteOffset")
        length = whole(spec.get("byteLength"), f"bufferView {index} byteLength")  # 0: some writers, for empty arrays
        if start + length > len(data):
            raise GLBError(f"bufferView {index} runs past the end of its buffer "
                           f"(bytes {start}..{start + length} of {len(data)})")
        stride = spec.get("byteStride")
        if stride is not None:
            stride = whole(stride, f"bufferView {index} byteStride", 1, 252)  # glTF: at most 252
        return data[start : start + length], stride

    def image_bytes(self, index: Any) -> bytes:
        data, _ = self.view(index)
        self.budget.take(len(data), "an image")
        return bytes(data)

    def accessor(self, index: Any) -> np.ndarray:
        """Accessor `index` as a (count, width) array of its component type (normalized → float32)."""
        acc = item(self.doc, "accessors", index, "accessor")
        dtype = COMPONENT_DTYPES.get(acc.get("componentType"))
        width = TYPE_WIDTHS.get(acc.get("type"))
        if dtype is None or width is None:
            raise GLBError(f"accessor {index} has an unknown componentType or type "
                           f"({_short(acc.get('componentType'))}, {_short(acc.get('type'))})")
        count = whole(acc.get("count"), f"accessor {index} count")
        self.budget.take(count * width * dtype.itemsize, f"accessor {index}")
        if "bufferView" in acc:
            raw, stride = self.view(acc["bufferView"])
            out = _elements(raw, whole(acc.get("byteOffset", 0), f"accessor {index} byteOffset"), count, dtype, width,
                            stride, f"accessor {index}")
        else:  # all zeros until a sparse section says otherwise
            out = np.zeros((count, width), dtype)
        if "sparse" in acc:
            out = self._apply_sparse(out, acc["sparse"], index, dtype, width)
        if acc.get("normalized") is True and dtype.kind in "iu":
            self.budget.take(count * width * 4, f"accessor {index}")
            out = out.astype(np.float32) / np.float32(np.iinfo(dtype).max)
            if dtype.kind == "i":
                out = np.maximum(out, -1.0)
        return out

    def _apply_sparse(self, dense: np.ndarray, sparse: Any, index: Any, dtype: np.dtype, width: int) -> np.ndarray:
        """The accessor with its sparse section's values written over it (glTF's sparse storage)."""
        what = f"accessor {index} sparse"
        if not isinstance(sparse, dict) or not isinstance(sparse.get("indices"), dict) or not isinstance(
                sparse.get("values"), dict):
            raise GLBError(f"{what} must be an object with count, indices and values")
        count = whole(sparse.get("count"), f"{what} count", 1, len(dense))
        indices, values = sparse["indices"], sparse["values"]
        index_type = indices.get("componentType")
        if index_type not in _SPARSE_INDEX_TYPES:
            raise GLBError(f"{what} indices must be unsigned bytes, shorts or ints, got {_short(index_type)}")
        self.budget.take(count * (8 + width * dtype.itemsize) + dense.nbytes, what)
        raw, _ = self.view(indices.get("bufferView"))
        rows = _elements(raw, whole(indices.get("byteOffset", 0), f"{what} indices byteOffset"), count,
                         COMPONENT_DTYPES[index_type], 1, None, f"{what} indices").reshape(-1).astype(np.int64)
        if rows.max() >= len(dense):
            raise GLBError(f"{what} points at element {int(rows.max())} of {len(dense)}")
        raw, _ = self.view(values.get("bufferView"))
        new = _elements(raw, whole(values.get("byteOffset", 0), f"{what} values byteOffset"), count, dtype, width,
                        None, f"{what} values")
        out = np.array(dense)  # writable: a view of the file is not
        out[rows] = new
        return out


def _elements(raw: memoryview, offset: int, count: int, dtype: np.dtype, width: int, stride: Optional[int],
              what: str) -> np.ndarray:
    """(count, width) elements of `dtype` from `raw`, `stride` bytes apart, after a bounds check."""
    size = dtype.itemsize * width
    stride = stride or size
    if stride < size:
        raise GLBError(f"{what}: its byteStride {stride} is smaller than one element ({size} bytes)")
    if count == 0:
        return np.zeros((0, width), dtype)
    end = offset + (count - 1) * stride + size
    if end > len(raw):
        raise GLBError(f"{what} runs past the end of its bufferView (needs bytes {offset}..{end}, has {len(raw)})")
    if stride == size:
        return np.frombuffer(raw, dtype, count * width, offset).reshape(count, width)
    # Interleaved: the rows are copied into a padded block of whole strides, then cut to the element.
    block = np.zeros(count * stride, np.uint8)
    block[: end - offset] = np.frombuffer(raw, np.uint8, end - offset, offset)
    return block.reshape(count, stride)[:, :size].copy().view(dtype).reshape(count, width)
