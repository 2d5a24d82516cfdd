"""Unwrapping a dense mesh without UVs: in pieces or whole, and with quads kept whole.

A bumpy torus of quads (each sent as two triangles, as the add-on does) is unwrapped three
times, side by side: as one piece the way xatlas alone does it, in pieces of at most
`PIECE_TRIANGLES` triangles (`backend/geometry/unwrap_pieces.py`), and in pieces with the
polygon each triangle came from, so that quads xatlas put into two charts are made whole
again (`backend/geometry/polygon_charts.py`). Prints the time of each, the ratios, and how
many quads each left cut.

    PYTHONPATH=. python bench/bench_unwrap.py [--quads 50000]
"""

import argparse
import math
import time

from backend.geometry import unwrap_pieces
from backend.geometry.polygon_charts import cut_polygons
from backend.geometry.uv import unwrap
from tests.fixtures.quad_meshes import bumpy_quad_torus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quads", type=int, default=50_000, help="about this many quads (twice as many triangles)")
    args = parser.parse_args()
    rows = max(8, round(math.sqrt(args.quads * 1.25)))
    vertices, triangles, quads = bumpy_quad_torus(rows, max(4, args.quads // rows), bumps=0.002)
    print(f"{len(triangles) // 2} quads, {len(triangles)} triangles")
    piece = unwrap_pieces.PIECE_TRIANGLES
    times = {}
    for name, limit, polygons in (("one piece", len(triangles), None), ("in pieces", piece, None),
                                  ("in pieces, quads whole", piece, [quads])):
        unwrap_pieces.PIECE_TRIANGLES = limit
        start = time.perf_counter()
        layout = unwrap([(vertices, triangles)], polygons=polygons)[0]
        times[name] = time.perf_counter() - start
        print(f"  {name:22} {times[name]:6.2f} s; quads left cut: {len(cut_polygons(triangles, quads, layout.faces))}")
    unwrap_pieces.PIECE_TRIANGLES = piece
    print(f"  in pieces / one piece {times['in pieces'] / times['one piece']:.2f}; "
          f"quads whole / in pieces {times['in pieces, quads whole'] / times['in pieces']:.2f}")


if __name__ == "__main__":
    main()
