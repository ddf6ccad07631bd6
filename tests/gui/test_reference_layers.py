"""Cached reference imagery in the viewer: multiscale COG layers on the grid, opened the way napari does."""

from __future__ import annotations

import numpy as np
import rasterio
from affine import Affine

from ercnn_napari.reference.cache import cache_reference
from ercnn_napari.reference.store import read_manifest


def write_source(path, crs="EPSG:3857", tint=0):
    """A Web Mercator raster (~1.5 m) around the small project with a diagonal pattern."""
    from rasterio.warp import transform_bounds

    left, bottom, right, top = transform_bounds("EPSG:32631", crs, 681900, 5611200, 683100, 5612100)
    res = 1.5
    width, height = int((right - left) / res), int((top - bottom) / res)
    yy, xx = np.mgrid[0:height, 0:width]
    data = np.stack([(xx * 3) % 256, (yy * 5) % 256, np.full_like(xx, 40 + tint)]).astype(np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3, dtype="uint8", crs=crs,
                       transform=Affine(res, 0, left, 0, -res, top), tiled=True) as out:
        out.write(data)


def cache_pair(project, tmp_path, factor=4):
    write_source(tmp_path / "b.tif")
    write_source(tmp_path / "a.tif", tint=150)
    cache_reference(project, str(tmp_path / "b.tif"), "before", 2016, factor=factor, write_pngs=False)
    cache_reference(project, str(tmp_path / "a.tif"), "after", 2021, factor=factor, write_pngs=False)


def test_cached_cogs_show_as_multiscale_layers_on_the_grid(make_napari_viewer, small_project, tmp_path):
    cache_pair(small_project, tmp_path, factor=10)
    viewer = make_napari_viewer()
    _widget, dock = viewer.window.add_plugin_dock_widget("ercnn-napari", "Label change")
    dock.open_project(small_project.root)
    assert dock.wait_for_references(60)   # built in a thread after the first frame
    names = [layer.name for layer in viewer.layers]
    assert names[:2] == ["before 2016", "after 2021"]
    after = dock.reference_layers["after"]
    assert after.multiscale and len(after.data) >= 2
    assert after.data[0].shape == (640, 960, 4)
    np.testing.assert_allclose(after.scale[-2:], (1.0, 1.0))
    # the outer edges of the 1 m image are the grid's edges (as the labels' are)
    half = np.asarray(after.scale[-2:]) / 2
    np.testing.assert_allclose(after.extent.world[0][-2:] - half, (0.0, 0.0), atol=1e-6)
    np.testing.assert_allclose(after.extent.world[1][-2:] + half, (640.0, 960.0), atol=1e-6)
    # what napari reads through the lazy level is the COG's pixels
    cog = read_manifest(small_project.root)["after"].path
    with rasterio.open(cog) as dataset:
        expected = np.moveaxis(dataset.read(window=((100, 140), (200, 260))), 0, -1)
    np.testing.assert_array_equal(np.asarray(after.data[0][100:140, 200:260]), expected)
    assert np.all(expected[..., 2] == 190) and np.all(expected[..., 3] == 255)
    viewer.reset_view()
    assert after.data_level in range(len(after.data))
