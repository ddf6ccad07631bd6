"""Build a small static STAC catalogue of real local COGs, shaped like the public catalogues.

Earth Search names S2 assets by common name (``blue``, ``scl``) and gives ``raster:bands``
scale/offset; the Planetary Computer's S1 RTC items hold linear ``vv``/``vh`` assets in their own
CRS with ``sat:orbit_state``. The files here follow those layouts so the presets are exercised as a
user's catalogue would exercise them, and odc-stac reads them for real.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pystac
import rasterio
from affine import Affine
from pystac.extensions.projection import ProjectionExtension
from rasterio.warp import transform_bounds
from shapely.geometry import box, mapping

from ercnn_napari.ingest.stac_presets import _EARTH_SEARCH_S2

UTM = "EPSG:32631"
#: The target grid of the tests: 320 x 320 pixels of 10 m (large enough for 20 x 20 CLM pixels).
GRID_ORIGIN = (680000.0, 5610000.0)
GRID_SIZE = 320
#: Cloud block (grid rows/cols) of the L1C scene: bright in all bands.
CLOUD = (slice(40, 200), slice(40, 200))
#: SCL cloud block (grid rows/cols) of the L2A scene.
SCL_CLOUD = (slice(0, 50), slice(0, 50))
#: Vegetation-like L1C TOA reflectance in S2_BANDS order, and a bright cloud.
CLEAR = np.array([0.12, 0.10, 0.08, 0.06, 0.09, 0.20, 0.25, 0.28, 0.30, 0.10, 0.003, 0.18, 0.09], np.float32)
CLOUDY = np.array([0.55, 0.52, 0.50, 0.50, 0.52, 0.55, 0.56, 0.57, 0.57, 0.30, 0.05, 0.45, 0.35], np.float32)


def write_cog(path: Path, data: np.ndarray, crs: str, transform: Affine, nodata: float | None = None) -> None:
    """One-band cloud-optimised GeoTIFF (rasterio's COG driver)."""
    profile = {"driver": "COG", "height": data.shape[0], "width": data.shape[1], "count": 1,
               "dtype": data.dtype.name, "crs": crs, "transform": transform, "blocksize": 256}
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)


def _item(item_id: str, when: datetime, crs: str, transform: Affine, shape: tuple[int, int],
          collection: str, properties: dict) -> pystac.Item:
    height, width = shape
    left, top = transform * (0, 0)
    right, bottom = transform * (width, height)
    bbox = transform_bounds(crs, "EPSG:4326", left, bottom, right, top)
    item = pystac.Item(item_id, mapping(box(*bbox)), list(bbox), when, dict(properties), collection=collection)
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    proj.code = crs
    proj.transform = list(transform)[:6]
    proj.shape = [height, width]
    return item


def _asset(item: pystac.Item, key: str, path: Path, raster_band: dict | None = None) -> None:
    extra = {"raster:bands": [raster_band]} if raster_band else {}
    item.add_asset(key, pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"], extra_fields=extra))


def l2a_dn(band_index: int) -> int:
    """The constant DN of an L2A band: band 3 (B04) lies below the offset and must clamp to 0."""
    return 500 if band_index == 3 else 1100 + 100 * band_index


def build_catalog(root: Path) -> Path:
    """Write the COGs and the catalogue; return the catalog.json path."""
    root.mkdir(parents=True, exist_ok=True)
    catalog = pystac.Catalog("test-catalogue", "Local COGs shaped like Earth Search and the Planetary Computer")
    x0, y0 = GRID_ORIGIN
    # --- Earth Search L2A, two granules of one datatake 10 s apart (west and east part of the grid)
    t_l2a = datetime(2018, 6, 1, 10, 30, 0, tzinfo=timezone.utc)
    for part, (left, width, seconds) in enumerate(((x0 - 200, 180, 0), (x0 + 1400, 220, 10))):
        transform = Affine(10, 0, left, 0, -10, y0 + 200)
        shape = (GRID_SIZE + 40, width)
        item = _item(f"S2A_L2A_{part}", t_l2a.replace(second=seconds), UTM, transform, shape, "sentinel-2-l2a",
                     {"s2:processing_baseline": "02.09"})
        for index, band in enumerate(S2_ORDER):
            key = _EARTH_SEARCH_S2[band]
            if band == "B10":
                continue
            path = root / f"l2a{part}_{key}.tif"
            write_cog(path, np.full(shape, l2a_dn(index) + part, np.uint16), UTM, transform, nodata=0)
            _asset(item, key, path, {"nodata": 0, "scale": 0.0001, "offset": -0.1})
        scl = np.full(shape, 4, np.uint8)  # vegetation
        if part == 0:
            scl[20:70, 20:70] = 9  # cloud high probability at grid rows/cols 0-49
        path = root / f"l2a{part}_scl.tif"
        write_cog(path, scl, UTM, transform, nodata=0)
        _asset(item, "scl", path)
        catalog.add_item(item)
    # --- Earth Search L1C, processing baseline 04.00 (DN carry +1000), no mask: s2cloudless locally
    transform = Affine(10, 0, x0, 0, -10, y0)
    shape = (GRID_SIZE, GRID_SIZE)
    item = _item("S2B_L1C", datetime(2022, 6, 3, 10, 40, tzinfo=timezone.utc), UTM, transform, shape,
                 "sentinel-2-l1c", {"s2:processing_baseline": "04.00"})
    rng = np.random.default_rng(0)
    texture = 1 + 0.05 * rng.standard_normal(shape)
    for index, band in enumerate(S2_ORDER):
        refl = CLEAR[index] * texture
        refl[CLOUD] = CLOUDY[index]
        dn = np.round(refl * 10000 + 1000).astype(np.uint16)
        path = root / f"l1c_{_EARTH_SEARCH_S2[band]}.tif"
        write_cog(path, dn, UTM, transform, nodata=0)
        _asset(item, _EARTH_SEARCH_S2[band], path)
    catalog.add_item(item)
    # --- Planetary Computer S1 RTC in EPSG:4326 (another CRS: odc-stac reprojects), linear power
    span = GRID_SIZE * 10
    west, south, east, north = transform_bounds(UTM, "EPSG:4326", x0, y0 - span, x0 + span, y0)
    transform = Affine(0.0002, 0, west - 0.01, 0, -0.0002, north + 0.01)
    shape = (int((north - south + 0.02) / 0.0002) + 1, int((east - west + 0.02) / 0.0002) + 1)
    for item_id, when, orbit, vv in (("S1A_RTC_asc", datetime(2018, 6, 2, 17, 30, tzinfo=timezone.utc), "ascending", 0.25),
                                     ("S1B_RTC_desc", datetime(2018, 6, 4, 5, 50, tzinfo=timezone.utc), "descending", 0.5)):
        item = _item(item_id, when, "EPSG:4326", transform, shape, "sentinel-1-rtc", {"sat:orbit_state": orbit})
        for key, value in (("vv", vv), ("vh", vv / 5)):
            path = root / f"{item_id}_{key}.tif"
            write_cog(path, np.full(shape, value, np.float32), "EPSG:4326", transform, nodata=-32768.0)
            _asset(item, key, path, {"nodata": -32768.0})
        catalog.add_item(item)
    # --- an item no preset reads, one outside the AoI and one outside the period
    odd = _item("odd", datetime(2018, 7, 1, tzinfo=timezone.utc), UTM, transform_l1c(), shape_l1c(), "landsat", {})
    _asset(odd, "thermal", root / "l1c_blue.tif")
    catalog.add_item(odd)
    far = Affine(10, 0, 300000, 0, -10, 5000000)
    away = _item("S2_far", datetime(2018, 7, 2, tzinfo=timezone.utc), UTM, far, (10, 10), "sentinel-2-l1c", {})
    late = _item("S2_late", datetime(2030, 1, 1, tzinfo=timezone.utc), UTM, transform_l1c(), shape_l1c(),
                 "sentinel-2-l1c", {})
    for extra in (away, late):
        for band in S2_ORDER:
            _asset(extra, _EARTH_SEARCH_S2[band], root / f"l1c_{_EARTH_SEARCH_S2[band]}.tif")
        catalog.add_item(extra)
    catalog.normalize_hrefs(str(root))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"


def transform_l1c() -> Affine:
    return Affine(10, 0, GRID_ORIGIN[0], 0, -10, GRID_ORIGIN[1])


def shape_l1c() -> tuple[int, int]:
    return GRID_SIZE, GRID_SIZE


S2_ORDER = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
