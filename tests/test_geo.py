"""TileGrid geometry and tile ids: round trips, the authors' tiling, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import rasterio.windows
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from ercnn_napari.core.errors import ProjectError
from ercnn_napari.core.geo import TileGrid, normalize_crs, same_crs
from ercnn_napari.core.tiles import (
    format_tile_id,
    format_tile_list,
    parse_tile_id,
    parse_tile_list,
    parse_tile_stem,
    read_tile_list,
    tile_stem,
)

UTM31 = "EPSG:32631"


def make_grid(rows: int = 5, cols: int = 7) -> TileGrid:
    return TileGrid(UTM31, 600000.0, 5610000.0, 10.0, 10.0, rows, cols)


# ---------------------------------------------------------------------------- tile ids
def test_tile_id_text_forms():
    assert parse_tile_id("3:5") == (3, 5)
    assert parse_tile_id(" 10 : 54 ") == (10, 54)
    assert format_tile_id((3, 5)) == "3:5"
    assert tile_stem((3, 5)) == "3_5"
    assert parse_tile_stem("Liege_3_5") == ("Liege", (3, 5))
    assert parse_tile_stem("3_5") == (None, (3, 5))
    assert parse_tile_stem("My_Site_12_0") == ("My_Site", (12, 0))
    assert parse_tile_stem("Liege_3") is None


@pytest.mark.parametrize("bad", ["3_5", "3:", "a:b", "-1:2", "3:5:7", ""])
def test_bad_tile_id_is_refused_with_the_file(bad):
    with pytest.raises(ProjectError, match="tile id") as info:
        parse_tile_id(bad, path="list.txt")
    assert info.value.path == "list.txt"


def test_tile_list_round_trip_and_line_numbers(tmp_path):
    tiles = [(0, 38), (10, 54), (66, 73)]
    path = tmp_path / "tiles.txt"
    path.write_text("# comment\n" + format_tile_list(tiles) + "\n")
    assert read_tile_list(path) == tiles
    with pytest.raises(ProjectError, match="line 2") as info:
        parse_tile_list("1:2\n3;4\n", path=path)
    assert info.value.path == str(path)
    with pytest.raises(ProjectError, match="missing"):
        read_tile_list(tmp_path / "absent.txt")


# ---------------------------------------------------------------------------- the authors' tiling
def test_from_aoi_bounds_drops_the_remainder_from_the_top_left():
    # 7 tiles and 100 m wide, 5 tiles and 319 m high: the partial tiles are dropped
    left, top = 600000.0, 5610000.0
    grid = TileGrid.from_aoi_bounds(UTM31, left, top - 5 * 320 - 319, left + 7 * 320 + 100, top, 10.0)
    assert (grid.rows, grid.cols) == (5, 7)
    assert (grid.origin_x, grid.origin_y) == (left, top)
    assert grid.shape_pixels == (160, 224)
    exact = TileGrid.from_aoi_bounds(UTM31, left, top - 640, left + 960, top, 10.0)
    assert (exact.rows, exact.cols) == (2, 3)


def test_from_aoi_bounds_refuses_an_aoi_smaller_than_a_tile():
    with pytest.raises(ProjectError, match="smaller than one tile"):
        TileGrid.from_aoi_bounds(UTM31, 0, 0, 319, 1000, 10.0)
    with pytest.raises(ProjectError, match="empty or inverted"):
        TileGrid.from_aoi_bounds(UTM31, 10, 0, 0, 1000, 10.0)


def test_invalid_grid_values_are_refused():
    with pytest.raises(ProjectError, match="positive"):
        TileGrid(UTM31, 0, 0, -10, 10, 1, 1)
    with pytest.raises(ProjectError, match="rows"):
        TileGrid(UTM31, 0, 0, 10, 10, 0, 1)
    with pytest.raises(ProjectError, match="coordinate reference system"):
        TileGrid("EPSG:999999", 0, 0, 10, 10, 1, 1)


# ---------------------------------------------------------------------------- round trips
def test_every_tile_round_trips_between_id_bounds_and_pixel_window():
    grid = make_grid()
    for tile in grid.tiles():
        left, bottom, right, top = grid.tile_bounds(tile)
        assert right - left == pytest.approx(320.0) and top - bottom == pytest.approx(320.0)
        assert grid.tile_at((left + right) / 2, (bottom + top) / 2) == tile
        assert grid.tile_at(left + 1e-6, top - 1e-6) == tile          # inside the top-left corner
        assert grid.tile_at(right - 1e-6, bottom + 1e-6) == tile      # inside the bottom-right corner
        window = grid.tile_window(tile)
        assert rasterio.windows.transform(window, grid.transform) == grid.tile_transform(tile)
        assert grid.tile_of_transform(grid.tile_transform(tile)) == tile
        rows, cols = grid.tile_slices(tile)
        assert (rows.start, cols.start) == (window.row_off, window.col_off)
    assert len(list(grid.tiles())) == grid.rows * grid.cols


def test_tile_at_outside_and_on_edges():
    grid = make_grid(rows=2, cols=2)
    left, bottom, right, top = grid.bounds
    assert grid.tile_at(left - 1, top - 1) is None
    assert grid.tile_at(right + 1, top - 1) is None
    assert grid.tile_at(left + 1, bottom - 1) is None
    assert grid.tile_at(left + 320.0, top - 1) == (0, 1)   # a shared edge belongs to the right-hand tile
    assert grid.tile_at(left + 1, top - 320.0) == (1, 0)   # ... and to the tile below


def test_tiles_in_bounds_and_check_tile():
    grid = make_grid()
    x0, y0 = grid.origin_x, grid.origin_y
    assert grid.tiles_in_bounds((x0 + 300, y0 - 340, x0 + 330, y0 - 10)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert grid.tiles_in_bounds((x0 - 1000, y0 - 10, x0 - 900, y0)) == []
    assert grid.check_tile((4, 6)) == (4, 6)
    with pytest.raises(ProjectError, match="outside the project grid of 5 rows x 7 columns") as info:
        grid.check_tile((5, 0), path="labels/5_0.npy")
    assert info.value.path == "labels/5_0.npy"


def test_dict_round_trip_and_missing_keys():
    grid = make_grid()
    assert TileGrid.from_dict(grid.to_dict()) == grid
    data = grid.to_dict()
    del data["origin_y"]
    with pytest.raises(ProjectError, match="origin_y"):
        TileGrid.from_dict(data)


def test_crs_normalisation_accepts_wkt_and_refuses_garbage():
    assert normalize_crs(CRS.from_epsg(32631).to_wkt()) == UTM31
    assert normalize_crs("epsg:4326") == "EPSG:4326"
    assert same_crs(UTM31, CRS.from_epsg(32631).to_wkt())
    assert not same_crs(UTM31, "EPSG:3035")
    with pytest.raises(ProjectError, match="coordinate reference system") as info:
        normalize_crs("not a crs", path="p.json")
    assert info.value.path == "p.json"


def test_lonlat_bounds_on_the_central_meridian():
    # x = 500000 m is UTM zone 31's central meridian, 3 degrees east, exactly
    grid = TileGrid(UTM31, 500000.0 - 320.0, 5600320.0, 10.0, 10.0, 2, 2)
    lon0, lat0, lon1, lat1 = grid.bounds_4326()
    assert lon0 < 3.0 < lon1 and (lon0 + lon1) / 2 == pytest.approx(3.0, abs=1e-6)
    # the bottom edge (northing 5599680) is at most a few metres off a parallel over 640 m
    lons, lats = warp_transform(UTM31, "EPSG:4326", [500000.0], [5599680.0])
    assert lons[0] == pytest.approx(3.0, abs=1e-9)
    assert lat0 == pytest.approx(lats[0], abs=1e-4)
    assert 50.0 < lat0 < lat1 < 51.0
    tile_lonlat = grid.tile_bounds_4326((1, 1))
    assert tile_lonlat[0] == pytest.approx(3.0, abs=1e-9)


def test_geographic_grid():
    grid = TileGrid("EPSG:4326", 5.38, 50.73, 0.00014, 0.00009, 3, 4)
    assert grid.is_geographic and not make_grid().is_geographic
    assert grid.tile_bounds_4326((1, 2)) == grid.tile_bounds((1, 2))
    left, bottom, right, top = grid.tile_bounds((1, 2))
    assert math.isclose(left, 5.38 + 2 * 32 * 0.00014) and math.isclose(top, 50.73 - 32 * 0.00009)
    assert np.isclose(right - left, 32 * 0.00014)
