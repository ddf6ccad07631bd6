"""A new project from an AoI polygon: read it, choose the CRS, lay the authors' tile grid over it.

The grid starts at the top-left corner of the AoI's bounding box in the chosen CRS and keeps whole
tiles only (the authors' VALID tiling drops the remainder). The default CRS is the UTM zone of the
AoI's centre at 10 m pixels, a reasonable substitute for the authors' grid; ``authors_grid`` gives
theirs instead: the AoI's box in EPSG:4326 with a pixel of ~10 m computed as Sentinel Hub's
``bbox_to_dimensions`` does (the box corners in UTM, width and height divided by 10 m, rounded),
so the pixel is a different number of degrees in x and y (ercnn_facts §8.1).
Polygons come from a shapefile, GeoJSON or GeoPackage (read with sqlite3: no GDAL vector driver
is needed in the viewer's environment).
"""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path
from typing import Any

import shapely
from rasterio.crs import CRS
from rasterio.warp import transform, transform_geom
from shapely.geometry import mapping, shape

from ercnn_napari.core.constants import PIXEL_SIZE_M, TILE_SIZE
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid, normalize_crs, same_crs
from ercnn_napari.core.polygons import read_polygons

#: Larger AoIs are refused: ~100,000 tiles, twenty times the authors' Liège AoI (~508 km²).
MAX_AREA_KM2 = 10_000.0


def read_aoi(path: str | Path) -> tuple[Any, str]:
    """The AoI as one shapely (Multi)Polygon and its CRS; refuses non-polygons and CRS-less files."""
    path = Path(path)
    if path.suffix.lower() == ".gpkg":
        geometries, crs = _read_gpkg(path)
    else:
        try:
            polygons = read_polygons(path)
        except ProjectError as exc:
            raise ProjectError(f"not usable as an AoI: {exc.message.replace('only polygons can be labels', 'an AoI must be a polygon')}",
                               path) from None
        geometries, crs = polygons.geometries, polygons.crs
    geometries = [g for g in geometries if g is not None and not g.is_empty]
    if not geometries:
        raise ProjectError("holds no polygon; an AoI must be a polygon", path)
    if any(g.geom_type not in ("Polygon", "MultiPolygon") for g in geometries):
        kinds = sorted({g.geom_type for g in geometries})
        raise ProjectError(f"holds {', '.join(kinds)}; an AoI must be a polygon", path)
    return shapely.union_all(geometries), crs


def _read_gpkg(path: Path) -> tuple[list[Any], str]:
    """Geometries and CRS of the first feature table of a GeoPackage (OGC GeoPackage encoding)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            table, column, srs_id = db.execute(
                "SELECT c.table_name, g.column_name, g.srs_id FROM gpkg_contents c JOIN gpkg_geometry_columns g "
                "ON c.table_name = g.table_name WHERE c.data_type = 'features' ORDER BY c.table_name").fetchone()
            srs = db.execute("SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys "
                             "WHERE srs_id = ?", (srs_id,)).fetchone()
            blobs = [row[0] for row in db.execute(f'SELECT "{column}" FROM "{table}"')]  # noqa: S608 - names from the file's catalogue
    except (sqlite3.Error, TypeError) as exc:
        raise ProjectError(f"not a readable GeoPackage with a feature table ({exc})", path) from None
    if srs is None or srs_id in (0, -1) or (srs[2] in (None, "", "undefined") and not srs[1]):
        raise ProjectError("GeoPackage layer has no coordinate reference system", path)
    crs = normalize_crs(f"{srs[0]}:{srs[1]}" if srs[0] and srs[0].upper() == "EPSG" else srs[2], path)
    return [_gpkg_geometry(blob, path) for blob in blobs if blob is not None], crs


def _gpkg_geometry(blob: bytes, path: Path) -> Any:
    if blob[:2] != b"GP":
        raise ProjectError("GeoPackage geometry blob lacks its 'GP' header", path)
    flags = blob[3]
    envelope = {0: 0, 1: 32, 2: 48, 3: 48, 4: 64}.get((flags >> 1) & 0x07, 0)
    return shapely.from_wkb(blob[8 + envelope:])


def utm_crs(lon: float, lat: float) -> str:
    """The WGS 84 / UTM zone CRS of a point."""
    zone = min(60, int(math.floor((lon + 180.0) / 6.0)) + 1)
    return f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"


def _lonlat_bounds(geometry: Any, crs: str) -> tuple[float, float, float, float]:
    if same_crs(crs, "EPSG:4326"):
        return geometry.bounds
    return shape(transform_geom(CRS.from_user_input(crs), CRS.from_epsg(4326), mapping(geometry))).bounds


def aoi_grid(geometry: Any, crs: str, target_crs: str = "auto", pixel_size: float = PIXEL_SIZE_M,
             tile_size: int = TILE_SIZE, authors_grid: bool = False) -> TileGrid:
    """The project grid over an AoI (see the module doc); refuses an absurdly large AoI."""
    lon0, lat0, lon1, lat1 = _lonlat_bounds(geometry, crs)
    centre_utm = utm_crs((lon0 + lon1) / 2, (lat0 + lat1) / 2)
    xs, ys = transform("EPSG:4326", centre_utm, [lon0, lon1, lon0, lon1], [lat0, lat0, lat1, lat1])
    area_km2 = (max(xs) - min(xs)) * (max(ys) - min(ys)) / 1e6
    if area_km2 > MAX_AREA_KM2:
        raise ProjectError(f"the AoI's bounding box is {area_km2:,.0f} km² (about {area_km2 * 1e6 / (pixel_size * tile_size) ** 2:,.0f} "
                           f"tiles of {pixel_size * tile_size:g} m); the limit is {MAX_AREA_KM2:,.0f} km² - split the AoI "
                           "into several projects")
    if authors_grid:
        # sentinelhub.bbox_to_dimensions: lower-left and upper-right corners in UTM, sizes rounded
        (e0, e1), (n0, n1) = transform("EPSG:4326", centre_utm, [lon0, lon1], [lat0, lat1])
        width = int(round(abs(e1 - e0) / pixel_size))
        height = int(round(abs(n1 - n0) / pixel_size))
        if width < tile_size or height < tile_size:
            raise ProjectError(f"the AoI is {width} x {height} pixels of ~{pixel_size:g} m, smaller than one tile")
        return TileGrid.from_aoi_bounds("EPSG:4326", lon0, lat0, lon1, lat1,
                                        ((lon1 - lon0) / width, (lat1 - lat0) / height), tile_size)
    chosen = centre_utm if target_crs in (None, "", "auto") else normalize_crs(target_crs)
    if CRS.from_user_input(chosen).is_geographic:
        raise ProjectError(f"{chosen} is geographic (degrees); choose a projected CRS for metre pixels "
                           "or use --authors-grid for the authors' lon/lat grid")
    if same_crs(crs, chosen):
        left, bottom, right, top = geometry.bounds
    else:
        left, bottom, right, top = shape(transform_geom(CRS.from_user_input(crs), CRS.from_user_input(chosen),
                                                        mapping(geometry))).bounds
    return TileGrid.from_aoi_bounds(chosen, left, bottom, right, top, pixel_size, tile_size)


def site_name(aoi_path: str | Path) -> str:
    """A site name from the AoI file name (letters, digits, ``-`` and ``_``)."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(aoi_path).stem).strip("_")
    return name or "site"
