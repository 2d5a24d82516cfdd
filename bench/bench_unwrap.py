"""What keeping quads whole adds to an xatlas unwrap, side by side with xatlas alone.

A bumpy torus of quads (each sent as two triangles, as the add-on does) is unwrapped twice:
as triangles only, and with the polygon each triangle came from, so that quads xatlas put
into two charts are made whole again (`backend/geometry/polygon_charts.py`) and the charts
packed again. Prints the time of each, the ratio, and how many quads each left cut.

    PYTHONPATH=. python bench/bench_unwrap.py [--quads 50000]
"""

import argparse
import math
import time

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
    times = {}
    for name, polygons in (("xatlas alone", None), ("quads kept whole", [quads])):
        start = time.perf_counter()
        layout = unwrap([(vertices, triangles)], polygons=polygons)[0]
        times[name] = time.perf_counter() - start
        print(f"  {name:16} {times[name]:6.2f} s; quads left cut: {len(cut_polygons(triangles, quads, layout.faces))}")
    print(f"  ratio {times['quads kept whole'] / times['xatlas alone']:.2f}")


if __name__ == "__main__":
    main()
