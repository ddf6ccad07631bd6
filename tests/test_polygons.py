"""Polygons -> tile labels, with pixels whose expected values follow from the geometry by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rasterio.warp import transform as warp_transform
from shapely.geometry import Polygon, box

from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.polygons import (
    rasterize_file,
    rasterize_polygons,
    rasterize_tile_polygons,
    read_polygons,
    write_polygons_shapefile,
)
from ercnn_napari.core.project import Project

UTM31 = "EPSG:32631"
X0, Y0 = 680000.0, 5610000.0
GRID = TileGrid(UTM31, X0, Y0, 10.0, 10.0, 3, 3)


def pixel_box(col0: float, row0: float, col1: float, row1: float, tile=(0, 0)) -> Polygon:
    """A rectangle given in (fractional) pixel coordinates of a tile."""
    left, _, _, top = GRID.tile_bounds(tile)
    return box(left + col0 * 10, top - row1 * 10, left + col1 * 10, top - row0 * 10)


def to_lonlat(polygon: Polygon) -> Polygon:
    xs, ys = polygon.exterior.coords.xy
    lons, lats = warp_transform(UTM31, "EPSG:4326", list(xs), list(ys))
    return Polygon(zip(lons, lats, strict=True))


def expected(rows: slice, cols: slice) -> np.ndarray:
    out = np.zeros((32, 32), np.uint8)
    out[rows, cols] = 1
    return out


# rectangle from pixel 3.6 to 7.4 (columns) and 2.6 to 5.4 (rows): the centres x.5 inside are
# columns 4..6 and rows 3..4; every touched pixel is columns 3..7 and rows 2..5
RECT = pixel_box(3.6, 2.6, 7.4, 5.4)


def test_pixel_centre_rule_and_all_touched(tmp_path):
    write_polygons_shapefile(tmp_path / "a.shp", [RECT], crs=UTM31)
    centre = rasterize_file(tmp_path / "a.shp", GRID)
    assert list(centre) == [(0, 0)]
    assert np.array_equal(centre[(0, 0)], expected(slice(3, 5), slice(4, 7)))
    touched = rasterize_file(tmp_path / "a.shp", GRID, all_touched=True)
    assert np.array_equal(touched[(0, 0)], expected(slice(2, 6), slice(3, 8)))


def test_polygon_across_a_tile_edge_and_a_hole(tmp_path):
    # columns 30.2..33.8 of tile (1, 0) -> centres 30, 31 in tile (1,0) and 0..2 (=32..34) in tile (1,1)
    across = pixel_box(30.2, 10.2, 35.8, 11.8, tile=(1, 0))
    ring = pixel_box(10.2, 10.2, 19.8, 19.8, tile=(2, 2)).difference(pixel_box(12.2, 12.2, 17.8, 17.8, tile=(2, 2)))
    labels = rasterize_polygons(read_polygons_from([across, ring], tmp_path), GRID)
    assert sorted(labels) == [(1, 0), (1, 1), (2, 2)]
    assert np.array_equal(labels[(1, 0)], expected(slice(10, 12), slice(30, 32)))
    assert np.array_equal(labels[(1, 1)], expected(slice(10, 12), slice(0, 4)))
    ring_expected = expected(slice(10, 20), slice(10, 20))
    ring_expected[12:18, 12:18] = 0
    assert np.array_equal(labels[(2, 2)], ring_expected)


def read_polygons_from(polygons, folder):
    write_polygons_shapefile(folder / "p.shp", polygons, crs=UTM31)
    polygon_set = read_polygons(folder / "p.shp")
    assert polygon_set.crs == UTM31 and polygon_set.crs_source == "prj"
    assert not (folder / "p.dbf").exists()  # .shp + .shx only, like the authors' folders
    return polygon_set


def test_lonlat_shapefile_lands_on_the_same_pixels(tmp_path):
    write_polygons_shapefile(tmp_path / "ll.shp", [to_lonlat(RECT)], crs="EPSG:4326")
    labels = rasterize_file(tmp_path / "ll.shp", GRID)
    assert np.array_equal(labels[(0, 0)], expected(slice(3, 5), slice(4, 7)))


def test_geojson_with_crs_member_and_default_lonlat(tmp_path):
    projected = {"type": "FeatureCollection",
                 "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32631"}},
                 "features": [{"type": "Feature", "properties": {},
                               "geometry": {"type": "Polygon", "coordinates": [list(RECT.exterior.coords)]}}]}
    (tmp_path / "p.geojson").write_text(json.dumps(projected))
    assert read_polygons(tmp_path / "p.geojson").crs_source == "geojson"
    assert np.array_equal(rasterize_file(tmp_path / "p.geojson", GRID)[(0, 0)], expected(slice(3, 5), slice(4, 7)))
    lonlat = {"type": "Polygon", "coordinates": [list(to_lonlat(RECT).exterior.coords)]}
    (tmp_path / "ll.geojson").write_text(json.dumps(lonlat))
    polygons = read_polygons(tmp_path / "ll.geojson")
    assert polygons.crs == "EPSG:4326" and polygons.crs_source == "geojson-default"
    assert np.array_equal(rasterize_polygons(polygons, GRID)[(0, 0)], expected(slice(3, 5), slice(4, 7)))


def test_requested_tiles_include_empty_ones(tmp_path):
    write_polygons_shapefile(tmp_path / "a.shp", [RECT], crs=UTM31)
    labels = rasterize_file(tmp_path / "a.shp", GRID, tiles=[(0, 0), (2, 1)])
    assert sorted(labels) == [(0, 0), (2, 1)] and not labels[(2, 1)].any()
    with pytest.raises(ProjectError, match="outside the project grid"):
        rasterize_file(tmp_path / "a.shp", GRID, tiles=[(3, 0)])


def test_missing_crs_wrong_crs_and_non_polygons_are_refused(tmp_path):
    write_polygons_shapefile(tmp_path / "noprj.shp", [RECT])
    with pytest.raises(ProjectError, match="no .prj") as info:
        read_polygons(tmp_path / "noprj.shp")
    assert info.value.path.endswith("noprj.shp")
    assert read_polygons(tmp_path / "noprj.shp", crs=UTM31).crs_source == "argument"
    # UTM metres read as if they were degrees: nowhere near the grid
    with pytest.raises(ProjectError, match="none of the 1 polygon.*EPSG:3035"):
        rasterize_file(tmp_path / "noprj.shp", GRID, crs="EPSG:3035")
    (tmp_path / "pt.geojson").write_text(json.dumps({"type": "Point", "coordinates": [5.5, 50.6]}))
    with pytest.raises(ProjectError, match="Point"):
        read_polygons(tmp_path / "pt.geojson")
    with pytest.raises(ProjectError, match="unsupported"):
        read_polygons(tmp_path / "noprj.shx")
    (tmp_path / "noprj.shx").unlink()
    with pytest.raises(ProjectError, match="noprj.shx is missing"):
        read_polygons(tmp_path / "noprj.shp", crs=UTM31)


def test_tile_shapefile_without_prj_assumes_the_label_crs(tmp_path):
    project = Project.create(tmp_path / "proj", "Liege", GRID)
    tile = (1, 2)
    project.labels.write(tile, np.zeros((32, 32)))
    write_polygons_shapefile(project.polygon_path(tile), [pixel_box(3.6, 2.6, 7.4, 5.4, tile=tile)])
    label, note = rasterize_tile_polygons(project, tile)
    assert np.array_equal(label, expected(slice(3, 5), slice(4, 7)))
    assert "no .prj" in note and "label GeoTIFF" in note and UTM31 in note


def test_liege_aoi_outline_from_the_shared_data(shared_dir):
    """The authors' AoI outline (EPSG:4326, ESRI .prj) on a UTM grid from its own bounds.

    The authors' ground-truth tiles reach row 66, so their grid has at least 67 rows: a 10 m grid
    over this outline has exactly 67. The rasterized area must match the outline's area up to the
    dropped edge remainders (well under 1 %).
    """
    from rasterio.warp import transform_bounds, transform_geom
    from shapely.geometry import mapping, shape

    outline = read_polygons(shared_dir / "aoi" / "Liege_4326.shp")
    assert outline.crs == "EPSG:4326" and outline.crs_source == "prj"
    left, bottom, right, top = transform_bounds("EPSG:4326", UTM31, *outline.geometries[0].bounds)
    grid = TileGrid.from_aoi_bounds(UTM31, left, bottom, right, top, 10.0)
    assert grid.rows == 67 and grid.cols >= 74
    labels = rasterize_polygons(outline, grid)
    area = shape(transform_geom("EPSG:4326", UTM31, mapping(outline.geometries[0]))).area
    burnt = sum(int(v.sum()) for v in labels.values()) * 100.0
    assert 0.99 * area < burnt <= area
    assert {t[0] for t in labels} == set(range(grid.rows))
