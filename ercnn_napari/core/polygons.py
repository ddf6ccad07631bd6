"""Change polygons (shapefile or GeoJSON, any CRS) -> per-tile 32x32 labels.

Analysts often already have change drawn as polygons (the authors drew theirs in
``ground_truth/{y}:{x}/{y}:{x}.shp``). Rasterizing them onto the project grid gives the same
aggregated tile labels the trainer reads. The default is the pixel-centre rule (a pixel is change
if its centre is inside a polygon), matching how a 10 m label is usually read; ``all_touched``
marks every pixel a polygon touches, for thin structures. The CRS comes from the ``.prj``, the
GeoJSON ``crs`` member, or an explicit argument; when there is none the caller must say which CRS
it assumed, so the guess is visible.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapefile
import shapely
from rasterio.features import rasterize
from rasterio.warp import transform_geom
from shapely.geometry import box, mapping, shape

from ercnn_napari.core.atomic import atomic_path
from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid, normalize_crs, same_crs
from ercnn_napari.core.tiles import TileId

if TYPE_CHECKING:
    from ercnn_napari.core.project import Project

_POLYGON_TYPES = {shapefile.POLYGON, shapefile.POLYGONZ, shapefile.POLYGONM}


@dataclass(frozen=True)
class PolygonSet:
    """Polygons read from a file, their CRS and where that CRS came from."""

    geometries: list[Any]  # shapely (Multi)Polygons
    crs: str
    crs_source: str  # "prj", "geojson", "argument", "geojson-default" (RFC 7946 lon/lat)
    path: Path | None = None


def read_polygons(path: str | os.PathLike, crs: Any = None) -> PolygonSet:
    """Read polygons from ``.shp`` (``.shx`` needed, ``.dbf`` optional) or ``.geojson``/``.json``.

    ``crs`` overrides the file's own CRS (use it for the authors' shapefiles, which have no
    ``.prj``). A file without any CRS and no ``crs`` argument is refused, naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ProjectError("polygon file does not exist", path)
    suffix = path.suffix.lower()
    if suffix == ".shp":
        geometries, file_crs, source = _read_shapefile(path)
    elif suffix in (".geojson", ".json"):
        geometries, file_crs, source = _read_geojson(path)
    else:
        raise ProjectError("unsupported polygon file type: expected .shp, .geojson or .json", path)
    if crs is not None:
        file_crs, source = normalize_crs(crs, path), "argument"
    if file_crs is None:
        raise ProjectError("polygon file has no .prj (coordinate system unknown); pass the CRS explicitly", path)
    return PolygonSet(geometries, file_crs, source, path)


def _read_shapefile(path: Path) -> tuple[list[Any], str | None, str]:
    shx = path.with_suffix(".shx")
    if not shx.is_file():
        raise ProjectError(f"shapefile index {shx.name} is missing next to it", path)
    try:
        with open(path, "rb") as shp_fh, open(shx, "rb") as shx_fh:
            reader = shapefile.Reader(shp=shp_fh, shx=shx_fh)
            if reader.shapeType not in _POLYGON_TYPES and len(reader) > 0:
                raise ProjectError(f"shapefile holds {reader.shapeTypeName} shapes; only polygons can be labels", path)
            geometries = [_clean(shape(s.__geo_interface__)) for s in reader.shapes() if s.shapeType != shapefile.NULL]
    except shapefile.ShapefileException as exc:
        raise ProjectError(f"not a readable shapefile: {exc}", path) from exc
    prj = path.with_suffix(".prj")
    if prj.is_file():
        return geometries, normalize_crs(prj.read_text(encoding="utf-8", errors="replace"), prj), "prj"
    return geometries, None, "none"


def _read_geojson(path: Path) -> tuple[list[Any], str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProjectError(f"not valid GeoJSON: {exc}", path) from exc
    if not isinstance(data, dict):
        raise ProjectError("not a GeoJSON object", path)
    if data.get("type") == "FeatureCollection":
        raw = [f.get("geometry") for f in data.get("features", [])]
    elif data.get("type") == "Feature":
        raw = [data.get("geometry")]
    else:
        raw = [data]
    geometries = []
    for geometry in raw:
        if geometry is None:
            continue
        if geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ProjectError(f"GeoJSON holds a {geometry.get('type')}; only polygons can be labels", path)
        geometries.append(_clean(shape(geometry)))
    crs_member = data.get("crs")
    if isinstance(crs_member, dict) and isinstance(crs_member.get("properties"), dict):
        return geometries, normalize_crs(crs_member["properties"].get("name"), path), "geojson"
    return geometries, "EPSG:4326", "geojson-default"


def _clean(geometry: Any) -> Any:
    """Self-intersecting hand-drawn rings are common; repair instead of rasterizing garbage."""
    return geometry if geometry.is_valid else shapely.make_valid(geometry)


def rasterize_polygons(
    polygons: PolygonSet,
    grid: TileGrid,
    all_touched: bool = False,
    tiles: Iterable[TileId] | None = None,
) -> dict[TileId, np.ndarray]:
    """Burn polygons into the tiles they overlap -> ``{tile: uint8 0/1 [32, 32]}``.

    With ``tiles`` given, exactly those tiles are returned (all-zero ones included, so "no change
    drawn here" can be saved as a label); otherwise every tile with at least one change pixel.
    Polygons that miss the grid entirely are an error, because that nearly always means a wrong CRS.
    """
    projected = [_to_grid_crs(g, polygons.crs, grid.crs) for g in polygons.geometries if not g.is_empty]
    for geometry in projected:
        shapely.prepare(geometry)  # many tile tests against the same polygon
    grid_box = box(*grid.bounds)
    if projected and not any(g.intersects(grid_box) for g in projected):
        raise ProjectError(
            f"none of the {len(projected)} polygon(s) overlaps the project grid; is {polygons.crs} "
            f"({polygons.crs_source}) the right coordinate system?",
            polygons.path,
        )
    wanted = None if tiles is None else [grid.check_tile(t, polygons.path) for t in tiles]
    candidates: set[TileId] = set(wanted or [])
    if wanted is None:
        for geometry in projected:
            candidates.update(grid.tiles_in_bounds(geometry.bounds))
    size = grid.tile_size
    result: dict[TileId, np.ndarray] = {}
    for tile in sorted(candidates):
        tile_box = box(*grid.tile_bounds(tile))
        hits = [g for g in projected if g.intersects(tile_box)]
        label = np.zeros((size, size), dtype=np.uint8)
        if any(g.contains(tile_box) for g in hits):
            label[:] = 1  # inside a large polygon (an AoI, a new district): no need to burn
        elif hits:
            label = rasterize([(mapping(g), 1) for g in hits], out_shape=(size, size),
                              transform=grid.tile_transform(tile), fill=0, all_touched=all_touched, dtype="uint8")
        if wanted is not None or label.any():
            result[tile] = label
    return result


def rasterize_file(path: str | os.PathLike, grid: TileGrid, crs: Any = None, all_touched: bool = False,
                   tiles: Iterable[TileId] | None = None) -> dict[TileId, np.ndarray]:
    """:func:`read_polygons` then :func:`rasterize_polygons`."""
    return rasterize_polygons(read_polygons(path, crs), grid, all_touched, tiles)


def rasterize_tile_polygons(project: Project, tile: TileId, all_touched: bool = False) -> tuple[np.ndarray, str | None]:
    """The label a tile's own ``{y}:{x}.shp`` gives, and a note on the CRS assumed (None if it had a .prj).

    The authors' tile shapefiles come without ``.prj``; we then assume the CRS of the tile's
    label GeoTIFF (else the project CRS) and say so, because that assumption decides where the
    polygons land.
    """
    shp = project.polygon_path(tile)
    assumed = None
    note = None
    if not shp.with_suffix(".prj").is_file():
        assumed, origin = _label_crs(project.labels.tif_path(tile)), "its label GeoTIFF"
        if assumed is None:
            assumed, origin = project.grid.crs, "the project"
        note = f"{shp.name} has no .prj; assumed the CRS of {origin} ({assumed})"
    polygons = read_polygons(shp, assumed)
    labels = rasterize_polygons(polygons, project.grid, all_touched, tiles=[tile])
    return labels[tile], note


def write_polygons_shapefile(path: str | os.PathLike, geometries: Iterable[Any], crs: Any = None,
                             with_dbf: bool = False) -> None:
    """Write polygons as ``.shp`` + ``.shx`` (+ ``.prj`` if ``crs``; ``.dbf`` on request), each atomically.

    The authors' tile folders hold only ``.shp``/``.shx``; writing the same keeps the layout theirs.
    """
    path = Path(path)
    polygons = [g for g in geometries if not g.is_empty]
    with ExitStack() as stack:
        tmp_shp = stack.enter_context(atomic_path(path))
        tmp_shx = stack.enter_context(atomic_path(path.with_suffix(".shx")))
        tmp_dbf = stack.enter_context(atomic_path(path.with_suffix(".dbf"))) if with_dbf else None
        with ExitStack() as files:
            kwargs = {"shp": files.enter_context(open(tmp_shp, "wb")), "shx": files.enter_context(open(tmp_shx, "wb"))}
            if tmp_dbf is not None:
                kwargs["dbf"] = files.enter_context(open(tmp_dbf, "wb"))
            writer = shapefile.Writer(shapeType=shapefile.POLYGON, **kwargs)
            if tmp_dbf is not None:
                writer.field("id", "N", 10)
            for number, geometry in enumerate(polygons):
                writer.shape(_as_shapefile_polygon(geometry))
                if tmp_dbf is not None:
                    writer.record(number)
            writer.close()
    if crs is not None:
        from rasterio.crs import CRS
        from rasterio.enums import WktVersion

        with atomic_path(path.with_suffix(".prj")) as tmp_prj:
            tmp_prj.write_text(CRS.from_user_input(normalize_crs(crs)).to_wkt(version=WktVersion.WKT1_ESRI), encoding="utf-8")


def _as_shapefile_polygon(geometry: Any) -> dict[str, Any]:
    """GeoJSON-like MultiPolygon; pyshp orients the rings as the format wants (exterior clockwise)."""
    polygons = [p for p in getattr(geometry, "geoms", [geometry]) if p.geom_type == "Polygon" and not p.is_empty]
    if not polygons:
        raise ProjectError(f"cannot write a {geometry.geom_type} as a shapefile polygon")
    parts = [[list(p.exterior.coords)] + [list(r.coords) for r in p.interiors] for p in polygons]
    return {"type": "MultiPolygon", "coordinates": parts}


def _to_grid_crs(geometry: Any, crs: str, grid_crs: str) -> Any:
    if same_crs(crs, grid_crs):
        return geometry
    return shape(transform_geom(crs, grid_crs, mapping(geometry)))


def _label_crs(tif: Path) -> str | None:
    if not tif.is_file():
        return None
    import rasterio

    with rasterio.open(tif) as src:
        return normalize_crs(src.crs, tif) if src.crs else None

