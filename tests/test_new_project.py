"""``ercnn-napari new``: a project over an AoI polygon, and the AoIs it refuses."""

from __future__ import annotations

import json
import sqlite3
import struct

import pytest
import shapefile
from shapely.geometry import box

from ercnn_napari.cli.main import main
from ercnn_napari.core.aoi import aoi_grid, read_aoi, utm_crs
from ercnn_napari.core.project import Project


def test_liege_aoi_in_its_utm_zone_and_on_the_authors_grid(shared_dir, tmp_path, capsys):
    aoi = shared_dir / "aoi" / "Liege_4326.shp"
    if not aoi.is_file():
        pytest.skip(f"{aoi} not found (set ERCNN_SHARED_DIR to the shared reference data)")
    assert main(["new", str(tmp_path / "liege"), "--aoi", str(aoi), "--site", "Liege"]) == 0
    out = capsys.readouterr().out
    assert "CRS:          EPSG:32631" in out and "Observations: none yet" in out    # info's summary, at once
    project = Project.open(tmp_path / "liege")
    grid = project.grid
    geometry, crs = read_aoi(aoi)
    from rasterio.warp import transform_geom
    from shapely.geometry import mapping, shape

    left, bottom, right, top = shape(transform_geom(crs, "EPSG:32631", mapping(geometry))).bounds
    assert (grid.origin_x, grid.origin_y) == pytest.approx((left, top))              # from the top-left corner
    assert grid.cols == int((right - left) // 320) and grid.rows == int((top - bottom) // 320)   # remainder dropped
    assert (project.root / "ground_truth").is_dir() and (project.root / "training" / "numpy_ground_truth").is_dir()
    assert project.period == ("2017-01-01", "2021-01-16") and project.tiles_with_labels() == []

    authors = aoi_grid(geometry, crs, authors_grid=True)
    assert authors.crs == "EPSG:4326"
    lon0, lat0, lon1, lat1 = geometry.bounds
    assert (authors.origin_x, authors.origin_y) == (lon0, lat1)
    # sized as sentinelhub's bbox_to_dimensions: corners in UTM, extent / 10 m, rounded
    from rasterio.warp import transform

    (e0, e1), (n0, n1) = transform("EPSG:4326", "EPSG:32631", [lon0, lon1], [lat0, lat1])
    assert (lon1 - lon0) / authors.pixel_width == pytest.approx(round(abs(e1 - e0) / 10))
    assert (lat1 - lat0) / authors.pixel_height == pytest.approx(round(abs(n1 - n0) / 10))
    assert authors.pixel_width * 70_630 == pytest.approx(10, rel=0.05)             # ~10 m on the ground
    assert authors.pixel_height * 111_250 == pytest.approx(10, rel=0.05)
    # the authors' Liège ground truth indexes tiles up to y = 66, x = 73: their grid is 67 x 74
    assert (authors.rows, authors.cols) == (67, 74)


def _geojson(path, geometry, crs=None):
    data = {"type": "Feature", "properties": {}, "geometry": geometry}
    if crs:
        data = {"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": crs}}, "features": [data]}
    path.write_text(json.dumps(data))
    return path


def _gpkg(path, polygon, srs_id=32631):
    """A minimal OGC GeoPackage with one polygon feature (what QGIS writes, less the extras)."""
    with sqlite3.connect(path) as db:
        db.executescript("""
            CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY, organization TEXT,
                organization_coordsys_id INTEGER, definition TEXT, description TEXT);
            CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY, data_type TEXT, identifier TEXT, srs_id INTEGER);
            CREATE TABLE gpkg_geometry_columns (table_name TEXT, column_name TEXT, geometry_type_name TEXT,
                srs_id INTEGER, z INTEGER, m INTEGER);
            CREATE TABLE aoi (fid INTEGER PRIMARY KEY, geom BLOB);""")
        db.execute("INSERT INTO gpkg_spatial_ref_sys VALUES ('utm', ?, 'EPSG', ?, 'see EPSG', '')", (srs_id, srs_id))
        db.execute("INSERT INTO gpkg_contents VALUES ('aoi', 'features', 'aoi', ?)", (srs_id,))
        db.execute("INSERT INTO gpkg_geometry_columns VALUES ('aoi', 'geom', 'POLYGON', ?, 0, 0)", (srs_id,))
        blob = b"GP" + bytes([0, 1]) + struct.pack("<i", srs_id) + polygon.wkb
        db.execute("INSERT INTO aoi (geom) VALUES (?)", (blob,))
    return path


def test_geopackage_and_explicit_crs(tmp_path):
    gpkg = _gpkg(tmp_path / "aoi.gpkg", box(682000, 5611000, 683000, 5612000))
    assert main(["new", str(tmp_path / "p"), "--aoi", str(gpkg), "--crs", "EPSG:32631", "--tile-size", "16"]) == 0
    grid = Project.open(tmp_path / "p").grid
    assert (grid.crs, grid.origin_x, grid.origin_y, grid.tile_size, grid.rows, grid.cols) == \
        ("EPSG:32631", 682000.0, 5612000.0, 16, 6, 6)                              # 1000 m / 160 m -> 6, rest dropped
    assert Project.open(tmp_path / "p").site == "aoi"
    assert utm_crs(-70.6, -33.4) == "EPSG:32719"


def test_refuses_what_is_not_an_aoi(tmp_path, capsys):
    point = _geojson(tmp_path / "point.geojson", {"type": "Point", "coordinates": [5.5, 50.6]})
    writer = shapefile.Writer(str(tmp_path / "noprj"), shapeType=shapefile.POLYGON)
    writer.field("id", "N")
    writer.poly([[[5.5, 50.6], [5.5, 50.7], [5.6, 50.7], [5.5, 50.6]]])
    writer.record(1)
    writer.close()
    huge = _geojson(tmp_path / "huge.geojson", {"type": "Polygon", "coordinates": [
        [[2.0, 48.0], [6.0, 48.0], [6.0, 51.0], [2.0, 51.0], [2.0, 48.0]]]})
    cases = [(point, "an AoI must be a polygon"), (tmp_path / "noprj.shp", "no .prj"),
             (huge, "km² (about"), (tmp_path / "absent.geojson", "does not exist")]
    for path, what in cases:
        capsys.readouterr()
        assert main(["new", str(tmp_path / f"p_{path.stem}"), "--aoi", str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(path.name) in err and what in err, err
        assert not (tmp_path / f"p_{path.stem}" / "ercnn_project.json").exists()
    ok = _geojson(tmp_path / "ok.geojson", {"type": "Polygon", "coordinates": [
        [[5.5, 50.6], [5.52, 50.6], [5.52, 50.62], [5.5, 50.62], [5.5, 50.6]]]})
    assert main(["new", str(tmp_path / "twice"), "--aoi", str(ok)]) == 0
    assert main(["new", str(tmp_path / "twice"), "--aoi", str(ok)]) == 2
    assert "a project already exists" in capsys.readouterr().err
