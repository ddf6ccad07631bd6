"""``ercnn-napari reference``: local rasters in another CRS, and a GDAL TMS, an OGC WMS and an OGC WMTS
served on 127.0.0.1 (tests/tile_server.py), reprojected onto the grid, cached as COGs with overviews
(resumably) and cut into per-tile PNGs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image
from rasterio.warp import transform as warp_transform

from ercnn_napari.cli.main import main
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.messages import Finished, Progress, parse_message
from ercnn_napari.core.project import Project
from ercnn_napari.reference.cache import cache_reference
from ercnn_napari.reference.store import parts_dir, read_manifest

GRID = TileGrid("EPSG:32631", 682000.0, 5612000.0, 10.0, 10.0, 2, 3)
# the picture's edges (project CRS): red east of EDGE_X, green north of EDGE_Y
EDGE_X, EDGE_Y = 682000.0 + 410.0, 5612000.0 - 270.0


def _project(root: Path) -> Project:
    return Project.create(root, "Liege", GRID)


def _edges_in(crs: str) -> tuple[float, float]:
    xs, ys = warp_transform("EPSG:32631", crs, [EDGE_X], [EDGE_Y])
    return xs[0], ys[0]


def _expected_agreement(cog: Path, crs: str) -> float:
    """Share of cached pixels whose red/green match the picture's edges seen from ``crs``."""
    x0, y0 = _edges_in(crs)
    with rasterio.open(cog) as dataset:
        data = dataset.read()
        rows, cols = np.mgrid[0:dataset.height, 0:dataset.width]
        xs, ys = dataset.transform * (cols.ravel() + 0.5, rows.ravel() + 0.5)
    px, py = warp_transform("EPSG:32631", crs, xs, ys)
    red = (np.asarray(px) > x0).reshape(rows.shape)
    green = (np.asarray(py) > y0).reshape(rows.shape)
    ok = ((data[0] > 127) == red) & ((data[1] > 127) == green)
    return float(ok.mean())


def _geographic_raster(path: Path, year_tint: int = 0) -> None:
    """An EPSG:4326 GeoTIFF (~1 m) around the AoI with the edge picture."""
    x0, y0 = _edges_in("EPSG:4326")
    (lon_min, lon_max), (lat_min, lat_max) = (5.565, 5.595), (50.62, 50.64)
    res = 1.2e-5
    width, height = int((lon_max - lon_min) / res), int((lat_max - lat_min) / res)
    lons = lon_min + (np.arange(width) + 0.5) * res
    lats = lat_max - (np.arange(height) + 0.5) * res
    data = np.zeros((3, height, width), np.uint8)
    data[0] = np.where(lons[None, :] > x0, 255, 0)
    data[1] = np.where(lats[:, None] > y0, 255, 0)
    data[2] = 60 + year_tint
    profile = {"driver": "GTiff", "width": width, "height": height, "count": 3, "dtype": "uint8",
               "crs": "EPSG:4326", "transform": Affine(res, 0, lon_min, 0, -res, lat_max), "tiled": True}
    with rasterio.open(path, "w", **profile) as out:
        out.write(data)


def test_local_rasters_in_another_crs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # the AoI must lie inside the source: check our assumptions about the test geometry first
    project = _project(tmp_path / "p")
    west, south, east, north = GRID.bounds_4326()
    assert 5.565 < west < east < 5.595 and 50.62 < south < north < 50.64
    _geographic_raster(tmp_path / "ortho_2016.tif")
    _geographic_raster(tmp_path / "ortho_2021.tif", year_tint=100)
    code = main(["reference", str(project.root), "--before", str(tmp_path / "ortho_2016.tif"),
                 "--after", str(tmp_path / "ortho_2021.tif"), "--factor", "4", "--progress", "json"])
    assert code == 0
    events = [parse_message(line) for line in capsys.readouterr().out.splitlines()]
    assert any(isinstance(e, Progress) and "tile PNGs" in e.desc for e in events)
    assert isinstance(events[-1], Finished) and events[-1].summary["after"]["year"] == 2021
    images = read_manifest(project.root)
    assert sorted(images) == ["after", "before"] and images["before"].year == 2016
    with rasterio.open(images["after"].path) as cog:
        assert cog.crs.to_epsg() == 32631 and (cog.height, cog.width) == (64 * 4, 96 * 4)
        assert cog.transform.almost_equals(Affine(2.5, 0, 682000.0, 0, -2.5, 5612000.0))
        assert cog.overviews(1), "the COG must carry overviews (the viewer's pyramid)"
        assert cog.profile.get("tiled") and cog.read(4).min() == 255
        blue = cog.read(3)
    assert np.all(blue == 160)  # the after image, not the before one
    assert _expected_agreement(images["after"].path, "EPSG:4326") > 0.985
    # per-tile PNGs in the authors' layout, read back by the project as a complete pair
    pair = Project.open(project.root).reference_pair((1, 2))
    assert pair.complete and (pair.before_year, pair.after_year) == (2016, 2021)
    with Image.open(pair.after) as png:
        assert png.size == (128, 128) and png.mode == "RGB"
    assert not parts_dir(project.root, "after", 2021).exists()


def test_interrupted_cache_resumes_from_written_bands(tmp_path: Path) -> None:
    project = _project(tmp_path / "p")
    source = tmp_path / "ortho_2016.tif"
    _geographic_raster(source)
    polls = []

    def stop_after_first_band() -> bool:
        polls.append(1)
        return len(polls) > 1

    with pytest.raises(KeyboardInterrupt):
        cache_reference(project, str(source), "before", 2016, factor=2, should_stop=stop_after_first_band)
    first = parts_dir(project.root, "before", 2016) / "row_00000.tif"
    assert first.is_file() and not read_manifest(project.root)
    # mark the band already written: a resumed run must reuse it, not read the source again
    with rasterio.open(first, "r+") as band:
        band.write(np.full((band.height, band.width), 7, np.uint8), 3)
    image = cache_reference(project, str(source), "before", 2016, factor=2)
    with rasterio.open(image.path) as cog:
        blue = cog.read(3)
    assert np.all(blue[:64] == 7) and np.all(blue[64:] == 60)
    # the work of another source (or factor) is not resumed: it starts afresh
    polls.clear()
    with pytest.raises(KeyboardInterrupt):
        cache_reference(project, str(source), "before", 2016, factor=2, should_stop=stop_after_first_band)
    assert first.is_file()
    with pytest.raises(KeyboardInterrupt):
        cache_reference(project, str(source), "before", 2016, factor=1, should_stop=lambda: True)
    assert not (parts_dir(project.root, "before", 2016) / "row_00000.tif").exists()


def test_bad_sources_are_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    project = _project(tmp_path / "p")
    missing = tmp_path / "nothing_2016.tif"
    assert main(["reference", str(project.root), "--before", str(missing)]) == 2
    assert "cannot open the reference imagery" in capsys.readouterr().err
    far = tmp_path / "far_2016.tif"
    with rasterio.open(far, "w", driver="GTiff", width=8, height=8, count=3, dtype="uint8", crs="EPSG:4326",
                       transform=Affine(0.01, 0, 100.0, 0, -0.01, 10.0)) as out:
        out.write(np.zeros((3, 8, 8), np.uint8))
    assert main(["reference", str(project.root), "--before", str(far)]) == 2
    assert "does not cover the project's AoI" in capsys.readouterr().err
    assert main(["reference", str(project.root), "--before", str(far).replace("_2016", "")]) == 2
    assert "give --before-year" in capsys.readouterr().err


@pytest.fixture
def tile_server():
    x0, y0 = _edges_in("EPSG:3857")
    script = Path(__file__).with_name("tile_server.py")
    proc = subprocess.Popen([sys.executable, str(script), repr(x0), repr(y0)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline())
        yield port, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _reference_cli(project: Project, *args: str) -> None:
    """``ercnn-napari reference PROJECT ARGS`` as its own process (GDAL's HTTP must bypass proxies)."""
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    result = subprocess.run([sys.executable, "-m", "ercnn_napari", "reference", str(project.root), *args],
                            capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-2000:]


def _requests(server: subprocess.Popen, kind: str) -> list[str]:
    """The image requests the server logged (``kind`` = GET, GETMAP or GETTILE), after stopping it."""
    server.terminate()
    return [line for line in server.stderr.read().splitlines() if line.split(" ")[0] == kind]


def test_gdal_tms_description_on_loopback(tmp_path: Path, tile_server) -> None:
    port, server = tile_server
    xml = tmp_path / "tiles_2021.xml"
    xml.write_text(f"""<GDAL_WMS>
  <Service name="TMS"><ServerUrl>http://127.0.0.1:{port}/${{z}}/${{x}}/${{y}}.png</ServerUrl></Service>
  <DataWindow><UpperLeftX>-20037508.34</UpperLeftX><UpperLeftY>20037508.34</UpperLeftY>
    <LowerRightX>20037508.34</LowerRightX><LowerRightY>-20037508.34</LowerRightY>
    <TileLevel>19</TileLevel><TileCountX>1</TileCountX><TileCountY>1</TileCountY><YOrigin>top</YOrigin>
  </DataWindow>
  <Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>
  <BandsCount>3</BandsCount><ZeroBlockHttpCodes>404</ZeroBlockHttpCodes>
</GDAL_WMS>
""")
    project = _project(tmp_path / "p")
    _reference_cli(project, "--after", str(xml), "--factor", "5", "--no-png")
    images = read_manifest(project.root)
    assert images["after"].year == 2021 and images["after"].factor == 5
    assert _expected_agreement(images["after"].path, "EPSG:3857") > 0.985
    requests = _requests(server, "GET")
    zooms = {int(line.split()[1].split("/")[0]) for line in requests}
    # 2 m cache pixels (~3.2 m in Web Mercator at 50.6 N): GDAL must ask level 16 (2.4 m), not 19
    assert zooms == {16}, zooms
    assert 0 < len(requests) <= 16


def test_ogc_wms_description_on_loopback(tmp_path: Path, tile_server) -> None:
    """A GDAL WMS description with ``<Service name="WMS">``: GDAL sends OGC GetMap requests."""
    port, server = tile_server
    xml = tmp_path / "wms_2016.xml"
    xml.write_text(f"""<GDAL_WMS>
  <Service name="WMS"><Version>1.1.1</Version><ServerUrl>http://127.0.0.1:{port}/wms?</ServerUrl>
    <SRS>EPSG:3857</SRS><ImageFormat>image/png</ImageFormat><Layers>ortho</Layers></Service>
  <DataWindow><UpperLeftX>-20037508.34</UpperLeftX><UpperLeftY>20037508.34</UpperLeftY>
    <LowerRightX>20037508.34</LowerRightX><LowerRightY>-20037508.34</LowerRightY>
    <SizeX>134217728</SizeX><SizeY>134217728</SizeY></DataWindow>
  <Projection>EPSG:3857</Projection><BlockSizeX>256</BlockSizeX><BlockSizeY>256</BlockSizeY>
  <BandsCount>3</BandsCount>
</GDAL_WMS>
""")
    project = _project(tmp_path / "p")
    _reference_cli(project, "--before", str(xml), "--factor", "2")
    images = read_manifest(project.root)
    assert images["before"].year == 2016 and images["before"].factor == 2
    assert _expected_agreement(images["before"].path, "EPSG:3857") > 0.985
    with Image.open(Project.open(project.root).reference_pair((0, 0)).before) as png:
        assert png.size == (64, 64)
    requests = _requests(server, "GETMAP")
    # 5 m cache pixels over a 960 x 640 m AoI: a few 256 px GetMap blocks, not the whole world
    assert 0 < len(requests) <= 16 and all(r == "GETMAP 256 256" for r in requests), requests


def test_ogc_wmts_connection_on_loopback(tmp_path: Path, tile_server) -> None:
    """A ``WMTS:`` connection string: GDAL reads GetCapabilities, then asks KVP GetTile tiles."""
    port, server = tile_server
    connection = f"WMTS:http://127.0.0.1:{port}/wmts?SERVICE=WMTS&REQUEST=GetCapabilities,layer=ortho"
    project = _project(tmp_path / "p")
    _reference_cli(project, "--after", connection, "--after-year", "2021", "--factor", "2", "--no-png")
    images = read_manifest(project.root)
    assert images["after"].year == 2021 and images["after"].factor == 2
    assert _expected_agreement(images["after"].path, "EPSG:3857") > 0.985
    requests = _requests(server, "GETTILE")
    zooms = {int(line.split()[1].split("/")[0]) for line in requests}
    # 5 m cache pixels (~7.9 m in Web Mercator at 50.6 N): the tile matrix just finer is level 15 (4.8 m)
    assert zooms == {15}, zooms
    assert 0 < len(requests) <= 16
