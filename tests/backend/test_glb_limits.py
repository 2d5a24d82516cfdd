"""The GLB reader against hostile files: every offset checked, every expansion capped, each
refusal a GLBError that names what was wrong."""

import io
import json
import struct

import numpy as np
import pytest
from PIL import Image

from formats.glb import GLBError, ReadLimits, read_glb, write_glb

TRIANGLE = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)


def pack(doc: dict, binary: bytes = b"") -> bytes:
    """A GLB file of a JSON document and a BIN chunk, as they are (no checks)."""
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<II", len(text), 0x4E4F534A) + text + struct.pack("<II", len(binary), 0x004E4942) + binary
    return struct.pack("<III", 0x46546C67, 2, 12 + len(body)) + body


def triangle_doc(nodes=None, accessor=None, view=None) -> tuple[dict, bytes]:
    """One triangle, POSITION only, with parts of the document replaced."""
    binary = TRIANGLE.tobytes()
    doc = {"asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}],
           "nodes": nodes or [{"name": "tri", "mesh": 0}],
           "meshes": [{"primitives": [{"attributes": {"POSITION": 0}}]}],
           "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", **(accessor or {})}],
           "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": len(binary), **(view or {})}],
           "buffers": [{"byteLength": len(binary)}]}
    return doc, binary


def test_an_interleaved_accessor_past_its_view_is_refused_not_read():
    # Was a segfault (a strided view past the buffer) or heap bytes read into the vertices.
    doc, binary = triangle_doc(accessor={"count": 1000}, view={"byteStride": 252})
    with pytest.raises(GLBError, match="runs past the end of its bufferView"):
        read_glb(pack(doc, binary))
    doc, binary = triangle_doc(accessor={"count": 3}, view={"byteStride": 16})  # 2*16+12 = 44 > 36 bytes
    with pytest.raises(GLBError, match="runs past the end"):
        read_glb(pack(doc, binary))


def test_interleaved_and_sparse_accessors_read_their_values():
    # Positions 16 bytes apart (4 of padding each), then a sparse section moving vertex 2.
    padded = b"".join(v.tobytes() + b"\xee" * 4 for v in TRIANGLE)
    moved = np.array([[5, 6, 7]], np.float32)
    binary = padded + np.array([2], np.uint16).tobytes() + b"\0\0" + moved.tobytes()
    doc, _ = triangle_doc(view={"byteStride": 16, "byteLength": len(padded)})
    doc["bufferViews"] += [{"buffer": 0, "byteOffset": len(padded), "byteLength": 2},
                           {"buffer": 0, "byteOffset": len(padded) + 4, "byteLength": 12}]
    doc["accessors"][0]["sparse"] = {"count": 1, "indices": {"bufferView": 1, "componentType": 5123},
                                     "values": {"bufferView": 2}}
    doc["buffers"][0]["byteLength"] = len(binary)
    (part,) = read_glb(pack(doc, binary)).parts
    np.testing.assert_array_equal(part.vertices, [TRIANGLE[0], TRIANGLE[1], moved[0]])
    doc["accessors"][0]["sparse"]["count"] = 4  # more changes than the accessor has elements
    with pytest.raises(GLBError, match="sparse count"):
        read_glb(pack(doc, binary))


@pytest.mark.parametrize("change, message", [
    ({"accessor": {"count": -1}}, "count must be a whole number"),
    ({"accessor": {"count": 3.5}}, "count must be a whole number"),
    ({"accessor": {"componentType": 9999}}, "unknown componentType"),
    ({"accessor": {"type": "VEC2"}}, "POSITION must be VEC3"),
    ({"accessor": {"byteOffset": 40}}, "runs past the end"),
    ({"accessor": {"bufferView": 7}}, "bufferView index must be a whole number from 0 to 0"),
    ({"view": {"byteLength": 4000}}, "runs past the end of its buffer"),
    ({"view": {"byteStride": 4}}, "smaller than one element"),
    ({"view": {"byteStride": 1 << 40}}, "byteStride must be a whole number from 1 to 252"),
    ({"nodes": [{"mesh": 0, "translation": [0, "x", 0]}]}, "translation must be a list of 3 finite numbers"),
    ({"nodes": [{"mesh": 0, "matrix": [1] * 15}]}, "matrix must be a list of 16"),
    ({"nodes": [{"mesh": 0, "scale": [1e300, 1e300, 1e300], "rotation": [1e300, 0, 0, 1]}]}, "too large to use"),
    ({"nodes": [{"mesh": 3}]}, "node 0 mesh must be a whole number from 0 to 0"),
])
def test_each_bad_field_is_named(change, message):
    doc, binary = triangle_doc(**change)
    with pytest.raises(GLBError, match=message):
        read_glb(pack(doc, binary))


def test_node_cycles_and_shared_children_are_refused_at_once():
    # A cycle reachable from the scene (was a 100,000-visit expansion: 5.6 GB for a 47 KB file).
    doc, binary = triangle_doc(nodes=[{"mesh": 0, "children": [1]}, {"mesh": 0, "children": [0]}])
    with pytest.raises(GLBError, match="cycle through node 0"):
        read_glb(pack(doc, binary))
    # A node that is its own child.
    doc, binary = triangle_doc(nodes=[{"mesh": 0, "children": [0]}])
    with pytest.raises(GLBError, match="more than one parent"):
        read_glb(pack(doc, binary))
    # A chain of nodes each listing the next twice: 2^40 paths from 41 nodes.
    chain = [{"mesh": 0, "children": [i + 1, i + 1]} for i in range(40)] + [{"mesh": 0}]
    doc, binary = triangle_doc(nodes=chain)
    with pytest.raises(GLBError, match="more than one parent"):
        read_glb(pack(doc, binary))


def test_instancing_past_the_caps_is_refused_with_the_cap_named():
    nodes = [{"children": list(range(1, 1001))}] + [{"mesh": 0, "translation": [i, 0, 0]} for i in range(1000)]
    doc, binary = triangle_doc(nodes=nodes)
    data = pack(doc, binary)
    assert len(read_glb(data).parts) == 1000  # within the default limits: read
    with pytest.raises(GLBError, match=r"more than 2,000 vertices \(at least 2,001, instances counted\)"):
        read_glb(data, limits=ReadLimits(max_vertices=2000))
    with pytest.raises(GLBError, match="more than 100 triangles"):
        read_glb(data, limits=ReadLimits(max_triangles=100))
    with pytest.raises(GLBError, match="nodes; the limit is 10"):
        read_glb(data, limits=ReadLimits(max_nodes=10))
    # The decoded bytes a file may expand to grow with its size: these instances need ~100 KB.
    with pytest.raises(GLBError, match="more than this file may expand to"):
        read_glb(data, limits=ReadLimits(bytes_per_file_byte=1, min_budget_bytes=50_000))


def test_a_count_without_data_cannot_allocate_past_the_budget():
    doc, binary = triangle_doc()
    del doc["accessors"][0]["bufferView"]
    doc["accessors"][0]["count"] = 2**40  # all zeros, 13 TB of them
    with pytest.raises(GLBError, match="would take"):
        read_glb(pack(doc, binary))


def test_images_are_capped_by_count_and_by_the_pixels_their_headers_claim():
    png = io.BytesIO()
    Image.new("RGB", (64, 32)).save(png, format="PNG")
    png = png.getvalue()
    huge = png[:16] + struct.pack(">II", 100_000, 100_000) + png[24:]  # a header claiming 10 gigapixels
    for blob, fine in ((png, True), (huge, False)):
        doc, binary = triangle_doc()
        doc["bufferViews"].append({"buffer": 0, "byteOffset": len(binary), "byteLength": len(blob)})
        doc["images"] = [{"bufferView": 1, "mimeType": "image/png"}]
        doc["buffers"][0]["byteLength"] = len(binary + blob)
        if fine:
            assert read_glb(pack(doc, binary + blob)).images[0].data == blob
            with pytest.raises(GLBError, match="1 images; the limit is 0"):
                read_glb(pack(doc, binary + blob), limits=ReadLimits(max_images=0))
        else:
            with pytest.raises(GLBError, match="decode to more than"):
                read_glb(pack(doc, binary + blob))


def test_a_chunk_longer_than_the_file_is_refused():
    data = write_glb(TRIANGLE, np.array([[0, 1, 2]]))
    lying = data[:12] + struct.pack("<I", 1 << 30) + data[16:]
    with pytest.raises(GLBError, match="cut short"):
        read_glb(lying)
