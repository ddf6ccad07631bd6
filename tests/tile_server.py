"""A tiny map server for tests: ``python tile_server.py X0 Y0`` prints its port and serves, on 127.0.0.1,

* XYZ/TMS tiles ``/{z}/{x}/{y}.png`` (Web Mercator, 256 px);
* OGC WMS 1.1.1 ``/wms?SERVICE=WMS&REQUEST=GetMap&LAYERS=ortho&SRS=EPSG:3857&BBOX=…&WIDTH=…``;
* OGC WMTS 1.0.0 (KVP) ``/wmts?SERVICE=WMTS&REQUEST=GetCapabilities`` (one layer ``ortho``, one
  Web Mercator tile matrix set, levels 0-19) and ``…&REQUEST=GetTile&TILEMATRIX=z&TILEROW=y&TILECOL=x``.

Every image is computed on request from a known picture in EPSG:3857: red where the pixel centre
lies east of X0, green where it lies north of Y0 (metres). A test can therefore check that what GDAL
fetched and warped landed in the right place. A request with a wrong parameter (service, layer,
CRS, format, tile matrix set) gets HTTP 400, so a test also checks what GDAL asked for. Every image
request is logged to stderr (``GET z/x/y``, ``GETMAP w h``, ``GETTILE z/x/y``) so tests can count.
"""

from __future__ import annotations

import io
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image

HALF = 20037508.342789244
LEVELS = 20
#: WMTS scale denominator of level 0 of Web Mercator (256 px tiles, 0.28 mm pixels)
SCALE_0 = 559082264.0287178


def render_png(left: float, top: float, res_x: float, res_y: float, width: int, height: int,
               x0: float, y0: float) -> bytes:
    """The picture over a Web Mercator window as a PNG."""
    cols = left + (np.arange(width) + 0.5) * res_x
    rows = top - (np.arange(height) + 0.5) * res_y
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, :, 0] = np.where(cols[None, :] > x0, 255, 0)
    rgb[:, :, 1] = np.where(rows[:, None] > y0, 255, 0)
    rgb[:, :, 2] = 60
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return buffer.getvalue()


def tile_png(z: int, x: int, y: int, x0: float, y0: float) -> bytes:
    res = 2 * HALF / (256 * 2 ** z)
    return render_png(-HALF + x * 256 * res, HALF - y * 256 * res, res, res, 256, 256, x0, y0)


def wmts_capabilities(port: int) -> str:
    matrices = "".join(
        f"<TileMatrix><ows:Identifier>{z}</ows:Identifier><ScaleDenominator>{SCALE_0 / 2 ** z!r}"
        f"</ScaleDenominator><TopLeftCorner>{-HALF!r} {HALF!r}</TopLeftCorner><TileWidth>256</TileWidth>"
        f"<TileHeight>256</TileHeight><MatrixWidth>{2 ** z}</MatrixWidth><MatrixHeight>{2 ** z}</MatrixHeight>"
        f"</TileMatrix>" for z in range(LEVELS))
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1"
    xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">
 <ows:OperationsMetadata>
  <ows:Operation name="GetTile"><ows:DCP><ows:HTTP><ows:Get xlink:href="http://127.0.0.1:{port}/wmts?">
   <ows:Constraint name="GetEncoding"><ows:AllowedValues><ows:Value>KVP</ows:Value></ows:AllowedValues>
   </ows:Constraint></ows:Get></ows:HTTP></ows:DCP></ows:Operation>
 </ows:OperationsMetadata>
 <Contents>
  <Layer><ows:Title>test orthophoto</ows:Title><ows:Identifier>ortho</ows:Identifier>
   <ows:WGS84BoundingBox><ows:LowerCorner>-180 -85.05</ows:LowerCorner>
    <ows:UpperCorner>180 85.05</ows:UpperCorner></ows:WGS84BoundingBox>
   <Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style>
   <Format>image/png</Format>
   <TileMatrixSetLink><TileMatrixSet>WebMercator</TileMatrixSet></TileMatrixSetLink>
  </Layer>
  <TileMatrixSet><ows:Identifier>WebMercator</ows:Identifier>
   <ows:SupportedCRS>urn:ogc:def:crs:EPSG::3857</ows:SupportedCRS>{matrices}</TileMatrixSet>
 </Contents>
</Capabilities>
"""


def main() -> None:
    x0, y0 = float(sys.argv[1]), float(sys.argv[2])

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _log(self, text: str) -> None:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

        def _wms(self, q: dict[str, str]) -> None:
            wanted = {"SERVICE": "WMS", "REQUEST": "GetMap", "LAYERS": "ortho", "SRS": "EPSG:3857",
                      "FORMAT": "image/png"}
            wrong = [k for k, v in wanted.items() if q.get(k, "").lower() != v.lower()]
            if wrong:
                self.send_error(400, f"bad WMS parameters {wrong}")
                return
            left, bottom, right, top = (float(v) for v in q["BBOX"].split(","))
            width, height = int(q["WIDTH"]), int(q["HEIGHT"])
            self._log(f"GETMAP {width} {height}")
            self._send(render_png(left, top, (right - left) / width, (top - bottom) / height, width, height,
                                  x0, y0), "image/png")

        def _wmts(self, q: dict[str, str]) -> None:
            if q.get("SERVICE", "").upper() != "WMTS":
                self.send_error(400, "SERVICE must be WMTS")
            elif q.get("REQUEST", "").lower() == "getcapabilities":
                self._send(wmts_capabilities(self.server.server_address[1]).encode(), "application/xml")
            elif q.get("REQUEST", "").lower() == "gettile":
                if (q.get("LAYER"), q.get("TILEMATRIXSET"), q.get("FORMAT")) != ("ortho", "WebMercator", "image/png"):
                    self.send_error(400, "unknown layer, tile matrix set or format")
                    return
                z, row, col = int(q["TILEMATRIX"]), int(q["TILEROW"]), int(q["TILECOL"])
                self._log(f"GETTILE {z}/{col}/{row}")
                self._send(tile_png(z, col, row, x0, y0), "image/png")
            else:
                self.send_error(400, "unknown WMTS request")

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            url = urlsplit(self.path)
            query = {k.upper(): v for k, v in parse_qsl(url.query)}
            if url.path == "/wms":
                self._wms(query)
                return
            if url.path == "/wmts":
                self._wmts(query)
                return
            parts = url.path.strip("/").split("/")
            try:
                z, x, y = int(parts[0]), int(parts[1]), int(parts[2].split(".")[0])
            except (IndexError, ValueError):
                self.send_error(404)
                return
            self._log(f"GET {z}/{x}/{y}")
            self._send(tile_png(z, x, y, x0, y0), "image/png")

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
