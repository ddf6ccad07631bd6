"""LabelStore: .npy + GeoTIFF pairs, consistency, refusal of misfits, atomic writes under crashes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.errors
from rasterio.transform import from_origin
from rasterio.warp import transform as warp_transform

from ercnn_napari.core import labels as labels_module
from ercnn_napari.core.errors import LabelError
from ercnn_napari.core.geo import TileGrid
from ercnn_napari.core.label_geotiff import read_label_geotiff
from ercnn_napari.core.labels import LabelConflictWarning, LabelStore, normalize_label

UTM31 = "EPSG:32631"
GRID = TileGrid(UTM31, 680000.0, 5610000.0, 10.0, 10.0, 4, 5)
TILE = (2, 3)


def pattern(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((32, 32)) > 0.7).astype(np.uint8)


@pytest.fixture
def store(tmp_path):
    return LabelStore(tmp_path, "Liege", GRID)


def write_tif(path, data, crs, transform):
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", driver="GTiff", width=data.shape[1], height=data.shape[0], count=1,
                       dtype=data.dtype, crs=crs, transform=transform) as dst:
        dst.write(data, 1)


# ---------------------------------------------------------------------------- round trip
def test_write_then_read_both_files(store):
    label = pattern()
    store.write(TILE, label.astype(np.float32) * 0.8)   # any value > 0 is change
    assert store.npy_path(TILE).name == "Liege_2_3.npy"
    assert store.tif_path(TILE).as_posix().endswith("ground_truth/2:3/2:3.tif")
    npy = np.load(store.npy_path(TILE))
    assert npy.dtype == np.uint8 and np.array_equal(npy, label)
    with rasterio.open(store.tif_path(TILE)) as src:
        assert src.crs.to_epsg() == 32631
        assert src.transform == GRID.tile_transform(TILE)
        assert src.nodata == 255 and src.dtypes[0] == "uint8"  # 255 = unsure; none here
        assert not (src.read(1) == 255).any()
        assert src.compression is not None and src.compression.value.lower() == "deflate"
        assert "ercnn-napari" in src.tags()["TIFFTAG_SOFTWARE"]
        assert src.tags()["ERCNN_TILE"] == "2:3"
        assert np.array_equal(src.read(1), label)
    result = store.read_detailed(TILE)
    assert result.source == "both" and result.warning is None
    assert np.array_equal(store.read(TILE), label) and store.read(TILE).dtype == np.uint8
    assert store.exists(TILE) and store.tiles() == [TILE]
    assert store.read((0, 0)) is None and not store.exists((0, 0))


def test_delete_removes_both_files(store):
    store.write(TILE, pattern())
    store.delete(TILE)
    assert not store.exists(TILE) and store.read(TILE) is None


@pytest.mark.parametrize("shape", [(32, 32, 1), (1, 32, 32)])
def test_singleton_axes_are_accepted(shape):
    assert normalize_label(np.ones(shape)).shape == (32, 32)


def test_wrong_shape_nan_and_outside_tile_are_refused(store):
    with pytest.raises(LabelError, match=r"shape \(31, 32\)") as info:
        store.write(TILE, np.zeros((31, 32)))
    assert info.value.path.endswith("Liege_2_3.npy")
    bad = np.zeros((32, 32), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(LabelError, match="NaN"):
        store.write(TILE, bad)
    with pytest.raises(LabelError, match="outside the project grid of 4 rows x 5 columns") as info:
        store.write((4, 0), np.zeros((32, 32)))
    assert info.value.path.endswith("4:0.tif")
    assert not store.exists((4, 0))


def test_npy_with_wrong_shape_or_pickle_is_refused(store):
    path = store.npy_path(TILE)
    path.parent.mkdir(parents=True)
    np.save(path, np.zeros((16, 16)))
    with pytest.raises(LabelError, match=r"shape \(16, 16\)") as info:
        store.read(TILE)
    assert info.value.path == str(path)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(LabelError, match="not a readable numpy label"):
        store.read(TILE)


# ---------------------------------------------------------------------------- consistency
def test_newer_file_wins_with_a_warning(store):
    old, new = pattern(1), pattern(2)
    store.write(TILE, old)
    np.save(store.npy_path(TILE), new)  # an edit outside the viewer
    stamp = store.tif_path(TILE).stat().st_mtime_ns
    os.utime(store.npy_path(TILE), ns=(stamp + 10**9, stamp + 10**9))
    with pytest.warns(LabelConflictWarning, match=r"disagree on \d+ pixel.*newer .*Liege_2_3.npy"):
        got = store.read(TILE)
    assert np.array_equal(got, new)
    os.utime(store.tif_path(TILE), ns=(stamp + 2 * 10**9, stamp + 2 * 10**9))
    result = store.read_detailed(TILE)
    assert result.source == "tif" and np.array_equal(result.array, old) and "2:3.tif" in result.warning
    store.write(TILE, result.array)  # saving again makes them agree
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(store.read(TILE), old)


def test_signature_and_sha256(store, tmp_path):
    assert store.signature(TILE) == (None, None, None) and store.sha256(TILE) is None
    written = store.write(TILE, pattern(3))
    before = store.signature(TILE)
    assert written == before, "write returns the signature of exactly the bytes it wrote"
    digest = store.sha256(TILE)
    assert len(digest) == 64 and before.npy and before.tif and before.unsure is None
    np.save(store.npy_path(TILE), pattern(4).astype(np.float32))
    assert store.signature(TILE) != before
    # the hash follows the content, not the file format: a float32 copy of the same label hashes equal
    other = LabelStore(tmp_path / "other", "Liege", GRID)
    other.npy_path(TILE).parent.mkdir(parents=True)
    np.save(other.npy_path(TILE), pattern(3).astype(np.float32))
    assert other.sha256(TILE) == digest


# ---------------------------------------------------------------------------- GeoTIFFs made elsewhere
def test_geotiff_in_another_projected_crs_is_refused(store):
    write_tif(store.tif_path(TILE), pattern(), "EPSG:3035", from_origin(4000000, 3000000, 10, 10))
    with pytest.raises(LabelError, match="EPSG:3035.*EPSG:32631") as info:
        store.read(TILE)
    assert info.value.path == str(store.tif_path(TILE))


def test_geotiff_with_wrong_shape_or_position_is_refused(store):
    transform = GRID.tile_transform(TILE)
    write_tif(store.tif_path(TILE), np.zeros((64, 64), np.uint8), UTM31, transform)
    with pytest.raises(LabelError, match="64 x 64 pixels, expected 32 x 32"):
        store.read(TILE)
    write_tif(store.tif_path(TILE), pattern(), UTM31, GRID.tile_transform((1, 3)))
    with pytest.raises(LabelError, match=r"not on tile 2:3.*centre lies tile 1:3"):
        store.read(TILE)
    write_tif(store.tif_path(TILE), pattern(), UTM31, from_origin(transform.c, transform.f, 20, 20))
    with pytest.raises(LabelError, match="pixels of 20 x 20"):
        store.read(TILE)


def test_slightly_shifted_and_ungeoreferenced_geotiffs_are_read(store):
    t = GRID.tile_transform(TILE)
    write_tif(store.tif_path(TILE), pattern(5), UTM31, from_origin(t.c + 2.0, t.f - 1.0, 10, 10))
    assert np.array_equal(store.read(TILE), pattern(5))
    path = store.tif_path(TILE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=1, dtype="uint8") as dst:
            dst.write(pattern(6), 1)
    assert np.array_equal(store.read(TILE), pattern(6))


def _lonlat_label_of(tile, label, oversample=4):
    """A EPSG:4326 raster covering ``tile`` (plus a margin) whose pixels copy the UTM label's pixels."""
    lon0, lat0, lon1, lat1 = GRID.tile_bounds_4326(tile)
    step_lon = (lon1 - lon0) / (32 * oversample)
    step_lat = (lat1 - lat0) / (32 * oversample)
    n_lon, n_lat = 32 * oversample + 8, 32 * oversample + 8
    west, north = lon0 - 4 * step_lon, lat1 + 4 * step_lat
    lons = west + (np.arange(n_lon) + 0.5) * step_lon
    lats = north - (np.arange(n_lat) + 0.5) * step_lat
    grid_lon, grid_lat = np.meshgrid(lons, lats)
    xs, ys = warp_transform("EPSG:4326", UTM31, grid_lon.ravel(), grid_lat.ravel())
    left, _, _, top = GRID.tile_bounds(tile)
    cols = np.floor((np.array(xs) - left) / 10.0).astype(int)
    rows = np.floor((top - np.array(ys)) / 10.0).astype(int)
    inside = (rows >= 0) & (rows < 32) & (cols >= 0) & (cols < 32)
    values = np.zeros(rows.size, np.uint8)
    values[inside] = label[rows[inside], cols[inside]]
    return values.reshape(n_lat, n_lon), from_origin(west, north, step_lon, step_lat)


def test_lonlat_label_is_reprojected_onto_its_tile(store):
    label = np.zeros((32, 32), np.uint8)
    label[4:12, 6:20] = 1
    label[20:30, 2:9] = 1
    data, transform = _lonlat_label_of(TILE, label)
    write_tif(store.tif_path(TILE), data, "EPSG:4326", transform)
    got = store.read(TILE)
    assert got.shape == (32, 32)
    # nearest neighbour from a 4x finer raster: at most a few edge pixels may differ
    assert np.count_nonzero(got != label) <= 8
    assert np.count_nonzero(got) == pytest.approx(np.count_nonzero(label), abs=8)


def test_lonlat_label_of_another_tile_is_refused(store):
    data, transform = _lonlat_label_of((2, 4), pattern())
    write_tif(store.tif_path(TILE), data, "EPSG:4326", transform)
    with pytest.raises(LabelError, match=r"does not lie on tile 2:3.*centre lies tile 2:4"):
        read_label_geotiff(store.tif_path(TILE), TILE, GRID)


# ---------------------------------------------------------------------------- atomicity
def _assert_previous_label_intact(store, label):
    assert np.array_equal(np.load(store.npy_path(TILE)), label)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the pair must still agree
        assert np.array_equal(store.read(TILE), label)


def test_failure_while_writing_geotiff_keeps_previous_files(store, monkeypatch):
    good = pattern(7)
    store.write(TILE, good)

    def crash_midway(path, label, grid, tile, unsure=None):
        with open(path, "wb") as fh:
            fh.write(b"II*\x00" + b"\x00" * 100)  # the start of a TIFF, then the "crash"
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(labels_module, "write_label_geotiff", crash_midway)
    with pytest.raises(LabelError, match="disk is full") as raised:
        store.write(TILE, pattern(8))
    assert raised.value.path == str(store.tif_path(TILE)), "the message names the label file, not a temp file"
    _assert_previous_label_intact(store, good)
    leftovers = [p.name for p in store.root.rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_failure_while_writing_npy_keeps_previous_files(store, monkeypatch):
    good = pattern(9)
    store.write(TILE, good)
    real_write = Path.write_bytes

    def short_write(self, data):  # a writer that loses the end of the file and says nothing
        return real_write(self, data[:40])

    monkeypatch.setattr(Path, "write_bytes", short_write)
    with pytest.raises(LabelError, match="write was incomplete") as raised:
        store.write(TILE, pattern(10))
    monkeypatch.undo()
    assert raised.value.path == str(store.npy_path(TILE))
    _assert_previous_label_intact(store, good)


def test_crash_between_the_two_renames_is_detected_and_newer_wins(store, monkeypatch):
    good, new = pattern(11), pattern(12)
    store.write(TILE, good)
    real_replace = os.replace
    calls = []

    def replace_then_die(src, dst):
        calls.append(dst)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies after the GeoTIFF rename
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.write(TILE, new)
    monkeypatch.undo()
    assert str(calls[0]).endswith(".tif")
    with pytest.warns(LabelConflictWarning, match="newer"):
        assert np.array_equal(store.read(TILE), new)


def test_killed_process_mid_write_leaves_previous_files_readable(store):
    good = pattern(13)
    store.write(TILE, good)
    script = textwrap.dedent(f"""
        import os, numpy as np
        from ercnn_napari.core import labels
        from ercnn_napari.core.geo import TileGrid
        def die(path, label, grid, tile, unsure=None):
            with open(path, "wb") as fh:
                fh.write(b"II*\\x00" + b"\\x01" * 500)
                fh.flush()
            os._exit(9)   # no cleanup, like a kill -9 or a power cut
        labels.write_label_geotiff = die
        grid = TileGrid.from_dict({GRID.to_dict()!r})
        labels.LabelStore({str(store.root)!r}, "Liege", grid).write({TILE!r}, np.ones((32, 32)))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 9, result.stderr
    _assert_previous_label_intact(store, good)
    assert store.tiles() == [TILE]  # stray temporary files are not mistaken for labels


def test_geographic_project_resamples_labels_on_a_slightly_different_degree_grid(tmp_path):
    grid = TileGrid("EPSG:4326", 5.38, 50.73, 0.00014, 0.00009, 3, 3)
    store = LabelStore(tmp_path, "Liege", grid)
    left, _, _, top = grid.tile_bounds((1, 1))
    label = np.zeros((32, 32), np.uint8)
    label[8:24, 4:12] = 1
    # 2 % finer pixels and a 0.3-pixel shift, as a download over the tile's own WGS84 box gives
    shifted = from_origin(left + 0.3 * 0.00014, top, 0.00014 / 1.02, 0.00009 / 1.02)
    write_tif(store.tif_path((1, 1)), label, "EPSG:4326", shifted)
    got = store.read((1, 1))
    assert got.shape == (32, 32) and np.count_nonzero(got != label) <= 40   # edges of the 16 x 8 block
    assert got[10:22, 5:11].all() and not got[:, 14:].any()
    write_tif(store.tif_path((1, 1)), label, "EPSG:4326", from_origin(left + 32 * 0.00014, top, 0.000139, 0.00009))
    with pytest.raises(LabelError, match="does not lie on tile 1:1.*centre lies tile 1:2"):
        store.read((1, 1))
