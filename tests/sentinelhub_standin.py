"""A stand-in for Sentinel Hub on 127.0.0.1: OAuth token, Catalog API search and Process API.

It speaks the service's protocol as ``sentinelhub`` uses it (client-credentials token endpoint,
``POST /api/v1/catalog/1.0.0/search`` returning a STAC FeatureCollection with a ``context``,
``POST /api/v1/process`` returning a float32 GeoTIFF of the requested width/height and the band count
the evalscript's ``output`` declares, JSON errors with a status like the real one) so the client
code runs unchanged, and it records every request body so tests can check what was asked.
"""

from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import rasterio
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

#: The real service refuses outputs wider or taller than this.
MAX_PIXELS = 2500

#: The archive: (collection id, feature id, time, orbit state or None).
ACQUISITIONS: list[tuple[str, str, str, str | None]] = [
    ("sentinel-2-l1c", "S2A_granule_a", "2018-06-01T10:30:21.100Z", None),
    ("sentinel-2-l1c", "S2A_granule_b", "2018-06-01T10:30:21.600Z", None),   # same datatake, 0.5 s later
    ("sentinel-2-l1c", "S2B_later", "2018-06-06T10:31:02Z", None),
    ("sentinel-2-l1c", "S2B_outside_period", "2025-01-01T10:00:00Z", None),
    ("sentinel-1-grd", "S1A_asc", "2018-06-02T17:30:40Z", "ascending"),
    ("sentinel-1-grd", "S1B_desc", "2018-06-03T05:50:10Z", "descending"),
]
#: Pixel rows/cols of the S2 responses where CLM says cloud (1) and where dataMask is 0.
CLM_CLOUD = (slice(0, 4), slice(0, 4))
NO_DATA = (slice(-3, None), slice(-3, None))
CLM_NO_DATA_CODE = (slice(4, 6), slice(0, 2))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def s2_value(band: int, day: int) -> float:
    """Reflectance the stand-in returns for an S2 band; band 3 is negative (must be clamped)."""
    return -0.01 if band == 3 else 0.01 * (band + 1) + 0.001 * day


class StandIn:
    """The server and what it was asked."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.requests if p == path]

    # -- protocol ---------------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if self.path == "/oauth/token":
                    form = dict(pair.split("=", 1) for pair in raw.split("&") if "=" in pair)
                    standin.requests.append((self.path, form))
                    if form.get("client_secret") != "secret":
                        return self._json(401, {"error": "unauthorized_client", "error_description": "Invalid client"})
                    return self._json(200, {"access_token": "token-123", "token_type": "Bearer", "expires_in": 3600})
                if self.headers.get("Authorization") != "Bearer token-123":
                    return self._json(401, {"error": {"status": 401, "reason": "Unauthorized", "message": "no token"}})
                body = json.loads(raw)
                standin.requests.append((self.path, body))
                if self.path == "/api/v1/catalog/1.0.0/search":
                    return self._json(200, standin._search(body))
                if self.path == "/api/v1/process":
                    return standin._process(self, body)
                return self._json(404, {"error": {"status": 404, "reason": "Not Found", "message": self.path}})

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def send_tiff(self, data: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

    def _search(self, body: dict[str, Any]) -> dict[str, Any]:
        start, end = (_time(t) for t in body["datetime"].split("/"))
        orbit = re.search(r"sat:orbit_state='(\w+)'", body.get("filter") or "")
        features = []
        for collection, fid, when, state in ACQUISITIONS:
            if collection not in body["collections"] or not start <= _time(when) <= end:
                continue
            if orbit and state != orbit.group(1):
                continue
            features.append({"type": "Feature", "stac_version": "1.0.0", "id": fid,
                             "properties": {"datetime": when}, "assets": {}, "links": []})
        return {"type": "FeatureCollection", "features": features,
                "context": {"limit": body.get("limit", 100), "returned": len(features)}}

    def _process(self, handler: Any, body: dict[str, Any]) -> None:
        output = body["output"]
        width, height = output["width"], output["height"]
        if width > MAX_PIXELS or height > MAX_PIXELS:
            return handler._json(400, {"error": {"status": 400, "reason": "Bad Request", "code": "RENDERER_EXCEPTION",
                                                 "message": f"The request image width. Must be not more than {MAX_PIXELS} pixels."}})
        declared = re.search(r"output:\s*\{[^}]*bands:\s*(\d+)", body["evalscript"])
        count = int(declared.group(1)) if declared else 1
        data_input = body["input"]["data"][0]
        time_range = data_input["dataFilter"]["timeRange"]
        start, end = _time(time_range["from"]), _time(time_range["to"])
        hits = [when for collection, _, when, _ in ACQUISITIONS
                if collection == data_input["type"] and start <= _time(when) <= end]
        data = np.zeros((count, height, width), np.float32)
        if hits:  # like the service: an empty time range gives an all-zero image, dataMask 0
            day = (_time(hits[0]) - datetime.fromisoformat("2018-06-01T00:00:00+00:00")) // timedelta(days=1)
            if data_input["type"] == "sentinel-2-l1c":
                for band in range(count - 2):
                    data[band] = s2_value(band, day)
                data[-2][CLM_CLOUD] = 1
                data[-2][CLM_NO_DATA_CODE] = 255
                data[-1] = 1
                data[-1][NO_DATA] = 0
            else:
                data[0], data[1], data[-1] = 0.3, 0.06, 1
        bounds = body["input"]["bounds"]["bbox"]
        epsg = int(body["input"]["bounds"]["properties"]["crs"].rsplit("/", 1)[-1])
        with MemoryFile() as memory:
            with memory.open(driver="GTiff", height=height, width=width, count=count, dtype="float32",
                             crs=rasterio.crs.CRS.from_epsg(epsg), transform=from_bounds(*bounds, width, height)) as dst:
                dst.write(data)
            handler.send_tiff(memory.read())
