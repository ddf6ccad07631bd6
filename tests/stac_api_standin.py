"""A STAC API on 127.0.0.1 serving the items of a static catalogue (landing page + item search).

Earth Search and the Planetary Computer are STAC APIs: ``pystac-client`` reads the landing page,
checks the ``item-search`` conformance class and POSTs searches to ``/search``. This stand-in speaks
that protocol (bbox, datetime interval, collections, limit with a ``next`` link for paging) over the
items of a local catalogue, so the API path runs as it would against the real services.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pystac
from shapely.geometry import box, shape

CONFORMS = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search"]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class StacApi:
    """``with StacApi(catalog_json) as api: api.url``; ``api.searches`` holds every search body."""

    def __init__(self, catalog_path: str, page_size: int = 2) -> None:
        catalog = pystac.Catalog.from_file(catalog_path)
        self.items = []
        for item in catalog.get_items(recursive=True):
            item.make_asset_hrefs_absolute()
            self.items.append(item.to_dict(include_self_link=False, transform_hrefs=False))
        self.page_size = page_size
        self.searches: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StacApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def landing(self) -> dict[str, Any]:
        return {"type": "Catalog", "id": "standin", "stac_version": "1.0.0", "description": "stand-in STAC API",
                "conformsTo": CONFORMS,
                "links": [{"rel": "self", "href": self.url, "type": "application/json"},
                          {"rel": "root", "href": self.url, "type": "application/json"},
                          {"rel": "search", "href": f"{self.url}/search", "type": "application/geo+json",
                           "method": "POST"}]}

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        self.searches.append(body)
        area = box(*body["bbox"]) if body.get("bbox") else None
        start, end = (body.get("datetime") or "../..").split("/")
        found = []
        for item in self.items:
            if body.get("collections") and item.get("collection") not in body["collections"]:
                continue
            if area is not None and not shape(item["geometry"]).intersects(area):
                continue
            when = _time(item["properties"]["datetime"])
            if (start not in ("", "..") and when < _time(start)) or (end not in ("", "..") and when > _time(end)):
                continue
            found.append(item)
        offset = int(body.get("token") or 0)
        limit = min(int(body.get("limit") or self.page_size), self.page_size)
        page = found[offset: offset + limit]
        links = []
        if offset + limit < len(found):
            links.append({"rel": "next", "href": f"{self.url}/search", "method": "POST", "merge": True,
                          "body": {"token": str(offset + limit)}, "type": "application/geo+json"})
        return {"type": "FeatureCollection", "features": page, "links": links,
                "numberMatched": len(found), "numberReturned": len(page)}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.rstrip("/") in ("", "/"):
                    return self._json(api.landing())
                if self.path.startswith("/conformance"):
                    return self._json({"conformsTo": CONFORMS})
                self._json({"code": "NotFound", "description": self.path}, 404)

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.startswith("/search"):
                    return self._json(api.search(body), content_type="application/geo+json")
                self._json({"code": "NotFound", "description": self.path}, 404)

            def _json(self, payload: dict[str, Any], status: int = 200, content_type: str = "application/json") -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
