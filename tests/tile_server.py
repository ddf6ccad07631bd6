"""A tiny XYZ/TMS tile server for tests: ``python tile_server.py`` prints its port, serves PNG tiles.

Tiles are Web Mercator (EPSG:3857) 256 px PNGs computed on request from a known picture: red where
the pixel centre lies east of X0, green where it lies north of Y0 (X0, Y0 given on the command
line, in metres). A test can therefore check that what GDAL fetched and warped landed in the
right place. Every request is logged to stderr as ``GET z/x/y`` so tests can count them.
"""

from __future__ import annotations

import io
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

HALF = 20037508.342789244


def tile_png(z: int, x: int, y: int, x0: float, y0: float) -> bytes:
    res = 2 * HALF / (256 * 2 ** z)
    cols = -HALF + (x * 256 + np.arange(256) + 0.5) * res
    rows = HALF - (y * 256 + np.arange(256) + 0.5) * res
    rgb = np.zeros((256, 256, 3), np.uint8)
    rgb[:, :, 0] = np.where(cols[None, :] > x0, 255, 0)
    rgb[:, :, 1] = np.where(rows[:, None] > y0, 255, 0)
    rgb[:, :, 2] = 60
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    x0, y0 = float(sys.argv[1]), float(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            parts = self.path.strip("/").split("/")
            try:
                z, x, y = int(parts[0]), int(parts[1]), int(parts[2].split(".")[0])
            except (IndexError, ValueError):
                self.send_error(404)
                return
            body = tile_png(z, x, y, x0, y0)
            sys.stderr.write(f"GET {z}/{x}/{y}\n")
            sys.stderr.flush()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
